"""Scaling: how the cost of Engine.process grows with events, agents, distinct destinations and window length.

    python benches/reports/scaling.py                                  # the full sweep (~7 min), plot in docs/perf/
    python benches/reports/scaling.py --quick --plot /tmp/scaling.png  # tiny sizes (smoke test, seconds)
    python benches/reports/scaling.py --repeat 3                       # best of 3 per point (slower, less noise)

One factor varies at a time, the others stay at the base point (200 agents, 30 days, default Config):

- events: a simulated organisation (``raresketch.simulate.Organisation``) of 200 agents over 30 days, with more
  events per agent-day;
- agents: 100 .. 10,000 agents over 30 days, events per agent-day scaled so the total stays near 1 M;
- distinct destinations: the simulator does not expose destination diversity, so these are synthetic
  EVENT_SCHEMA tables (1 M events, 1,000 agents, 12 processes, 30 days) whose ``destination.domain`` is one of
  D distinct ``<label>.s3.amazonaws.com`` names (each a distinct cloud resource; every name appears, the rest
  Zipf-repeated; the 12 processes soon meet 20 rare resources each and become habitual explorers, so this axis
  raises no alerts: it measures resolution and learning, not alert building);
- training_days: one simulated organisation (200 agents, 75 days) replayed with ``training_days`` 7 / 14 / 30 / 60.

Each point: the events are generated first (Arrow tables of 100k rows, not timed), then a new Engine with a new
Catalog (cold resolution caches; ``--quick`` shares one) processes them in order on one core; the time of the ``process`` calls is what is
reported (best of ``--repeat``). Also: alerts, live cloud resources in the baseline (prevalence keys),
baseline bytes (fixed by ``capacity``) and the saved state's bytes (``Engine.to_bytes``). The machine is shared
(2 cores, other jobs running): the figures are noisy, re-run before quoting; Engine.process is being optimised,
so absolute numbers move, the script stays.
"""
from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import raresketch as rs
from raresketch.simulate import Organisation

BATCH = 100_000
BASE_AGENTS, BASE_DAYS = 200, 30
#: events per agent-day -> total events, measured on the simulator (weekends, late joiners): about 0.8.
SIM_FILL = 0.8
OUT_PNG = Path(__file__).resolve().parents[2] / "docs" / "perf" / "scaling.png"


# ---- workloads ------------------------------------------------------------------------------------------------
def simulated(agents: int, days: int, events: float, seed: int = 0) -> list[pa.Table]:
    """Batches of a simulated organisation with about ``events`` events."""
    epd = max(0.5, events / (agents * days * SIM_FILL))
    org = Organisation(agents=agents, days=days, seed=seed, events_per_agent_day=epd)
    return list(org.batches(BATCH))


def synthetic_destinations(events: int, destinations: int, agents: int = 1_000, days: int = BASE_DAYS,
                           seed: int = 0) -> list[pa.Table]:
    """EVENT_SCHEMA batches with exactly ``destinations`` distinct cloud hostnames (S3 buckets)."""
    rng = np.random.default_rng(seed)
    destinations = min(destinations, events)
    dest = np.empty(events, dtype=np.int64)
    dest[:destinations] = rng.permutation(destinations)                       # every name at least once
    dest[destinations:] = (rng.zipf(1.3, events - destinations) - 1) % destinations
    rng.shuffle(dest)
    names = pc.binary_join_element_wise("b", pa.array(dest).cast(pa.string()), "-x.s3.amazonaws.com", "")
    hosts = pa.array([f"host-{i:05d}" for i in range(agents)], pa.string())
    agent = pa.array(rng.integers(0, agents, events))
    procs = ["chrome.exe", "msedge.exe", "teams.exe", "onedrive.exe", "outlook.exe", "python.exe", "code.exe",
             "git.exe", "curl.exe", "powershell.exe", "svchost.exe", "backup.exe"]
    pidx = pa.array((rng.zipf(1.5, events) - 1) % len(procs))
    pnames = pa.array(procs, pa.string())
    start = int(dt.datetime(2025, 1, 6, tzinfo=dt.timezone.utc).timestamp()) * 1_000_000
    ts = np.sort(start + rng.integers(0, days * 86_400_000_000, events))
    t = pa.table({
        "@timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "host.id": hosts.take(agent),
        "host.name": hosts.take(agent),
        "host.os.type": pa.array(["windows"] * events, pa.string()),
        "process.name": pnames.take(pidx),
        "process.executable": pc.binary_join_element_wise("C:\\Program Files\\App\\", pnames.take(pidx), ""),
        "destination.domain": names,
        "destination.port": pa.array(np.full(events, 443, dtype=np.int32)),
        "network.transport": pa.array(["tcp"] * events, pa.string()),
    })
    t = rs.conform(t)
    return [t.slice(o, BATCH) for o in range(0, t.num_rows, BATCH)]


