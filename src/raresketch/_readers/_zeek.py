"""Zeek logs: ``conn.log`` joined with ``ssl.log`` / ``http.log`` (same ``uid``) and ``dns.log`` answers.

Forms: TSV with ``#fields`` headers, JSON lines (``id.orig_h``, ``id_orig_h`` or nested ``id{}`` keys), and a
combined JSON stream whose records carry ``_path`` or ``@stream`` (``conn``, ``dns``, ...). A directory
is read as its ``conn``/``dns``/``ssl``/``http`` logs (``.gz`` too); a single ``conn.log`` path also joins
the sibling logs next to it.

Each conn record becomes one event: ``host.id`` = ``host.name`` = ``source.ip`` = the originator address
(Zeek sees no process, so every ``process.*`` column is null); ``destination.*`` = the responder. The name:
``ssl.server_name`` (SNI) or the HTTP ``Host`` of the same connection (``"event"``), else the originator's
latest DNS answer for the responder address at most ``dns_window_s`` before the connection (``"dns"``),
through the readers' one DNS join (:class:`raresketch._readers._dns.DnsJoin`: bounded memory on a long
stream, answers older than ``dns_window_s`` + 2 s behind the newest connection are forgotten).
"""
from __future__ import annotations

import os
from typing import Any, Iterator

import pyarrow as pa

from ..events import normalize_domain, normalize_ip
from ..events._values import parse_timestamp, to_int, to_str
from ._dns import DnsJoin
from ._rows import RowBuffer, loads_line
from ._source import Source
from ._stats import ReadStats


def _field(d: dict, name: str) -> Any:
    """``id.orig_h`` from flat-dotted, underscored or nested records."""
    v = d.get(name)
    if v is None and "." in name:
        a, b = name.split(".", 1)
        v = d.get(f"{a}_{b}")
        if v is None and isinstance(d.get(a), dict):
            v = d[a].get(b)
    return v


def iter_records(src: Source, stats: ReadStats, default_path: str | None) -> Iterator[tuple[str | None, dict]]:
    """(log path, record) for each record of a Zeek TSV or JSON log; bad lines are counted and skipped."""
    head = src.head.lstrip()
    if head.startswith(b"#separator") or head.startswith(b"#fields"):
        yield from _iter_tsv(src, stats, default_path)
        return
    for line in src.lines():
        stats.read += 1
        d = loads_line(line, stats)
        if d is None:
            continue
        yield (d.get("_path") or d.get("@stream") or default_path), d


def _iter_tsv(src: Source, stats: ReadStats, path: str | None) -> Iterator[tuple[str | None, dict]]:
    sep, fields, unset, empty, set_sep = "\t", None, "-", "(empty)", ","
    for raw in src.lines():
        if raw.startswith(b"#"):
            text = raw.decode("utf-8", "replace")
            key, _, val = text.partition(" " if text.startswith("#separator") else "\t")
            if key == "#separator":
                sep = val.strip().encode().decode("unicode_escape")
            elif key == "#fields":
                fields = val.split(sep)
            elif key == "#unset_field":
                unset = val
            elif key == "#empty_field":
                empty = val
            elif key == "#set_separator":
                set_sep = val
            elif key == "#path":
                path = val.strip()
            continue
        if not raw.strip():
            continue
        stats.read += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
            stats.repaired["undecodable_bytes"] += 1
        vals = text.split(sep)
        if fields is None or len(vals) != len(fields):
            stats.skip("unsupported_line")
            continue
        d = {}
        for k, v in zip(fields, vals):
            if v == unset:
                continue
            d[k] = [] if v == empty else v.split(set_sep) if k in ("answers", "TTLs") else v
        yield path, d


class ZeekContext:
    """Per-source join tables: DNS answers by (originator, answer IP) (:class:`DnsJoin`), names by conn
    ``uid`` from ssl.log (SNI) and http.log (``Host``), each dropped when its connection takes it (Zeek gives
    one conn record per ``uid``)."""

    def __init__(self, dns_window_s: float):
        self.dns = DnsJoin(dns_window_s)
        self.names: dict[str, tuple[str, str]] = {}  # uid -> (name, kind)

    def add(self, path: str, d: dict) -> None:
        if path == "dns":
            q = normalize_domain(to_str(d.get("query")))
            ts = parse_timestamp(d.get("ts"))
            orig = normalize_ip(to_str(_field(d, "id.orig_h")))
            answers = d.get("answers") or []
            if isinstance(answers, str):
                answers = answers.split(",")
            if not q or ts is None or not orig:
                return
            for a in answers:
                ip = normalize_ip(to_str(a))
                if ip:
                    self.dns.add(orig, ip, ts, q)
        elif path == "ssl":
            sni = normalize_domain(to_str(d.get("server_name")))
            uid = d.get("uid")
            if sni and uid:
                self.names[uid] = (sni, "zeek_ssl")
        elif path == "http":
            host = to_str(d.get("host"))
            uid = d.get("uid")
            if host and uid and uid not in self.names:
                h = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
                if not normalize_ip(h):
                    self.names[uid] = (normalize_domain(h), "zeek_http")
    
    def prune(self) -> None:
        """Prune the DNS answers (:meth:`DnsJoin.prune`)."""
        self.dns.prune()


