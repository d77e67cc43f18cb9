"""Throughput of prevalence sharing (docs/SHARING.md), pytest-benchmark: keying destination names (one
HMAC-SHA256 each), merging organisations' exports, and looking names up in a consortium file.

Run: ``pytest benches/bench_share.py --benchmark-enable --benchmark-columns=min,median,ops``. The end-to-end
experiment on the simulator is ``python benches/reports/global_prevalence.py``.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from raresketch.share import PrevalenceExport, key_id, merge_exports
from raresketch.share._keys import destination_digests, noise

KEY = bytes(range(32))
N = min(int(os.environ.get("RARESKETCH_BENCH_N", 100_000)), 100_000)
BITS = 1 << 20


def _names(n: int) -> list[str]:
    return [f"aws/s3/bucket-{i}" for i in range(n)]


@functools.cache
def _export(i: int) -> PrevalenceExport:
    params = {"scheme": "hmac-sha256/one-hash/prr", "bits": BITS, "flip": 0.1, "sample": 1.0, "min_share": 0.05,
              "min_agents": 3, "window_days": 30, "key_id": key_id(KEY)}
    return PrevalenceExport(params, f"{i:032x}", 0, 30, noise(bytes([i]) * 32, BITS, 0.1)[1])


def test_destination_digests(benchmark):
    names = _names(N)
    benchmark.extra_info["names"] = N
    out = benchmark(destination_digests, KEY, "cloud", names)
    assert out.shape == (N,)


def test_merge_30_exports(benchmark):
    exps = [_export(i) for i in range(30)]
    benchmark.extra_info["bits"] = BITS
    cons = benchmark(merge_exports, exps)
    assert cons.n_orgs == 30 and int(cons.votes.max()) <= 30


def test_lookup(benchmark):
    cons = merge_exports([_export(i) for i in range(30)])
    names = _names(N)
    benchmark.extra_info["names"] = N
    r = benchmark(cons.lookup, KEY, names)
    assert r["estimate"].shape == (N,) and np.all(r["low"] <= r["high"])
