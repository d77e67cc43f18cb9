"""Spark overhead: events/s per core of ``raresketch.spark.build_baseline`` and ``score`` (local mode) against the
local Engine and the same algorithm in one process, plus the per-partition figures of the paper plan in
docs/SPARK.md (keys row size, partial sizes dense and sparse, merge cost, broadcast size).

    PYSPARK_PYTHON=$(which python) python benches/bench_spark.py [--agents 200 --days 20 --rate 250 --cores 2]

Under pytest (quick mode) only the Spark-free half runs, on a small organisation, so the script never rots.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import pyarrow as pa
import pyarrow.parquet as pq

import raresketch as rs
from raresketch.spark import _core as sc
from raresketch.simulate import Organisation


def _events(agents: int, days: int, rate: float) -> pa.Table:
    return pa.concat_tables(list(Organisation(agents=agents, days=days, seed=7, events_per_agent_day=rate)
                                 .batches())).combine_chunks()


def local_figures(tab: pa.Table, cfg: rs.Config) -> dict:
    n = tab.num_rows
    out = {"events": n}
    batches = [tab.slice(i, 100_000) for i in range(0, n, 100_000)]
    t = time.perf_counter()
    e = rs.Engine(cfg)
    for b in batches:
        e.process(b)
    out["engine_eps"] = n / (time.perf_counter() - t)
    t = time.perf_counter()
    keys = pa.concat_tables([sc.events_to_keys(b, cfg) for b in batches]).combine_chunks()
    out["keys_eps"] = n / (time.perf_counter() - t)
    out["keys_row_bytes"] = keys.nbytes / max(1, keys.num_rows)
    t = time.perf_counter()
    blob = sc.build_partial([sc._sorted(keys)], cfg)
    out["partial_eps"] = n / (time.perf_counter() - t)
    out["partial_dense_bytes"] = len(rs.Baseline.from_sparse_bytes(blob).to_bytes())
    out["partial_sparse_bytes"] = len(blob)
    out["partial_sparse_zstd_bytes"] = len(sc.pack(blob))
    t = time.perf_counter()
    sc.merge_baseline_blobs([blob, blob])
    out["merge_two_partials_s"] = time.perf_counter() - t
    t = time.perf_counter()
    for _ in sc.partition_work([tab], cfg):
        pass
    out["partition_work_eps"] = n / (time.perf_counter() - t)
    t = time.perf_counter()
    sc.build_baseline_local([tab], cfg, parts=4)
    out["algorithm_one_process_eps"] = n / (time.perf_counter() - t)
    out["cloud_share"] = float(keys["is_cloud"].to_numpy(zero_copy_only=False).mean())
    return out


def spark_figures(tab: pa.Table, cfg: rs.Config, cores: int) -> dict:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from raresketch.spark import build_baseline, local_session, score

    out = {}
    t = time.perf_counter()
    spark = local_session(cores, "raresketch-bench")
    spark.sparkContext.setLogLevel("ERROR")
    out["session_start_s"] = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "events.parquet")
        pq.write_table(tab, path, row_group_size=50_000)
        df = spark.read.parquet(path).repartition(2 * cores).persist()
        df.count()
        build_baseline(df.limit(1000), cfg)                   # warm the Python workers and catalogue
        best, stats = None, {}
        for _ in range(2):
            st: dict = {}
            t = time.perf_counter()
            bl = build_baseline(df, cfg, stats=st)
            el = time.perf_counter() - t
            if best is None or el < best:
                best, stats = el, st
        out["build_s"] = best
        out["build_eps_per_core"] = tab.num_rows / best / cores
        out["build_stats"] = stats
        days = tab["@timestamp"].cast(pa.int64()).to_numpy() // 86_400_000_000
        last = days.max()
        train = build_baseline(df.filter(f"`@timestamp` < timestamp_micros({int(last) * 86_400_000_000})"), cfg)
        day_df = df.filter(f"`@timestamp` >= timestamp_micros({int(last) * 86_400_000_000})").persist()
        n_day = day_df.count()
        t = time.perf_counter()
        n_alerts = score(day_df, train).count()
        el = time.perf_counter() - t
        out.update({"score_events": n_day, "score_s": el, "score_eps_per_core": n_day / el / cores,
                    "score_alerts": n_alerts, "broadcast_sparse_bytes": len(train.to_sparse_bytes())})
        del bl
    spark.stop()
    return out


def test_bench_spark_quick():
    """Quick mode: the Spark-free half on a small organisation."""
    f = local_figures(_events(20, 3, 40), rs.Config(capacity=1 << 14, max_agents=1 << 10))
    assert f["events"] > 0 and f["partial_sparse_bytes"] < f["partial_dense_bytes"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--days", type=int, default=20)
    ap.add_argument("--rate", type=float, default=250.0)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--small-config", action="store_true", help="capacity 2**16 instead of the default 2**21")
    a = ap.parse_args()
    cfg = rs.Config(capacity=1 << 16, max_agents=1 << 12) if a.small_config else rs.Config()
    tab = _events(a.agents, a.days, a.rate)
    res = {"config_capacity": cfg.capacity, "local": local_figures(tab, cfg)}
    res["spark"] = spark_figures(tab, cfg, a.cores)
    print(json.dumps(res, indent=1, default=float))


if __name__ == "__main__":
    main()
