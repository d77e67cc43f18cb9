"""Two checkouts of raresketch side by side on ``raresketch run FILE``: alternating subprocesses on the same input,
CPU seconds (user + system, of the child) and wall seconds per round, medians, spread and ratio NEW/OLD; checks
that both wrote the same alerts.

    python benches/reports/ab_run.py OLD_SRC NEW_SRC [FILE] [--rounds 3] [--agents 200] [--days 45]

``OLD_SRC`` and ``NEW_SRC`` are ``src`` folders of two checkouts with their compiled modules built in place.
Without ``FILE``, the simulator's organisation (``--agents``, ``--days``) is written to Parquet once by NEW. Events/s
are the file's events over the CPU seconds of the whole command (interpreter and catalogue start-up included), and
as the command reports them (wall time from the first read to the last alert, start-up excluded).
"""
from __future__ import annotations

import argparse
import filecmp
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("file", nargs="?")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--days", type=int, default=45)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = a.file
        if path is None:
            path = os.path.join(tmp, "org.parquet")
            subprocess.run([sys.executable, "-m", "raresketch", "simulate", "--agents", str(a.agents), "--days",
                            str(a.days), "--out", path], env=dict(os.environ, PYTHONPATH=a.new), check=True,
                           capture_output=True)
        res: dict[str, list[tuple[float, float, float, int]]] = {"old": [], "new": []}
        for r in range(a.rounds):
            for name in ("old", "new"):
                out = os.path.join(tmp, f"{name}.jsonl")
                c0, t0 = _cpu(), time.perf_counter()
                p = subprocess.run([sys.executable, "-m", "raresketch", "run", path, "--out", out, "--force"],
                                   env=dict(os.environ, PYTHONPATH=getattr(a, name)), capture_output=True, text=True)
                if p.returncode:
                    sys.exit(f"{name}: raresketch run failed ({p.returncode}): {p.stderr[-2000:]}")
                cpu, wall = _cpu() - c0, time.perf_counter() - t0
                m = re.search(r"([\d,]+) network events in [\d.]+ s \(([\d,]+) events/s\)", p.stderr)
                events, reported = (int(m.group(1).replace(",", "")), float(m.group(2).replace(",", ""))) if m \
                    else (0, 0.0)
                res[name].append((cpu, wall, reported, events))
                print(f"round {r + 1} {name}: {cpu:.2f} s CPU, {wall:.2f} s wall, {events / cpu / 1e6:.2f} M events "
                      f"per CPU second, reported {reported / 1e6:.2f} M events/s", flush=True)
        same = filecmp.cmp(os.path.join(tmp, "old.jsonl"), os.path.join(tmp, "new.jsonl"), shallow=False)
    med = {}
    for name, v in res.items():
        cpus = [x[0] for x in v]
        med[name] = statistics.median(cpus)
        ev = v[0][3]
        print(f"{name}: median {med[name]:.2f} s CPU ({ev / med[name] / 1e6:.2f} M events per CPU second), spread "
              f"{min(cpus):.2f}-{max(cpus):.2f}; reported median {statistics.median(x[2] for x in v) / 1e6:.2f} M/s")
    print(f"new/old CPU ratio (medians): {med['new'] / med['old']:.3f}; same alerts: {same}")


if __name__ == "__main__":
    main()
