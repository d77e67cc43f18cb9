"""Readers: raw endpoint network events in many formats -> batches with :data:`raresketch.EVENT_SCHEMA`.

Entry point :func:`read_events`. Formats:

========== =====================================================================================
``ecs``     Elastic/ECS JSON lines, nested or dotted keys (Elastic Endpoint, Beats)
``sysmon``  Sysmon JSON lines (flat NXLog/OTRF, Winlogbeat 6/7+, Azure WindowsEvent) or ``.evtx``
``evtx``    a Windows ``.evtx`` file (Sysmon channel), through the ``evtx`` package
``sysmon_xml`` Sysmon as Windows event XML, one ``<Event>`` per record (Splunk XmlWinEventLog, wevtutil, WEF)
``zeek``    Zeek conn.log (TSV or JSON, or a combined JSON stream, or a directory) + dns/ssl/http
``ocsf``    OCSF Network Activity (class 4001) JSON lines
``csv``     CSV with ECS column names (header row)
``parquet`` Parquet with ECS column names
``arrow``   Arrow IPC file/stream, or an in-memory ``pyarrow.Table`` / ``RecordBatch`` / reader
========== =====================================================================================

Any JSON-lines input may be gzip-compressed (detected by magic bytes, not by name).
"""
from __future__ import annotations

import os
import re
from typing import Any, Iterator

import pyarrow as pa

from ._rows import JSON_ERRORS, loads
from ._dns import DnsJoin
from ._source import Source
from ._stats import SKIP_REASONS, ReadStats
from ._ecs import read_ecs
from ._ocsf import read_ocsf
from ._sysmon import read_evtx, read_sysmon
from ._sysmon_xml import read_sysmon_xml
from ._tabular import iter_arrow, read_arrow_ipc, read_csv, read_parquet
from ._zeek import read_zeek, read_zeek_dir

__all__ = ["read_events", "ReadStats", "detect_format", "FORMATS", "SKIP_REASONS"]

FORMATS = ("auto", "ecs", "sysmon", "evtx", "sysmon_xml", "zeek", "ocsf", "csv", "parquet", "arrow")

_EXT = {".evtx": "evtx", ".parquet": "parquet", ".pq": "parquet", ".arrow": "arrow", ".feather": "arrow",
        ".ipc": "arrow", ".arrows": "arrow", ".csv": "csv", ".xml": "sysmon_xml"}
_READABLE_IN_DIR = (".json", ".jsonl", ".ndjson", ".log", ".evtx", ".csv", ".parquet", ".arrow", ".xml")


def classify_record(d: dict) -> str:
    """Guess the format of one decoded JSON record: ``zeek``, ``ocsf``, ``sysmon`` or ``ecs``."""
    if "_path" in d or "@stream" in d or ("uid" in d and ("id.orig_h" in d or "id_orig_h" in d or isinstance(d.get("id"), dict))):
        return "zeek"
    if "class_uid" in d and ("category_uid" in d or "activity_id" in d or "metadata" in d):
        return "ocsf"
    if "Event" in d and isinstance(d["Event"], dict) and "System" in d["Event"]:
        return "sysmon"
    w = d.get("winlog")
    # Winlogbeat's Sysmon module: with the raw event_data the Sysmon reader reads it; without (the ECS fields
    # only, as its processors leave them) the ECS reader does.
    if isinstance(w, dict) and "sysmon" in str(w.get("provider_name", w.get("channel", ""))).lower() \
            and isinstance(w.get("event_data"), dict):
        return "sysmon"
    if "event_data" in d and "event_id" in d:
        return "sysmon"
    if "EventID" in d and ("UtcTime" in d or "Image" in d or "EventData" in d
                           or "sysmon" in str(d.get("SourceName", d.get("Channel", ""))).lower()):
        return "sysmon"
    return "ecs"


