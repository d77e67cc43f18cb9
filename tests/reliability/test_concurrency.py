"""Concurrency: one Engine shared across threads works (its lock serialises calls, so the result is sequential
processing in the order the lock was taken); saving while other threads process gives loadable states; the
sketches say in their docstrings that they are not safe for concurrent writers (measured effects in
docs/RELIABILITY.md)."""
from __future__ import annotations

import threading

import pyarrow as pa
import pytest

import raresketch as rs
from raresketch.simulate import Organisation

N_THREADS = 4


def akey(a) -> tuple:
    return (a.name, a.host_id, a.process_key, a.destination, a.timestamp, a.row)


@pytest.fixture(scope="module")
def batches():
    org = Organisation(agents=16, days=18, seed=4, events_per_agent_day=40)
    t = pa.concat_tables(list(org.batches(100_000)))
    step = 400
    return [t.slice(i, step) for i in range(0, t.num_rows, step)]


def _shared_run(batches, cfg):
    """N threads take batches round-robin and process them on one Engine; returns the engine, per-thread
    alerts and the order in which the lock let the batches in."""
    eng = rs.Engine(cfg)
    order: list[int] = []
    inner = eng._process

    def recording(batch):                      # runs under the engine's lock
        order.append(batch.schema.metadata and int(batch.schema.metadata[b"i"]))
        return inner(batch)
    eng._process = recording
    out: dict[int, list] = {i: [] for i in range(N_THREADS)}
    errors: list[BaseException] = []
    barrier = threading.Barrier(N_THREADS)

    def worker(k):
        try:
            barrier.wait()
            for i in range(k, len(batches), N_THREADS):
                b = batches[i].replace_schema_metadata({"i": str(i)})
                out[k].extend(eng.process(b))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return eng, out, order


def test_shared_engine_equals_sequential_in_lock_order(batches):
    cfg = rs.Config(activation_days=3)
    eng, out, order = _shared_run(batches, cfg)
    # no lost or duplicated batch, every event counted once
    assert sorted(order) == list(range(len(batches)))
    total = sum(b.num_rows for b in batches)
    assert eng.stats["events"] == total
    concurrent = sorted((akey(a) for v in out.values() for a in v), key=lambda k: k[-1])
    # the same batches, sequentially, in the order the lock admitted them: identical alerts and counters
    seq = rs.Engine(cfg)
    expected = []
    for i in order:
        expected.extend(seq.process(batches[i]))
    assert concurrent == [akey(a) for a in expected]
    assert dict(eng.stats) == dict(seq.stats) and dict(eng.suppressed) == dict(seq.suppressed)
    assert eng.baseline.to_bytes() == seq.baseline.to_bytes()
    assert len(concurrent) > 5


def test_save_while_other_threads_process(batches, tmp_path):
    eng = rs.Engine(rs.Config(capacity=1 << 12, activation_days=3))
    path = tmp_path / "live.state"
    stop = threading.Event()
    saves: list[int] = []
    errors: list[BaseException] = []

    def saver():
        try:
            while not stop.is_set():
                eng.save(path)
                saves.append(int(rs.Engine.load(path).stats["events"]))
        except BaseException as e:  # pragma: no cover
            errors.append(e)
    s = threading.Thread(target=saver)
    s.start()
    try:
        for b in batches[:40]:
            eng.process(b)
    finally:
        stop.set()
        s.join()
    assert not errors, errors
    sizes = {0} | {sum(b.num_rows for b in batches[:k]) for k in range(1, 41)}
    # every saved state is the engine between two batches, never in the middle of one
    assert saves and set(saves) <= sizes


@pytest.mark.parametrize("cls", [rs.sketches.CountMinSketch, rs.sketches.BloomFilter, rs.sketches.KeyedDistinct])
def test_sketches_document_single_writer(cls):
    doc = (cls.__doc__ or "").lower()
    assert "not thread-safe" in doc
