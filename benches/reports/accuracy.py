"""How the engine's alerts agree with the exact reference as memory shrinks.

    python benches/agreement.py [--agents 60] [--days 40] [--per-day 150]

Runs the exact reference once and the sketch engine at several capacities on the same simulated organisation;
prints a Markdown table: capacity (pair slots of the largest structure), baseline MiB, evictions + dropped keys,
engine alerts, precision and recall against the reference. ``measure`` and ``table`` are what
benches/memory.py reuses.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import raresketch as rs  # noqa: E402
from raresketch.simulate import Organisation  # noqa: E402
from reference import ReferenceEngine  # noqa: E402

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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=60)
    ap.add_argument("--days", type=int, default=40)
    ap.add_argument("--per-day", type=int, default=150)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args(argv)
    res = measure(args.agents, args.days, args.per_day, args.seed)
    print(f"{args.agents} agents, {args.days} days, {res['events']:,} events; reference: "
          f"{res['reference_alerts']} alerts\n")
    print(table(res))


if __name__ == "__main__":
    main()