def detect_format(src: Source) -> str:
    """Format of a source from its magic bytes, extension, then a vote over its first JSON records."""
    head = src.head
    if head.startswith(b"ElfFile\x00"):
        return "evtx"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1") or head[:4] == b"\xff\xff\xff\xff":
        return "arrow"
    if src.ext in _EXT:
        return _EXT[src.ext]
    stripped = head.lstrip().lstrip(b"\xef\xbb\xbf")
    if stripped.startswith(b"<") and re.search(rb"<Event[\s>]", head):
        return "sysmon_xml"
    if stripped.startswith(b"#separator") or stripped.startswith(b"#fields"):
        return "zeek"
    votes: dict[str, int] = {}
    elastic = 0                         # ECS records that say so (Elastic Endpoint, Beats): not a fallback shape
    for line in head.split(b"\n")[:-1] or [head]:
        if not line.strip():
            continue
        try:
            d = loads(line)
        except JSON_ERRORS:
            continue
        if isinstance(d, dict):
            k = classify_record(d)
            votes[k] = votes.get(k, 0) + 1
            elastic += k == "ecs" and ("ecs" in d or isinstance(d.get("event"), dict))
        if sum(votes.values()) >= 50:
            break
    if not votes:
        first = stripped.split(b"\n", 1)[0]
        if b"," in first and b"@timestamp" in first and _csv_header_has_timestamp(first):
            return "csv"  # (a broken JSON line that merely contains "@timestamp" stays JSON lines: counted)
        return "ecs"
    # An Elastic index mixing Endpoint documents with (fewer) Winlogbeat Sysmon ones is ECS: the ECS reader reads
    # both (Winlogbeat's Sysmon module writes ECS fields too); the Sysmon reader would drop the Endpoint lines.
    if votes.get("sysmon") and elastic > votes["sysmon"]:
        return "ecs"
    # Otherwise any Sysmon/Zeek/OCSF record wins over ecs (ECS is the fallback shape of everything).
    for k in ("sysmon", "zeek", "ocsf"):
        if votes.get(k):
            return k
    return "ecs"


def _csv_header_has_timestamp(first: bytes) -> bool:
    """True if ``first``, read as a CSV header row, has a column named exactly ``@timestamp``."""
    import csv

    try:
        names = next(csv.reader([first.decode("utf-8", "replace")]), [])
    except csv.Error:
        return False
    return "@timestamp" in (n.strip().strip("\ufeff") for n in names)


def read_events(path_or_file: Any, format: str = "auto", batch_size: int = 65536,
                stats: ReadStats | None = None, **options: Any) -> Iterator[pa.Table]:
    """Read endpoint network events as Arrow tables with :data:`raresketch.EVENT_SCHEMA`.

    Parameters
    ----------
    path_or_file : str, os.PathLike, binary file object, bytes, pyarrow.Table/RecordBatch/RecordBatchReader
        A file (``.gz`` accepted for text formats), a directory (Zeek logs, or every readable file in
        sorted order, entering subfolders, one DNS join across them; other files are counted
        ``unknown_extension``), an open binary file, or in-memory Arrow data.
    format : str
        One of :data:`FORMATS`; ``auto`` decides from magic bytes, extension and the first records.
    batch_size : int
        Maximum rows per yielded table (the last may be shorter; a table is never empty).
    stats : ReadStats, optional
        Updated in place while iterating: records read, events emitted, skipped by reason.
    **options
        Reader options: ``dns_window_s`` (Sysmon, ECS, Zeek; default 3600), ``prefer_dns`` (Sysmon; default
        True), ``join_siblings`` (Zeek conn.log; default True), ``dns_join`` (Sysmon, Sysmon XML, evtx, ECS: a
        :class:`raresketch._readers._dns.DnsJoin` shared by several calls, so that the DNS answers of one
        file name the connections of the next in one run; a folder shares one across its files);
        ``max_line_bytes`` (text formats; default 64 MiB): a longer line is skipped while it is read, never
        held whole, and counted ``line_too_long``; ``max_gzip_ratio`` (default 200) and
        ``max_decompressed_bytes`` (default none): a gzip input that expands past 64 MiB *and* more than that
        ratio of its compressed bytes, or past that size, is stopped there (what came before is kept), counted
        ``decompression_limit`` with one line in ``stats.warnings``; the next input is read as usual.
        Parquet and Arrow/Feather only: ``columns`` (EVENT_SCHEMA names; default all) reads only these columns
        (and ``@timestamp`` and ``host.id``), the others come out null; ``dictionary`` (default False) keeps text
        columns that are stored dictionary-encoded so (``dictionary<int32, string>``, the same values: the
        Engine then hashes and resolves each distinct value once) instead of expanding them to ``string``.

    Yields
    ------
    pyarrow.Table
        Batches sorted by ``@timestamp`` (UTC, microseconds) within each batch. One bad record never stops
        the stream: it is counted in ``stats.skipped`` and reading continues.

    Cost: O(records); JSON parsing dominates (orjson). Normalisation runs once per distinct value per batch.
    """
    for t in _read_events(path_or_file, format, batch_size, stats, options):
        if t.num_rows:  # a batch whose every record was dropped (bad timestamps, say) is not yielded
            yield t