# ---- one measurement -------------------------------------------------------------------------------------------
def measure(batches: list[pa.Table], config: rs.Config, repeat: int = 1, state_bytes: bool = True,
            catalog: rs.Catalog | None = None) -> dict:
    """Time a new Engine (new Catalog unless one is given) over the batches; best of ``repeat``."""
    n = sum(b.num_rows for b in batches)
    best, eng, alerts = float("inf"), None, 0
    for _ in range(repeat):
        eng = rs.Engine(config, catalog=catalog or rs.Catalog())
        t0 = time.perf_counter()
        alerts = sum(len(eng.process(b)) for b in batches)
        best = min(best, time.perf_counter() - t0)
    out = {"events": n, "seconds": best, "events_per_s": n / best, "us_per_event": best / n * 1e6,
           "alerts": alerts, "cloud_resources": int(eng.baseline.structures["prevalence"].stats["num_keys"]),
           "agents_seen": len(eng.baseline.agents), "baseline_bytes": eng.baseline.nbytes}
    out["state_bytes"] = len(eng.to_bytes()) if state_bytes else None
    # the baseline as the state holds it: sparse while that is smaller than 3/4 of its tables, else dense
    out["baseline_state_bytes"] = len(eng._baseline_bytes()) if state_bytes else None
    return out


def sweeps(quick: bool) -> dict[str, tuple[str, list]]:
    """axis -> (x label, [(x value, workload key, Config changes)]). Workload keys: ("sim", agents, days, events)
    or ("dst", events, destinations, agents); points sharing a key share its batches."""
    if quick:
        ev, ag, dst, wd = [5_000, 15_000], [20, 60], [300, 3_000], [7, 30]
        n_ag, n_dst, wd_days, base_agents, dst_agents = 15_000, 10_000, BASE_DAYS, 20, 100
    else:
        ev, ag, dst, wd = [100_000, 300_000, 1_000_000, 3_000_000], [100, 200, 1_000, 3_000, 10_000], \
            [1_000, 10_000, 100_000, 1_000_000], [7, 14, 30, 60]
        n_ag, n_dst, wd_days, base_agents, dst_agents = 1_000_000, 1_000_000, 75, BASE_AGENTS, 1_000
    return {
        "events": ("events", [(e, ("sim", base_agents, BASE_DAYS, e), {}) for e in ev]),
        "agents": ("agents (events fixed)", [(a, ("sim", a, BASE_DAYS, n_ag), {}) for a in ag]),
        "destinations": ("distinct cloud destinations (events fixed, synthetic)",
                         [(d, ("dst", n_dst, d, dst_agents), {}) for d in dst]),
        "training_days": (f"training_days (same {wd_days}-day events)",
                          [(w, ("sim", base_agents, wd_days, n_ag), {"training_days": w}) for w in wd]),
    }


def workload(key: tuple) -> list[pa.Table]:
    if key[0] == "sim":
        _, agents, days, events = key
        return simulated(agents, days, events)
    _, events, destinations, agents = key
    return synthetic_destinations(events, destinations, agents=agents)


