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


def _cast_column(col: pa.ChunkedArray, field: pa.Field) -> pa.ChunkedArray | pa.Array:
    t = field.type
    if col.type == t:
        return col
    if pa.types.is_timestamp(t):
        from ._readers._common import parse_timestamps  # local: avoid an import cycle

        return parse_timestamps(col.to_pylist())[0]
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
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
        keep = pc.and_(pc.is_valid(out.column("@timestamp")), pc.is_valid(out.column("host.id")))
        if not pc.all(keep).as_py():
            out = out.filter(keep)
        out = _normalise(out)
    return out.cast(EVENT_SCHEMA)


def _nullable_schema() -> pa.Schema:
    # A copy of EVENT_SCHEMA whose required fields accept nulls while we build (nulls are dropped upstream).
    return pa.schema([f.with_nullable(True) for f in EVENT_SCHEMA])


def _set(t: pa.Table, name: str, arr) -> pa.Table:
    return t.set_column(t.schema.get_field_index(name), t.schema.field(name), arr)


def _normalise(t: pa.Table) -> pa.Table:
    dom = t.column("destination.domain")
    if dom.null_count < len(dom):
        t = _set(t, "destination.domain", _map_unique(dom, normalize_domain))
        src = t.column("raresketch.domain_source")
        has = pc.is_valid(t.column("destination.domain"))
        t = _set(t, "raresketch.domain_source",
                 pc.if_else(pc.and_(has, pc.is_null(src)), pa.scalar("event"), pc.if_else(has, src, None)))
    for c in ("destination.ip", "source.ip"):
        col = t.column(c)
        if col.null_count < len(col):
            t = _set(t, c, _map_unique(col, normalize_ip))
    for name_col, path_col in (("process.name", "process.executable"),
                               ("process.parent.name", "process.parent.executable")):
        names, paths = t.column(name_col), t.column(path_col)
        if names.null_count and paths.null_count < len(paths):
            t = _set(t, name_col, pc.coalesce(names, _map_unique(paths, basename)))
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
