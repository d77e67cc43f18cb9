"""Engine.process_event: one event at a time gives the alerts and the state of one batch run (any split of an
ordered stream into flushed batches, docs/DETECTORS.md *Time*), accepts flat, nested and loosely typed events
as the readers type them, counts bad ones as process() does, and keeps its size and time bounds."""
from __future__ import annotations

import datetime as dt
import functools
import threading
import time

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings, strategies as st

import raresketch as rs
from raresketch.detect._stream import EventBuffer, events_table, flatten
from raresketch.simulate import Organisation

CFG = rs.Config(capacity=1 << 13, max_agents=512, max_future_days=None, activation_days=7, training_days=10)


@functools.lru_cache(maxsize=1)
def stream() -> pa.Table:
    """A small organisation's events in time order, cut to whole minutes so that many share an instant (the
    stream of tests/reliability/test_resume.py)."""
    t = pa.concat_tables(Organisation(agents=30, days=16, seed=3, events_per_agent_day=40).batches(50_000))
    us = pc.cast(t["@timestamp"], pa.int64())
    minute = pc.multiply(pc.divide(us, 60_000_000), 60_000_000)
    t = t.set_column(t.schema.get_field_index("@timestamp"), "@timestamp",
                     pc.cast(minute, t.schema.field("@timestamp").type))
    return t.sort_by([("@timestamp", "ascending")])


def full_keys(alerts):
    return [(a.name, a.host_id, a.process_key, a.destination, a.timestamp, a.explain(), a.row) for a in alerts]


@functools.lru_cache(maxsize=1)
def batch_run():
    eng = rs.Engine(CFG)
    alerts = eng.process(stream())
    return full_keys(alerts), eng.to_bytes()


@functools.lru_cache(maxsize=1)
def dicts() -> list[dict]:
    return stream().to_pylist()


def test_batch_run_has_alerts():
    assert len(batch_run()[0]) >= 5


@settings(max_examples=12, deadline=None)
@given(st.integers(1, 5000), st.lists(st.floats(0.0, 1.0), max_size=5))
def test_any_split_into_events_gives_the_alerts_and_state_of_one_batch(max_events, flushes):
    """Events handed one at a time, batches cut by ``max_events`` and by explicit flushes anywhere."""
    events = dicts()
    at = {int(f * len(events)) for f in flushes}
    eng = rs.Engine(CFG)
    assert eng.buffer_events(max_events=max_events, max_delay=None) == []
    got = []
    for i, e in enumerate(events):
        if i in at:
            got += eng.flush()
        got += eng.process_event(e)
    got += eng.flush()
    assert eng.pending_events == 0
    want_alerts, want_state = batch_run()
    assert full_keys(got) == want_alerts
    assert eng.to_bytes() == want_state


def test_nested_and_text_typed_events_equal_flat_typed_ones():
    """A nested event, and one with every value as text (ISO time, port and pid as text, flags as "true"),
    give the same alerts and state as the typed flat dicts."""
    events = dicts()[:6000]

    from raresketch.alerts._ecs import _nest as nest

    def text(e):
        return {k: (None if v is None else v.isoformat() if isinstance(v, dt.datetime)
                    else str(v).lower() if isinstance(v, bool) else str(v)) for k, v in e.items()}

    runs = []
    for conv in (lambda e: e, nest, text):
        eng = rs.Engine(CFG)
        got = [a for e in events for a in eng.process_event(conv(e))] + eng.flush()
        runs.append((full_keys(got), eng.to_bytes()))
    ref = rs.Engine(CFG)
    want = (full_keys(ref.process(stream().slice(0, 6000))), ref.to_bytes())
    assert runs[0] == want and runs[1] == want and runs[2] == want


def test_events_table_types_like_the_batch_path():
    t = events_table([
        {"@timestamp": "2024-03-01T10:00:00Z", "host.id": "h1", "destination.port": "443",
         "process.code_signature.trusted": "true", "destination.ip": "1.2.3.4"},
        {"@timestamp": 1709287200, "host.id": 7, "destination.port": 80.0, "destination.domain": "a.example"},
        {"@timestamp": dt.datetime(2024, 3, 1, 11, 0), "host.id": "h3"},            # naive: UTC
    ])
    assert t.schema.names == rs.EVENT_SCHEMA.names
    assert t.column("@timestamp").to_pylist() == [dt.datetime(2024, 3, 1, h, tzinfo=dt.timezone.utc)
                                                  for h in (10, 10, 11)]
    assert t.column("host.id").to_pylist() == ["h1", "7", "h3"]
    assert t.column("destination.port").to_pylist() == [443, 80, None]
    assert t.column("process.code_signature.trusted").to_pylist() == [True, None, None]


def test_bad_events_are_counted_as_process_counts_them():
    good = dicts()[0]
    bad = [{**good, "@timestamp": "not a time"}, {**good, "host.id": None}, {"destination.ip": "1.2.3.4"},
           {**good, "@timestamp": ""}]
    eng = rs.Engine(CFG)
    for e in [*bad, good]:
        eng.process_event(e)
    eng.flush()
    ref = rs.Engine(CFG)
    ref.process(events_table([*bad, good]))
    assert eng.stats["events"] == 5 and eng.stats["skipped_invalid"] == 4
    assert eng.stats == ref.stats


@pytest.mark.parametrize("bad", [None, "host.id=1", [("host.id", "a")], 42])
def test_a_non_mapping_is_refused(bad):
    eng = rs.Engine(CFG)
    with pytest.raises(TypeError, match="mapping"):
        eng.process_event(bad)
    assert eng.pending_events == 0


