"""Step one of every path that learns or scores (the Engine's and Spark's): from a raw batch to the keys of the
events that will be learned, with every drop counted. One implementation, so both build the same baseline."""
from __future__ import annotations

import datetime as _dt
import fnmatch
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..config import Config
from ..events import EVENT_SCHEMA, conform
from ._contacts import contact_rows
from ._keys import Flags, KeyResolver, _one_chunk
from ._baseline import EventKeys

__all__ = ["Prepared", "prepare", "allowed_agents", "INPUT_COLUMNS"]

#: The EVENT_SCHEMA columns the Engine never reads: an input may leave them out (``raresketch run`` does not read
#: them from Parquet or Arrow files). tests/detect/test_dictionary_input.py checks that nulling them changes nothing.
UNREAD_COLUMNS = ("network.transport", "process.entity_id", "source.ip", "source.port")
#: The EVENT_SCHEMA columns the Engine reads (conform, drops, the key resolver, rules and alerts).
INPUT_COLUMNS = tuple(c for c in EVENT_SCHEMA.names if c not in UNREAD_COLUMNS)

_US_PER_DAY = 86_400_000_000
#: An event older than one already processed by more than this is "late" (counted, and warned about: late events
#: are scored against a baseline that already holds later events).
LATE_US = 3_600_000_000


@dataclass
class Prepared:
    """A batch ready to learn. Its events are the contacts of the conformed batch in event-time order: row ``j``
    of them is row ``rows[j]`` of ``table`` (the conformed batch as it came, which may also hold non-contacts and
    be out of order; ``rows`` None: the table is the events themselves), so nothing is copied to drop or sort
    rows. ``kidx`` are the events kept (their keys ``ev``, catalogue ``flags``, allow-list mask, event times in
    µs and the newest day when each is scored), as event indices; events not kept were counted by reason."""

    table: pa.Table
    rows: np.ndarray | None
    kidx: np.ndarray
    ev: EventKeys
    flags: Flags
    allow: np.ndarray
    ts: np.ndarray
    ref_day: np.ndarray
    #: Events dropped for their time, by reason (``too_old``, ``skipped_future``): who sent them.
    dropped: dict[str, np.ndarray] = field(default_factory=dict)
    #: Events that arrived after later ones by more than ``LATE_US`` (kept: learned and scored late).
    late: int = 0
    #: The largest such delay, in µs.
    max_late_us: int = 0

    @property
    def num_rows(self) -> int:
        """The number of events (contacts)."""
        return self.table.num_rows if self.rows is None else len(self.rows)

    def take(self, idx: np.ndarray) -> pa.Table:
        """Events ``idx`` (event indices) as a table. O(len(idx)) per column."""
        idx = np.asarray(idx, np.int64)
        return self.table.take(pa.array(idx if self.rows is None else self.rows[idx]))

    def column(self, name: str) -> pa.Array:
        """One column of the events, as one array. O(n) for that column when rows were dropped or reordered."""
        col = _one_chunk(self.table.column(name))
        return col if self.rows is None else col.take(pa.array(self.rows))

    @property
    def events(self) -> pa.Table:
        """The events as one table (a copy when rows were dropped or reordered: prefer :meth:`take`)."""
        return self.table if self.rows is None else self.table.take(pa.array(self.rows))


def allowed_agents(events: pa.Table, patterns: tuple[str, ...]) -> np.ndarray:
    """Events of an allow-listed agent group: a glob of ``patterns`` matches the event's ``host.id``
    (case-insensitive); a pattern written ``name:<glob>`` matches ``host.name`` instead — which a local
    administrator can change, so it is an explicit choice. Once per distinct value."""
    out = np.zeros(events.num_rows, dtype=bool)
    by_col: dict[str, list[str]] = {"host.id": [], "host.name": []}
    for p in patterns:
        p = p.lower()
        if p.startswith("name:"):
            by_col["host.name"].append(p[5:])
        else:
            by_col["host.id"].append(p[3:] if p.startswith("id:") else p)
    for col, pats in by_col.items():
        if not pats:
            continue
        enc = events[col].combine_chunks().dictionary_encode()
        hit = np.array([v is not None and any(fnmatch.fnmatchcase(v.lower(), p) for p in pats)
                        for v in enc.dictionary.to_pylist()] + [False], dtype=bool)
        idx = enc.indices.fill_null(len(enc.dictionary)).to_numpy(zero_copy_only=False)
        out |= hit[idx]
    return out


