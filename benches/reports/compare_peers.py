"""raresketch.Engine next to its peers on the same simulated events, in one process, on one core: the exact
reference (dicts and sets), the same detector logic on Apache DataSketches and on datasketch (per-item calls),
and a pandas / polars / DuckDB group-by formulation (benches/reports/_peers.py says what each does). Prints a
markdown table: events/s, alerts, agreement with the exact reference, ratio (raresketch / peer) and retained state size.

    python benches/reports/compare_peers.py [--agents 100] [--days 35] [--per-day 300] [--slow-events N] [--peak]

``--slow-events N`` runs the per-item peers (reference, DataSketches, datasketch) on the first batches
holding N events only (default: every event); their agreement is then measured against the reference's
alerts on the same batches (both are online: the alerts of a prefix do not depend on what follows), and
ratios compare rates. Agreement key: (alert name, host.id, process key, destination, timestamp), as in
tests/detect/test_agreement.py. Memory: the state retained after the run (``Baseline.nbytes`` for raresketch,
preallocated; a deep ``sys.getsizeof`` / serialised-size estimate for the others); ``--peak`` adds a second,
traced run per Python contender (tracemalloc: Python and numpy allocations, not DataSketches' C++ heap).
"""
from __future__ import annotations

import os

os.environ.setdefault("POLARS_MAX_THREADS", "1")  # one core: before polars / BLAS are imported
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_MAX_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import functools
import gc
import importlib.util
import sys
import time
import tracemalloc

import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _peers as peers

import raresketch as rs
from raresketch.simulate import Organisation

BATCH = 100_000


def alert_key(a) -> tuple:
    """The agreement key of tests/detect/test_agreement.py, for reference-style dicts and raresketch Alerts."""
    if isinstance(a, dict):
        return (a["name"], a["host.id"], a["process.key"], a["destination"], a["timestamp"])
    return (a.name, a.host_id, a.process_key, a.destination, a.timestamp)


def contenders(only: set[str] | None = None) -> list[tuple[str, str, type, bool]]:
    """(label, short name, factory, per-item) for every contender whose library is installed."""
    out = [("raresketch Engine", "engine", rs.Engine, False),
           ("exact reference (dicts, per event)", "reference", peers.ReferenceEngine, True),
           ("Apache DataSketches (hll_sketch per key-day, per item)", "datasketches", peers.DataSketchesPeer, True),
           ("datasketch (HyperLogLogPlusPlus per key-day, per item)", "datasketch", peers.DatasketchPeer, True),
           ("pandas group-by (per day)", "pandas", peers.PandasPeer, False),
           ("polars group-by (per day)", "polars", peers.PolarsPeer, False),
           ("DuckDB group-by (SQL window functions, per day)", "duckdb", peers.DuckDbPeer, False)]
    libs = {"datasketches": "datasketches", "datasketch": "datasketch", "pandas": "pandas", "polars": "polars",
            "duckdb": "duckdb"}
    out = [c for c in out if c[1] not in libs or importlib.util.find_spec(libs[c[1]]) is not None]
    if only:
        out = [c for c in out if c[1] in only or c[1] in ("engine", "reference")]
    return out


def run(factory, batches) -> tuple[float, float, list[list], object]:
    """(CPU seconds, wall seconds) to process ``batches`` with a fresh contender, its alerts per batch, the
    contender. CPU time of the process: the machine may be shared, and every contender runs on one thread."""
    eng = factory()
    gc.collect()
    out = []
    t, c = time.perf_counter(), time.process_time()
    for b in batches:
        out.append(eng.process(b))
    return time.process_time() - c, time.perf_counter() - t, out, eng


def traced_peak(factory, batches) -> int:
    eng = factory()
    gc.collect()
    tracemalloc.start()
    for b in batches:
        eng.process(b)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def _days(batches) -> int:
    """Calendar days spanned by ``batches`` (event time)."""
    days = [pc.divide(b.column("@timestamp").cast(pa.int64()), 86_400_000_000) for b in batches]
    return int(max(pc.max(d).as_py() for d in days) - min(pc.min(d).as_py() for d in days) + 1)


def _share(tp: int, n: int) -> str:
    return f"{tp / n:.4f}" if n else "n/a"