def test_the_caller_may_reuse_its_dict():
    events = dicts()[:3000]
    eng = rs.Engine(CFG)
    scratch: dict = {}
    got = []
    for e in events:
        scratch.clear()
        scratch.update(e)
        got += eng.process_event(scratch)
    got += eng.flush()
    ref = rs.Engine(CFG)
    assert full_keys(got) == full_keys(ref.process(stream().slice(0, 3000)))


def test_flatten():
    assert flatten({"host": {"id": "a", "os": {"type": "linux"}}, "host.name": "n", "@timestamp": 1}) == {
        "host.id": "a", "host.os.type": "linux", "host.name": "n", "@timestamp": 1}
    # the same field given both ways: the later one wins
    assert flatten({"host.id": "flat", "host": {"id": "nested"}})["host.id"] == "nested"


@pytest.mark.parametrize("kw", [{"max_events": 0}, {"max_events": 1.5}, {"max_events": True},
                                {"max_delay": -1}, {"max_delay": float("nan")}, {"max_delay": float("inf")},
                                {"max_delay": "1"}])
def test_bounds_are_checked(kw):
    with pytest.raises(ValueError):
        EventBuffer(**kw)
    eng = rs.Engine(CFG)
    with pytest.raises(ValueError):
        eng.buffer_events(**kw)


def test_size_bound_and_process_takes_buffered_events_first():
    events = dicts()[:50]
    eng = rs.Engine(CFG)
    eng.buffer_events(max_events=10, max_delay=None)
    for i, e in enumerate(events[:25]):
        eng.process_event(e)
        assert eng.pending_events == (i + 1) % 10
    eng.process(stream().slice(25, 25))                  # the 5 waiting events go first, in order
    assert eng.pending_events == 0
    ref = rs.Engine(CFG)
    ref.process(stream().slice(0, 50))
    assert eng.to_bytes() == ref.to_bytes()


def test_time_bound_is_kept_by_process_event_and_poll():
    events = dicts()[:5]
    eng = rs.Engine(CFG)
    eng.buffer_events(max_events=1000, max_delay=0.05)
    eng.process_event(events[0])
    assert eng.poll() == [] and eng.pending_events == 1   # not due yet
    time.sleep(0.06)
    eng.poll()
    assert eng.pending_events == 0
    eng.process_event(events[1])
    time.sleep(0.06)
    eng.process_event(events[2])                        # the oldest waited: both go
    assert eng.pending_events == 0
    assert eng.stats["events"] == 3


def test_saving_refuses_unprocessed_events():
    eng = rs.Engine(CFG)
    eng.process_event(dicts()[0])
    with pytest.raises(ValueError, match="flush"):
        eng.to_bytes()
    eng.flush()
    assert rs.Engine.from_bytes(eng.to_bytes()).stats["events"] == 1


def test_on_alerts_timer_delivers_within_the_bound_and_in_order():
    """With a callback, a timer flushes an idle buffer; alerts arrive in stream order, none is lost."""
    events = dicts()
    got, arrived = [], threading.Event()

    def deliver(alerts):
        got.extend(alerts)
        arrived.set()

    eng = rs.Engine(CFG)
    eng.buffer_events(max_events=4000, max_delay=0.05, on_alerts=deliver)
    for e in events:
        assert eng.process_event(e) == []
    t0 = time.monotonic()
    while eng.pending_events and time.monotonic() - t0 < 10:   # the timer releases the tail on its own
        time.sleep(0.01)
    assert eng.pending_events == 0
    assert eng.close_events() == []
    assert full_keys(got) == batch_run()[0]
    assert eng.to_bytes() == batch_run()[1]


def test_on_alerts_must_not_call_the_engine_and_its_errors_reach_the_caller():
    events = dicts()
    eng = rs.Engine(CFG)
    errors = []

    def reenter(alerts):
        try:
            eng.process_event(events[0])
        except RuntimeError as e:
            errors.append(str(e))

    eng.buffer_events(max_events=500, max_delay=None, on_alerts=reenter)
    for e in events:
        eng.process_event(e)
    eng.close_events()
    assert errors and "must not call the engine" in errors[0]

    def boom(alerts):
        raise KeyError("sink down")

    # the callback's error reaches the caller: raised by the call whose flush met it, or (when the timer's
    # thread flushed) by the next call
    eng = rs.Engine(CFG)
    eng.buffer_events(max_events=100_000, max_delay=0.2, on_alerts=boom)
    with pytest.raises(KeyError, match="sink down"):
        for e in events:
            eng.process_event(e)
        t0 = time.monotonic()
        while eng.pending_events and time.monotonic() - t0 < 10:
            time.sleep(0.01)
        eng.process_event(events[0])
    eng.close_events()


def test_buffer_events_processes_what_waits_under_the_old_bounds():
    events = dicts()[:20]
    eng = rs.Engine(CFG)
    for e in events:
        eng.process_event(e)
    assert eng.pending_events == 20
    eng.buffer_events(max_events=5)
    assert eng.pending_events == 0 and eng.stats["events"] == 20


def test_an_empty_flush_is_nothing():
    eng = rs.Engine(CFG)
    assert eng.flush() == [] and eng.poll() == [] and eng.close_events() == [] and eng.pending_events == 0
    assert events_table([{"@timestamp": None, "host.id": None}]).num_rows == 1
    assert isinstance(events_table([{}]), pa.Table)
