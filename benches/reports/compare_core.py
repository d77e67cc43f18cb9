"""Side-by-side throughput of the compiled core and the per-item Python calls users would otherwise make.

All contenders run in this one process on the same keys; each figure is the best of ``--repeat`` runs,
keys per second on one core. Prints a Markdown table with ratios (ours / theirs).

    python benches/reports/compare_core.py [--n 10000000] [--peer-n 1000000] [--repeat 3]

Peers: Apache DataSketches (``datasketches``: count_min_sketch, hll_sketch), ``datasketch``
(HyperLogLogPlusPlus), ``rbloom`` (Bloom), ``mmh3`` (hash64), and a plain dict-of-dicts for per-key distinct
counts. Peers are fed Python ints (or str) one call per item, as their APIs take them.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benches/: workloads
from workloads import agent_dest_events, hostnames, zipf_keys  # noqa: E402

import raresketch as rs  # noqa: E402


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000, help="keys for raresketch's batch calls")
    ap.add_argument("--peer-n", type=int, default=1_000_000, help="keys for per-item peer calls")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    import datasketch
    import datasketches
    import mmh3
    import rbloom

    n, pn, rep = args.n, args.peer_n, args.repeat
    keys = zipf_keys(n)
    pkeys = [int(k) & ((1 << 63) - 1) for k in keys[:pn]]  # peers take signed 64-bit ints
    names = hostnames(n)
    pnames = names.slice(0, pn).to_pylist()
    rows = []

    def row(what, ours_n, ours_t, peer, peer_n, peer_t):
        o, p = ours_n / ours_t, peer_n / peer_t
        rows.append((what, o, peer, p, o / p))

    # hash64 from Arrow strings vs mmh3 per string
    t = best(lambda: rs.sketches.hash64(names), rep)
    tp = best(lambda: [mmh3.hash64(s, 0, signed=False)[0] for s in pnames], rep)
    row("hash64 (Arrow strings)", n, t, "mmh3.hash64 per str", pn, tp)

    # count-min update+query
    for width in (1 << 16, 1 << 20):
        t = best(lambda: rs.sketches.CountMinSketch(width, 4).update_and_query(keys), rep)

        def ds_cms():
            cm = datasketches.count_min_sketch(4, width)
            for k in pkeys:
                cm.update(k)
                cm.get_estimate(k)
        tp = best(ds_cms, rep)
        row(f"CMS update+query, width 2^{width.bit_length() - 1}, depth 4", n, t,
            "datasketches count_min update+get_estimate", pn, tp)
        if width == 1 << 16:
            def ds_cms_update():
                cm = datasketches.count_min_sketch(4, width)
                for k in pkeys:
                    cm.update(k)
            row("CMS update only, width 2^16", n, best(lambda: rs.sketches.CountMinSketch(width, 4).update(keys), rep),
                "datasketches count_min update", pn, best(ds_cms_update, rep))

    # per-event scalar call from Python
    def ours_scalar():
        add = rs.sketches.CountMinSketch(1 << 16, 4).add
        for k in pkeys:
            add(k)

    def ds_scalar():
        cm = datasketches.count_min_sketch(4, 1 << 16)
        for k in pkeys:
            cm.update(k)
    row("CMS per-event call from Python", pn, best(ours_scalar, rep), "datasketches count_min update", pn,
        best(ds_scalar, rep))

    # HyperLogLog
    def ours_hll():
        rs.sketches.HyperLogLog(12).update(keys)

    def ds_hll():
        h = datasketches.hll_sketch(12, datasketches.HLL_8)
        for k in pkeys:
            h.update(k)

    def dsk_hll():
        h = datasketch.HyperLogLogPlusPlus(p=12, hashfunc=lambda x: x)
        for k in pkeys:
            h.update(k)
    t = best(ours_hll, rep)
    row("HLL update (p=12)", n, t, "datasketches hll_sketch update", pn, best(ds_hll, rep))
    row("HLL update (p=12)", n, t, "datasketch HyperLogLogPlusPlus update", pn, best(dsk_hll, rep))

    # Bloom test-and-set
    def ours_bloom():
        rs.sketches.BloomFilter(n, 0.01).add_if_absent(keys)

    def rb_bloom():
        b = rbloom.Bloom(pn, 0.01)
        for k in pkeys:
            if k not in b:
                b.add(k)
    row("Bloom add_if_absent (1 %)", n, best(ours_bloom, rep), "rbloom `in` + add", pn, best(rb_bloom, rep))

    # per-key distinct counts: sketch vs exact dict of sets
    dest, agent, days = agent_dest_events(n)
    pd, pa_ = dest[:pn].tolist(), agent[:pn].tolist()

    def ours_kd():
        rs.sketches.KeyedDistinct(1 << 22, window_days=30).observe(dest, agent, 20_000)

    def exact_kd():
        seen: dict[int, dict[int, int]] = {}
        out = []
        for d, a in zip(pd, pa_):
            m = seen.setdefault(d, {})
            out.append((len(m), m.get(a, 0)))
            m[a] = 20_000
    row("KeyedDistinct observe (10k agents, 1M dests)", n, best(ours_kd, rep), "exact dict-of-dicts per event", pn,
        best(exact_kd, rep))

    print(f"n = {n:,} keys for raresketch batch calls, {pn:,} per-item peer calls; best of {rep}\n")
    print("| operation | raresketch keys/s | peer | peer keys/s | ratio |")
    print("|---|---:|---|---:|---:|")
    for what, o, peer, p, r in rows:
        print(f"| {what} | {o / 1e6:,.1f} M | {peer} | {p / 1e6:,.2f} M | {r:,.0f}x |")


if __name__ == "__main__":
    main()
