"""Peers of ``raresketch.Engine``: the same detector logic on other counting machinery.

Every peer implements docs/DETECTORS.md as ``tests/support/reference.py`` reads it, on the same Arrow batches
(``raresketch.conform``, stable sort by ``@timestamp``, ``Catalog.resolve_batch``: the reference's
preprocessing, reused), and returns the reference's alert dicts. What differs is how the eleven windowed
tables of the contract (``prevalence(R)``, ``process_seen(R, p)``, ... ``cmdline_agents(c)``) are kept:

``ReferenceEngine`` (tests/support/reference.py)
    the oracle: ``key -> {member: last_day}`` dicts, per event; a distinct count is ``len()``.
``DataSketchesPeer``
    the reference's per-event loop with the nine distinct-count tables on Apache DataSketches: one
    ``hll_sketch`` (lg_k 12, HLL_8) per (key, day), a per-key window sketch = ``hll_union`` of the key's live
    days, built on the first count after a day left the window and updated in place while learning (so a
    count is one ``get_estimate``), rounded to an integer. Per-item ``update`` calls.
``DatasketchPeer``
    the same with the ``datasketch`` package: ``HyperLogLogPlusPlus(p=12)`` per (key, day) (bytes items,
    the library's default SHA-1 hash), window = ``copy()`` + ``merge()`` of the live days, ``round(count())``.
``PandasPeer`` / ``PolarsPeer``
    a group-by formulation, one chunk per (batch, day): each table's state is a frame of (key, member,
    last day); a chunk's counts "before each event" are the window's prior counts (group-by size) plus an
    exclusive cumulative count, per key, of the chunk's first occurrences of members not already in the
    window (score-then-learn inside the day without a Python loop), and membership is "in the window" or
    "learned earlier in the chunk". Activation, allow-list and habitual-explorer gates are vectorised; dedup
    and the volume guards (sequential by nature) run as the reference's own ``_gate`` over the few rows that
    survive them. Exact for input in time order (the simulator's); see ``GroupByPeer`` for late events.
``DuckDbPeer``
    the same group-by formulation in DuckDB SQL: each table is a DuckDB table (pair, key, last day) on its own
    in-memory connection (``SET threads = 1``); a chunk is a registered Arrow table, the exclusive cumulative
    counts are window functions (``sum(...) OVER (PARTITION BY ... ORDER BY row ROWS ... 1 PRECEDING)``), and
    learning is an ``UPDATE`` (keep the later day) plus an anti-join ``INSERT``.

Membership (``process_seen``, ``agent_seen_kind``) in the two sketch peers: a HyperLogLog cannot answer
"was (key, member) seen in the window", and neither library has a windowed membership structure (the
``datasketches`` Python package 5.x exposes no Bloom filter), so both keep the reference's exact windowed dict
for those two tables. The nine distinct-count tables are sketches.

Rounding: both HLLs report a float (DataSketches: n + 1e-5 in list/set mode; datasketch: linear counting,
n + ~n^2/2m), compared with integer thresholds (``<= 2``, ``<= 10``, ``>= 20``): a user must round, or
``2.0002 <= 2`` is false. Rounded, DataSketches is exact at these sizes barring 26-bit coupon collisions;
datasketch (p = 12, m = 4096 registers) undercounts when two members share a register (about n^2/8192).
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))

from support.reference import ReferenceEngine, _Windowed  # noqa: E402

import raresketch  # noqa: E402
from _peers_groupby import DuckDbPeer, GroupByPeer, PandasPeer, PolarsPeer  # noqa: E402
from _peers_sketch import (COUNT_TABLES, MEMBERSHIP_TABLES, DataSketchesPeer, DatasketchPeer,  # noqa: E402
                           _SketchWindowed)

__all__ = [
    "COUNT_TABLES",
    "MEMBERSHIP_TABLES",
    "DataSketchesPeer",
    "DatasketchPeer",
    "DuckDbPeer",
    "GroupByPeer",
    "PandasPeer",
    "PolarsPeer",
    "ReferenceEngine",
    "state_bytes",
]


# ============================================================================ retained state size

def _deep(obj, seen: set) -> int:
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(_deep(k, seen) + _deep(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        size += sum(_deep(x, seen) for x in obj)
    elif isinstance(obj, np.ndarray):
        size += obj.nbytes
    elif type(obj).__name__ in ("hll_sketch",):
        size += obj.get_updatable_serialization_bytes()
    elif type(obj).__name__ in ("HyperLogLogPlusPlus", "HyperLogLog"):
        size += obj.reg.nbytes
    return size


def state_bytes(engine) -> int:
    """Retained size of a contender's detector state after a run (bytes; an estimate for the Python peers:
    ``sys.getsizeof`` over the dicts, sets, keys and sketches, serialised size for DataSketches' C++ sketches,
    frame sizes for pandas/polars, 24 bytes a row for DuckDB; ``Baseline.nbytes`` for raresketch)."""
    if isinstance(engine, raresketch.Engine):
        return int(engine.baseline.nbytes)
    seen: set = set()
    total = 0
    skip = {"config", "catalog", "frames", "vocab", "pair_vocab"}
    for name, v in vars(engine).items():
        if name in skip or name.startswith("_"):
            continue
        if isinstance(v, _Windowed):
            total += _deep(v.d, seen)
        elif isinstance(v, _SketchWindowed):
            total += _deep(v.days, seen) + _deep(v.win, seen)
        else:
            total += _deep(v, seen)
    if isinstance(engine, GroupByPeer):
        total += engine.state_nbytes() + _deep(engine.vocab.ids, seen) + _deep(engine.vocab.names, seen)
        total += _deep(engine.pair_vocab.ids, seen)
    return total
