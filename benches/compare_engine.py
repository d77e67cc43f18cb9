"""End-to-end throughput of the sketch engine next to the exact reference (dicts and sets), same events, same
process, one core. Prints events/s and the ratio.

    python benches/compare_engine.py [--agents 100] [--days 35] [--per-day 300]

The reference is the oracle of the accuracy tests (tests/reference.py): a faithful per-event implementation of
docs/DETECTORS.md with plain dicts, i.e. what a straightforward Python implementation costs.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import raresketch as rs  # noqa: E402
from raresketch.simulate import Organisation  # noqa: E402
from reference import ReferenceEngine  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--days", type=int, default=35)
    ap.add_argument("--per-day", type=int, default=300)
    args = ap.parse_args(argv)
    batches = list(Organisation(agents=args.agents, days=args.days, seed=0,
                                events_per_agent_day=args.per_day).batches(100_000))
    n = sum(b.num_rows for b in batches)
    rows = []
    for name, make in (("raresketch Engine", rs.Engine), ("exact reference (dicts)", ReferenceEngine)):
        eng = make()
        t = time.perf_counter()
        alerts = sum(len(eng.process(b)) for b in batches)
        rows.append((name, n / (time.perf_counter() - t), alerts))
    print(f"{n:,} events ({args.agents} agents, {args.days} days), batches of 100k\n")
    print("| implementation | events/s | alerts |")
    print("|---|---:|---:|")
    for name, rate, alerts in rows:
        print(f"| {name} | {rate:,.0f} | {alerts} |")
    print(f"\nratio: {rows[0][1] / rows[1][1]:.1f}x")


if __name__ == "__main__":
    main()