def _mb(n: int | None) -> str:
    return "" if n is None else f"{n / 1e6:,.1f} MB"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--days", type=int, default=35)
    ap.add_argument("--per-day", type=int, default=300, help="events per agent per weekday")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--slow-events", type=int, default=0,
                    help="run the per-item peers on the first batches holding this many events (whole batches; 0: all)")
    ap.add_argument("--batch", type=int, default=BATCH, help="events per Arrow batch")
    ap.add_argument("--only", default="", help="comma-separated short names (datasketches, datasketch, pandas, "
                                               "polars, duckdb); the engine and the reference always run")
    ap.add_argument("--peak", action="store_true", help="also trace peak Python allocations (a second run each)")
    args = ap.parse_args(argv)
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)

    t0 = time.perf_counter()
    batches = list(Organisation(agents=args.agents, days=args.days, seed=args.seed,
                                events_per_agent_day=args.per_day).batches(args.batch))
    n_all = sum(b.num_rows for b in batches)
    k_slow = len(batches)
    if args.slow_events:
        total = 0
        for k_slow, b in enumerate(batches, 1):
            total += b.num_rows
            if total >= args.slow_events:
                break
    n_slow = sum(b.num_rows for b in batches[:k_slow])
    print(f"{n_all:,} simulated events ({args.agents} agents, {args.days} days, {args.per_day}/agent-day, seed "
          f"{args.seed}) in batches of {args.batch:,}; simulation {time.perf_counter() - t0:.1f} s. One process, one "
          f"core (Arrow CPU pool 1, POLARS_MAX_THREADS={os.environ['POLARS_MAX_THREADS']}).", flush=True)
    if k_slow < len(batches):
        print(f"Per-item peers (reference, DataSketches, datasketch) run on the first {k_slow} batches "
              f"({n_slow:,} events, {_days(batches[:k_slow])} of {_days(batches)} days); "
              f"their agreement is against the reference on the same batches: compare rates, not alert counts.")

    # One catalogue for everyone, its per-host/per-process memo warmed once: each contender still conforms and
    # resolves every batch, but none pays for filling the memo on behalf of the ones after it.
    t0 = time.perf_counter()
    catalog = rs.default_catalog()
    for b in batches:
        catalog.resolve_batch(rs.conform(b))
    print(f"catalogue memo warmed in {time.perf_counter() - t0:.1f} s (shared by all contenders, untimed).")

    only = {s.strip() for s in args.only.split(",") if s.strip()} or None
    results = []
    ref_batches = None
    for label, short, factory, per_item in contenders(only):
        use = batches[:k_slow] if per_item else batches
        print(f"running {label} on {sum(b.num_rows for b in use):,} events ...", file=sys.stderr, flush=True)
        make = functools.partial(factory, None, catalog)
        secs, wall, per_batch, eng = run(make, use)
        if short == "reference":
            ref_batches = per_batch
        results.append({"label": label, "short": short, "n": sum(b.num_rows for b in use), "secs": secs, "wall": wall,
                        "per_batch": per_batch, "state": peers.state_bytes(eng), "k": len(use),
                        "peak": traced_peak(make, use) if args.peak and short != "engine" else None})
        del eng
    # the reference's alerts on the first k batches, for any k (it is online)
    # (if the reference ran on a prefix only, full-run contenders are compared on that prefix)
    print()
    print("| implementation | events | CPU s (wall s) | events/s | alerts | precision | recall | "
          "ratio (raresketch ÷ peer) | retained state" + (" | traced peak (Python heap)" if args.peak else "") + " |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if args.peak else ""))
    eng_rate = next((r["n"] / r["secs"] for r in results if r["short"] == "engine"), None)
    for r in results:
        k = min(r["k"], len(ref_batches))
        want = {alert_key(a) for b in ref_batches[:k] for a in b}
        got = {alert_key(a) for b in r["per_batch"][:k] for a in b}
        tp = len(got & want)
        alerts = sum(len(b) for b in r["per_batch"])
        rate = r["n"] / r["secs"]
        note = "" if k == r["k"] else f" (agreement on the first {k} batches)"
        ratio = f"{eng_rate / rate:,.1f}x" if eng_rate else "n/a"
        print(f"| {r['label']}{note} | {r['n']:,} | {r['secs']:.1f} ({r['wall']:.1f}) | {rate:,.0f} | {alerts} | "
              f"{_share(tp, len(got))} | {_share(tp, len(want))} | {ratio} | {_mb(r['state'])}"
              + (f" | {_mb(r['peak'])}" if args.peak else "") + " |")
    print()
    print("events/s = events / CPU seconds of the process (one thread each); ratio = raresketch's events/s / the "
          "peer's. Agreement: alerts keyed (name, host.id, process key, destination, timestamp) against the "
          "exact reference's on the same batches.")
    print("Sketch peers: the nine distinct-count tables are HLLs (per key and day, window = union), rounded to "
          "integers; the two membership tables (process_seen, agent_seen_kind) stay the reference's exact dicts "
          "(an HLL cannot answer membership). Group-by peers: one chunk per (batch, day), exact for in-order "
          "input. See benches/reports/_peers.py.")
    print("raresketch's retained state is Baseline.nbytes (fixed, preallocated at the default capacity); the "
          "others' is what they hold after the run (deep sys.getsizeof of dicts/keys/sketches, serialised size "
          "of DataSketches' C++ sketches, frame sizes for pandas/polars, 24 bytes a row of DuckDB's tables).")


if __name__ == "__main__":
    main()
