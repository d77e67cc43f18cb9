"""Memory: what the Baseline holds for 1k/10k/100k agents and 100k/1M/10M distinct cloud destinations over a
30-day window, and how accuracy (agreement with exact answers) trades against it.

    python benches/reports/memory.py                          # the full grid (~8.5 min on the shared 2-core machine)
    python benches/reports/memory.py --quick                  # tiny sizes (smoke test, seconds)
    python benches/reports/memory.py --agents 10000 --destinations 1000000 --no-e2e

Workload (synthetic uint64 keys: no Arrow, no catalogue). ``D`` cloud resources over ``W`` = 30 days (the training
window, so nothing leaves it and exact answers are cumulative). Resource ``r`` is seen by ``k_r = min(agents,
Zipf(2.3))`` distinct agents (70 % of resources by one agent, 90 % by at most three, 0.1 % by more than 100); every
agent has 6 processes (drawn Zipf(1.3) from 300), each (resource, agent) pair is one of its processes' (the first
process does half the pairs), a resource has one of 40 service kinds (Zipf); a pair occurs 1 + Poisson(0.5) times
on uniform random days. The time-ordered events go through the real ``Baseline.observe`` (all STRUCTURES at
their shares of ``capacity``; the IM and scripting structures are allocated but receive nothing).

Exact answers come from the generator: per event the prior prevalence (distinct agents of the resource before it)
and whether the (resource, process) pair was seen before; hence the exact *first rare contact* decision
(prevalence <= rare threshold and the process never contacted the resource: the rare-cloud detector's base
condition, before activation / explorer / dedup gates). Reported per capacity: share of the events (with an exact
prior below ``exact_limit``) whose prevalence prior is exact, max and RMS relative error ``|est - exact| / max(exact, 1)``, agreement of the rare decision
(prevalence <= threshold), first-rare-contact decisions the engine adds (would-be false alerts) and misses, and the
share of resources whose final count is exact.

"Smallest clean capacity": the smallest ``capacity`` on the grid 2^k, 1.5*2^k with no eviction and no dropped key
in any structure, found from an estimate of each structure's live pairs and keys and checked by running it (and,
with ``--check-below``, the grid step below it, which then shows evictions). ``main`` returns the results (the
test in benches/bench_scaling.py calls it with ``--quick``). Timings and RSS are of a shared 2-core machine: noisy.
Memory: the 10M-destination cells hold ~40M events with their exact answers (a few GB of numpy arrays) and the
searches at 1M destinations run baselines up to 1.9 GiB; ``--max-gib`` caps the baselines run (larger capacities
are reported as estimates).
"""
from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

import raresketch as rs  # noqa: E402
from raresketch._core import mix64  # noqa: E402
from raresketch.detect import STRUCTURES, EventKeys, structure_sizes  # noqa: E402

import accuracy  # noqa: E402
from flood import peak_rss_mib, rss_mib  # noqa: E402

DEFAULT_CAPACITY = rs.Config().capacity
DAY0 = 20_000                       # 2024-10-04, days since 1970-01-01
PROCESSES, PROCS_PER_AGENT, KINDS = 300, 6, 40
CHUNK = 1 << 20                     # events per Baseline.observe call
#: Load of a KeyedDistinct table (pairs or keys / slots) at which the first eviction or dropped key appears: two
#: choices of a 4-slot bucket, no relocation, so the fullest buckets overflow at about half load (measured: 0.50
#: for pairs, 0.48 for keys; at 0.9 a few % of new pairs evict the oldest). The search starts from it.
LOAD = 0.5          # key tables: first loss near half full (keys cannot move)
PAIR_LOAD = 0.9     # pair tables: cuckoo displacement fills them to ~90 % before the first eviction
TARGET_MIB = 256


