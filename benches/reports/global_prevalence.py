"""Globally rare, measured on the simulator (docs/SHARING.md, "Measured"):

    python benches/reports/global_prevalence.py [--orgs 30] [--small 15] [--days 45] [--events 100] [--json OUT]

``--orgs - 1`` organisations of 5 to 500 agents (log-spaced) and one of ``--small`` agents share one internet
(``Organisation(world_seed=...)``: the web's long tail and the services' addresses) and each keeps its own company
destinations (``acme`` renamed per organisation) and its own personal sites, fresh hosts and attacks. Every
organisation runs the engine over ``--days`` days, then exports (``export_prevalence``, default parameters) and
the coordinator merges all of them. The small organisation is then run again with ``Config.global_prevalence``
(its own export given, so its vote is taken out), and with consortium files in which 1, 2, 5 or 10 members mark its
injected C2 resources common (their filter's bits set to 1, no noise: the strongest poisoning a member can do).

Prints: alerts and false alerts (alerts matching no ground-truth row) of the small organisation without and with
``--global``, the factor, the malicious ground-truth rows caught in each run, the alerts raised to Low, what the
poisoners changed; privacy (how often positions read 1 for a member's common destinations, for its rare ones and
for names it never saw: the rare ones are never inserted, so they read like the never-seen ones); and export,
merge and lookup throughput (shared machine: ratios between runs are meaningful, absolute figures roughly).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

import numpy as np

from raresketch import Config, Engine
from raresketch.share import (Consortium, GlobalPrevalence, epsilon, export_prevalence, merge_exports)
from raresketch.share._keys import destination_digests, noise, positions
from raresketch.simulate import Organisation, load_profiles, match_ground_truth

WORLD = 2026


def organisation(agents: int, seed: int, days: int, events: float) -> Organisation:
    profiles = json.loads(json.dumps(load_profiles()).replace("acme", f"acme{seed}"))
    return Organisation(agents=agents, days=days, seed=seed, world_seed=WORLD, events_per_agent_day=events,
                        profiles=profiles)


def run(org: Organisation, config: Config = Config()) -> tuple[Engine, list]:
    eng, alerts = Engine(config), []
    for b in org.batches(200_000):
        alerts += eng.process(b)
    return eng, alerts


def sets(eng: Engine) -> tuple[list[str], list[str]]:
    """The engine's common (export rule, defaults) and rare (<= the rare threshold) resource names."""
    b = eng.baseline
    active = b.agents.active_agents(b.today + 1)
    keys, counts = b.structures["prevalence"].items()
    need = max(3, math.ceil(0.05 * active))
    thr = int(eng.config.rare_threshold(active))
    name = lambda ks: [n for n in (eng.resource_name(int(k)) for k in ks) if n]  # noqa: E731
    return name(keys[counts >= need]), name(keys[counts <= thr])


