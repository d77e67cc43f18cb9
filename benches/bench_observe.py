"""``Baseline.observe`` on 100k batches of simulated events, and its physical limit here: the same structure calls
alone on pre-gathered arrays (no glue), both from a warm saved baseline (``reports/observe_limit.py`` runs the two
side by side and checks they build the same baseline). Events/s in ``extra_info``.

Run: ``PYTHONPATH=src python -m pytest benches/bench_observe.py --benchmark-enable --benchmark-columns=min,median``.
Events per run = RARESKETCH_BENCH_N (default 2M; CI's quick mode: 50k, each body once).
"""
from __future__ import annotations

import functools

import pytest
from observe_limit import fresh, kernel_calls, run_kernels, run_observe, workload
from workloads import N


@functools.cache
def _data():
    blob, evs = workload(N, 100_000)
    return blob, evs, kernel_calls(blob, evs)


@pytest.mark.parametrize("contender", ["observe", "kernels_alone"])
def test_baseline_observe(benchmark, contender):
    blob, evs, calls = _data()

    def setup():
        return (fresh(blob),), {}

    def run(b):
        run_observe(b, evs) if contender == "observe" else run_kernels(b, calls)

    benchmark.pedantic(run, setup=setup, rounds=3 if benchmark.enabled else 1, iterations=1)
    n = sum(len(ev) for ev in evs)
    benchmark.extra_info["events"] = n
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None and stats.stats.mean:
        benchmark.extra_info["events_per_s"] = n / stats.stats.mean
