"""Two checkouts side by side on Spark: ``raresketch.spark.build_baseline`` and ``score`` (local mode) against the
local Engine of the same checkout, on the same events, alternating rounds.

    PYSPARK_PYTHON=$(which python) python benches/reports/compare_spark.py OLD_SRC NEW_SRC \
        [--agents 200] [--days 20] [--rate 250] [--cores 2] [--rounds 2]

``OLD_SRC`` and ``NEW_SRC`` are ``src`` folders of two checkouts with their compiled modules built in place. The
simulator's organisation is written once to Parquet; each round is a subprocess (its own SparkSession, workers
importing that checkout) that times the local Engine over all events, then — after one warm-up build on 1,000
events — ``build_baseline`` over all events and ``score`` of the last day against a baseline of the days
before it. Rounds alternate OLD, NEW, OLD, ... so that a noisy machine hurts both alike. Prints each round, the
medians and spread (min-max) of events/s per core, their ratio NEW/OLD, and each checkout's Spark rate as a
share of its local engine's; checks that both checkouts built equal baselines (every structure's counts) and
raised the same alerts.
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
import hashlib, json, os, sys, time
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
import raresketch as rs
from raresketch.spark import build_baseline, local_session, score
path, cores = sys.argv[1], int(sys.argv[2])
tab = pq.read_table(path).combine_chunks()
n = tab.num_rows
t0 = time.perf_counter()
eng = rs.Engine()
for i in range(0, n, 100_000):
    eng.process(tab.slice(i, 100_000))
engine_eps = n / (time.perf_counter() - t0)
spark = local_session(cores, "raresketch-compare")
spark.sparkContext.setLogLevel("ERROR")
df = spark.read.parquet(path).repartition(2 * cores).persist()
df.count()
build_baseline(df.limit(1000))                       # warm the Python workers and catalogue
t0 = time.perf_counter()
bl = build_baseline(df)
build_s = time.perf_counter() - t0
digest = hashlib.sha256()
for name, kd in bl.structures.items():
    k, c = kd.items()
    o = np.argsort(k)
    digest.update(name.encode() + k[o].tobytes() + c[o].tobytes())
k, f, last = bl.agents.items()
o = np.argsort(k)
digest.update(k[o].tobytes() + f[o].tobytes() + last[o].tobytes())
days = tab["@timestamp"].cast(pa.int64()).to_numpy() // 86_400_000_000
cut = f"timestamp_micros({int(days.max()) * 86_400_000_000})"
train = build_baseline(df.filter(f"`@timestamp` < {cut}"))
day = df.filter(f"`@timestamp` >= {cut}").persist()
n_day = day.count()
t0 = time.perf_counter()
alerts = score(day, train).toArrow()
score_s = time.perf_counter() - t0
spark.stop()
print(json.dumps({"events": n, "engine_eps": engine_eps, "build_s": build_s, "build_eps_core": n / build_s / cores,
                  "score_events": n_day, "score_s": score_s, "score_eps_core": n_day / score_s / cores,
                  "baseline": digest.hexdigest(),
                  "alerts": sorted(map(str, zip(alerts["@timestamp"].to_pylist(), alerts["rule.name"].to_pylist(),
                                                alerts["host.id"].to_pylist())))}))
"""


def _run(src: str, path: str, cores: int) -> dict:
    env = dict(os.environ, PYTHONPATH=src)
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    out = subprocess.run([sys.executable, "-c", _ROUND, path, str(cores)], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"round failed for {src}:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--days", type=int, default=20)
    ap.add_argument("--rate", type=float, default=250.0)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    sys.path.insert(0, a.new)
    import pyarrow as pa
    import pyarrow.parquet as pq
    from raresketch.simulate import Organisation

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "events.parquet")
        org = Organisation(agents=a.agents, days=a.days, seed=7, events_per_agent_day=a.rate)
        pq.write_table(pa.concat_tables(list(org.batches())), path, row_group_size=50_000)
        res: dict[str, list[dict]] = {"old": [], "new": []}
        for r in range(a.rounds):
            for label in ("old", "new"):
                x = _run(getattr(a, label), path, a.cores)
                res[label].append(x)
                print(f"round {r} {label}: engine {x['engine_eps']:,.0f}/s, build {x['build_s']:.1f} s "
                      f"({x['build_eps_core']:,.0f}/s/core), score {x['score_s']:.1f} s "
                      f"({x['score_eps_core']:,.0f}/s/core)", flush=True)
    for key in ("build_eps_core", "score_eps_core", "engine_eps"):
        med = {lb: statistics.median(x[key] for x in res[lb]) for lb in res}
        spread = {lb: (min(x[key] for x in res[lb]), max(x[key] for x in res[lb])) for lb in res}
        print(f"{key}: old {med['old']:,.0f} ({spread['old'][0]:,.0f}-{spread['old'][1]:,.0f}), new {med['new']:,.0f} "
              f"({spread['new'][0]:,.0f}-{spread['new'][1]:,.0f}), new/old {med['new'] / med['old']:.2f}")
    for lb in res:
        share = statistics.median(x["build_eps_core"] / x["engine_eps"] for x in res[lb])
        print(f"{lb}: Spark build per core = 1/{1 / share:.1f} of the local engine")
    same_bl = len({x["baseline"] for lb in res for x in res[lb]}) == 1
    same_alerts = len({json.dumps(x["alerts"]) for lb in res for x in res[lb]}) == 1
    print(f"equal baselines: {same_bl}; equal alerts: {same_alerts}")


if __name__ == "__main__":
    main()
