"""End-to-end throughput of ``Engine.process`` and of ``Catalog.resolve_batch`` alone, on simulated Arrow batches
of 100k events (one core, events/s; issue 8's target is 5M events/s end to end).

Run: ``PYTHONPATH=src python -m pytest benches/bench_engine.py --benchmark-enable --benchmark-columns=min,median``.
Events per run = RARESKETCH_BENCH_N (default 2M; CI's quick mode: 50k, each body once); every benchmark records
``events`` and ``events_per_s`` (from the mean time) in ``extra_info``.
"""
from __future__ import annotations

import functools

import pyarrow as pa
import pyarrow.compute as pc
from workloads import N

import raresketch as rs
from raresketch.catalog import Catalog
from raresketch.events import conform
from raresketch.simulate import Organisation

BATCH = 100_000


@functools.cache
def simulated_batches(n: int = N, batch: int = BATCH) -> tuple[pa.Table, ...]:
    """About n simulated events (200 agents, as many days as it takes; seed 0) in Arrow batches of ``batch``."""
    days = max(2, min(60, n // 80_000 + 2))
    out, total = [], 0
    for b in Organisation(agents=200, days=days, seed=0).batches(min(batch, n)):
        out.append(b)
        total += b.num_rows
        if total >= n:
            break
    return tuple(out)


@functools.cache
def conformed_batches(n: int = N) -> tuple[pa.Table, ...]:
    """The same batches conformed and sorted by time, as ``Engine.process`` hands them to the catalogue."""
    out = []
    for b in simulated_batches(n):
        ev = conform(b)
        out.append(ev.take(pc.sort_indices(ev, [("@timestamp", "ascending")])))
    return tuple(out)


def _info(benchmark, batches) -> None:
    n = sum(b.num_rows for b in batches)
    benchmark.extra_info["events"] = n
    benchmark.extra_info["batches"] = len(batches)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None and stats.stats.mean:
        benchmark.extra_info["events_per_s"] = n / stats.stats.mean


def test_engine_process_batches_100k(benchmark):
    batches = simulated_batches()

    def run():
        eng = rs.Engine()  # a fresh baseline each round: every round sees the same history
        return sum(len(eng.process(b)) for b in batches)

    alerts = benchmark.pedantic(run, rounds=3, iterations=1) if benchmark.enabled else benchmark(run)
    _info(benchmark, batches)
    assert alerts >= 0


def test_conform_batches_100k(benchmark):
    batches = simulated_batches()
    out = benchmark(lambda: [conform(b) for b in batches])
    _info(benchmark, batches)
    assert sum(t.num_rows for t in out) == sum(b.num_rows for b in batches)


def test_catalog_resolve_batch_100k(benchmark):
    batches = conformed_batches()
    cat = Catalog()
    for b in batches[:1]:  # warm the per-value memos as a running engine has them
        cat.resolve_batch(b)
    out = benchmark(lambda: [cat.resolve_batch(b) for b in batches])
    _info(benchmark, batches)
    assert [t.num_rows for t in out] == [b.num_rows for b in batches]
