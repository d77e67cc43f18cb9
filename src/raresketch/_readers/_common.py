"""Shared reader plumbing: opening sources, line iteration, statistics, column buffers, timestamp parsing.

Everything here is pure Python + pyarrow. Costs are per record unless stated.
"""
from __future__ import annotations

import gzip
import io
import os
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any, Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._core import decode_dictionary
from .._json import ipv4_canonical
from ..events import EVENT_SCHEMA, _map_unique, _sort_by_time, conform, normalize_ip

#: Reasons a record can be skipped, as written to :attr:`ReadStats.skipped` (stable strings).
SKIP_REASONS = {
    "malformed_json": "the line is not valid JSON",
    "not_an_object": "the JSON value is not an object",
    "missing_timestamp": "no timestamp field",
    "bad_timestamp": "a timestamp that does not parse",
    "missing_host": "no host identifier (host.id / computer name / originator address)",
    "no_destination": "neither destination.ip nor destination.domain",
    "not_network_event": "a record of another kind (Sysmon EID 1/5/7/22, Zeek dns/ssl/..., ECS non-network)",
    "wrong_ocsf_class": "an OCSF record whose class_uid is not 4001 (Network Activity)",
    "evtx_unreadable": "a record or chunk the evtx parser reports as unreadable",
    "bad_record": "a record whose fields have impossible types or values",
    "unsupported_line": "a line in a Zeek TSV log that does not match its #fields header",
    "truncated_input": "a compressed input that ends early or is corrupt after some records (those are kept)",
    "unreadable_file": "a file in a folder that could not be read or decompressed at all (the folder goes on)",
}


@dataclass
class ReadStats:
    """What a reader saw. Pass one to ``read_events(..., stats=...)``; it is updated as batches are yielded.

    Attributes
    ----------
    read : int
        Records (JSON lines, evtx records, log lines, table rows) read, including skipped ones.
    emitted : int
        Network events yielded in batches.
    skipped : collections.Counter
        Records not emitted, by reason (keys from ``SKIP_REASONS``). Context records used for enrichment
        (Sysmon EID 1/7/22, Zeek dns/ssl/http) are counted under ``not_network_event``.
    repaired : collections.Counter
        Records emitted after a repair, by kind: ``undecodable_bytes`` (invalid UTF-8 replaced by U+FFFD; the
        record is kept so one bad byte cannot hide a connection).
    enriched : collections.Counter
        Emitted events that got a field from another record: ``domain_dns``, ``domain_command_line``,
        ``process_create`` (EID 1 joined), ``signature`` (EID 7 joined), ``zeek_ssl``, ``zeek_http``.
    files : int
        Files opened.
    """

    read: int = 0
    emitted: int = 0
    skipped: Counter = field(default_factory=Counter)
    repaired: Counter = field(default_factory=Counter)
    enriched: Counter = field(default_factory=Counter)
    files: int = 0

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] += n

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def as_dict(self) -> dict:
        return {"read": self.read, "emitted": self.emitted, "skipped": dict(self.skipped),
                "repaired": dict(self.repaired), "enriched": dict(self.enriched), "files": self.files}

    def __str__(self) -> str:
        sk = ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())) or "none"
        return f"read {self.read}, emitted {self.emitted}, skipped {self.n_skipped} ({sk})"


# --------------------------------------------------------------------------------------------- sources