def _read_events(path_or_file: Any, format: str, batch_size: int, stats: ReadStats | None,
                 options: dict) -> Iterator[pa.Table]:
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if stats is None:
        stats = ReadStats()
    if isinstance(path_or_file, (pa.Table, pa.RecordBatch, pa.RecordBatchReader)):
        if format not in ("auto", "arrow"):
            raise ValueError(f"in-memory Arrow data cannot be read as {format!r}")
        yield from iter_arrow(path_or_file, batch_size, stats)
        return
    if isinstance(path_or_file, (str, os.PathLike)) and os.path.isdir(path_or_file):
        yield from _read_dir(os.fspath(path_or_file), format, batch_size, stats, options)
        return
    if isinstance(path_or_file, (str, os.PathLike)) and not os.path.exists(path_or_file):
        raise FileNotFoundError(path_or_file)
    stats.files += 1
    src = Source(path_or_file, **_source_options(options))
    base, size = stats.bytes_read, src.size
    try:
        fmt = detect_format(src) if format == "auto" else format
        if fmt == "sysmon" and src.head.startswith(b"ElfFile\x00"):
            fmt = "evtx"
        if size is not None:
            yield from _progress(_read_format(src, fmt, path_or_file, batch_size, stats, options), src, fmt, stats,
                                 base, size)
        else:
            yield from _read_format(src, fmt, path_or_file, batch_size, stats, options)
        if src.damaged is not None:
            stats.skip("truncated_input")
    finally:
        if size is not None:
            stats.bytes_read = base + size
        if src.too_long:
            stats.skip("line_too_long", src.too_long)
        if src.limited is not None:
            stats.skip("decompression_limit")
            stats.warnings.append(f"{src.name or 'input'}: {src.limited}")
        src.close()


def _progress(batches: Iterator[pa.Table], src: Source, fmt: str, stats: ReadStats, base: int,
              size: int) -> Iterator[pa.Table]:
    """Keep ``stats.bytes_read`` at ``base`` plus how far into this file (of ``size`` stored bytes) the reading
    is: the read position for text, the share of rows read for Parquet; ``.evtx`` and Arrow count at the end."""
    rows = None
    if fmt == "parquet" and src.name:
        import pyarrow.parquet as pq

        rows, read0 = pq.read_metadata(src.name).num_rows, stats.read
    for t in batches:
        if rows is not None:
            done = size * (stats.read - read0) // max(rows, 1)
        elif fmt in ("evtx", "arrow"):
            done = 0
        else:
            done = src.consumed
        stats.bytes_read = base + min(done, size)
        yield t


