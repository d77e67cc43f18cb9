"""CSV, Parquet and Arrow (IPC files/streams, in-memory tables) with the ECS column names of EVENT_SCHEMA.

Columns are matched by name; missing nullable columns become null, extra columns are dropped. A column name
given twice is one clear error; an extra column whose name is close to a missing EVENT_SCHEMA one
(``host_id``, ``destinaton.ip``) gives one warning naming the likely intended column. Numeric ``@timestamp``
columns are epochs in seconds, ms, us or ns, decided per value by magnitude (< 1e11 s, < 1e14 ms, < 1e17 us,
else ns). Rows with a
null or unparsable ``@timestamp`` or a null ``host.id`` are counted and skipped. All of it is column-wise (no per-row Python): IPs
are normalised with a vectorised IPv4 check, timestamps cast by Arrow. Input is streamed in
record batches of at most ``batch_size`` rows (CSV through ``pyarrow.csv.open_csv``).
"""
from __future__ import annotations

import io
import os
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from .._core import decode_dictionary
from ..events import EVENT_SCHEMA, REQUIRED_COLUMNS, conform
from ..events._conform import as_dict_text, is_text_dictionary
from ..events._schema import sort_by_time
from ..events._values import BAD, MISSING, parse_timestamps
from ._source import Source
from ._stats import ReadStats


def check_columns(names: list[str], stats: ReadStats) -> None:
    """Refuse a column name given twice (ValueError); warn once (``stats.warnings``) for each extra column
    whose name looks like a misspelt missing EVENT_SCHEMA column. O(columns x schema)."""
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ValueError(f"column {n!r} appears {names.count(n)} times in the input; keep one (rename or "
                             "drop the others)")
        seen.add(n)
    warn_misspelt(names, EVENT_SCHEMA.names, stats, "column", "an input column name")


def warn_misspelt(names: list[str], wanted: list[str], stats: ReadStats, what: str, role: str) -> None:
    """Warn once (``stats.warnings``) for each of ``names`` that is not in ``wanted`` but looks like a misspelt
    one of those absent from ``names`` (``_`` read as ``.``, else difflib ratio >= 0.85). O(names x wanted)."""
    import difflib

    present = set(names)
    absent = [c for c in wanted if c not in present]
    for n in names:
        if n in wanted:
            continue
        canon = n.strip().lower().replace("_", ".")
        guess = canon if canon in absent else next(iter(difflib.get_close_matches(canon, absent, 1, 0.85)), None)
        if guess is not None:
            w = f"{what} {n!r} is not {role}; did you mean {guess!r}? (it is ignored)"
            if w not in stats.warnings:
                stats.warnings.append(w)


def finish_table(t: pa.Table, stats: ReadStats, dictionary: bool = False) -> pa.Table:
    """Count/drop rows lacking a valid timestamp or host, conform to EVENT_SCHEMA (with ``dictionary``: text
    columns that are dictionary-encoded stay so, see :func:`~raresketch.events.conform`), sort by time."""
    check_columns(t.column_names, stats)
    missing = [c for c in REQUIRED_COLUMNS if c not in t.column_names]
    if missing:
        hints = [w for w in stats.warnings if "did you mean" in w and any(f"'{m}'" in w for m in missing)]
        raise ValueError(f"input lacks required column(s) {missing}; columns are {t.column_names}"
                         + "".join(f"; {h}" for h in hints))
    stats.read += t.num_rows
    ts = t.column("@timestamp")
    if not pa.types.is_timestamp(ts.type):
        arr, state = parse_timestamps(ts)  # column-wise; per value only when Arrow cannot cast
        if (state == MISSING).any():
            stats.skip("missing_timestamp", int((state == MISSING).sum()))
        if (state == BAD).any():
            stats.skip("bad_timestamp", int((state == BAD).sum()))
        t = t.set_column(t.column_names.index("@timestamp"), "@timestamp", arr)
    else:
        n = ts.null_count
        if n:
            stats.skip("missing_timestamp", n)
    host = t.column("host.id")
    if dictionary and is_text_dictionary(host.type):
        host = as_dict_text(host)
        t = t.set_column(t.column_names.index("host.id"), "host.id", host)
    elif not pa.types.is_string(host.type):
        host = decode_dictionary(host) if pa.types.is_dictionary(host.type) else host.cast(pa.string())
        t = t.set_column(t.column_names.index("host.id"), "host.id", host)
    bad_host = pc.and_(pc.is_valid(t.column("@timestamp")),
                       pc.or_kleene(pc.is_null(host), pc.equal(host, "")))
    nb = pc.sum(bad_host.cast(pa.int64())).as_py() or 0
    if nb:
        stats.skip("missing_host", nb)
        t = t.filter(pc.invert(bad_host))
    # conform in full: an input that carries the conformed mark is still checked and normalised here
    out = sort_by_time(conform(t.replace_schema_metadata(None), dictionary=dictionary))
    stats.emitted += out.num_rows
    return out


