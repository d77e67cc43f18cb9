"""The one record -> batch path of the per-record readers: a JSON line -> a dict (:func:`loads_line`), a
reader's row dicts -> column lists (:class:`RowBuffer`) -> conformed, time-sorted Arrow batches.

A row dict maps schema column names to raw values (strings, numbers, booleans, as the record had them);
values are typed column by column when the batch is built (:func:`build_column`, the events package's
value parsers), so a reader never types a value twice.
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import pyarrow as pa

from ..events import EVENT_SCHEMA, conform
from ..events._schema import sort_by_time
from ..events._values import MISSING, BAD, parse_timestamps, to_bool, to_int, to_str
from ._source import Source
from ._stats import ReadStats

try:  # orjson is several times faster than json; fall back when it is absent.
    import orjson as _orjson

    loads = _orjson.loads
    JSON_ERRORS: tuple = (_orjson.JSONDecodeError, ValueError)
except ImportError:  # pragma: no cover
    import json as _json

    loads = _json.loads
    JSON_ERRORS = (ValueError,)


def loads_line(line: bytes, stats: ReadStats) -> dict | None:
    """Parse one JSON line into a dict; None when it is blank (not counted) or bad (counted in ``stats``).

    Invalid UTF-8 is replaced by U+FFFD and counted in ``stats.repaired['undecodable_bytes']``.
    """
    try:
        obj = loads(line)
    except JSON_ERRORS:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            text = line.decode("utf-8", "replace")
            try:
                obj = loads(text)
            except JSON_ERRORS:
                stats.skip("malformed_json")
                return None
            stats.repaired["undecodable_bytes"] += 1
        else:
            if not text.strip():
                stats.read -= 1  # blank line: not a record
                return None
            stats.skip("malformed_json")
            return None
    if not isinstance(obj, dict):
        stats.skip("not_an_object")
        return None
    return obj


_FIELDS = [f for f in EVENT_SCHEMA]
_COLUMNS = [f.name for f in _FIELDS]


def rows_table(rows: list[dict]) -> tuple[pa.Table, np.ndarray]:
    """Row dicts -> ``(table with EVENT_SCHEMA's columns, timestamp state)`` (state from
    :func:`raresketch.events._values.parse_timestamps`: 0 parsed, 1 missing, 2 bad). O(rows x columns)."""
    ts, state = parse_timestamps([r.get("@timestamp") for r in rows])
    arrays = [ts] + [build_column([r.get(f.name) for r in rows], f.type) for f in _FIELDS[1:]]
    return pa.Table.from_arrays(arrays, names=_COLUMNS), state


class RowBuffer:
    """Accumulates events as column lists (one Python list per schema column) and builds conformed,
    time-sorted Arrow tables. ``append`` is O(columns); ``to_table`` is O(rows) plus O(distinct) Python
    calls for normalisation."""

    def __init__(self) -> None:
        self.cols: dict[str, list] = {c: [] for c in _COLUMNS}

    def __len__(self) -> int:
        return len(self.cols["@timestamp"])

    def append(self, row: dict) -> None:
        get = row.get
        for c, lst in self.cols.items():
            lst.append(get(c))

    def to_table(self, stats: ReadStats) -> pa.Table:
        """Build the batch, drop (and count) rows without a valid timestamp or host, conform and sort."""
        n = len(self)
        ts, state = parse_timestamps(self.cols["@timestamp"])
        arrays = [ts] + [build_column(self.cols[f.name], f.type) for f in _FIELDS[1:]]
        t = pa.Table.from_arrays(arrays, names=_COLUMNS)
        ok = state == 0
        no_host = np.fromiter((not h for h in self.cols["host.id"]), bool, n) & ok
        count_dropped(stats, state, no_host)
        keep = ok & ~no_host
        if not keep.all():
            t = t.filter(pa.array(keep))
        self.cols = {c: [] for c in _COLUMNS}
        t = sort_by_time(conform(t))
        stats.emitted += t.num_rows
        return t


def count_dropped(stats: ReadStats, state: np.ndarray, no_host: np.ndarray) -> None:
    """Count the rows a batch drops: timestamps missing or bad (``state`` 1 or 2), no host (``no_host``)."""
    n_miss, n_bad, n_host = int((state == MISSING).sum()), int((state == BAD).sum()), int(no_host.sum())
    if n_miss:
        stats.skip("missing_timestamp", n_miss)
    if n_bad:
        stats.skip("bad_timestamp", n_bad)
    if n_host:
        stats.skip("missing_host", n_host)


def read_json_rows(src: Source, batch_size: int, stats: ReadStats,
                   to_row: Callable[[dict, ReadStats], dict | None]) -> Iterator[pa.Table]:
    """The per-line JSON reader: decode each line, map it with ``to_row`` (which returns None for a record it
    skips, having counted why) and yield conformed batches of at most ``batch_size`` events."""
    buf = RowBuffer()
    for line in src.lines():
        stats.read += 1
        d = loads_line(line, stats)
        if d is None:
            continue
        row = to_row(d, stats)
        if row is None:
            continue
        buf.append(row)
        if len(buf) >= batch_size:
            yield buf.to_table(stats)
    if len(buf):
        yield buf.to_table(stats)


def build_column(values: list, typ: pa.DataType) -> pa.Array:
    """Raw values of one column -> an Arrow array of ``typ``: by Arrow when every value already has the type,
    else value by value (:func:`to_str`, :func:`to_bool`, :func:`to_int`; an integer out of ``typ``'s range
    is null). O(n)."""
    try:
        return pa.array(values, typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        pass
    if pa.types.is_string(typ):
        conv = to_str
    elif pa.types.is_boolean(typ):
        conv = to_bool
    elif pa.types.is_integer(typ):
        lo, hi = (-(1 << 31), 1 << 31) if typ == pa.int32() else (-(1 << 63), 1 << 63)

        def conv(v, lo=lo, hi=hi):
            i = to_int(v)
            return i if i is not None and lo <= i < hi else None
    else:  # pragma: no cover
        conv = lambda v: v  # noqa: E731
    return pa.array([conv(v) for v in values], typ)
