"""Two checkouts of raresketch side by side: ``Engine.process`` throughput on the same events, alternating rounds.

    python benches/reports/ab_checkouts.py OLD_SRC NEW_SRC [--agents 200] [--days 20] [--rounds 5] [--batch 100000]

``OLD_SRC`` and ``NEW_SRC`` are ``src`` folders of two checkouts with their compiled modules built in place. The
events (the simulator's organisation, written once to Parquet by NEW) are read by each round's subprocess, which
warms an Engine on the first half of the days and times ``Engine.process`` over the second half (batches of
``--batch``). Rounds alternate OLD, NEW, OLD, ... so that a noisy machine hurts both alike; prints each round and
the medians, the spread (min-max) and the ratio NEW/OLD of the medians, and checks both raised the same alerts.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

_ROUND = r"""
import json, sys, time
import pyarrow.parquet as pq, pyarrow.compute as pc, pyarrow as pa
import raresketch as rs
t = pq.read_table(sys.argv[1]).combine_chunks()
cut = pc.add(pc.min(t["@timestamp"]), pa.scalar(int(sys.argv[2]) * 86400 * 10**6, pa.duration("us")))
warm, timed = t.filter(pc.less(t["@timestamp"], cut)), t.filter(pc.greater_equal(t["@timestamp"], cut))
b = int(sys.argv[3])
eng = rs.Engine()
for i in range(0, warm.num_rows, b):
    eng.process(warm.slice(i, b))
batches = [timed.slice(i, b) for i in range(0, timed.num_rows, b)]
t0 = time.perf_counter()
alerts = [a for x in batches for a in eng.process(x)]
s = time.perf_counter() - t0
print(json.dumps({"events": timed.num_rows, "seconds": s,
                  "alerts": sorted((a.name, a.host_id, a.destination, a.timestamp.isoformat()) for a in alerts)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--days", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=100_000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "org.parquet")
        env = dict(os.environ, PYTHONPATH=a.new)
        subprocess.run([sys.executable, "-m", "raresketch", "simulate", "--agents", str(a.agents), "--days",
                        str(a.days), "--out", path], env=env, check=True, capture_output=True)
        res: dict[str, list[dict]] = {"old": [], "new": []}
        for r in range(a.rounds):
            for name in ("old", "new"):
                out = subprocess.run([sys.executable, "-c", _ROUND, path, str(a.days // 2), str(a.batch)],
                                     env=dict(os.environ, PYTHONPATH=getattr(a, name)), check=True,
                                     capture_output=True, text=True).stdout
                d = json.loads(out.strip().splitlines()[-1])
                res[name].append(d)
                print(f"round {r + 1} {name}: {d['events'] / d['seconds'] / 1e6:.2f} M events/s "
                      f"({d['seconds'] * 1e9 / d['events']:.0f} ns/event)", flush=True)
    same = all(x["alerts"] == res["new"][0]["alerts"] for x in res["old"] + res["new"])
    med = {k: statistics.median(x["seconds"] for x in v) for k, v in res.items()}
    for k, v in res.items():
        ns = [x["seconds"] * 1e9 / x["events"] for x in v]
        print(f"{k}: median {med[k] * 1e9 / v[0]['events']:.0f} ns/event, spread {min(ns):.0f}-{max(ns):.0f}")
    print(f"new/old time ratio (medians): {med['new'] / med['old']:.3f}; same alerts: {same} "
          f"({len(res['new'][0]['alerts'])} alerts)")


if __name__ == "__main__":
    main()