# ---- the workload -------------------------------------------------------------------------------------------
@dataclass
class Stream:
    agents: int
    destinations: int
    days: int
    pair_r: np.ndarray      # uint32 resource of each (resource, agent) pair, grouped by resource
    pair_a: np.ndarray      # uint32 agent
    pair_p: np.ndarray      # uint32 process id
    kind_r: np.ndarray      # uint32 service kind of each resource
    ev_pair: np.ndarray     # uint32 pair of each event, in time order
    ev_day: np.ndarray      # uint16 day of each event (0 .. days-1), non-decreasing
    k_r: np.ndarray         # distinct agents of each resource (exact, at the end)

    @property
    def events(self) -> int:
        return int(self.ev_pair.shape[0])

    def keys(self, lo: int, hi: int) -> EventKeys:
        """Events lo..hi as the EventKeys Baseline.observe consumes."""
        pr = self.ev_pair[lo:hi]
        r, a, p = self.pair_r[pr], self.pair_a[pr], self.pair_p[pr]
        n = hi - lo
        u = np.uint64
        z = np.zeros(n, dtype=np.uint64)
        t, f = np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
        proc = mix64(p.astype(u), 3)
        return EventKeys(days=self.ev_day[lo:hi].astype(np.int64) + DAY0, agent=mix64(a.astype(u), 2),
                         process=proc, location=mix64(proc, 5), first_party=z, resource=mix64(r.astype(u), 1),
                         kind=mix64(self.kind_r[r].astype(u), 4),
                         im=z, binary=proc, parent_engine=z, cmdline=z, has_process=t, is_cloud=t, is_im=f,
                         is_script=f, has_cmdline=f)


def make_stream(agents: int, destinations: int, days: int = 30, seed: int = 0, zipf: float = 2.3,
                repeat: float = 0.5) -> Stream:
    rng = np.random.default_rng(seed)
    D = destinations
    k = np.minimum(agents, rng.zipf(zipf, D)).astype(np.int64)
    npairs = int(k.sum())
    pair_r = np.repeat(np.arange(D, dtype=np.uint32), k)
    start = np.concatenate([[0], np.cumsum(k)[:-1]])
    j = np.arange(npairs, dtype=np.int64) - np.repeat(start, k)
    stride = 7919 if agents % 7919 else 7907                   # coprime with agents: k_r distinct agents
    base = rng.integers(0, agents, D)
    pair_a = ((np.repeat(base, k) + j * stride) % agents).astype(np.uint32)
    del j, base
    agent_procs = (rng.zipf(1.3, (agents, PROCS_PER_AGENT)) % PROCESSES).astype(np.uint32)
    slot = np.minimum(rng.geometric(0.5, npairs) - 1, PROCS_PER_AGENT - 1)
    pair_p = agent_procs[pair_a, slot]
    del slot
    kind_r = ((rng.zipf(1.5, D) - 1) % KINDS).astype(np.uint32)
    m = 1 + rng.poisson(repeat, npairs)
    ev_pair = np.repeat(np.arange(npairs, dtype=np.uint32), m)
    del m
    n = ev_pair.shape[0]
    ev_pair = ev_pair[rng.permutation(n)]                       # events in random order ...
    ev_day = np.sort(rng.integers(0, days, n).astype(np.uint16))  # ... on iid uniform days, time-ordered
    return Stream(agents, D, days, pair_r, pair_a, pair_p, kind_r, ev_pair, ev_day, k)


@dataclass
class Exact:
    prevalence: np.ndarray      # uint32 per event: distinct agents of its resource before it
    rp_new: np.ndarray          # bool per event: first event of its (resource, process)
    demand: dict                # structure -> (live keys, stored pairs) of an exact run


def _stored(counts: np.ndarray, limit: int) -> float:
    """Pairs KeyedDistinct keeps for keys with these distinct counts (exact below ``limit``, then sampled)."""
    c = counts.astype(np.float64)
    big = c >= limit
    return float(c[~big].sum() + (limit * (1 + np.log2(c[big] / limit) / 2)).sum())