class Source:
    """A byte source with a peekable head: path, bytes/text file object, gzip detected by magic bytes.

    ``head`` holds the first up-to-64 KiB of the (decompressed) content; :meth:`lines` yields every line
    (bytes, without the newline) including those in ``head``.
    """

    HEAD = 1 << 16

    def __init__(self, path_or_file: Any):
        self.name: str = ""
        self._close = False
        if isinstance(path_or_file, (str, os.PathLike)):
            self.name = os.fspath(path_or_file)
            raw: IO[bytes] = open(self.name, "rb")
            self._close = True
        elif isinstance(path_or_file, io.TextIOBase):
            raw = io.BytesIO(path_or_file.read().encode("utf-8", "surrogateescape"))
        elif isinstance(path_or_file, (bytes, bytearray, memoryview)):
            raw = io.BytesIO(bytes(path_or_file))
        else:
            raw = path_or_file
            self.name = str(getattr(path_or_file, "name", "") or "")
        self._raw = raw
        magic = _peek(raw, 2)
        self.gzip = magic == b"\x1f\x8b"
        self.fh: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if self.gzip else raw
        #: Why a compressed input stopped early (truncated, corrupt), or None; what came before is kept.
        self.damaged: str | None = None
        self.head = self._read(self.HEAD)
        if self.damaged is not None and not self.head:
            self.close()
            raise ValueError(f"cannot decompress {self.name or 'input'}: {self.damaged}")
        self._consumed = False

    def _read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all when negative). A gzip stream that is cut short or corrupt returns what was
        decompressed before the damage (read in 64 KiB steps, so little is lost) and sets :attr:`damaged`."""
        if self.damaged is not None:
            return b""
        if not self.gzip:
            return self.fh.read(n)
        parts, got = [], 0
        while n < 0 or got < n:
            try:
                b = self.fh.read(1 << 16 if n < 0 else min(n - got, 1 << 16))
            except (EOFError, OSError, zlib.error) as e:
                self.damaged = f"{type(e).__name__}: {e}"
                break
            if not b:
                break
            parts.append(b)
            got += len(b)
        return b"".join(parts)

    @property
    def ext(self) -> str:
        n = self.name.lower()
        if n.endswith(".gz"):
            n = n[:-3]
        return os.path.splitext(n)[1]

    def read_all(self) -> bytes:
        if self._consumed:
            raise RuntimeError("source already consumed")
        self._consumed = True
        return self.head + self._read()

    def lines(self) -> Iterator[bytes]:
        if self._consumed:
            raise RuntimeError("source already consumed")
        self._consumed = True
        rest = self.head
        while True:
            chunk = self._read(1 << 20)
            if not chunk:
                break
            rest += chunk
            parts = rest.split(b"\n")
            rest = parts.pop()
            for p in parts:
                yield p[:-1] if p.endswith(b"\r") else p
        if rest:
            parts = rest.split(b"\n")
            for p in parts:
                yield p[:-1] if p.endswith(b"\r") else p

    def blocks(self, size: int = 1 << 22) -> Iterator[bytes | memoryview]:
        """Yield the content in blocks of whole lines (about ``size`` bytes each, more when one line is
        longer); every block ends with ``\\n`` (one is added to a last line without it). Together the blocks
        hold exactly the lines of :meth:`lines` (with their ``\\r``), so a reader may mix both views.

        A block is bytes or a read-only memoryview (slice it and pass the slice to ``bytes()`` for a
        ``str``/``bytes`` API). An uncompressed file object with ``readinto`` is read straight into each
        block's buffer (no copy of the block in Python; the partial line at its end is copied to the next
        one); other sources are read by :meth:`_read` and joined. A line longer than ``size`` is gathered
        as a list of pieces and joined once its newline arrives. O(size) per block, O(length) per line."""
        if self._consumed:
            raise RuntimeError("source already consumed")
        self._consumed = True
        readinto = None if self.gzip else getattr(self.fh, "readinto", None)
        pending: list = []  # pieces of a line that has not ended yet (longer than a block)
        rest: bytes = self.head  # the partial line after the last newline (no newline in it)
        while True:
            if readinto is not None:
                buf = bytearray(len(rest) + size)
                buf[: len(rest)] = rest
                mv = memoryview(buf)
                got = len(rest)
                while got < len(buf):
                    k = readinto(mv[got:])
                    if not k:
                        break
                    got += k
                if got == len(rest):  # end of input
                    break
                cut = buf.rfind(b"\n", len(rest), got)
                if cut < 0:
                    pending.append(mv[:got].toreadonly())
                    rest = b""
                    continue
                block = mv[: cut + 1].toreadonly()
                rest = bytes(mv[cut + 1 : got])
            else:
                chunk = self._read(size)
                if not chunk:
                    break
                rest = rest + chunk if rest else chunk
                if len(rest) < size:
                    continue
                cut = rest.rfind(b"\n")
                if cut < 0:
                    pending.append(rest)
                    rest = b""
                    continue
                block, rest = rest[: cut + 1], rest[cut + 1 :]
            if pending:
                block = b"".join([*pending, block])
                pending = []
            yield block
        if pending or rest:
            tail = b"".join([*pending, rest]) if pending else rest
            yield tail if tail.endswith(b"\n") else tail + b"\n"

    def close(self) -> None:
        if self._close:
            self._raw.close()

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _peek(fh: IO[bytes], n: int) -> bytes:
    if hasattr(fh, "peek"):
        try:
            return fh.peek(n)[:n]
        except (OSError, ValueError):
            pass
    if fh.seekable():
        pos = fh.tell()
        b = fh.read(n)
        fh.seek(pos)
        return b
    raise TypeError("the file object must be seekable or support peek(); wrap it in io.BufferedReader")


# --------------------------------------------------------------------------------------------- JSON

try:  # orjson is several times faster than json; fall back when it is absent.
    import orjson as _orjson

    _loads = _orjson.loads
    _JSONError: tuple = (_orjson.JSONDecodeError, ValueError)
except ImportError:  # pragma: no cover
    import json as _json

    _loads = _json.loads
    _JSONError = (ValueError,)


def loads_line(line: bytes, stats: ReadStats) -> dict | None:
    """Parse one JSON line into a dict; None when it is blank (not counted) or bad (counted in ``stats``).

    Invalid UTF-8 is replaced by U+FFFD and counted in ``stats.repaired['undecodable_bytes']``.
    """
    try:
        obj = _loads(line)
    except _JSONError:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            text = line.decode("utf-8", "replace")
            try:
                obj = _loads(text)
            except _JSONError:
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


# --------------------------------------------------------------------------------------------- values

_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


def to_bool(v: Any) -> bool | None:
    """``True``/``"true"``/``"T"``/1 -> True, the negatives -> False, anything else -> None."""
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return bool(v)
    s = str(v).strip().lower()
    return True if s in _TRUE else False if s in _FALSE else None


def to_int(v: Any) -> int | None:
    """Integer from int/float/str (``"443"``, ``"0x1bb"``); ``-``, empty, out of int64 range -> None."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if -(1 << 63) <= v < (1 << 63) else None
    if isinstance(v, float):
        return int(v) if v == v and abs(v) < 9.2e18 else None
    s = str(v).strip()
    try:
        r = int(s, 0) if s[:2].lower() == "0x" else int(s)
    except ValueError:
        return None
    return r if -(1 << 63) <= r < (1 << 63) else None


