"""``Baseline.observe`` against its physical limit here: the compiled structure passes alone, with no glue.

    python benches/reports/observe_limit.py [--events 1000000] [--batch 100000] [--rounds 7]

The simulator's events (as ``benches/bench_engine.py``) are prepared once; one batch warms an Engine and its
baseline is saved. A reference run of ``Baseline.observe`` over the other batches records which rows each
structure saw, their keys (pair keys hashed), members, days and learn masks: the *kernels* contender then replays
exactly those calls (``AgentTable.observe`` and each ``KeyedDistinct.observe`` on compact, pre-gathered arrays)
and nothing else. Rounds alternate the two contenders, each on a fresh copy of the saved baseline; both must end
in byte-identical baselines (checked). Prints CPU ns/event (thread time: robust to a shared machine) by round, the
medians, the spread and the ratio observe / kernels.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from raresketch.detect import Baseline  # noqa: E402
from raresketch.sketches import hash_pair  # noqa: E402


def workload(events: int, batch: int):
    """(saved baseline bytes, [EventKeys per batch]): a warm baseline and the batches observed after it."""
    import pyarrow as pa

    import raresketch as rs
    from raresketch.detect._prepare import prepare

    os.environ["RARESKETCH_BENCH_N"] = str(events)
    from bench_engine import simulated_batches

    bs = simulated_batches(events, batch)
    eng = rs.Engine()
    eng.process(bs[0])
    rest = pa.concat_tables(bs[1:] or bs[:1])
    evs = []
    for off in range(0, rest.num_rows, batch):
        p = prepare(rest.slice(off, batch), eng.config, eng._resolver, eng.stats, eng.suppressed, None, 0)
        if p is not None and p.kidx.size:
            evs.append(p.ev)
    return eng.baseline.to_bytes(), evs


def kernel_calls(blob: bytes, evs) -> list[list[tuple]]:
    """Per batch, the (structure, keys, members, days u16, learn) calls ``Baseline.observe`` makes, gathered."""
    b = Baseline.from_bytes(blob)
    cap = b.config.explorer_cap_per_agent
    out = []
    for ev in evs:
        pri = b.observe(ev)
        d = ev.days.astype(np.uint16)
        ci, fi, ii = np.flatnonzero(ev.is_cloud), np.flatnonzero(pri.first_rare), np.flatnonzero(ev.is_im)
        pi, si, mi = np.flatnonzero(ev.has_process), np.flatnonzero(ev.is_script), np.flatnonzero(ev.has_cmdline)
        fp = np.flatnonzero(ev.first_party)
        im = hash_pair(ev.process[ii], ev.im[ii])
        loc = np.empty(2 * pi.size, np.uint64)
        loc[0::2], loc[1::2] = ev.location[pi], ev.process[pi]
        calls = [("agents", ev.agent, ev.days, None),
                 ("prevalence", ev.resource[ci], ev.agent[ci], d[ci], None),
                 ("process_seen", ev.resource[ci], ev.process[ci], d[ci], None),
                 ("kind_agents", hash_pair(ev.process[ci], ev.kind[ci]), ev.agent[ci], d[ci], None),
                 ("agent_seen_kind", ev.kind[ci], ev.agent[ci], d[ci], None),
                 ("new_rare_agent", hash_pair(ev.process[fi], ev.agent[fi]), ev.resource[fi], d[fi], None),
                 ("new_rare", ev.process[fi], ev.resource[fi], d[fi], pri.new_rare_agent[fi] < cap),
                 ("im_agents", im, ev.agent[ii], d[ii], None),
                 ("im_agent_days", im, hash_pair(ev.agent[ii], ev.days[ii].astype(np.uint64)), d[ii], None),
                 ("binary_agents", ev.binary, ev.agent, d, None),
                 ("location_agents", loc, np.repeat(ev.agent[pi], 2), np.repeat(d[pi], 2), None),
                 ("first_party_agents", ev.first_party[fp], ev.agent[fp], d[fp], None),
                 ("pair_agents", ev.parent_engine[si], ev.agent[si], d[si], None),
                 ("cmdline_agents", ev.cmdline[mi], ev.agent[mi], d[mi], None)]
        out.append(calls)
    return out


def run_observe(b: Baseline, evs) -> None:
    for ev in evs:
        b.observe(ev)


def run_kernels(b: Baseline, calls) -> None:
    s = b.structures
    for batch in calls:
        for name, *args in batch:
            if name == "agents":
                b.agents.observe(args[0], args[1])
            else:
                s[name].observe(*args[:3], learn=args[3])


def fresh(blob: bytes) -> Baseline:
    b = Baseline.from_bytes(blob)
    for x in (b.agents, *b.structures.values()):
        x.to_bytes()                         # read every page once
    return b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    blob, evs = workload(a.events, a.batch)
    calls = kernel_calls(blob, evs)
    n = sum(len(ev) for ev in evs)
    res: dict[str, list[float]] = {"observe": [], "kernels": []}
    for r in range(a.rounds):
        ends = {}
        for name in (("observe", "kernels") if r % 2 == 0 else ("kernels", "observe")):
            b = fresh(blob)
            t0 = time.thread_time_ns()
            run_observe(b, evs) if name == "observe" else run_kernels(b, calls)
            res[name].append((time.thread_time_ns() - t0) / n)
            ends[name] = b.to_bytes()
            print(f"round {r + 1} {name}: {res[name][-1]:.1f} ns/event")
        assert ends["observe"] == ends["kernels"], "the kernels alone did not build the same baseline"
    for k, v in res.items():
        print(f"{k}: median {statistics.median(v):.1f} ns/event, spread {min(v):.1f}-{max(v):.1f}")
    print(f"observe / kernels (medians): {statistics.median(res['observe']) / statistics.median(res['kernels']):.3f}"
          f" over {n} events in {len(evs)} batches; same baseline: True")


if __name__ == "__main__":
    main()
