"""Throughput of the compiled core, one core, keys/s (pytest-benchmark).

Run: ``pytest benches/bench_core.py --benchmark-enable --benchmark-columns=min,median,ops``.
Keys/s = N / time; N is printed in each benchmark's extra_info. Side-by-side ratios with other libraries:
``python benches/reports/compare_core.py``.
"""
from __future__ import annotations

import pytest
from workloads import N, agent_dest_events, hostnames, zipf_keys

import raresketch as rs


def _info(benchmark, n):
    benchmark.extra_info["keys"] = n


def test_hash64_arrow_strings(benchmark):
    names = hostnames()
    _info(benchmark, len(names))
    out = benchmark(rs.sketches.hash64, names)
    assert out.shape == (len(names),)


@pytest.mark.parametrize("width", [1 << 16, 1 << 20])
def test_cms_update_and_query(benchmark, width):
    keys = zipf_keys()
    _info(benchmark, len(keys))

    def run():
        cms = rs.sketches.CountMinSketch(width, 4)
        return cms.update_and_query(keys)

    out = benchmark(run)
    assert out.shape == keys.shape


def test_hll_update(benchmark):
    keys = zipf_keys()
    _info(benchmark, len(keys))

    def run():
        h = rs.sketches.HyperLogLog(12)
        h.update(keys)
        return h

    benchmark(run)


def test_keyed_distinct_observe(benchmark):
    dest, agent, days = agent_dest_events()
    _info(benchmark, len(dest))

    def run():
        kd = rs.sketches.KeyedDistinct(1 << 22, window_days=30)
        return kd.observe(dest, agent, days)

    counts, _ = benchmark(run)
    assert counts.shape == dest.shape


def test_bloom_add_if_absent(benchmark):
    keys = zipf_keys()
    _info(benchmark, len(keys))

    def run():
        bf = rs.sketches.BloomFilter(len(keys), 0.01)
        return bf.add_if_absent(keys)

    benchmark(run)


def test_cms_scalar_per_event_call(benchmark):
    keys = [int(k) for k in zipf_keys()[: min(N, 200_000)]]
    _info(benchmark, len(keys))
    cms = rs.sketches.CountMinSketch(1 << 16, 4)
    add = cms.add

    def run():
        for k in keys:
            add(k)

    benchmark(run)
