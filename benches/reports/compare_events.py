"""One event per call, side by side in one process: ``Engine.process`` on 1-row batches against
``Engine.process_event`` (event dicts built beforehand, and built in the timed part from JSON lines as a
collector's callback would), alternating rounds on warm engines; then the latency from ``process_event`` of an
event to its alert being returned, at full speed and at a paced rate with the default bound.

    PYTHONPATH=src python benches/reports/compare_events.py [--events 40000] [--rounds 3] [--rate 2000]

The events are the simulated stream of ``benches/bench_engine.py`` (200 agents, seed 0): its first batch
warms each engine, the next ``--events`` are timed. Every contender must raise the same alerts (checked).
Prints events/s per round, medians, spread (min-max) and ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_HERE, ".."), _HERE]

import pyarrow as pa  # noqa: E402

import raresketch as rs  # noqa: E402

try:
    import orjson

    loads = orjson.loads
except ImportError:  # pragma: no cover
    loads = json.loads


def _key(a) -> tuple:
    return (a.name, a.host_id, a.process_key, a.destination, a.timestamp, a.row)


def _warm(history: pa.Table, config: rs.Config | None = None, max_events: int | None = None) -> rs.Engine:
    eng = rs.Engine(config)
    eng.process(history)
    if max_events:
        eng.buffer_events(max_events=max_events)
    return eng


def _json_line(row: dict) -> bytes:
    return json.dumps({k: (v.isoformat().replace("+00:00", "Z") if hasattr(v, "isoformat") else v)
                       for k, v in row.items() if v is not None}).encode()


def run_batches(history, rows_tables):
    eng = _warm(history)
    t0 = time.perf_counter()
    out = [a for t in rows_tables for a in eng.process(t)]
    return time.perf_counter() - t0, out


def run_events(history, dicts, max_events=None):
    eng = _warm(history, max_events=max_events)
    t0 = time.perf_counter()
    out = []
    for d in dicts:
        out += eng.process_event(d)
    out += eng.flush()
    return time.perf_counter() - t0, out


def run_json(history, lines):
    eng = _warm(history)
    t0 = time.perf_counter()
    out = []
    for line in lines:
        out += eng.process_event(loads(line))
    out += eng.flush()
    return time.perf_counter() - t0, out


def latency(history, dicts, rate: float | None, config: rs.Config):
    """Seconds from each alerting event's ``process_event`` call to the call that returned its alert; at
    ``rate`` events/s (paced, ``poll()`` between events) or back to back (None)."""
    eng = _warm(history, config)
    row0 = eng._rows
    handed: list[float] = []
    waits = []
    t_start = time.perf_counter()
    for i, d in enumerate(dicts):
        if rate:
            due = t_start + i / rate
            while True:
                now = time.perf_counter()
                if now >= due:
                    break
                for a in eng.poll():
                    waits.append(now - handed[a.row - row0])
                time.sleep(min(0.001, due - now))
        handed.append(time.perf_counter())
        got = eng.process_event(d)
        now = time.perf_counter()
        waits += [now - handed[a.row - row0] for a in got]
    deadline = time.perf_counter() + 1.0
    while eng.pending_events and time.perf_counter() < deadline:   # the bound releases the last ones
        now = time.perf_counter()
        waits += [now - handed[a.row - row0] for a in eng.poll()]
        time.sleep(0.001)
    return sorted(waits)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=40_000)
    ap.add_argument("--single", type=int, default=1_000, help="events timed through 1-row process() calls")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=float, default=2_000, help="paced latency run: events/s")
    ap.add_argument("--max-events", default="1024,4096,16384",
                    help="process_event(dict) with these max_events too (comma-separated)")
    ap.add_argument("--activation-days", type=int, default=0,
                    help="the latency runs' engine config (alerts from the first day, to have some to time)")
    a = ap.parse_args()
    from bench_engine import simulated_batches

    batches = simulated_batches(max(200_000, a.events + 100_000))
    history = batches[0]
    rest = pa.concat_tables(batches[1:]).slice(0, a.events)
    dicts = rest.to_pylist()
    lines = [_json_line(d) for d in dicts]
    single = [rest.slice(i, 1) for i in range(min(a.single, rest.num_rows))]
    contenders = {
        "process(1-row batch)": (run_batches, single, len(single)),
        "process_event(dict)": (run_events, dicts, len(dicts)),
        "process_event(orjson.loads(line))": (run_json, lines, len(lines)),
    }
    for m in (int(x) for x in a.max_events.split(",") if x):
        contenders[f"process_event(dict), max_events={m}"] = (
            lambda h, d, m=m: run_events(h, d, m), dicts, len(dicts))
    rates: dict[str, list[float]] = {k: [] for k in contenders}
    alerts: dict[str, list] = {}
    for r in range(a.rounds):
        for name, (fn, data, n) in contenders.items():
            s, out = fn(history, data)
            rates[name].append(n / s)
            alerts[name] = [_key(x) for x in out]
            print(f"round {r}: {name:36s} {n / s:12,.0f} events/s  ({len(out)} alerts)", flush=True)
    want = [_key(x) for x in _warm(history).process(rest)]
    for name in contenders:
        if name.startswith("process_event"):
            assert alerts[name] == want, f"{name}: alerts differ from one batch's"
    one = [_key(x) for x in _warm(history).process(rest.slice(0, len(single)))]
    assert alerts["process(1-row batch)"] == one, "1-row batches' alerts differ from one batch's"
    base = statistics.median(rates["process(1-row batch)"])
    print("\nmedian events/s (min-max), ratio to process(1-row batch):")
    for name, v in rates.items():
        m = statistics.median(v)
        print(f"  {name:36s} {m:12,.0f}  ({min(v):,.0f}-{max(v):,.0f})  {m / base:8.1f}x")
    for label, rate in (("back to back", None), (f"paced at {a.rate:,.0f} events/s", a.rate)):
        n = a.events if rate is None else min(a.events, int(5 * a.rate))
        w = latency(history, dicts[:n], rate, rs.Config(activation_days=a.activation_days))
        if w:
            q = lambda p: w[min(len(w) - 1, int(p * len(w)))] * 1e3  # noqa: E731
            print(f"latency {label} (default bound {rs.detect._stream.MAX_EVENTS} events / "
                  f"{rs.detect._stream.MAX_DELAY} s), {len(w)} alerts: median {q(0.5):.1f} ms, "
                  f"p99 {q(0.99):.1f} ms, max {w[-1] * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
