"""How the engine's alerts agree with the exact reference as memory shrinks.

    python benches/agreement.py [--agents 60] [--days 40] [--per-day 150]

Runs the exact reference once and the sketch engine at several capacities on the same simulated organisation;
prints a Markdown table: capacity (pair slots of the largest structure), baseline MiB, evictions + dropped keys,
engine alerts, precision and recall against the reference.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import raresketch as rs  # noqa: E402
from raresketch.simulate import Organisation  # noqa: E402
from reference import ReferenceEngine  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=60)
    ap.add_argument("--days", type=int, default=40)
    ap.add_argument("--per-day", type=int, default=150)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args(argv)
    batches = list(Organisation(agents=args.agents, days=args.days, seed=args.seed,
                                events_per_agent_day=args.per_day).batches(50_000))
    ref = ReferenceEngine()
    want = {(a["name"], a["host.id"], a["process.key"], a["destination"], a["timestamp"])
            for b in batches for a in ref.process(b)}
    n = sum(b.num_rows for b in batches)
    print(f"{args.agents} agents, {args.days} days, {n:,} events; reference: {len(want)} alerts\n")
    print("| capacity | baseline MiB | evictions + dropped keys | engine alerts | precision | recall |")
    print("|---:|---:|---:|---:|---:|---:|")
    for cap in (1 << 21, 1 << 18, 1 << 16, 1 << 14, 1 << 13, 1 << 12, 1 << 11):
        eng = rs.Engine(rs.Config(capacity=cap, max_agents=1 << 12))
        got = {(a.name, a.host_id, a.process_key, a.destination, a.timestamp) for b in batches
               for a in eng.process(b)}
        lost = sum(h.get("evictions", 0) + h.get("dropped_keys", 0) for h in eng.baseline.health().values())
        tp = len(got & want)
        print(f"| 2^{cap.bit_length() - 1} | {eng.baseline.nbytes / 2**20:.1f} | {lost:,} | {len(got)} | "
              f"{tp / max(1, len(got)):.4f} | {tp / max(1, len(want)):.4f} |")


if __name__ == "__main__":
    main()