def _read_format(src: Source, fmt: str, path_or_file: Any, batch_size: int, stats: ReadStats,
                 options: dict) -> Iterator[pa.Table]:
    """The reader of format ``fmt`` over an opened source."""
    if fmt == "evtx":
        if not src.name:
            raise ValueError("evtx input must be a path (the evtx parser reads files)")
        yield from read_evtx(src.name, batch_size, stats,
                             **_pick(options, "dns_window_s", "prefer_dns", "dns_join"))
    elif fmt == "sysmon":
        yield from read_sysmon(src, batch_size, stats, **_pick(options, "dns_window_s", "prefer_dns", "dns_join"))
    elif fmt == "sysmon_xml":
        yield from read_sysmon_xml(src, batch_size, stats, **_pick(options, "dns_window_s", "prefer_dns",
                                                                   "dns_join"))
    elif fmt == "ecs":
        yield from read_ecs(src, batch_size, stats, **_pick(options, "dns_window_s", "dns_join"))
    elif fmt == "zeek":
        yield from read_zeek(src, batch_size, stats, **_pick(options, "dns_window_s", "join_siblings"))
    elif fmt == "ocsf":
        yield from read_ocsf(src, batch_size, stats)
    elif fmt == "csv":
        yield from read_csv(src, batch_size, stats)
    elif fmt == "parquet":
        yield from read_parquet(src.name or _rewind(path_or_file), batch_size, stats,
                                **_pick(options, "columns", "dictionary"))
    elif fmt == "arrow":
        yield from read_arrow_ipc(src.name or _rewind(path_or_file), batch_size, stats,
                                  **_pick(options, "columns", "dictionary"))


_SOURCE_OPTIONS = {"max_line_bytes": "max_line", "max_gzip_ratio": "max_ratio",
                   "max_decompressed_bytes": "max_bytes"}


def _source_options(options: dict) -> dict:
    return {v: options[k] for k, v in _SOURCE_OPTIONS.items() if k in options}


def _pick(options: dict, *names: str) -> dict:
    unknown = set(options) - {"dns_window_s", "prefer_dns", "join_siblings", "dns_join", "columns", "dictionary",
                              *_SOURCE_OPTIONS}
    if unknown:
        raise TypeError(f"unknown reader option(s): {sorted(unknown)}")
    return {k: v for k, v in options.items() if k in names}


def _rewind(f: Any) -> Any:
    if isinstance(f, (bytes, bytearray, memoryview)):
        return pa.BufferReader(bytes(f))
    f.seek(0)
    return f


def _read_dir(directory: str, format: str, batch_size: int, stats: ReadStats, options: dict,
              _seen: set | None = None) -> Iterator[pa.Table]:
    """A folder's files in sorted name order, entering subfolders where they sort (not hidden ones, each real
    folder once: a symlink loop ends). A folder holding a Zeek ``conn`` log is read as one Zeek folder. A file
    whose extension is not a readable one is counted ``unknown_extension``; one that fails to read,
    ``unreadable_file``; neither stops the folder."""
    seen = set() if _seen is None else _seen
    real = os.path.realpath(directory)
    if real in seen:
        return
    seen.add(real)
    names = sorted(os.listdir(directory))
    has_conn = any(n.split(".")[0] == "conn" and os.path.isfile(os.path.join(directory, n)) for n in names)
    if format in ("auto", "zeek") and has_conn:
        yield from read_zeek_dir(directory, batch_size, stats, **_pick(options, "dns_window_s"))
        return
    if "dns_join" not in options:  # one DNS join across the folder's files
        options = {**options, "dns_join": DnsJoin(options.get("dns_window_s", 3600.0))}
    for n in names:
        p = os.path.join(directory, n)
        if os.path.isdir(p):
            if not n.startswith("."):
                yield from _read_dir(p, format, batch_size, stats, options, seen)
            continue
        low = n.lower()[:-3] if n.lower().endswith(".gz") else n.lower()
        if not os.path.isfile(p):
            continue
        if not low.endswith(_READABLE_IN_DIR):
            stats.skip("unknown_extension")
            continue
        try:
            yield from read_events(p, format, batch_size, stats, **options)
        except (OSError, EOFError, ValueError):  # one unreadable file does not stop the folder
            stats.skip("unreadable_file")
