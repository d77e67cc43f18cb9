"""Accuracy against exact answers: the engine's alerts as memory shrinks, and KeyedDistinct's error by true count.

    python benches/reports/accuracy.py agreement [--agents 60] [--days 40] [--per-day 150]
    python benches/reports/accuracy.py keyed [--events 5000000] [--exact-limit 256]

``agreement`` runs the exact reference (tests/support/reference.py) once and the sketch engine at several
capacities on the same simulated organisation; prints a Markdown table: capacity (pair slots of the largest
structure), baseline MiB, evictions + dropped keys, engine alerts, precision and recall against the reference.
``measure`` and ``table`` are what benches/reports/memory.py reuses.

``keyed``: KeyedDistinct against exact sets on a skewed workload. Keys get Zipf(1.1) popularity and members
(agents) are drawn per event from 100k, so key sizes span 1 to ~100k distinct members. Prints, per bucket of true
distinct count: keys, exact share, mean signed relative error, RMS relative error, and the share inside the
reported 2-sigma interval.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))

import numpy as np  # noqa: E402
from support.reference import ReferenceEngine  # noqa: E402

import raresketch as rs  # noqa: E402
from raresketch.simulate import Organisation  # noqa: E402

CAPACITIES = (1 << 21, 1 << 18, 1 << 16, 1 << 14, 1 << 13, 1 << 12, 1 << 11)


def measure(agents: int = 60, days: int = 40, per_day: float = 150, seed: int = 3,
            capacities=CAPACITIES, max_agents: int = 1 << 12) -> dict:
    """Alerts of the exact reference and of the engine at each capacity, same simulated events.

    Returns ``{"agents", "days", "events", "reference_alerts", "rows": [{"capacity", "baseline_bytes", "lost",
    "alerts", "true_positives", "precision", "recall"}, ...]}`` (``lost`` = evictions + dropped keys)."""
    batches = list(Organisation(agents=agents, days=days, seed=seed,
                                events_per_agent_day=per_day).batches(50_000))
    ref = ReferenceEngine()
    want = {(a["name"], a["host.id"], a["process.key"], a["destination"], a["timestamp"])
            for b in batches for a in ref.process(b)}
    rows = []
    for cap in capacities:
        eng = rs.Engine(rs.Config(capacity=cap, max_agents=max_agents))
        got = {(a.name, a.host_id, a.process_key, a.destination, a.timestamp) for b in batches
               for a in eng.process(b)}
        lost = sum(h.get("evictions", 0) + h.get("dropped_keys", 0) for h in eng.baseline.health().values())
        tp = len(got & want)
        rows.append({"capacity": cap, "baseline_bytes": eng.baseline.nbytes, "lost": lost, "alerts": len(got),
                     "true_positives": tp, "precision": tp / max(1, len(got)), "recall": tp / max(1, len(want))})
    return {"agents": agents, "days": days, "events": sum(b.num_rows for b in batches),
            "reference_alerts": len(want), "rows": rows}


def table(res: dict) -> str:
    """The Markdown table of :func:`measure`'s result (the lines ``main`` prints)."""
    lines = ["| capacity | baseline MiB | evictions + dropped keys | engine alerts | precision | recall |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        cap = r["capacity"]
        lines.append(f"| 2^{cap.bit_length() - 1} | {r['baseline_bytes'] / 2**20:.1f} | {r['lost']:,} | "
                     f"{r['alerts']} | {r['precision']:.4f} | {r['recall']:.4f} |")
    return "\n".join(lines)


def keyed(events: int = 5_000_000, exact_limit: int = 256) -> None:
    """Print KeyedDistinct's error against exact sets, per bucket of true distinct count (the ``keyed`` command)."""
    rng = np.random.default_rng(0)
    keys = (rng.zipf(1.1, events) % 200_000).astype(np.uint64)
    members = rng.integers(0, 100_000, events).astype(np.uint64)
    kd = rs.sketches.KeyedDistinct(1 << 23, window_days=30, exact_limit=exact_limit)
    kd.update(keys, members, 20_000)
    pairs = np.unique(np.stack([keys, members], axis=1), axis=0)
    uk, true = np.unique(pairs[:, 0], return_counts=True)
    est = kd.count(uk).astype(np.float64)
    lo, hi = kd.count_interval(uk, 2.0)
    print(f"{events:,} events, {len(uk):,} keys, exact_limit {exact_limit}, "
          f"{kd.num_pairs:,} pairs stored, evictions {kd.stats['evictions']}\n")
    print("| true distinct | keys | exact | mean rel. error | RMS rel. error | inside 2-sigma |")
    print("|---|---:|---:|---:|---:|---:|")
    for a, b in [(1, 10), (10, 100), (100, 256), (256, 1000), (1000, 10_000), (10_000, 200_000)]:
        m = (true >= a) & (true < b)
        if not m.any():
            continue
        rel = est[m] / true[m] - 1
        inside = ((lo[m] <= true[m]) & (true[m] <= hi[m])).mean()
        print(f"| {a:,}-{b - 1:,} | {m.sum():,} | {(est[m] == true[m]).mean():.4f} | {rel.mean():+.4f} | "
              f"{np.sqrt((rel ** 2).mean()):.4f} | {inside:.3f} |")



def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    a = sub.add_parser("agreement", help="the engine's alerts against the exact reference, by capacity")
    a.add_argument("--agents", type=int, default=60)
    a.add_argument("--days", type=int, default=40)
    a.add_argument("--per-day", type=int, default=150)
    a.add_argument("--seed", type=int, default=3)
    k = sub.add_parser("keyed", help="KeyedDistinct's error against exact sets, by true count")
    k.add_argument("--events", type=int, default=5_000_000)
    k.add_argument("--exact-limit", type=int, default=256)
    args = ap.parse_args(argv)
    if args.command == "keyed":
        keyed(args.events, args.exact_limit)
        return
    res = measure(args.agents, args.days, args.per_day, args.seed)
    print(f"{args.agents} agents, {args.days} days, {res['events']:,} events; reference: "
          f"{res['reference_alerts']} alerts\n")
    print(table(res))

if __name__ == "__main__":
    main()