def score(org: Organisation, alerts: list) -> dict:
    gt = org.ground_truth.to_pylist()
    hits, unmatched = match_ground_truth(alerts, org.ground_truth)
    mal = [i for i, g in enumerate(gt) if g["malicious"]]
    return {"alerts": len(alerts), "false_alerts": len(unmatched),
            "false_rare_cloud": sum(alerts[k].detector == "rare_cloud" for k in unmatched),
            "malicious_rows": len(mal), "malicious_caught": sum(bool(hits[i]) for i in mal),
            "raised_to_low": sum(a.raised_to == "low" for a in alerts),
            "false_raised_to_low": sum(alerts[k].raised_to == "low" for k in unmatched),
            "malicious_raised_to_low": sum(any(alerts[k].raised_to == "low" for k in hits[i]) for i in mal)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orgs", type=int, default=30)
    ap.add_argument("--small", type=int, default=15)
    ap.add_argument("--days", type=int, default=45)
    ap.add_argument("--events", type=float, default=100.0, help="events per agent-day")
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="raresketch-global-")
    key = os.urandom(32)
    key_file = os.path.join(tmp, "consortium.key")
    with open(key_file, "wb") as f:
        f.write(key)
    sizes = [int(round(x)) for x in np.geomspace(5, 500, a.orgs - 1)]
    out: dict = {"orgs": a.orgs, "sizes": sizes + [a.small], "days": a.days, "events_per_agent_day": a.events}
    exports, privacy, t_export, n_keys, commons = [], [], 0.0, 0, []
    t_sim = time.perf_counter()
    for i, n in enumerate(sizes):
        eng, _ = run(organisation(n, i + 1, a.days, a.events))
        t0 = time.perf_counter()
        okey = os.urandom(32)
        exp, st = export_prevalence(eng, key, okey)
        t_export += time.perf_counter() - t0
        n_keys += st["resources"]
        exports.append(exp)
        common, rare = sets(eng)
        commons.append(set(common))
        m = exp.params["bits"]
        read = lambda names: exp.bits[positions(destination_digests(key, "cloud", names), m)]  # noqa: E731
        never = [f"aws/s3/never-seen-{i}-{j}" for j in range(2000)]
        # a rare destination inserted would read 1 where its position is neither randomised nor a common one's
        randomised, _ = noise(okey, m, exp.params["flip"])
        pr, pcm = (positions(destination_digests(key, "cloud", x), m) for x in (rare, common))
        free = ~randomised[pr] & ~np.isin(pr, pcm)
        privacy.append((read(common).sum(), len(common), read(rare).sum(), len(rare), read(never).sum(), len(never),
                        int(exp.bits[pr][free].sum()), int(free.sum())))
        print(f"org {i + 1:2d}: {n:4d} agents, {st['common']:4d} common of {st['resources']:6d} resources",
              file=sys.stderr)
    small = organisation(a.small, 1000, a.days, a.events)
    eng_s, alerts0 = run(small)
    own, _ = export_prevalence(eng_s, key, os.urandom(32))
    own_file = os.path.join(tmp, "own.prev")
    own.save(own_file)
    out["simulate_and_run_s"] = round(time.perf_counter() - t_sim, 1)
    t0 = time.perf_counter()
    cons = merge_exports(exports + [own])
    t_merge = time.perf_counter() - t0
    cons_file = os.path.join(tmp, "consortium.prev")
    cons.save(cons_file)
    cfg = Config(global_prevalence=cons_file, global_key_file=key_file, global_own_export=own_file)
    _, alerts1 = run(small, cfg)
    base, glob = score(small, alerts0), score(small, alerts1)
    out["without_global"], out["with_global"] = base, glob
    out["false_alert_factor"] = round(base["false_alerts"] / max(1, glob["false_alerts"]), 2)
    out["false_rare_cloud_factor"] = round(base["false_rare_cloud"] / max(1, glob["false_rare_cloud"]), 2)
    # the ceiling: false rare-cloud alerts whose resource at least 3 other organisations hold as common (exactly)
    _, unm = match_ground_truth(alerts0, small.ground_truth)
    held = [sum(alerts0[k].cloud_resource in c for c in commons) for k in unm if alerts0[k].detector == "rare_cloud"]
    out["false_rare_cloud_held_by"] = {"0": sum(h == 0 for h in held), "1-2": sum(1 <= h <= 2 for h in held),
                                       "3-9": sum(3 <= h <= 9 for h in held), ">=10": sum(h >= 10 for h in held)}
    # poisoning: k members mark the small organisation's injected C2 resources common
    hits0, _ = match_ground_truth(alerts0, small.ground_truth)
    gt = small.ground_truth.to_pylist()
    c2 = sorted({alerts0[k].cloud_resource for i, g in enumerate(gt) if g["malicious"] for k in hits0[i]
                 if alerts0[k].cloud_resource})
    out["c2_resources"] = len(c2)
    out["poisoning"] = {}
    pos = positions(destination_digests(key, "cloud", c2), cons.params["bits"])
    for k in (1, 2, 5, 10):
        forged = []
        for j, e in enumerate(exports):
            if j < k:
                e = type(e)(e.params, e.org_id, e.first_day, e.last_day, e.bits.copy())
                e.bits[pos] = True
            forged.append(e)
        pf = os.path.join(tmp, f"poisoned{k}.prev")
        merge_exports(forged + [own]).save(pf)
        _, alerts_p = run(small, cfg.replace(global_prevalence=pf))
        sp = score(small, alerts_p)
        c2_alerts = [x for x in alerts_p if x.cloud_resource in c2]
        out["poisoning"][k] = {"malicious_caught": sp["malicious_caught"], "alerts": sp["alerts"],
                               "same_alerts_as_unpoisoned": sorted(map(_sig, alerts_p)) == sorted(map(_sig, alerts1)),
                               "c2_votes": sorted({x.evidence["global_orgs"]["votes"] for x in c2_alerts})}
    # privacy
    pc = np.array(privacy, float)
    out["privacy"] = {
        "flip": cons.params["flip"], "epsilon_per_destination": round(epsilon(cons.params["flip"]), 3),
        "epsilon_swap": round(2 * epsilon(cons.params["flip"]), 3),
        "rare_destinations_inserted": int(pc[:, 6].sum()), "rare_destinations_checkable": int(pc[:, 7].sum()),
        "read_1_common": round(pc[:, 0].sum() / max(1, pc[:, 1].sum()), 4),
        "read_1_rare": round(pc[:, 2].sum() / max(1, pc[:, 3].sum()), 4),
        "read_1_never_seen": round(pc[:, 4].sum() / max(1, pc[:, 5].sum()), 4),
        "common_destinations": int(pc[:, 1].sum()), "rare_destinations": int(pc[:, 3].sum()),
    }
    p = out["privacy"]
    p["likelihood_ratio_common_vs_never"] = round(p["read_1_common"] / max(1e-9, p["read_1_never_seen"]), 2)
    p["exp_epsilon"] = round(math.exp(p["epsilon_per_destination"]), 2)
    # throughput
    names = [f"aws/s3/name-{i}" for i in range(100_000)]
    t0 = time.perf_counter()
    cons.lookup(key, names, exclude=own)
    t_lookup = time.perf_counter() - t0
    g = GlobalPrevalence(Consortium.load(cons_file), key, own)
    t0 = time.perf_counter()
    for nm in names[:20_000]:
        g.judge("rare_cloud", nm, 15)
    t_judge = time.perf_counter() - t0
    out["throughput"] = {
        "export_resources_per_s": round(n_keys / t_export), "export_s_per_org": round(t_export / len(exports), 3),
        "merge_s": round(t_merge, 3), "merge_orgs_per_s": round(cons.n_orgs / t_merge, 1),
        "lookup_batch_names_per_s": round(len(names) / t_lookup), "judge_alerts_per_s": round(20_000 / t_judge),
        "export_bytes": len(own.to_bytes()), "consortium_bytes": os.path.getsize(cons_file),
    }
    print(json.dumps(out, indent=2, default=str))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2, default=str)


def _sig(x) -> tuple:
    return (x.name, x.host_id, x.destination, x.timestamp.isoformat(), x.severity)


if __name__ == "__main__":
    main()