# ---- output ----------------------------------------------------------------------------------------------------
def markdown(rows: list[dict], header: str) -> str:
    L = [header, "",
         "| factor | value | events | events/s | µs/event | seconds | alerts | live cloud resources | agents | "
         "baseline MiB | saved state MiB |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        st = "-" if r["state_bytes"] is None else f"{r['state_bytes'] / 2**20:,.1f}"
        L.append(f"| {r['axis']} | {r['value']:,} | {r['events']:,} | {r['events_per_s']:,.0f} | "
                 f"{r['us_per_event']:.2f} | {r['seconds']:.2f} | {r['alerts']:,} | {r['cloud_resources']:,} | "
                 f"{r['agents_seen']:,} | {r['baseline_bytes'] / 2**20:,.1f} | {st} |")
    return "\n".join(L)


def _short(v: int) -> str:
    return f"{v / 1e6:g}M" if v >= 1e6 else (f"{v / 1e3:g}k" if v >= 1e3 else str(v))


def plot(rows: list[dict], axes: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 2, figsize=(11, 8))
    for a, (axis, (label, _)) in zip(ax.flat, axes.items()):
        rs_ = [r for r in rows if r["axis"] == axis]
        if not rs_:
            a.set_visible(False)
            continue
        x = [r["value"] for r in rs_]
        y = [r["events_per_s"] / 1e3 for r in rs_]
        a.plot(x, y, "o-", color="tab:blue")
        for xi, yi, r in zip(x, y, rs_):
            a.annotate(f"{r['us_per_event']:.2f} µs", (xi, yi), textcoords="offset points", xytext=(0, 6),
                       ha="center", fontsize=8)
        if axis != "training_days":
            a.set_xscale("log")
            a.minorticks_off()
        a.set_xticks(x, [_short(v) for v in x])
        a.set_ylim(0, max(y) * 1.25)
        a.set_xlabel(label)
        a.set_ylabel("k events/s (one core)")
        a.grid(True, which="both", alpha=0.3)
        a.set_title(f"Engine.process vs {axis}")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    ap.add_argument("--repeat", type=int, default=1, help="best of N per point")
    ap.add_argument("--only", nargs="*", choices=["events", "agents", "destinations", "training_days"])
    ap.add_argument("--plot", type=Path, default=OUT_PNG, help=f"PNG path (default {OUT_PNG})")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--capacity", type=int, default=None, help="Config.capacity (default: the Config default; "
                    "--quick: 2^16, so the tiny runs are not dominated by the day sweeps of a 168 MiB baseline)")
    args = ap.parse_args(argv)
    capacity = args.capacity or ((1 << 16) if args.quick else rs.Config().capacity)
    axes = {k: v for k, v in sweeps(args.quick).items() if not args.only or k in args.only}
    log = (lambda *a: print(*a, file=sys.stderr, flush=True))
    uses = Counter(key for _, points in axes.values() for _, key, _ in points)
    cache: dict[tuple, list[pa.Table]] = {}
    catalog = rs.Catalog() if args.quick else None      # quick: one catalogue (warm caches), else a new one per run
    rows = []
    t_all = time.perf_counter()
    for axis, (_, points) in axes.items():
        for i, (value, key, changes) in enumerate(points):
            t0 = time.perf_counter()
            if key not in cache:
                cache[key] = workload(key)
            batches = cache[key]
            gen = time.perf_counter() - t0
            state = not args.quick or i == len(points) - 1        # quick: serialise once per axis (0.4 s each)
            r = measure(batches, rs.Config(capacity=capacity, **changes), args.repeat, state, catalog=catalog)
            r.update(axis=axis, value=value)
            rows.append(r)
            log(f"  {axis}={value:,}: {r['events']:,} events, {r['events_per_s']:,.0f} events/s "
                f"(generated in {gen:.0f}s)")
            uses[key] -= 1
            if not uses[key]:
                del cache[key]
            del batches
    cap = f"2^{capacity.bit_length() - 1}" if capacity & (capacity - 1) == 0 else f"{capacity:,}"
    header = (f"## Scaling of Engine.process (batches of {BATCH:,}, one core, best of {args.repeat}, capacity "
              f"{cap}, revision {_revision()}, {dt.date.today().isoformat()}; shared 2-core machine: noisy)")
    text = markdown(rows, header)
    print(text)
    png = None
    if not args.no_plot:
        try:
            plot(rows, axes, args.plot, header.lstrip("# "))
            png = args.plot
            print(f"\nplot: {png}")
        except ImportError:
            log("matplotlib not installed (pip install '.[bench]'): no plot")
    log(f"total {time.perf_counter() - t_all:.0f}s")
    return {"rows": rows, "markdown": text, "png": png}


if __name__ == "__main__":
    main()
