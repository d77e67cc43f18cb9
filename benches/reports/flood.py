"""Hostile cardinality: one host contacts N unique hostnames under a cloud suffix (``<random>.s3.amazonaws.com``:
each a distinct cloud resource ``aws/s3/<random>``). Does memory stay within the configured budget, and do the
injected attacks on the other hosts still fire?

    python benches/reports/flood.py                                  # 1 M flood hostnames, default capacity (the figures)
    python benches/reports/flood.py --flood 200000 --capacity 65536  # smaller
    python benches/reports/flood.py --process powershell.exe --signer "Microsoft Windows"   # the real, signed powershell
    python benches/reports/flood.py --random-process                 # a new process name per connection

It simulates an organisation with injected attacks (raresketch.simulate), runs it once clean and once with the
flood spliced in on the first day after activation (so every attack comes after it), and prints: attacks caught,
alerts not explained by an injection (false-positive proxy), suppressed counts, per-structure evictions and dropped
keys, baseline bytes (fixed at construction: the budget), peak RSS and the tracemalloc peak of the flood run.
docs/RELIABILITY.md has the figures. ``run()`` is what tests/reliability/test_flood.py calls at small scale.
"""
from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
import tracemalloc

import numpy as np
import pyarrow as pa

import raresketch as rs
from raresketch.simulate import Organisation, match_ground_truth

US_DAY = 86_400_000_000


def rss_mib() -> float:
    """Current resident set size (MiB), from /proc (Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def flood_table(n: int, host_id: str, host_name: str, start_us: int, process: str, seed: int = 9,
                suffix: str = "s3.amazonaws.com", random_process: bool = False, signer: str | None = None
                ) -> pa.Table:
    """``n`` connections from one host to ``n`` distinct random hostnames under ``suffix``, spread over one hour
    from ``start_us``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 1 << 62, n, dtype=np.int64)
    dom = pa.array([f"x{v:016x}.{suffix}" for v in labels.tolist()], pa.string())
    ts = np.sort(start_us + rng.integers(0, 3600 * 1_000_000, n))
    procs = ([f"p{v:08x}.exe" for v in rng.integers(0, 1 << 32, n).tolist()] if random_process else [process] * n)
    t = pa.table({
        "@timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "host.id": pa.array([host_id] * n, pa.string()),
        "host.name": pa.array([host_name] * n, pa.string()),
        "process.name": pa.array(procs, pa.string()),
        "process.executable": pa.array([r"C:\Users\Public\\" + p for p in procs], pa.string()),
        "process.code_signature.subject_name": pa.array([signer] * n, pa.string()),
        "process.code_signature.exists": pa.array([signer is not None] * n, pa.bool_()),
        "process.code_signature.trusted": pa.array([signer is not None] * n, pa.bool_()),
        "destination.domain": dom,
        "destination.port": pa.array([443] * n, pa.int32()),
    })
    return rs.conform(t)


def _events(org: Organisation, flood: pa.Table | None, batch: int):
    """The org's events in time order, with the flood merged in (sorted) where it falls."""
    if flood is None:
        yield from org.batches(batch)
        return
    f0 = flood["@timestamp"].cast(pa.int64())[0].as_py()
    f_end = flood["@timestamp"].cast(pa.int64())[-1].as_py()
    pending = []
    for b in org.batches(batch):
        ts = b["@timestamp"].cast(pa.int64()).to_numpy()
        if flood is not None and ts[-1] >= f0:
            pending.append(b)
            if ts[-1] > f_end:
                merged = pa.concat_tables(pending + [flood]).sort_by("@timestamp")
                for off in range(0, merged.num_rows, batch):
                    yield merged.slice(off, batch)
                pending, flood = [], None
            continue
        yield b
    if flood is not None or pending:
        rest = pending + ([flood] if flood is not None else [])
        merged = pa.concat_tables(rest).sort_by("@timestamp")
        for off in range(0, merged.num_rows, batch):
            yield merged.slice(off, batch)


