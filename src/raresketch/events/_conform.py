"""conform: any table with (a subset of) the ECS column names -> a table with exactly EVENT_SCHEMA."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from .._core import decode_dictionary
from ._normalise import (as_string_array, basename_values, is_text, normalize_domain_array,
                         normalize_ip_array)
from ._schema import BUILD_SCHEMA, DICT_TEXT, EVENT_SCHEMA, REQUIRED_COLUMNS, is_conformed, mark_conformed
from ._values import parse_timestamps, to_bool, to_int

#: The address columns, normalised by :func:`normalize_ip_array`.
IP_COLUMNS = ("destination.ip", "source.ip")


def cast_column(col: pa.ChunkedArray | pa.Array, field: pa.Field) -> pa.ChunkedArray | pa.Array:
    """One column cast to ``field``'s type the way :func:`conform` casts it: timestamps parsed by
    :func:`parse_timestamps`, dictionaries of text decoded, binary decoded as UTF-8 (invalid bytes replaced),
    text booleans and integers parsed value by value (:func:`to_bool`, :func:`to_int`), the rest by Arrow."""
    t = field.type
    if col.type == t:
        return col
    if pa.types.is_timestamp(t):
        return parse_timestamps(col)[0]
    if pa.types.is_dictionary(col.type):
        v = col.type.value_type
        if pa.types.is_string(t) and (pa.types.is_string(v) or pa.types.is_large_string(v)):
            return decode_dictionary(col)
        col = col.cast(v)
    if pa.types.is_string(t) and not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
            return pa.array(
                [None if v is None else v.decode("utf-8", "replace") for v in col.to_pylist()], pa.string()
            )
        return col.cast(pa.string())
    if pa.types.is_boolean(t) and (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return pa.array([to_bool(v) for v in col.to_pylist()], pa.bool_())
    if pa.types.is_integer(t) and (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return pa.array([to_int(v) for v in col.to_pylist()], t)
    return col.cast(t)


def is_text_dictionary(t: pa.DataType) -> bool:
    """A dictionary of string or large_string values (any index type)."""
    return pa.types.is_dictionary(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type))


def _dict_nulls_in_indices(arr: pa.DictionaryArray) -> pa.DictionaryArray:
    """``arr`` with the rows that point at a null dictionary value made null rows (so that validity, null counts
    and Arrow's kernels, which read the indices, see them)."""
    d = arr.dictionary
    if not d.null_count:
        return arr
    ok = d.is_valid().to_numpy(zero_copy_only=False)
    idx = arr.indices
    bad = ~ok[idx.fill_null(0).to_numpy(zero_copy_only=False)] & idx.is_valid().to_numpy(zero_copy_only=False)
    if not bad.any():
        return arr
    return pa.DictionaryArray.from_arrays(pc.if_else(pa.array(bad), pa.scalar(None, idx.type), idx), d)


def as_dict_text(col: pa.ChunkedArray | pa.Array) -> pa.DictionaryArray:
    """A dictionary column of text as one :data:`DICT_TEXT` array (chunks' dictionaries unified, null values
    moved to the indices). O(n) for the indices plus O(distinct) for the values."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if col.type != DICT_TEXT:
        col = col.cast(DICT_TEXT)
    return _dict_nulls_in_indices(col)


def on_dictionary(arr: pa.DictionaryArray, fn) -> pa.DictionaryArray:
    """``fn`` (a string array -> a string array of the same length, value by value) applied to the dictionary
    only: O(distinct). The result's dictionary may hold a value twice (two spellings normalised alike)."""
    return _dict_nulls_in_indices(pa.DictionaryArray.from_arrays(arr.indices, fn(arr.dictionary)))


def conform(table: pa.Table, dictionary: bool = False) -> pa.Table:
    """Return ``table`` with exactly :data:`EVENT_SCHEMA`: columns in schema order, cast to the schema types
    (:func:`cast_column`), missing nullable columns added as nulls, unknown columns dropped.

    Also normalises ``destination.domain`` (:func:`normalize_domain`, once per distinct value),
    ``destination.ip`` and ``source.ip`` (:func:`normalize_ip`: canonical IPv4 kept by one compiled pass, the
    other values once per distinct value; a dictionary column on its dictionary), fills ``process.name`` from
    ``process.executable`` and ``process.parent.name`` from ``process.parent.executable`` where null, and sets
    ``raresketch.domain_source`` to ``event`` where a domain is present and no source was given (and to null
    where there is no domain).

    A table that carries the conformed mark (:func:`mark_conformed`) and has the schema comes back as it is,
    in O(columns). Raises ``ValueError`` when the ``@timestamp`` or ``host.id`` column is missing. Rows whose
    ``@timestamp`` or ``host.id`` is null are dropped (the readers count them as skipped before calling this).
    Cost O(rows) in Arrow plus O(distinct values) Python calls for the normalisations.

    With ``dictionary``, text columns that arrive dictionary-encoded (Parquet's and Arrow's dictionary arrays)
    stay so, as :data:`~raresketch.events._schema.DICT_TEXT` (the same values: normalised on the dictionary,
    O(distinct), and never expanded), so that the Engine hashes and resolves each distinct value once; a table
    conformed that way carries the mark too and passes ``conform(t, dictionary=True)`` in O(columns).
    """
    if is_conformed(table, dictionary):
        return table
    names = table.column_names
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise ValueError(f"table lacks required column(s) {missing}; have {names}")
    if table.num_rows and pa.types.is_timestamp(table.column("@timestamp").type):
        # Typed timestamps: drop the rows lacking a required value before any work on them.
        keep = pc.and_(pc.is_valid(table.column("@timestamp")), pc.is_valid(table.column("host.id")))
        if not pc.all(keep).as_py():
            table = table.filter(keep)
    n = table.num_rows
    cols = []
    for field in EVENT_SCHEMA:
        if field.name not in names:
            cols.append(pa.nulls(n, field.type))
            continue
        col = table.column(field.name)
        if dictionary and pa.types.is_string(field.type) and is_text_dictionary(col.type):
            col = as_dict_text(col)
            if field.name in IP_COLUMNS and n:
                col = on_dictionary(col, normalize_ip_array)
        elif field.name in IP_COLUMNS and n:
            col = normalize_ip_array(col if is_text(col.type) else cast_column(col, field))
        else:
            col = cast_column(col, field)
        cols.append(col)
    out = pa.Table.from_arrays(cols, schema=_with_types(BUILD_SCHEMA, cols))
    if n:
        if out.column("@timestamp").null_count or out.column("host.id").null_count:
            out = out.filter(pc.and_(pc.is_valid(out.column("@timestamp")), pc.is_valid(out.column("host.id"))))
        out = _normalise(out)
    return mark_conformed(out.cast(_with_types(EVENT_SCHEMA, out.columns)))


def _with_types(schema: pa.Schema, cols) -> pa.Schema:
    """``schema`` with the text fields whose column is a dictionary typed :data:`DICT_TEXT`."""
    if not any(c.type == DICT_TEXT for c in cols):
        return schema
    return pa.schema([f.with_type(DICT_TEXT) if c.type == DICT_TEXT else f for f, c in zip(schema, cols)],
                     metadata=schema.metadata)


def _set(t: pa.Table, name: str, arr) -> pa.Table:
    return t.set_column(t.schema.get_field_index(name), t.schema.field(name).with_type(arr.type), arr)


def _normalise(t: pa.Table) -> pa.Table:
    """The domain and process-name rules of :func:`conform` (the addresses are normalised as they are cast).
    Each column is dictionary-encoded once; a column whose distinct values are all canonical already (the
    usual case, checked by one regex pass over the distinct values) is kept as it is, with no take."""
    dom = t.column("destination.domain")
    if dom.null_count < len(dom):
        dom = on_dictionary(as_dict_text(dom), normalize_domain_array) if dom.type == DICT_TEXT else \
            normalize_domain_array(dom)
        t = _set(t, "destination.domain", dom)
        src = t.column("raresketch.domain_source")
        if dom.null_count or src.null_count:  # else: every row has both, unchanged by the rule below
            has = pc.is_valid(dom)
            if not pc.all(pc.equal(has, pc.is_valid(src))).as_py():  # else: also unchanged
                t = _set(t, "raresketch.domain_source",
                         pc.if_else(pc.and_(has, pc.is_null(src)), pa.scalar("event"), pc.if_else(has, src, None)))
    for name_col, path_col in (("process.name", "process.executable"),
                               ("process.parent.name", "process.parent.executable")):
        names, paths = t.column(name_col), t.column(path_col)
        if names.null_count and paths.null_count < len(paths):
            enc = pc.dictionary_encode(as_string_array(paths))
            t = _set(t, name_col, pc.coalesce(names, basename_values(enc.dictionary).take(enc.indices)))
    return t