def prepare(batch: pa.Table, config: Config, resolver: KeyResolver, stats: Counter, suppressed: Counter,
            today: int | None, newest_us: int = 0) -> Prepared | None:
    """Conform, sort by ``@timestamp``, drop (and count in ``stats``) invalid rows, days outside [1, 65535],
    events past ``max_future_days``, and — when ``today`` is given (the baseline's newest day; None for Spark's
    unordered partitions) — events ``training_days`` or more older than the newest day seen so far; resolve the
    rest through ``resolver``; drop allow-listed events when ``allowlist_learn`` is false (``suppressed``).
    ``newest_us`` (the newest event time already processed, µs) makes events more than :data:`LATE_US` older
    than one processed before them count as ``late`` (stats) — they are kept. None when nothing is left of the
    batch. O(n) plus the resolver's O(new distinct values)."""
    n_in = batch.num_rows
    events = conform(batch, dictionary=True)      # dictionary-encoded text stays so: resolved per distinct value
    if events.num_rows < n_in:
        stats["skipped_invalid"] += n_in - events.num_rows
    # -- not contacts (inbound, nameless internal destinations): out of the statistics and the detectors
    rows = contact_rows(events, stats, resolver.internal_addresses)     # None: all of them
    # --
    if events.num_rows == 0 or (rows is not None and rows.size == 0):
        return None
    ts = _one_chunk(events.column("@timestamp")).cast(pa.int64()).to_numpy(zero_copy_only=False)
    if rows is not None:
        ts = ts[rows]
    if ts.size > 1 and not (ts[1:] >= ts[:-1]).all():           # readers already yield sorted batches
        order = np.argsort(ts, kind="stable")
        rows, ts = (order if rows is None else rows[order]), ts[order]
    days = ts // _US_PER_DAY
    ok = (days >= 1) & (days <= 65535)
    if not ok.all():
        stats["skipped_timestamp_out_of_range"] += int((~ok).sum())
    dropped: dict[str, np.ndarray] = {}
    if config.max_future_days is not None:
        future = ok & (days > _dt.datetime.now(_dt.timezone.utc).timestamp() // 86400 + config.max_future_days)
        if future.any():
            stats["skipped_future"] += int(future.sum())
            dropped["skipped_future"] = np.flatnonzero(future)
            ok &= ~future
    if today is not None:
        # Too old: W or more days before the newest day seen so far (including earlier events of this batch).
        newest = np.maximum.accumulate(np.maximum(np.where(ok, days, 0), today))
        newest = np.concatenate([[today], newest[:-1]]) if len(newest) else newest
        too_old = ok & (days <= newest - config.training_days)
        if too_old.any():
            stats["too_old"] += int(too_old.sum())
            dropped["too_old"] = np.flatnonzero(too_old)
        keep = ok & ~too_old
        ref_day = np.maximum(newest, days)               # the newest day when each event is scored
    else:
        keep, ref_day = ok, days
    ev, flags = resolver.resolve(events, days, rows)
    allow = flags.allow
    if config.allow_agents:
        agents = allowed_agents(events, config.allow_agents)
        allow = allow | (agents if rows is None else agents[rows])
    if not config.allowlist_learn and allow.any():
        suppressed["allowlist"] += int((allow & keep).sum())
        keep &= ~allow
    kidx = np.flatnonzero(keep)                      # kept row -> event index
    if kidx.size < ts.size:
        ev, flags, allow, ref_day, ts = ev.take(kidx), flags.take(kidx), allow[kidx], ref_day[kidx], ts[kidx]
    late, max_late = 0, 0
    if ts.size and today is not None and newest_us and int(ts[0]) < newest_us - LATE_US:   # sorted: ts[0] is oldest
        delay = newest_us - ts
        late = int((delay > LATE_US).sum())
        max_late = int(delay.max())
        stats["late"] += late
    return Prepared(events, rows, kidx, ev, flags, allow, ts, ref_day, dropped, late, max_late)
