"""The event model: one columnar (Arrow) schema for a batch of endpoint network events.

Column names are ECS field names written flat with dots (``process.name``), so a batch converts to and from
ECS JSON without renaming. Every column but ``@timestamp`` and ``host.id`` may be null: the detectors treat a
null as *unknown*, never as a negative signal (no signer is "signature unknown", not "unsigned").

Helpers here are pure Python + pyarrow (no compiled core):

- :func:`empty_batch` -- a zero-row table with :data:`EVENT_SCHEMA`.
- :func:`conform` -- any table with (a subset of) the ECS column names -> a table with exactly
  :data:`EVENT_SCHEMA`, in schema order, with normalised domains and IP strings.
- :func:`normalize_domain`, :func:`normalize_ip` -- the scalar forms of those normalisations.

The readers (``raresketch.read_events``) live in :mod:`raresketch._readers`.
"""
from __future__ import annotations

import ipaddress
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "EVENT_SCHEMA",
    "REQUIRED_COLUMNS",
    "DOMAIN_SOURCES",
    "empty_batch",
    "conform",
    "is_conformed",
    "mark_conformed",
    "normalize_domain",
    "normalize_ip",
    "basename",
]

#: Where ``destination.domain`` came from, written to ``raresketch.domain_source``:
#: ``event`` the event's own domain field; ``dns`` the same host's DNS answer for that IP shortly before;
#: ``command_line`` the one URL in the process command line (inferred); null when there is no domain.
DOMAIN_SOURCES = ("event", "dns", "command_line")