def _distinct(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, their counts) by a sort (faster here than np.unique's hash path)."""
    y = np.sort(x)
    if y.size == 0:
        return y, np.zeros(0, dtype=np.int64)
    start = np.flatnonzero(np.concatenate([[True], y[1:] != y[:-1]]))
    return y[start], np.diff(np.append(start, y.size))


def _per_key(keys: np.ndarray, members: np.ndarray, limit: int) -> tuple[int, float]:
    """(distinct keys, stored pairs) for the distinct (key, member) pairs among these (both < 2**32)."""
    if keys.size == 0:
        return 0, 0.0
    pairs, _ = _distinct((keys.astype(np.uint64) << np.uint64(32)) | members.astype(np.uint64))
    _, counts = _distinct(pairs >> np.uint64(32))
    return int(counts.size), _stored(counts, limit)


def exact_answers(s: Stream, thr_final: int, limit: int, small_keys_up_to: int = 5_000_000) -> Exact:
    nev, npairs = s.events, s.pair_r.shape[0]
    pos = np.arange(nev, dtype=np.int64)
    first = np.full(npairs, nev, dtype=np.int64)
    np.minimum.at(first, s.ev_pair, pos)
    is_first = first[s.ev_pair] == pos                      # the pair's first event
    # prevalence prior: in (resource, time) order, first-of-pair events before this one in its resource's group
    er = s.pair_r[s.ev_pair]
    order = np.argsort(er, kind="stable")                   # stable: time order inside each resource
    f = is_first[order].astype(np.int64)
    cs = np.cumsum(f) - f
    n_r = np.bincount(er, minlength=s.destinations)
    group_start = np.repeat(np.concatenate([[0], np.cumsum(n_r)[:-1]]), n_r)
    prev = np.empty(nev, dtype=np.uint32)
    prev[order] = cs - cs[group_start]
    del order, f, cs, group_start, er
    # (resource, process) first contacts: a pair is the combination's first if its first event is the earliest
    combo = (s.pair_r.astype(np.uint64) << np.uint64(16)) | s.pair_p.astype(np.uint64)
    corder = np.argsort(combo, kind="stable")
    cs_ = combo[corder]
    new_c = np.concatenate([[True], cs_[1:] != cs_[:-1]])
    inv = np.empty(npairs, dtype=np.int64)
    inv[corder] = np.cumsum(new_c) - 1
    n_combos = int(new_c.sum())
    del corder, cs_, new_c, combo
    cfirst = np.full(n_combos, nev, dtype=np.int64)
    np.minimum.at(cfirst, inv, first)
    pair_combo_first = cfirst[inv] == first
    rp_new = is_first & pair_combo_first[s.ev_pair]
    del inv, cfirst
    # demand of each structure in an exact run (live keys, stored pairs) -> the capacity estimate
    A = s.agents
    pk = s.pair_p.astype(np.uint64) * np.uint64(KINDS) + s.kind_r[s.pair_r].astype(np.uint64)
    fr = np.flatnonzero(rp_new & (prev <= thr_final))
    fr_pair = s.ev_pair[fr]
    fr_p = s.pair_p[fr_pair]
    demand = {
        "prevalence": (s.destinations, _stored(s.k_r, limit)),
        "process_seen": (s.destinations, float(n_combos)),
        "new_rare_agent": _per_key(fr_p.astype(np.uint64) * np.uint64(A) + s.pair_a[fr_pair], s.pair_r[fr_pair],
                                   limit),
        "new_rare": _per_key(fr_p, s.pair_r[fr_pair], limit),
    }
    if npairs <= small_keys_up_to:
        # keyed by (process, kind), kind, process: few keys, never binding here; six sorts of all pairs, so only
        # for the smaller workloads
        demand["kind_agents"] = _per_key(pk, s.pair_a, limit)
        demand["agent_seen_kind"] = _per_key(s.kind_r[s.pair_r], s.pair_a, limit)
        demand["binary_agents"] = _per_key(s.pair_p, s.pair_a, limit)
    return Exact(prev, rp_new, demand)


# ---- capacities ------------------------------------------------------------------------------------------------
def grid_up(x: float) -> int:
    """Smallest capacity >= x on the grid 2^k, 1.5 * 2^k (k >= 6)."""
    k = max(6, math.ceil(math.log2(max(x, 64))))
    return (3 << (k - 2)) if (3 << (k - 2)) >= x and k > 6 else (1 << k)


def grid_next(c: int) -> int:
    return grid_up(c + 1)


def grid_prev(c: int) -> int:
    k = c.bit_length() - 1
    return (1 << k) if c != (1 << k) else (3 << (k - 2))


def cap_label(c: int) -> str:
    k = c.bit_length() - 1
    return f"2^{k}" if c == 1 << k else (f"1.5*2^{k}" if c == 3 << (k - 1) else f"{c:,}")


def baseline_nbytes(capacity: int, max_agents: int = rs.Config().max_agents, days: int = 30) -> int:
    """Baseline.nbytes at this capacity without allocating it: each KeyedDistinct is 12 bytes per pair slot and 16
    per key slot (both rounded up to a bucket of 4), plus the AgentTable."""
    c4 = lambda x: (x + 3) // 4 * 4  # noqa: E731
    total = rs.sketches.AgentTable(max_agents, days).nbytes
    for pairs, keys in structure_sizes(capacity).values():
        total += 12 * c4(pairs) + 16 * c4(keys)
    return total


def estimate_capacity(demand: dict) -> tuple[float, str]:
    """Capacity at which every structure's pairs and keys fit at the design load; and which structure binds."""
    best, who = 0.0, ""
    for name, (keys, pairs) in demand.items():
        need = max(pairs / PAIR_LOAD / STRUCTURES[name][0], keys / LOAD / STRUCTURES[name][1])
        if need > best:
            best, who = need, name
    return best, who


# ---- one run ---------------------------------------------------------------------------------------------------
def run(s: Stream, ex: Exact | None, capacity: int, exact_limit: int = 256) -> dict:
    gc.collect()
    rss0 = rss_mib()
    b = rs.Baseline(rs.Config(capacity=capacity, training_days=s.days, exact_limit=exact_limit))
    n = s.events
    est = np.empty(n, dtype=np.uint32)
    thr = np.empty(n, dtype=np.uint32)
    first_rare = np.empty(n, dtype=bool)
    t0 = time.perf_counter()
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        pri = b.observe(s.keys(lo, hi))
        est[lo:hi], thr[lo:hi], first_rare[lo:hi] = pri.prevalence, pri.threshold, pri.first_rare
    seconds = time.perf_counter() - t0
    health = b.health()
    lost = {k: int(v.get("evictions", 0)) + int(v.get("dropped_keys", 0)) for k, v in health.items()}
    out = {"capacity": capacity, "bytes": b.nbytes, "seconds": seconds, "rss_growth_mib": rss_mib() - rss0,
           "lost": sum(lost.values()), "lost_by_structure": {k: v for k, v in lost.items() if v},
           "health": health, "memory": b.memory()}
    final = b.structures["prevalence"].count(mix64(np.arange(s.destinations, dtype=np.uint64), 1))
    out["end_exact"] = float((final == s.k_r).mean())
    if ex is not None:
        truth = ex.prevalence.astype(np.int64)
        rel = np.abs(est.astype(np.int64) - truth) / np.maximum(truth, 1)
        exact_fr = ex.rp_new & (truth <= thr)
        low = truth < exact_limit
        rms = lambda x: float(np.sqrt((x ** 2).mean())) if x.size else float("nan")  # noqa: E731
        out.update({
            "events_below_limit": float(low.mean()),
            "prev_exact": float((est[low] == ex.prevalence[low]).mean()) if low.any() else float("nan"),
            "max_rel": float(rel.max(initial=0)), "rms_rel_low": rms(rel[low]), "rms_rel_high": rms(rel[~low]),
            "rare_agree": float(((est <= thr) == (truth <= thr)).mean()),
            "first_rare_exact": int(exact_fr.sum()), "first_rare_extra": int((first_rare & ~exact_fr).sum()),
            "first_rare_missed": int((~first_rare & exact_fr).sum()),
            # why the extra ones: the resource is not rare (prevalence under-counted: lost pairs or keys) / the
            # process had contacted it (its (resource, process) pair was lost from process_seen)
            "extra_not_rare": int((first_rare & ~exact_fr & (truth > thr)).sum()),
            "extra_seen_before": int((first_rare & ~exact_fr & (truth <= thr) & ~ex.rp_new).sum()),
        })
    del b
    gc.collect()
    return out


def measure_cell(agents: int, destinations: int, days: int, capacities=(DEFAULT_CAPACITY,), search: bool = True,
                 check_below: bool = True, max_bytes: float = 2.5 * 2**30, seed: int = 0, exact_limit: int = 256,
                 log=print) -> dict:
    """Generate one (agents, destinations) workload and its exact answers; run the baseline at ``capacities``
    and, with ``search``, find the smallest clean capacity (runs only up to ``max_bytes`` of baseline)."""
    t0 = time.perf_counter()
    s = make_stream(agents, destinations, days, seed)
    cfg = rs.Config(training_days=days, exact_limit=exact_limit)
    ex = exact_answers(s, int(cfg.rare_threshold(agents)), cfg.exact_limit)
    est, binding = estimate_capacity(ex.demand)
    log(f"  {agents:,} agents x {destinations:,} destinations: {s.events:,} events, {s.pair_r.size:,} pairs, "
        f"generated + exact in {time.perf_counter() - t0:.0f}s; estimate {est:,.0f} ({binding})")
    runs: dict[int, dict] = {}

    def do(c: int) -> dict:
        if c not in runs:
            runs[c] = run(s, ex, c, cfg.exact_limit)
            r = runs[c]
            log(f"    capacity {cap_label(c)}: {r['bytes'] / 2**20:.1f} MiB, lost {r['lost']:,} "
                f"{r['lost_by_structure'] or ''}, {s.events / r['seconds'] / 1e6:.2f} M events/s, "
                f"rss +{r['rss_growth_mib']:.0f} MiB")
        return runs[c]

    for c in capacities:
        do(c)
    smallest, verified = grid_up(est), False
    if search:
        c = smallest
        while baseline_nbytes(c, days=days) <= max_bytes and do(c)["lost"]:
            c = grid_next(c)
        if c in runs and not runs[c]["lost"]:
            smallest, verified = c, True
            if check_below:
                while True:                                  # down until a step loses something
                    below = grid_prev(c)
                    if below < 64 or do(below)["lost"]:
                        break
                    smallest = c = below
        else:
            smallest = c
    same = [c for c, r in sorted(runs.items()) if not r["first_rare_extra"] and not r["first_rare_missed"]
            and r["rare_agree"] == 1.0]
    return {"agents": agents, "destinations": destinations, "days": days, "events": s.events,
            "threshold": int(cfg.rare_threshold(agents)), "exact_limit": exact_limit,
            "pairs": int(s.pair_r.size), "demand": ex.demand, "exact_decisions_from": same[0] if same else None, "estimate": est, "binding": binding,
            "smallest_clean": smallest if search else None, "verified": verified,
            "smallest_bytes": baseline_nbytes(smallest, days=days),
            "runs": [runs[c] for c in sorted(runs)], "seconds": time.perf_counter() - t0}


# ---- output ----------------------------------------------------------------------------------------------------
def _f(x: float, digits: int = 4) -> str:
    return "-" if math.isnan(x) else f"{x:.{digits}f}"


def _mib(b: float) -> str:
    return f"{b / 2**20:,.1f}"


def markdown(cells: list[dict], e2e: dict | None) -> str:
    L = []
    days = cells[0]["days"] if cells else 30
    L.append(f"## Memory and accuracy ({days}-day window, synthetic cloud-resource streams; workload in "
             "benches/reports/memory.py)\n")
    L.append("### What the baseline holds\n")
    L.append(f"Baseline bytes are fixed by `capacity` (all 11 structures at their STRUCTURES shares, `max_agents` "
             f"2^18): the default capacity 2^21 is {_mib(baseline_nbytes(DEFAULT_CAPACITY, days=days))} MiB "
             "whatever the data. *Smallest clean* = smallest capacity on the grid 2^k, 1.5*2^k with no eviction and "
             "no dropped key in any structure (*run*: measured so; *estimate*: from the exact live keys and pairs at "
             f"pair load {PAIR_LOAD} and key load {LOAD}, where the first loss appears; too large to run here); *binding* = the structure that needs the most capacity. RSS "
             "growth = process RSS after the run minus before the baseline was built (the pages the run touched). "
             "*Decisions exact from* = the smallest capacity run (next table) whose rare and first-rare decisions "
             "all equal the exact ones.\n")
    L.append("| agents | destinations | events | (resource, agent) pairs | default: evictions + dropped keys "
             "| default: by structure | smallest clean capacity | its MiB | binding | RSS growth at it (MiB) | "
             "decisions exact from |")
    L.append("|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---:|")
    for c in cells:
        dflt = next((r for r in c["runs"] if r["capacity"] == DEFAULT_CAPACITY), None)
        sm = next((r for r in c["runs"] if r["capacity"] == c["smallest_clean"]), None) if c["verified"] else None
        by = ", ".join(f"{k} {v:,}" for k, v in sorted(dflt["lost_by_structure"].items(), key=lambda kv: -kv[1])) \
            if dflt and dflt["lost"] else "-"
        lost = f"{dflt['lost']:,}" if dflt else "-"
        rss = f"{sm['rss_growth_mib']:,.0f}" if sm else "-"
        small = "-" if c["smallest_clean"] is None else (
            f"{cap_label(c['smallest_clean'])} ({'run' if c['verified'] else 'estimate'})")
        L.append(f"| {c['agents']:,} | {c['destinations']:,} | {c['events']:,} | {c['pairs']:,} | {lost} | {by} | "
                 f"{small} | {_mib(c['smallest_bytes']) if c['smallest_clean'] else '-'} | {c['binding']} | "
                 f"{rss} | {cap_label(c['exact_decisions_from']) if c['exact_decisions_from'] else '-'} |")
    L.append("")
    L.append("### Accuracy against exact answers, by capacity\n")
    lim = cells[0]["exact_limit"] if cells else 256
    L.append("Per event (all events are cloud events; the answer before the event, as the detector sees it): "
             f"*exact (< {lim})* = share of the events whose exact prior distinct-agent count is below `exact_limit` "
             "that got exactly it; relative error = |est - exact| / max(exact, 1), RMS below and at/above the "
             "limit (there the count is a sampled estimate by design), max over all events; *rare agrees* = "
             "(count <= rare threshold) decided as exact; *first-rare extra / missed* = events the engine calls a "
             "first rare contact (rare resource that the process never contacted: the rare-cloud base condition, "
             "before the activation / explorer / dedup gates) and the exact answer does not / the reverse; *end "
             "exact* = share of resources whose final count is exact.\n")
    L.append(f"| agents | destinations | capacity | baseline MiB | evictions + dropped keys | exact (< {lim}) | "
             f"RMS rel. error (< {lim}) | RMS rel. error (>= {lim}) | max rel. error | rare agrees | exact first-rare | "
             "first-rare extra | first-rare missed | end exact | M events/s |")
    L.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in cells:
        for r in c["runs"]:
            tag = " (default)" if r["capacity"] == DEFAULT_CAPACITY else (
                " (smallest clean)" if r["capacity"] == c["smallest_clean"] else "")
            L.append(f"| {c['agents']:,} | {c['destinations']:,} | {cap_label(r['capacity'])}{tag} | "
                     f"{_mib(r['bytes'])} | {r['lost']:,} | {_f(r['prev_exact'])} | {_f(r['rms_rel_low'])} | "
                     f"{_f(r['rms_rel_high'])} | {r['max_rel']:.3f} | {r['rare_agree']:.4f} | "
                     f"{r['first_rare_exact']:,} | {r['first_rare_extra']:,} | {r['first_rare_missed']:,} | "
                     f"{r['end_exact']:.4f} | {c['events'] / r['seconds'] / 1e6:.2f} |")
    L.append("")
    over = [c for c in cells if c["threshold"] >= c["exact_limit"]]
    if over:
        who = ", ".join(f"{a:,}" for a in sorted({c["agents"] for c in over}))
        L.append(f"Rare threshold at {who} agents: {over[0]['threshold']:,} >= exact_limit {over[0]['exact_limit']}: "
                 "the rare decision is then taken on sampled counts (the engine warns), so it can differ from the "
                 "exact one even with no loss; "
                 "`--exact-limit` above the threshold makes it exact.\n")
    tgt = next((c for c in cells if c["agents"] == 10_000 and c["destinations"] == 1_000_000), None)
    dflt = tgt and next((r for r in tgt["runs"] if r["capacity"] == DEFAULT_CAPACITY), None)
    if dflt:
        L.append("### 10k agents / 1M destinations at the default capacity, by structure\n")
        L.append("*live keys / stored pairs (exact run)*: what each structure would hold with room enough "
                 "(computed from the exact answers; sampled keys at the KeyedDistinct formula).\n")
        L.append("| structure | share (pairs / keys) | MiB | pair slots | key slots | keys | pairs | live keys (exact run) | "
                 "stored pairs (exact run) | evictions | dropped keys |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, h in dflt["health"].items():
            if name == "agents":
                continue
            dk, dp = tgt["demand"].get(name, (0, 0))
            L.append(f"| {name} | {STRUCTURES[name][0]:g} / {STRUCTURES[name][1]:g} | {_mib(dflt['memory'][name])} | {h['capacity']:,} | "
                     f"{structure_sizes(rs.Config().capacity)[name][1]:,} | {h['num_keys']:,} | {h['num_pairs']:,} | {dk:,} | "
                     f"{dp:,.0f} | {h['evictions']:,} | {h['dropped_keys']:,} |")
        ag = dflt["health"]["agents"]
        L.append(f"| agents (AgentTable) | | {_mib(dflt['memory']['agents'])} | | {ag['capacity']:,} | "
                 f"{ag['num_keys']:,} | | | | | {ag['dropped_keys']:,} |")
        L.append("")
        ok_mem = dflt["bytes"] <= TARGET_MIB * 2**20
        L.append(f"**Target \"default memory <= {TARGET_MIB} MiB at 10k agents / 1M destinations\"**: the default "
                 f"baseline is {_mib(dflt['bytes'])} MiB: the memory target is {'met' if ok_mem else 'NOT met'}. "
                 "At that size, on this workload, "
                 + ("no structure evicts" if not dflt["lost"] else
                    f"{dflt['lost']:,} evictions + dropped keys, {dflt['first_rare_extra']:,} extra first-rare "
                    f"decisions ({dflt['first_rare_extra'] / max(1, dflt['first_rare_exact']):.1%} of the exact "
                    f"{dflt['first_rare_exact']:,}: {dflt['extra_seen_before']:,} because the process's earlier "
                    f"contact was lost, {dflt['extra_not_rare']:,} because the resource's count was), rare decision "
                    f"agreement {dflt['rare_agree']:.4f}")
                 + (f"; holding it without loss needs capacity {cap_label(tgt['smallest_clean'])} = "
                    f"{_mib(tgt['smallest_bytes'])} MiB (binding: {tgt['binding']})" if tgt["smallest_clean"] else "")
                 + ".\n")
    if e2e:
        L.append(f"### End-to-end alerts against the exact reference (benches/reports/accuracy.py agreement: {e2e['agents']} "
                 f"agents, {e2e['days']} days, {e2e['events']:,} simulated events; reference "
                 f"{e2e['reference_alerts']} alerts)\n")
        L.append(accuracy.table(e2e))
        L.append("")
    return "\n".join(L)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    ap.add_argument("--agents", type=int, nargs="*", help="default 1000 10000 100000")
    ap.add_argument("--destinations", type=int, nargs="*", help="default 100000 1000000 10000000")
    ap.add_argument("--days", type=int, default=30, help="window (training_days) = days of events")
    ap.add_argument("--capacities", type=int, nargs="*",
                    help="always run these (default: 2^21, and 2^19 up to 1M destinations)")
    ap.add_argument("--no-search", action="store_true", help="skip the smallest-clean-capacity search")
    ap.add_argument("--check-below", type=int, default=1_000_000,
                    help="also run the grid step(s) below the smallest clean capacity up to this many destinations")
    ap.add_argument("--max-gib", type=float, default=2.5, help="largest baseline the search may run (GiB)")
    ap.add_argument("--exact-limit", type=int, default=rs.Config().exact_limit, help="Config.exact_limit")
    ap.add_argument("--no-e2e", action="store_true", help="skip the end-to-end agreement table")
    args = ap.parse_args(argv)
    if args.quick:
        agents, dests = args.agents or [50], args.destinations or [3_000]
        fixed = lambda d: args.capacities or [1 << 11, DEFAULT_CAPACITY]  # noqa: E731
        e2e_kw = {"agents": 30, "days": 25, "per_day": 60, "capacities": (DEFAULT_CAPACITY, 1 << 11)}
    else:
        agents = args.agents or [1_000, 10_000, 100_000]
        dests = args.destinations or [100_000, 1_000_000, 10_000_000]
        fixed = lambda d: args.capacities or ([1 << 19] if d <= 1_000_000 else []) + [DEFAULT_CAPACITY]  # noqa: E731
        e2e_kw = {"capacities": (DEFAULT_CAPACITY, 1 << 16, 1 << 13, 1 << 12)}
    log = (lambda *a, **k: print(*a, **k, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    cells = []
    for d in dests:
        for a in agents:
            cells.append(measure_cell(a, d, args.days, capacities=fixed(d), search=not args.no_search,
                                      check_below=d <= args.check_below, max_bytes=args.max_gib * 2**30,
                                      exact_limit=args.exact_limit, log=log))
    e2e = None if args.no_e2e else accuracy.measure(**e2e_kw)
    text = markdown(cells, e2e)
    print(text)
    log(f"total {time.perf_counter() - t0:.0f}s, peak RSS {peak_rss_mib():,.0f} MiB")
    return {"cells": cells, "e2e": e2e, "markdown": text}


if __name__ == "__main__":
    main()