def conn_row(d: dict) -> dict:
    orig = normalize_ip(to_str(_field(d, "id.orig_h")))
    proto = to_str(d.get("proto"))
    return {
        "@timestamp": d.get("ts"),
        "host.id": orig,
        "host.name": orig,
        "source.ip": orig,
        "source.port": to_int(_field(d, "id.orig_p")),
        "destination.ip": normalize_ip(to_str(_field(d, "id.resp_h"))),
        "destination.port": to_int(_field(d, "id.resp_p")),
        "network.transport": proto.lower() if proto else None,
        "_uid": d.get("uid"),
    }


class _Joiner:
    def __init__(self, batch_size: int, stats: ReadStats, dns_window_s: float):
        self.batch_size, self.stats = batch_size, stats
        self.ctx = ZeekContext(dns_window_s)
        self.pending: list[dict] = []

    def feed(self, path: str | None, d: dict) -> pa.Table | None:
        if path == "conn" or (path is None and "conn_state" in d):
            if not _field(d, "id.orig_h"):
                self.stats.skip("missing_host")
                return None
            self.pending.append(conn_row(d))
            if len(self.pending) >= self.batch_size:
                return self.flush()
        else:
            self.stats.skip("not_network_event")
            if path is None:
                path = "dns" if "query" in d else "ssl" if "server_name" in d else "http" if "host" in d else None
            if path:
                self.ctx.add(path, d)
        return None

    def flush(self) -> pa.Table | None:
        if not self.pending:
            return None
        buf = RowBuffer()
        st = self.stats
        for row in self.pending:
            named = self.ctx.names.pop(row.pop("_uid", None), None)
            # looked up for every connection, so that the join knows the newest one (its pruning)
            n = self.ctx.dns.name(row["host.id"], row["destination.ip"], parse_timestamp(row["@timestamp"]))
            if named:
                row["destination.domain"], row["raresketch.domain_source"] = named[0], "event"
                st.enriched[named[1]] += 1
            elif n:
                row["destination.domain"], row["raresketch.domain_source"] = n, "dns"
                st.enriched["domain_dns"] += 1
            buf.append(row)
        self.pending = []
        self.ctx.prune()
        return buf.to_table(st)


_CONTEXT_LOGS = ("dns", "ssl", "http")


def _find(directory: str, stem: str) -> str | None:
    for suffix in (".log", ".log.gz", ".json", ".json.gz", ".jsonl", ".jsonl.gz"):
        p = os.path.join(directory, stem + suffix)
        if os.path.isfile(p):
            return p
    return None


def read_zeek(src: Source, batch_size: int, stats: ReadStats, dns_window_s: float = 3600.0,
              join_siblings: bool = True) -> Iterator[pa.Table]:
    """Yield conformed batches of Zeek connections from one log (combined or conn.log)."""
    j = _Joiner(batch_size, stats, dns_window_s)
    base = os.path.basename(src.name).split(".")[0] if src.name else None
    if join_siblings and base == "conn" and src.name:
        _load_context(j, os.path.dirname(os.path.abspath(src.name)), stats)
    for path, d in iter_records(src, stats, base if base in ("conn",) + _CONTEXT_LOGS else None):
        t = j.feed(path, d)
        if t is not None:
            yield t
    t = j.flush()
    if t is not None:
        yield t


def _load_context(j: _Joiner, directory: str, stats: ReadStats) -> None:
    for stem in _CONTEXT_LOGS:
        p = _find(directory, stem)
        if p:
            stats.files += 1
            with Source(p) as s:
                for path, d in iter_records(s, stats, stem):
                    stats.skip("not_network_event")
                    j.ctx.add(path or stem, d)


def read_zeek_dir(directory: str, batch_size: int, stats: ReadStats, dns_window_s: float = 3600.0) -> Iterator[pa.Table]:
    """Yield batches from a directory holding ``conn.log`` and optional ``dns``/``ssl``/``http`` logs."""
    conn = _find(directory, "conn")
    if conn is None:
        raise ValueError(f"{directory}: no conn.log (or .gz/.json) found")
    stats.files += 1
    with Source(conn) as s:
        yield from read_zeek(s, batch_size, stats, dns_window_s, join_siblings=True)