def iter_arrow(obj: Any, batch_size: int, stats: ReadStats) -> Iterator[pa.Table]:
    """Batches from an in-memory Table / RecordBatch / RecordBatchReader / iterable of those."""
    if isinstance(obj, pa.RecordBatch):
        obj = pa.Table.from_batches([obj])
    if isinstance(obj, pa.Table):
        for b in obj.to_batches(max_chunksize=batch_size):
            yield finish_table(pa.Table.from_batches([b]), stats)
        return
    if isinstance(obj, pa.RecordBatchReader):
        for b in obj:
            for off in range(0, b.num_rows, batch_size):
                yield finish_table(pa.Table.from_batches([b.slice(off, batch_size)]), stats)
        return
    raise TypeError(f"not an Arrow table/batch/reader: {type(obj).__name__}")


def _wanted(names: list[str], columns) -> list[str] | None:
    """The input columns to read: those of ``columns`` (EVENT_SCHEMA names; the required ones always) that the
    input has, or None (all) when ``columns`` is None."""
    if columns is None:
        return None
    keep = set(columns) | set(REQUIRED_COLUMNS)
    return [n for n in names if n in keep]


def read_parquet(path_or_file: Any, batch_size: int, stats: ReadStats, columns=None,
                 dictionary: bool = False) -> Iterator[pa.Table]:
    """Parquet row groups as batches. ``columns``: read only these EVENT_SCHEMA columns (and the required ones;
    the others come out null) — Parquet is columnar, so the others are never decoded. ``dictionary``: text
    columns stay dictionary-encoded, as Parquet stores them."""
    import pyarrow.parquet as pq

    # Text columns are read dictionary-encoded (as Parquet stores them: ~5x cheaper to decode) and, unless
    # ``dictionary``, expanded by conform with decode_dictionary; the IP columns are normalised once per distinct
    # value on the way.
    pf = pq.ParquetFile(path_or_file)
    check_columns(pf.schema_arrow.names, stats)
    cols = _wanted(pf.schema_arrow.names, columns)
    text = [f.name for f in pf.schema_arrow if f.name in EVENT_SCHEMA.names and pa.types.is_string(f.type)
            and (cols is None or f.name in cols)]
    if text and (isinstance(path_or_file, (str, os.PathLike)) or hasattr(path_or_file, "seek")):
        if hasattr(path_or_file, "seek"):
            path_or_file.seek(0)
        pf = pq.ParquetFile(path_or_file, read_dictionary=text)
    for b in pf.iter_batches(batch_size=batch_size, columns=cols):
        yield finish_table(pa.Table.from_batches([b]), stats, dictionary)


def read_arrow_ipc(path_or_file: Any, batch_size: int, stats: ReadStats, columns=None,
                   dictionary: bool = False) -> Iterator[pa.Table]:
    """Arrow IPC files (Feather v2) and streams. ``columns`` and ``dictionary`` as for :func:`read_parquet`
    (a column the file stores dictionary-encoded stays so with ``dictionary``)."""
    import pyarrow.ipc as ipc

    src = pa.memory_map(path_or_file) if isinstance(path_or_file, str) else path_or_file
    try:
        reader = ipc.open_file(src)
        batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
    except pa.ArrowInvalid:
        if hasattr(src, "seek"):
            src.seek(0)
        batches = ipc.open_stream(src)
    for b in batches:
        cols = _wanted(b.schema.names, columns)
        if cols is not None and len(set(b.schema.names)) == len(b.schema.names):
            b = b.select(cols)
        for off in range(0, b.num_rows, batch_size):
            yield finish_table(pa.Table.from_batches([b.slice(off, batch_size)]), stats, dictionary)


def read_csv(src: Source, batch_size: int, stats: ReadStats) -> Iterator[pa.Table]:
    """CSV with a header row of ECS column names; every column is read as text, then cast by conform.

    Streamed: the file is parsed block by block (memory: a few blocks of about ``batch_size`` x 256 bytes), and
    a line longer than the source's ``max_line`` is dropped and counted ``line_too_long`` as in the other
    text formats."""
    import pyarrow.csv as pcsv

    header = src.head.split(b"\n", 1)[0].decode("utf-8", "replace").strip("\r")
    names = next(iter(__import__("csv").reader([header])), [])
    opts = pcsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=True,
                               null_values=["", "-", "null", "NULL"])
    ropts = pcsv.ReadOptions(block_size=max(1 << 20, batch_size * 256))
    reader = pcsv.open_csv(io.BufferedReader(_BlockReader(src.blocks())), read_options=ropts, convert_options=opts,
                           parse_options=pcsv.ParseOptions(invalid_row_handler=_bad_row(stats)))
    for b in reader:
        for off in range(0, b.num_rows, batch_size):
            yield finish_table(pa.Table.from_batches([b.slice(off, batch_size)]), stats)


class _BlockReader(io.RawIOBase):
    """A read-only binary stream over an iterator of byte blocks (``Source.blocks``), for parsers that pull."""

    def __init__(self, blocks: Iterator[Any]):
        self._it, self._buf = iter(blocks), memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not len(self._buf):
            nxt = next(self._it, None)
            if nxt is None:
                return 0
            self._buf = memoryview(nxt).cast("B")
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def _bad_row(stats: ReadStats):
    def handler(row) -> str:
        stats.read += 1
        stats.skip("bad_record")
        return "skip"
    return handler