EVENT_SCHEMA = pa.schema(
    [
        pa.field("@timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("host.id", pa.string(), nullable=False),
        pa.field("host.name", pa.string()),
        pa.field("host.os.type", pa.string()),  # windows | linux | macos
        pa.field("process.executable", pa.string()),
        pa.field("process.name", pa.string()),
        pa.field("process.pid", pa.int64()),
        pa.field("process.hash.sha256", pa.string()),
        pa.field("process.code_signature.subject_name", pa.string()),
        pa.field("process.code_signature.trusted", pa.bool_()),
        pa.field("process.code_signature.exists", pa.bool_()),
        pa.field("process.pe.original_file_name", pa.string()),
        pa.field("process.command_line", pa.string()),
        pa.field("process.parent.executable", pa.string()),
        pa.field("process.parent.name", pa.string()),
        pa.field("user.name", pa.string()),
        pa.field("destination.ip", pa.string()),
        pa.field("destination.port", pa.int32()),
        pa.field("destination.domain", pa.string()),
        pa.field("network.transport", pa.string()),
        pa.field("raresketch.domain_source", pa.string()),
        # Added by the readers (issue 3); nullable, after the original columns.
        pa.field("network.direction", pa.string()),  # ECS host view: egress | ingress; null = unknown
        pa.field("process.entity_id", pa.string()),  # Sysmon ProcessGuid, unique per process start
        pa.field("source.ip", pa.string()),
        pa.field("source.port", pa.int32()),
    ]
)

REQUIRED_COLUMNS = ("@timestamp", "host.id")


def empty_batch() -> pa.Table:
    """A table with zero rows and exactly :data:`EVENT_SCHEMA`."""
    return EVENT_SCHEMA.empty_table()


def basename(path: str | None) -> str | None:
    """Last component of a Windows or POSIX path (``C:\\x\\A.exe`` -> ``A.exe``); None stays None."""
    if not path:
        return None
    cut = max(path.rfind("\\"), path.rfind("/"))
    return path[cut + 1 :] or None


def normalize_domain(name: str | None) -> str | None:
    """Lower-case, strip spaces and trailing dots; empty and ``-`` become None. O(len(name)).

    Punycode (``xn--...``) is kept as is; a Unicode name is IDNA-encoded to its punycode form when it can be,
    so both spellings give one key.
    """
    if name is None:
        return None
    s = name.strip().rstrip(".").lower()
    if not s or s == "-":
        return None
    if not s.isascii():
        try:
            s = s.encode("idna").decode("ascii")
        except UnicodeError:
            pass
    return s


def normalize_ip(ip: str | None) -> str | None:
    """Canonical text form of an IP (``::ffff:1.2.3.4`` -> ``1.2.3.4``, IPv6 compressed, zone and brackets
    dropped); a string that is not an IP becomes None; empty and ``-`` become None."""
    if ip is None:
        return None
    s = ip.strip()
    if not s or s == "-":
        return None
    if s.startswith("[") and s.endswith("]"):
        s = s[1:-1]
    s = s.split("%", 1)[0]
    try:
        a = ipaddress.ip_address(s)
    except ValueError:
        return None
    if a.version == 6 and a.ipv4_mapped is not None:
        a = a.ipv4_mapped
    return str(a)


def _map_unique(arr: pa.ChunkedArray | pa.Array, fn) -> pa.Array:
    """Apply a scalar str->str|None function once per distinct value of a string array (dictionary-encode,
    map the dictionary, take). Cost O(n) Arrow work + O(distinct) Python calls."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if len(arr) == 0:
        return pa.array([], pa.string())
    enc = pc.dictionary_encode(arr)
    mapped = pa.array([fn(v) for v in enc.dictionary.to_pylist()], pa.string())
    return mapped.take(enc.indices)


# ------------------------------------------------------------------------ vectorised normalisations
# Each works on a whole Arrow string array (usually the dictionary of a column: its distinct values): the values
# already in canonical form are recognised by one RE2 pass and kept as they are, the few others go through the
# scalar function. Outputs equal the scalar functions' value for value (tests/test_fast_paths.py).

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: A dotted quad without leading zeros or spaces: exactly the strings :func:`normalize_ip` returns unchanged.
IPV4_CANONICAL = rf"^{_OCTET}(?:\.{_OCTET}){{3}}$"
#: ``::ffff:`` + a canonical dotted quad: :func:`normalize_ip` returns the dotted quad.
_IPV4_MAPPED = rf"^::ffff:{_OCTET}(?:\.{_OCTET}){{3}}$"
#: Strings :func:`normalize_domain` may change: ASCII capitals, non-ASCII, a leading (ASCII) space, a trailing
#: space or dot, empty or ``-``. The other strings are returned unchanged by it. (Python's ``str.strip``
#: strips \t..\r, \x1c..\x1f and space among ASCII characters.)
_DOMAIN_NONCANONICAL = r"[A-Z]|[^\x00-\x7f]|^[\t-\r\x1c-\x1f ]|[\t-\r\x1c-\x1f .]$|^-?$"
#: Strings that may be an address to :func:`normalize_ip`: a ``:`` anywhere, or no ASCII letter, ``-`` or
#: ``_`` before the first ``%``. Every other string (every host name) is certainly not one.
_MAYBE_IP = r":|^[^%A-Za-z_\-]*(?:%|$)"


def _as_string_array(arr) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not pa.types.is_string(arr.type):
        arr = arr.cast(pa.string())
    return arr


def _mask(a: pa.Array, default: bool) -> np.ndarray:
    return a.fill_null(default).to_numpy(zero_copy_only=False)


def _replace_rows(arr: pa.Array, rows: np.ndarray, fn) -> pa.Array:
    """``arr`` with the values at ``rows`` (a bool mask) replaced by ``fn(value)`` (one Python call each)."""
    idx = np.flatnonzero(rows)
    if idx.size == 0:
        return arr
    vals = pa.array([fn(v) for v in arr.take(pa.array(idx)).to_pylist()], pa.string())
    return pc.replace_with_mask(arr, pa.array(rows), vals)


def ipv4_words(arr: pa.Array) -> np.ndarray:
    """Canonical dotted quads (every value must match :data:`IPV4_CANONICAL`) -> uint32 numbers. O(n) Arrow."""
    if len(arr) == 0:
        return np.zeros(0, np.uint32)
    parts = pc.list_flatten(pc.split_pattern(arr, ".")).cast(pa.uint32()).to_numpy(zero_copy_only=False)
    parts = parts.reshape(-1, 4)
    return (parts[:, 0] << 24) | (parts[:, 1] << 16) | (parts[:, 2] << 8) | parts[:, 3]


def normalize_ip_values(arr) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """:func:`normalize_ip` over a string array, vectorised: ``(normalised strings, is_v4, v4)``.

    ``is_v4`` marks the results that are IPv4 found by the vectorised path (canonical dotted quads and
    ``::ffff:a.b.c.d``) and ``v4`` holds their uint32 value (0 elsewhere); any other non-null value goes through
    :func:`normalize_ip` itself (IPv6, odd spellings: rare), with ``is_v4`` False even if the result is IPv4.
    O(n) Arrow work + one Python call per odd value. Meant for distinct values (a dictionary).
    """
    arr = _as_string_array(arr)
    n = len(arr)
    if n == 0 or arr.null_count == n:
        return arr, np.zeros(n, bool), np.zeros(n, np.uint32)
    canon = _mask(pc.match_substring_regex(arr, IPV4_CANONICAL), False)
    out = arr
    is_v4 = canon
    if not canon.all():
        valid = _mask(pc.is_valid(arr), False)
        mapped = _mask(pc.match_substring_regex(arr, _IPV4_MAPPED), False)
        odd = valid & ~canon & ~mapped
        if mapped.any():
            out = pc.if_else(pa.array(mapped), pc.utf8_slice_codeunits(arr, 7), arr)
            is_v4 = canon | mapped
        out = _replace_rows(out, odd, normalize_ip)
    v4 = np.zeros(n, np.uint32)
    if is_v4.all():
        v4 = ipv4_words(out)
    elif is_v4.any():
        v4[is_v4] = ipv4_words(out.filter(pa.array(is_v4)))
    return out, is_v4, v4


# A few recent (column -> dictionary encoding) pairs, so that the catalogue does not hash again a column that
# conform just encoded (the Engine hands conform's columns to Catalog.resolve_batch when the batch is already in
# time order). Entries hold the column itself, so its buffers cannot be freed and their addresses reused while
# cached: a hit is the same immutable memory.
_ENCODINGS: list[tuple[tuple, pa.Array, pa.DictionaryArray]] = []
_ENCODINGS_MAX = 8


def _array_id(arr: pa.Array) -> tuple:
    return (arr.type, len(arr), arr.offset, arr.null_count,
            tuple(b.address if b is not None else 0 for b in arr.buffers()))


def dictionary_encode(arr) -> pa.DictionaryArray:
    """``pyarrow.compute.dictionary_encode`` of a string array, reusing the encoding of a column encoded just
    before (by :func:`conform`); O(n) hashing otherwise."""
    arr = _as_string_array(arr)
    key = _array_id(arr)
    for k, a, enc in _ENCODINGS:
        if k == key:
            return enc
    enc = pc.dictionary_encode(arr)
    _remember_encoding(arr, enc, key)
    return enc


def _remember_encoding(arr: pa.Array, enc: pa.DictionaryArray, key: tuple | None = None) -> None:
    _ENCODINGS.append((key or _array_id(arr), arr, enc))
    del _ENCODINGS[:-_ENCODINGS_MAX]


def normalize_ip_array(arr) -> pa.Array:
    """:func:`normalize_ip` over a string array (same values). When every value is already canonical IPv4 (or
    null) the input comes back as it is; otherwise the work is done once per distinct value. O(n) Arrow."""
    arr = _as_string_array(arr)
    if arr.null_count == len(arr):
        return arr
    enc = dictionary_encode(arr)
    d = enc.dictionary
    if _mask(pc.match_substring_regex(d, IPV4_CANONICAL), False).all():
        return arr
    return _decode(normalize_ip_values(d)[0], enc.indices)


def _decode(values: pa.Array, indices: pa.Array) -> pa.Array:
    """``values.take(indices)``, remembering its encoding for :func:`dictionary_encode` (only when the mapped
    values are still distinct, as a dictionary must be)."""
    out = values.take(indices)
    if values.null_count == 0 and pc.count_distinct(values).as_py() == len(values):
        _remember_encoding(out, pa.DictionaryArray.from_arrays(indices, values))
    return out


def normalize_domain_values(arr) -> pa.Array:
    """:func:`normalize_domain` over a string array (same values): canonical names kept by one regex pass,
    the others mapped one by one."""
    arr = _as_string_array(arr)
    if arr.null_count == len(arr):
        return arr
    odd = _mask(pc.match_substring_regex(arr, _DOMAIN_NONCANONICAL), False)
    return _replace_rows(arr, odd, normalize_domain)


def normalize_domain_array(arr) -> pa.Array:
    """:func:`normalize_domain` over a string array, once per distinct value; the input comes back as it is
    when every value is already canonical."""
    arr = _as_string_array(arr)
    if arr.null_count == len(arr):
        return arr
    enc = dictionary_encode(arr)
    d = enc.dictionary
    if not _mask(pc.match_substring_regex(d, _DOMAIN_NONCANONICAL), False).any():
        return arr
    return _decode(normalize_domain_values(d), enc.indices)


def maybe_ip(arr: pa.Array) -> np.ndarray:
    """False where :func:`normalize_ip` certainly returns None (host names, nulls); True where it might not."""
    if len(arr) == 0:
        return np.zeros(0, bool)
    return _mask(pc.match_substring_regex(arr, _MAYBE_IP), False)


def basename_values(arr) -> pa.Array:
    """:func:`basename` over a string array (same values), vectorised."""
    arr = _as_string_array(arr)
    if arr.null_count == len(arr):
        return arr
    b = pc.replace_substring_regex(arr, r"(?s)^.*[\\/]", "")
    return pc.if_else(pc.equal(b, ""), pa.scalar(None, pa.string()), b)


def _cast_column(col: pa.ChunkedArray, field: pa.Field) -> pa.ChunkedArray | pa.Array:
    t = field.type
    if col.type == t:
        return col
    if pa.types.is_timestamp(t):
        from ._readers._common import parse_timestamps  # local: avoid an import cycle

        return parse_timestamps(col.to_pylist())[0]
    if pa.types.is_dictionary(col.type):
        v = col.type.value_type
        if pa.types.is_string(t) and (pa.types.is_string(v) or pa.types.is_large_string(v)):
            from ._core import decode_dictionary

            return decode_dictionary(col)
        col = col.cast(v)
    if pa.types.is_string(t) and not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
            return pa.array(
                [None if v is None else v.decode("utf-8", "replace") for v in col.to_pylist()], pa.string()
            )
        return col.cast(pa.string())
    if pa.types.is_boolean(t) and (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        from ._readers._common import to_bool

        return pa.array([to_bool(v) for v in col.to_pylist()], pa.bool_())
    if pa.types.is_integer(t) and (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        from ._readers._common import to_int

        return pa.array([to_int(v) for v in col.to_pylist()], t)
    return col.cast(t)


def conform(table: pa.Table) -> pa.Table:
    """Return ``table`` with exactly :data:`EVENT_SCHEMA`: columns in schema order, cast to the schema types,
    missing nullable columns added as nulls, unknown columns dropped.

    Also normalises ``destination.domain`` (:func:`normalize_domain`), ``destination.ip`` and ``source.ip``
    (:func:`normalize_ip`, once per distinct value), fills ``process.name`` from ``process.executable`` and
    ``process.parent.name`` from ``process.parent.executable`` where null, and sets
    ``raresketch.domain_source`` to ``event`` where a domain is present and no source was given (and to null
    where there is no domain).

    Raises ``ValueError`` when the ``@timestamp`` or ``host.id`` column is missing. Rows whose ``@timestamp``
    or ``host.id`` is null are dropped (the readers count them as skipped before calling this). Cost O(rows)
    in Arrow plus O(distinct values) Python calls for the normalisations.
    """
    if is_conformed(table):
        return table
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise ValueError(f"table lacks required column(s) {missing}; have {table.column_names}")
    n = table.num_rows
    cols = []
    for field in EVENT_SCHEMA:
        if field.name in table.column_names:
            cols.append(_cast_column(table.column(field.name), field))
        else:
            cols.append(pa.nulls(n, field.type))
    out = pa.Table.from_arrays(cols, schema=_nullable_schema())
    if n:
        if out.column("@timestamp").null_count or out.column("host.id").null_count:
            out = out.filter(pc.and_(pc.is_valid(out.column("@timestamp")), pc.is_valid(out.column("host.id"))))
        out = _normalise(out)
    return mark_conformed(out.cast(EVENT_SCHEMA))


_CONFORMED_MARK = {b"raresketch.conformed": b"1"}


def mark_conformed(table: pa.Table) -> pa.Table:
    """``table`` with schema metadata saying that it is :func:`conform`'s output, so that ``conform`` (and the
    Engine) pass it through in O(1). For producers whose tables are conformed by construction (readers, the
    simulator); a table marked by mistake is not re-normalised."""
    return table.replace_schema_metadata(_CONFORMED_MARK)


def is_conformed(table: pa.Table) -> bool:
    """True when ``table`` carries the conformed mark and has exactly :data:`EVENT_SCHEMA`. O(columns)."""
    md = table.schema.metadata
    return bool(md) and md.get(b"raresketch.conformed") == b"1" and table.schema.equals(EVENT_SCHEMA)


def _nullable_schema() -> pa.Schema:
    # A copy of EVENT_SCHEMA whose required fields accept nulls while we build (nulls are dropped upstream).
    return pa.schema([f.with_nullable(True) for f in EVENT_SCHEMA])


def _set(t: pa.Table, name: str, arr) -> pa.Table:
    return t.set_column(t.schema.get_field_index(name), t.schema.field(name), arr)


def _normalise(t: pa.Table) -> pa.Table:
    # Each column is dictionary-encoded once; a column whose distinct values are all canonical already (the
    # usual case, checked by one regex pass over the distinct values) is kept as it is, with no take.
    dom = t.column("destination.domain")
    if dom.null_count < len(dom):
        dom = normalize_domain_array(dom)
        t = _set(t, "destination.domain", dom)
        src = t.column("raresketch.domain_source")
        if dom.null_count or src.null_count:  # else: every row has both, unchanged by the rule below
            has = pc.is_valid(dom)
            if not pc.all(pc.equal(has, pc.is_valid(src))).as_py():  # else: also unchanged
                t = _set(t, "raresketch.domain_source",
                         pc.if_else(pc.and_(has, pc.is_null(src)), pa.scalar("event"), pc.if_else(has, src, None)))
    for c in ("destination.ip", "source.ip"):
        col = t.column(c)
        if col.null_count < len(col):
            t = _set(t, c, normalize_ip_array(col))
    for name_col, path_col in (("process.name", "process.executable"),
                               ("process.parent.name", "process.parent.executable")):
        names, paths = t.column(name_col), t.column(path_col)
        if names.null_count and paths.null_count < len(paths):
            enc = pc.dictionary_encode(_as_string_array(paths))
            t = _set(t, name_col, pc.coalesce(names, basename_values(enc.dictionary).take(enc.indices)))
    return t


def concat(tables: Iterable[pa.Table]) -> pa.Table:
    """Concatenate conformed batches (all with :data:`EVENT_SCHEMA`); empty input -> :func:`empty_batch`."""
    tables = list(tables)
    return pa.concat_tables(tables) if tables else empty_batch()


def _sort_by_time(t: pa.Table) -> pa.Table:
    """Stable sort by ``@timestamp`` (O(n log n)); a no-op when already sorted (O(n) check)."""
    if t.num_rows < 2:
        return t
    ts = t.column("@timestamp").combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    if np.all(ts[1:] >= ts[:-1]):
        return t
    return t.take(pa.array(np.argsort(ts, kind="stable")))