def to_str(v: Any) -> str | None:
    """String form; None, empty and ``-`` (the usual "no value" markers) -> None."""
    if v is None:
        return None
    if not isinstance(v, str):
        if isinstance(v, (list, dict)):
            return None
        v = str(v)
    return None if v == "" or v == "-" else v


# --------------------------------------------------------------------------------------------- time

_FRACTION = re.compile(r"(\.\d{6})\d+")


_INF = float("inf")
_US_MIN, _US_MAX = -(1 << 63) + 1, (1 << 63) - 1


def _parse_one(v: Any) -> int | None:
    """One timestamp -> UTC microseconds since the epoch, or None. Numbers: seconds, ms or us by magnitude
    (< 1e11 seconds, < 1e14 ms, else us). Strings: ISO 8601 (``T`` or space, ``Z`` or offset, any fraction);
    a string without a zone is UTC (Sysmon ``UtcTime``)."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        if v != v or v in (_INF, -_INF):
            return None
        a = abs(v)
        us = int(round(v * 1e6 if a < 1e11 else v * 1e3 if a < 1e14 else v))
        return us if _US_MIN <= us <= _US_MAX else None  # beyond int64 microseconds: not a time
    s = str(v).strip()
    if not s:
        return None
    try:
        return _parse_one(float(s)) if s[0].isdigit() and s.replace(".", "", 1).isdigit() else _iso(s)
    except (ValueError, OverflowError):
        return None


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _iso(s: str) -> int:
    s = _FRACTION.sub(r"\1", s)
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    d = datetime.fromisoformat(s)
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    delta = d - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


_TS = pa.timestamp("us", tz="UTC")


def parse_timestamps(values: list) -> tuple[pa.Array, np.ndarray]:
    """Parse a list of raw timestamps into a ``timestamp[us, UTC]`` array and a validity mask.

    Fast path: an all-string list is cast by Arrow in one call (ISO with zone, then zone-less as UTC); an
    all-number list is scaled by magnitude in numpy. Anything else, or a failed cast, goes value by value
    (:func:`_parse_one`). Invalid values are null in the array and False in the mask. O(n).
    """
    n = len(values)
    if n == 0:
        return pa.array([], _TS), np.zeros(0, bool)
    arr = None
    try:
        raw = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # mixed types; integers beyond int64
        raw = None
    if raw is not None and raw.null_count == 0:
        if pa.types.is_string(raw.type):
            for t in (pa.timestamp("ns", tz="UTC"), pa.timestamp("ns")):
                try:
                    arr = pc.divide(raw.cast(t).cast(pa.int64()), 1000)  # ns -> us
                    break
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    arr = None
        elif pa.types.is_integer(raw.type) or pa.types.is_floating(raw.type):
            x = raw.to_numpy().astype(np.float64)
            a = np.abs(x)
            us = np.where(a < 1e11, x * 1e6, np.where(a < 1e14, x * 1e3, x))
            if np.all(np.isfinite(us)) and np.all(np.abs(us) < 9.2e18):  # else value by value (-> invalid)
                arr = pa.array(np.round(us).astype(np.int64))
    if arr is not None:
        return arr.cast(pa.int64()).cast(_TS), np.ones(n, bool)
    parsed = [_parse_one(v) for v in values]
    mask = np.fromiter((p is not None for p in parsed), bool, n)
    return pa.array(parsed, pa.int64()).cast(_TS), mask


# --------------------------------------------------------------------------------------------- buffers

_FIELDS = [f for f in EVENT_SCHEMA]
_COLUMNS = [f.name for f in _FIELDS]


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
        ts_raw = self.cols["@timestamp"]
        ts, ok = parse_timestamps(ts_raw)
        arrays = [ts]
        for f in _FIELDS[1:]:
            arrays.append(_build(self.cols[f.name], f.type))
        t = pa.Table.from_arrays(arrays, names=_COLUMNS)
        missing_ts = np.fromiter((v is None or v == "" for v in ts_raw), bool, n)
        bad_ts = ~ok & ~missing_ts
        no_host = np.fromiter((not h for h in self.cols["host.id"]), bool, n) & ok
        if missing_ts.any():
            stats.skip("missing_timestamp", int(missing_ts.sum()))
        if bad_ts.any():
            stats.skip("bad_timestamp", int(bad_ts.sum()))
        if no_host.any():
            stats.skip("missing_host", int(no_host.sum()))
        keep = ok & ~no_host
        if not keep.all():
            t = t.filter(pa.array(keep))
        self.cols = {c: [] for c in _COLUMNS}
        t = _sort_by_time(conform_fast(t))
        stats.emitted += t.num_rows
        return t



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


def _build(values: list, typ: pa.DataType) -> pa.Array:
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


# --------------------------------------------------------------------------------------------- conform

#: A dotted quad without leading zeros: exactly the strings :func:`normalize_ip` returns unchanged as IPv4.
IPV4_CANONICAL = (r"^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
                  r"(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$")
_IP_COLUMNS = ("destination.ip", "source.ip")


def normalize_ip_array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """:func:`normalize_ip` over a string array: canonical IPv4 strings (most of them) are kept as they are
    in one compiled pass (:func:`raresketch._json.ipv4_canonical`, exactly the :data:`IPV4_CANONICAL`
    regex); only the other values are mapped, once per distinct value. O(n)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_dictionary(arr.type) and pa.types.is_string(arr.type.value_type):   # once per distinct value
        return decode_dictionary(pa.DictionaryArray.from_arrays(arr.indices, normalize_ip_array(arr.dictionary)))
    if not pa.types.is_string(arr.type):
        arr = arr.cast(pa.string())
    if arr.null_count == len(arr):
        return arr
    other = pc.invert(pc.fill_null(ipv4_canonical(arr), True))  # compiled IPV4_CANONICAL match
    n_other = pc.sum(other.cast(pa.int64())).as_py() or 0
    if not n_other:
        return arr
    mapped = _map_unique(arr.filter(other), normalize_ip)
    return pc.replace_with_mask(arr, other, mapped)