def run(agents: int = 100, days: int = 30, epd: float = 100, capacity: int = 1 << 21, flood: int = 1_000_000,
        process: str = "svcupdate.exe", random_process: bool = False, seed: int = 0, batch: int = 100_000,
        flood_host: int = 0, trace: bool = False, config: rs.Config | None = None,
        signer: str | None = None, only: str | None = None) -> dict:
    """Run the org clean and with the flood; return the figures (see module docstring)."""
    cfg = config or rs.Config(capacity=capacity)
    out: dict = {"agents": agents, "days": days, "capacity": cfg.capacity, "flood": flood, "process": process,
                 "signer": signer, "random_process": random_process}
    for label in ("clean", "flood"):
        if only and label != only:
            continue
        gc.collect()
        org = Organisation(agents=agents, days=days, seed=seed, events_per_agent_day=epd)
        ag = org.agents
        hid, hname = ag["host.id"][flood_host].as_py(), ag["host.name"][flood_host].as_py()
        ft = None
        if label == "flood" and flood:
            start = org.start_us + (cfg.activation_days + 1) * US_DAY
            ft = flood_table(flood, hid, hname, start, process, random_process=random_process, signer=signer)
        eng = rs.Engine(cfg)
        budget = eng.baseline.nbytes
        rss0 = rss_mib()
        if trace:
            tracemalloc.start()
        t0 = time.perf_counter()
        alerts = []
        n = 0
        for b in _events(org, ft, batch):
            alerts += eng.process(b)
            n += b.num_rows
        elapsed = time.perf_counter() - t0
        tm_now, tm_peak = (x / 2**20 for x in tracemalloc.get_traced_memory()) if trace else (None, None)
        if trace:
            tracemalloc.stop()
        gt = org.ground_truth
        hits, unmatched = match_ground_truth(alerts, gt)
        mal = [g["malicious"] for g in gt.to_pylist()]
        hosts = gt["host.id"].to_pylist()
        caught = sum(1 for h, m, x in zip(hits, mal, hosts) if m and h)
        caught_other = sum(1 for h, m, x in zip(hits, mal, hosts) if m and h and x != hid)
        total_other = sum(1 for m, x in zip(mal, hosts) if m and x != hid)
        unm_other = [k for k in unmatched if alerts[k].host_id != hid]
        health = eng.baseline.health()
        out[label] = {
            "events": n, "seconds": round(elapsed, 1), "alerts": len(alerts),
            "attacks_caught": caught, "attacks_total": sum(mal),
            "attacks_caught_other_hosts": caught_other, "attacks_other_hosts": total_other,
            "unexplained_alerts": len(unmatched), "unexplained_alerts_other_hosts": len(unm_other),
            "suppressed": dict(eng.suppressed),
            "evictions": {k: v.get("evictions", 0) for k, v in health.items() if v.get("evictions")},
            "dropped_keys": {k: v.get("dropped_keys", 0) for k, v in health.items() if v.get("dropped_keys")},
            "baseline_bytes_budget": budget, "baseline_bytes_after": eng.baseline.nbytes,
            "names_kept": len(eng._names), "rss_start_mib": round(rss0, 1), "rss_end_mib": round(rss_mib(), 1),
            "peak_rss_mib": round(peak_rss_mib(), 1),
            "tracemalloc_peak_mib": None if tm_peak is None else round(tm_peak, 1),
            "tracemalloc_retained_mib": None if tm_now is None else round(tm_now, 1),
            "missed_attacks": [g["scenario"] for g, h, m in zip(gt.to_pylist(), hits, mal) if m and not h],
            "warnings": eng.warnings,
        }
        del eng, alerts, org, ft
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--epd", type=float, default=100, help="events per agent-day")
    ap.add_argument("--capacity", type=int, default=1 << 21)
    ap.add_argument("--flood", type=int, default=1_000_000)
    ap.add_argument("--process", default="svcupdate.exe")
    ap.add_argument("--signer", help="code-signature subject of the flooding process (e.g. 'Microsoft Windows')")
    ap.add_argument("--random-process", action="store_true", help="a new random process name per connection")
    ap.add_argument("--trace", action="store_true", help="tracemalloc (slower)")
    ap.add_argument("--only", choices=["clean", "flood"], help="run one side only (RSS of a fresh process)")
    a = ap.parse_args()
    r = run(a.agents, a.days, a.epd, a.capacity, a.flood, a.process, a.random_process, trace=a.trace,
            signer=a.signer, only=a.only)
    json.dump(r, sys.stdout, indent=1, default=str)
    print()


if __name__ == "__main__":
    main()
