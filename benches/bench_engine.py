"""End-to-end throughput of ``Engine.process`` for batches of 1, 100, 10k and 100k simulated events, of
``Engine.process_event`` (one event dict per call, micro-batched by its default bounds; the dicts are built
outside the timed part), and of its parts alone: ``conform``, the key resolver, ``Catalog.resolve_batch``
(one core, events/s; issue 8's target is 5M events/s end to end on batches of 100k).

Run: ``PYTHONPATH=src python -m pytest benches/bench_engine.py --benchmark-enable --benchmark-columns=min,median``.
Events per run = RARESKETCH_BENCH_N (default 2M; CI's quick mode: 50k, each body once); every benchmark records
``events`` and ``events_per_s`` (from the mean time) in ``extra_info``.
"""
from __future__ import annotations

import functools

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from workloads import N

import raresketch as rs
from raresketch.detect import KeyResolver
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


#: Events timed per batch size (small batches cost per call, so fewer events keep a round short).
SIZES = {1: max(200, N // 1000), 100: max(2_000, N // 40), 10_000: N, 100_000: N}


def _warm_engine_run(benchmark, history: pa.Table, parts: list, timed) -> int:
    """Time ``timed(engine)`` on a fresh engine that has learned ``history`` (3 rounds when measuring, 1 in
    quick mode); record the events of ``parts``. Returns the alerts of the last round."""
    def setup():
        eng = rs.Engine()
        eng.process(history)
        return (eng,), {}

    rounds = 3 if benchmark.enabled else 1
    alerts = benchmark.pedantic(timed, setup=setup, rounds=rounds, iterations=1)
    _info(benchmark, parts)
    return alerts


def _history_and_rest() -> tuple[pa.Table, pa.Table]:
    return simulated_batches()[0], pa.concat_tables(simulated_batches()[1:] or simulated_batches()[:1])


@pytest.mark.parametrize("size", list(SIZES))
def test_engine_process(benchmark, size):
    """Score-then-learn on a warm engine (one batch of history first): events/s by batch size."""
    history, rest = _history_and_rest()
    n = min(SIZES[size], rest.num_rows)
    parts = [rest.slice(off, size) for off in range(0, n, size)]
    alerts = _warm_engine_run(benchmark, history, parts, lambda eng: sum(len(eng.process(p)) for p in parts))
    assert alerts >= 0


def dictionary_encoded(t: pa.Table) -> pa.Table:
    """``t`` with every text column dictionary-encoded (as Parquet and Arrow store text) and no conformed mark."""
    cols = [pc.dictionary_encode(c).combine_chunks() if pa.types.is_string(c.type) else c for c in t.columns]
    return pa.Table.from_arrays(cols, names=t.column_names)


def test_engine_process_dictionary(benchmark):
    """test_engine_process[100000] on the same events with their text columns dictionary-encoded: each distinct
    value is normalised, hashed and resolved once per batch, rows gather (issue 19's target: 8 M events/s)."""
    history, rest = _history_and_rest()
    n = min(SIZES[BATCH], rest.num_rows)
    parts = [dictionary_encoded(rest.slice(off, BATCH)) for off in range(0, n, BATCH)]
    alerts = _warm_engine_run(benchmark, dictionary_encoded(history), parts,
                              lambda eng: sum(len(eng.process(p)) for p in parts))
    assert alerts >= 0


def test_engine_process_event(benchmark):
    """One event dict per call on a warm engine (default bounds: a batch per 1024 events), flushed at the end;
    compare with ``test_engine_process[1]``. Side by side: benches/reports/compare_events.py."""
    history, rest = _history_and_rest()
    n = min(SIZES[100], rest.num_rows)
    events = rest.slice(0, n).to_pylist()

    def run(eng):
        return sum(len(eng.process_event(e)) for e in events) + len(eng.flush())

    alerts = _warm_engine_run(benchmark, history, [rest.slice(0, n)], run)
    assert alerts >= 0


def test_conform_batches_100k(benchmark):
    # without the simulator's conformed mark, so that conform does its full work (as on a foreign table)
    batches = [b.replace_schema_metadata(None) for b in simulated_batches()]
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


def test_key_resolver_100k(benchmark):
    """The Engine's per-stream key path alone (caches warmed by the first batch, as in a running engine)."""
    batches = conformed_batches()
    resolver = KeyResolver(Catalog())
    days = [b["@timestamp"].combine_chunks().cast(pa.int64()).to_numpy() // 86_400_000_000 for b in batches]
    resolver.resolve(batches[0], days[0])
    out = benchmark(lambda: [resolver.resolve(b, d)[0] for b, d in zip(batches, days)])
    _info(benchmark, batches)
    assert [len(k) for k in out] == [b.num_rows for b in batches]
