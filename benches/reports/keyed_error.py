"""KeyedDistinct's error against exact sets on a skewed workload, by true count.

    python benches/keyed_error.py [--events 5000000] [--exact-limit 256]

Keys get Zipf(1.1) popularity and members (agents) are drawn per event from 100k, so key sizes span 1 to
~100k distinct members. Prints, per bucket of true distinct count: keys, exact share, mean signed relative error,
RMS relative error, and the share inside the reported 2-sigma interval.
"""
from __future__ import annotations

import argparse

import numpy as np

import raresketch as rs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--exact-limit", type=int, default=256)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    keys = (rng.zipf(1.1, args.events) % 200_000).astype(np.uint64)
    members = rng.integers(0, 100_000, args.events).astype(np.uint64)
    kd = rs.sketches.KeyedDistinct(1 << 23, window_days=30, exact_limit=args.exact_limit)
    kd.update(keys, members, 20_000)
    pairs = np.unique(np.stack([keys, members], axis=1), axis=0)
    uk, true = np.unique(pairs[:, 0], return_counts=True)
    est = kd.count(uk).astype(np.float64)
    lo, hi = kd.count_interval(uk, 2.0)
    print(f"{args.events:,} events, {len(uk):,} keys, exact_limit {args.exact_limit}, "
          f"{kd.num_pairs:,} pairs stored, evictions {kd.stats['evictions']}\n")
    print("| true distinct | keys | exact | mean rel. error | RMS rel. error | inside 2-sigma |")
    print("|---|---:|---:|---:|---:|---:|")
    for a, b in [(1, 10), (10, 100), (100, 256), (256, 1000), (1000, 10_000), (10_000, 200_000)]:
        m = (true >= a) & (true < b)
        if not m.any():
            continue
        rel = est[m] / true[m] - 1
        inside = ((lo[m] <= true[m]) & (true[m] <= hi[m])).mean()
        print(f"| {a:,}-{b - 1:,} | {m.sum():,} | {(est[m] == true[m]).mean():.4f} | {rel.mean():+.4f} | "
              f"{np.sqrt((rel ** 2).mean()):.4f} | {inside:.3f} |")


if __name__ == "__main__":
    main()
