"""Exact resume: one call, any batching, or any number of save/load restarts split at any instant (mid-day,
mid-second) give identical alerts and an identical saved state."""
from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings, strategies as st

import raresketch as rs
from raresketch.simulate import Organisation

CFG = rs.Config(capacity=1 << 13, max_agents=512, max_future_days=None, activation_days=7, training_days=10)


@functools.lru_cache(maxsize=1)
def stream() -> pa.Table:
    """A small organisation's events, timestamps cut to whole minutes so that many events share an instant."""
    t = pa.concat_tables(Organisation(agents=30, days=16, seed=3, events_per_agent_day=40).batches(50_000))
    us = pc.cast(t["@timestamp"], pa.int64())
    minute = pc.multiply(pc.divide(us, 60_000_000), 60_000_000)
    t = t.set_column(t.schema.get_field_index("@timestamp"), "@timestamp", pc.cast(minute, t.schema.field("@timestamp").type))
    return t.sort_by([("@timestamp", "ascending")])


def keys(alerts):
    return [(a.name, a.host_id, a.process_key, a.destination, a.timestamp, a.explain()) for a in alerts]


@functools.lru_cache(maxsize=1)
def straight():
    eng = rs.Engine(CFG)
    alerts = eng.process(stream())
    return keys(alerts), eng.to_bytes()


def run_split(cuts: list[int], restart: bool):
    t = stream()
    eng = rs.Engine(CFG)
    got = []
    bounds = [0, *cuts, t.num_rows]
    for lo, hi in zip(bounds, bounds[1:]):
        got += eng.process(t.slice(lo, hi - lo))
        if restart:
            eng = rs.Engine.from_bytes(eng.to_bytes())
    return keys(got), eng.to_bytes()


def test_straight_run_has_alerts():
    assert len(straight()[0]) >= 5


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6), st.booleans())
def test_split_anywhere_gives_the_same_alerts_and_state(fractions, restart):
    n = stream().num_rows
    cuts = sorted({int(f * n) for f in fractions} - {0, n})
    want_alerts, want_state = straight()
    got_alerts, got_state = run_split(cuts, restart)
    assert got_alerts == want_alerts
    assert got_state == want_state


def test_active_agent_count_survives_a_round_trip():
    from raresketch._core import AgentTable
    at = AgentTable(64, 30, 0)
    at.observe(np.array([1, 2, 3], np.uint64), np.array([100, 101, 101]))
    before = at.observe(np.array([4], np.uint64), np.array([102]))[1]
    again = AgentTable(64, 30, 0)
    again.observe(np.array([1, 2, 3], np.uint64), np.array([100, 101, 101]))
    copy = AgentTable.from_bytes(again.to_bytes())
    assert copy.observe(np.array([4], np.uint64), np.array([102]))[1].tolist() == before.tolist()
    # mid-day: the count of the current day is fixed when the day starts, later first-timers do not change it
    a = AgentTable(64, 30, 0)
    a.observe(np.array([1, 2], np.uint64), np.array([100, 101]))
    b = AgentTable.from_bytes(a.to_bytes())
    a_more = a.observe(np.array([3, 5], np.uint64), np.array([101, 101]))[1]
    b_more = b.observe(np.array([3, 5], np.uint64), np.array([101, 101]))[1]
    assert a_more.tolist() == b_more.tolist()


# ---- the command line: `run --state` over an input cut into pieces at any line ---------------------------------
@functools.lru_cache(maxsize=1)
def ecs_lines() -> list[bytes]:
    import io
    from raresketch.alerts import write_alerts  # noqa: F401  (the package imports cleanly)
    t = stream()
    rows = t.to_pylist()
    import json
    out = []
    for r in rows:
        rec = {k: (v.isoformat().replace("+00:00", "Z") if hasattr(v, "isoformat") else v)
               for k, v in r.items() if v is not None}
        out.append(json.dumps(rec).encode() + b"\n")
    return out


def cli_run(tmp, pieces: list[list[bytes]], tag: str):
    from click.testing import CliRunner
    from raresketch.cli import main

    cfg = tmp / "cfg.toml"
    cfg.write_text("[raresketch]\ncapacity = 8192\nmax_agents = 512\ntraining_days = 10\nactivation_days = 7\n")
    state = tmp / f"{tag}.state"
    state.unlink(missing_ok=True)
    alerts = b""
    for i, piece in enumerate(pieces):
        f = tmp / f"{tag}.{i}.jsonl"
        f.write_bytes(b"".join(piece))
        part = tmp / f"{tag}.{i}.out"
        part.unlink(missing_ok=True)
        args = ["run", str(f), "--state", str(state), "--out", str(part), "--format", "ecs"]
        if i == 0:
            args += ["--config", str(cfg)]
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 0, r.output
        alerts += part.read_bytes()
    return alerts, state.read_bytes()


@functools.lru_cache(maxsize=1)
def cli_straight(tmp):
    return cli_run(tmp, [ecs_lines()], "one")


@settings(max_examples=6, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4))
def test_cli_state_split_anywhere_gives_the_same_alerts_and_state(tmp_path_factory, fractions):
    lines = ecs_lines()
    n = len(lines)
    cuts = sorted({int(f * n) for f in fractions} - {0, n})
    base = tmp_path_factory.getbasetemp() / "split"
    base.mkdir(exist_ok=True)
    want_alerts, want_state = cli_straight(base)
    bounds = [0, *cuts, n]
    got_alerts, got_state = cli_run(base, [lines[a:b] for a, b in zip(bounds, bounds[1:])], "split")
    assert want_alerts.count(b"\n") >= 5
    assert got_alerts == want_alerts
    assert got_state == want_state
