"""``Engine.process`` on the same events with text columns dense (``string``) and dictionary-encoded (as Parquet
and Arrow store them), side by side in one process, alternating rounds; checks that both raise the same alerts.

    python benches/reports/dense_vs_dictionary.py [--agents 200] [--days 20] [--rounds 5] [--batch 100000]

Each round warms a new Engine on the first half of the days (not timed) and times ``Engine.process`` over the
second half, in batches of ``--batch``; prints each round, the medians, the spread (min-max) and the ratio
dictionary/dense of the medians.
"""
from __future__ import annotations

import argparse
import statistics
import time

import pyarrow as pa
import pyarrow.compute as pc

import raresketch as rs
from raresketch.simulate import Organisation


def dictionary_encoded(t: pa.Table) -> pa.Table:
    """``t`` with every text column dictionary-encoded (one chunk each) and no conformed mark."""
    cols = [pc.dictionary_encode(c).combine_chunks() if pa.types.is_string(c.type) else c for c in t.columns]
    return pa.Table.from_arrays(cols, names=t.column_names)


def _alerts(alerts) -> list:
    return sorted((a.name, a.row, a.host_id, a.destination, a.timestamp.isoformat()) for a in alerts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--days", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=100_000)
    a = ap.parse_args()
    t = pa.concat_tables(Organisation(agents=a.agents, days=a.days, seed=0).batches(a.batch)).combine_chunks()
    cut = pc.add(pc.min(t["@timestamp"]), pa.scalar(a.days // 2 * 86400 * 10**6, pa.duration("us")))
    warm, timed = t.filter(pc.less(t["@timestamp"], cut)), t.filter(pc.greater_equal(t["@timestamp"], cut))
    split = lambda x: [x.slice(i, a.batch) for i in range(0, x.num_rows, a.batch)]  # noqa: E731
    inputs = {"dense": (split(warm), split(timed)),
              "dictionary": ([dictionary_encoded(b) for b in split(warm)],
                             [dictionary_encoded(b) for b in split(timed)])}
    secs: dict[str, list[float]] = {k: [] for k in inputs}
    seen: dict[str, list] = {}
    for r in range(a.rounds):
        for name, (w, x) in inputs.items():
            eng = rs.Engine()
            for b in w:
                eng.process(b)
            t0 = time.perf_counter()
            alerts = [al for b in x for al in eng.process(b)]
            s = time.perf_counter() - t0
            secs[name].append(s)
            seen.setdefault(name, _alerts(alerts))
            print(f"round {r + 1} {name}: {timed.num_rows / s / 1e6:.2f} M events/s "
                  f"({s * 1e9 / timed.num_rows:.0f} ns/event)", flush=True)
    for name, v in secs.items():
        ns = [s * 1e9 / timed.num_rows for s in v]
        print(f"{name}: median {statistics.median(ns):.0f} ns/event ({timed.num_rows / statistics.median(v) / 1e6:.2f}"
              f" M events/s), spread {min(ns):.0f}-{max(ns):.0f}")
    print(f"dictionary/dense time ratio (medians): {statistics.median(secs['dictionary']) / statistics.median(secs['dense']):.3f}; "
          f"same alerts: {seen['dense'] == seen['dictionary']} ({len(seen['dense'])} alerts)")


if __name__ == "__main__":
    main()