def _is_text(t: pa.DataType) -> bool:
    """string, large_string, or a dictionary of either."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def conform_fast(t: pa.Table) -> pa.Table:
    """:func:`raresketch.events.conform`, same output, with the IP columns normalised column-wise
    (:func:`normalize_ip_array`) instead of one Python call per distinct address. Used when the timestamp
    column is already typed; otherwise it is ``conform`` itself."""
    names = t.column_names
    if "@timestamp" not in names or "host.id" not in names or not pa.types.is_timestamp(t.column("@timestamp").type):
        return conform(t)
    ips = [c for c in _IP_COLUMNS if c in names and _is_text(t.column(c).type)]
    if not ips:
        return conform(t)
    keep = pc.and_(pc.is_valid(t.column("@timestamp")), pc.is_valid(t.column("host.id")))
    if not pc.all(keep).as_py():
        t = t.filter(keep)
    fixed = {c: normalize_ip_array(t.column(c)) for c in ips}
    out = conform(t.drop_columns(ips))
    for c, arr in fixed.items():
        i = EVENT_SCHEMA.get_field_index(c)
        out = out.set_column(i, EVENT_SCHEMA.field(c), arr)
    return out


_MISSING, _BAD = 1, 2


def parse_timestamp_array(raw: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Column-wise :func:`parse_timestamps`: ``(timestamp[us, UTC] array, state)`` where state is 0 (parsed),
    1 (missing: null or empty string) or 2 (present but unparsable). Strings are cast by Arrow (ISO with zone,
    then zone-less as UTC) with the missing ones masked out; numbers are scaled by magnitude; when the cast
    fails the values go one by one through :func:`_parse_one`. O(n) Arrow work in the usual case."""
    if isinstance(raw, pa.ChunkedArray):
        raw = raw.combine_chunks()
    n = len(raw)
    if pa.types.is_large_string(raw.type):
        raw = raw.cast(pa.string())
    if pa.types.is_string(raw.type):
        missing = pc.fill_null(pc.equal(raw, ""), True)
        vals = pc.if_else(missing, pa.scalar(None, pa.string()), raw)
        arr = None
        for t in (pa.timestamp("ns", tz="UTC"), pa.timestamp("ns")):
            try:
                arr = pc.divide(vals.cast(t).cast(pa.int64()), 1000).cast(_TS)  # ns -> us
                break
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                arr = None
        miss = missing.to_numpy(zero_copy_only=False)
        if arr is not None:
            return arr, np.where(miss, _MISSING, 0).astype(np.int8)
        values = vals.to_pylist()
    else:
        values = raw.to_pylist()
        miss = np.fromiter((v is None or v == "" for v in values), bool, n)
    parsed = [_parse_one(v) for v in values]
    ok = np.fromiter((p is not None for p in parsed), bool, n)
    state = np.where(ok, 0, np.where(miss, _MISSING, _BAD)).astype(np.int8)
    return pa.array(parsed, pa.int64()).cast(_TS), state
