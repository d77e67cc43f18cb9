"""ECS JSON lines (Elastic Endpoint, Winlogbeat/Filebeat/Auditbeat output): nested or dotted keys.

A record becomes one event when it looks like a network event: ``event.category`` absent or containing
``network``, and a ``destination.ip`` or ``destination.domain``. Field fallbacks (first present wins):

- ``host.id``: ``host.id``, ``agent.id``, ``host.hostname``, ``host.name`` (lower-cased for names)
- ``destination.domain``: ``destination.domain``, ``destination.address`` when not an IP, ``url.domain``,
  ``tls.client.server_name``
- ``network.direction``: ECS ``outbound``/``egress`` -> ``egress``, ``inbound``/``ingress`` -> ``ingress``

Two paths give the same events (tests/readers/test_readers_fast.py, tests/readers/test_readers_ecs_json.py check it):

- fast (column-wise): a block of about 4 MiB of lines goes through the compiled projector
  (``raresketch._json``, yyjson: one parse per line, GIL released) which returns, for the lines it can read
  exactly, one Arrow array per wanted ECS path (nested, dotted and mixed keys alike); the arrays are
  flattened with Arrow compute (:func:`_flatten`). A line it cannot read exactly is left to the slow path:
  blank or malformed JSON, invalid UTF-8, a root that is not an object, a wanted field of another JSON type
  than the fast path takes (a numeric ``@timestamp``, a string port, ...), a wanted path or prefix present
  twice (duplicate or overlapping keys), more than 1024 containers (orjson's nesting limit). With more than
  one CPU, reading and projecting run one block ahead in a worker thread. (Throughput: README, "Measured
  figures".)
- slow (per line): one ``orjson.loads`` plus one visit of the record's keys that lie on a wanted ECS path.

Rows of both paths are merged in file order before batching, so batches hold the same events as a purely
per-line read and are sorted by time the same way.
"""
from __future__ import annotations

import os
import queue
import threading
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._json import Projector
from ..events import EVENT_SCHEMA, conform, normalize_domain, normalize_ip
from ..events._normalise import is_ip, map_unique
from ..events._schema import sort_by_time
from ..events._values import parse_timestamp, parse_timestamps
from ._dns import DnsJoin, join_table
from ._rows import JSON_ERRORS, count_dropped, drop_addressless, loads, loads_line, read_json_rows, rows_table
from ._source import Source
from ._stats import ReadStats
from ._tabular import warn_misspelt

# The field mapping, read by both paths (ecs_row per record, _flatten per column).
# Output column -> ECS paths to try in order.
_PATHS: dict[str, tuple[str, ...]] = {f.name: (f.name,) for f in EVENT_SCHEMA}
_PATHS.update({
    "destination.domain": ("destination.domain", "url.domain", "tls.client.server_name"),
    "process.code_signature.subject_name": ("process.code_signature.subject_name",),
})
_PATHS.pop("raresketch.domain_source")
_PATHS.pop("raresketch.dns_answer_time")
_PATHS.pop("host.id")


#: host.id: the first non-empty identifier, else the first non-empty host name, lower-cased.
_HOST_IDS = ("host.id", "agent.id")
_HOST_NAMES = ("host.hostname", "host.name")
#: ECS network.direction (lower-cased) -> the host view written.
_DIRECTION = {"outbound": "egress", "egress": "egress", "inbound": "ingress", "ingress": "ingress"}
#: Columns written lower-case.
_LOWERED = ("network.transport", "host.os.type")

#: DNS answer records (context for the join, never events): Elastic Defend ``event.action: lookup_result``,
#: Winlogbeat Sysmon ``event.code: "22"``, Packetbeat/Filebeat ``dns.*``: a record with ``dns.question.name``.
_DNS_PATHS = ("dns.question.name", "dns.resolved_ip", "dns.answers")
#: Winlogbeat's Sysmon module: ``event.module: sysmon`` + ``event.code: "3"``; its ``destination.domain`` is
#: Sysmon's reverse lookup (``DestinationHostname``), recorded as ``ptr``.
_PTR_PATHS = ("event.module", "event.code")

_EXTRA = ("event.category", "destination.address") + _HOST_IDS + _HOST_NAMES + _DNS_PATHS + _PTR_PATHS


def _build_tree(paths) -> dict:
    tree: dict = {}
    for p in paths:
        node = tree
        parts = p.split(".")
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if isinstance(nxt, str):  # a leaf that also has children: keep both
                nxt = node[part] = {"": nxt}
            node = nxt
        if isinstance(node.get(parts[-1]), dict):
            node[parts[-1]][""] = p
        else:
            node[parts[-1]] = p
    return tree


_TREE = _build_tree({p for ps in _PATHS.values() for p in ps} | set(_EXTRA))


def _extract(node: dict, tree: dict, out: dict) -> None:
    """Collect the wanted leaves of a record into ``out`` (ECS path -> value), visiting only keys on a wanted
    path; dotted keys (``"process.name"``) at any level are followed through the tree. O(wanted keys)."""
    for k, v in node.items():
        t = tree.get(k)
        if t is None:
            if "." not in k:
                continue
            t = tree
            for part in k.split("."):
                t = t.get(part) if isinstance(t, dict) else None
                if t is None:
                    break
            if t is None:
                continue
        if isinstance(t, str):
            if v is not None:
                out[t] = v
        elif isinstance(v, dict):
            _extract(v, t, out)
        elif "" in t and v is not None:
            out[t[""]] = v


def _host_of(f: dict):
    hid = f.get(_HOST_IDS[0]) or f.get(_HOST_IDS[1])
    if hid is None:
        hid = f.get(_HOST_NAMES[0]) or f.get(_HOST_NAMES[1])
        hid = hid.lower() if isinstance(hid, str) else hid
    return None if hid is None or isinstance(hid, (dict, list)) else str(hid)


def _answer_ips(f: dict) -> list[str]:
    """The addresses of a DNS record: ``dns.resolved_ip`` (a list or one string), else the ``data`` of the
    A/AAAA entries of ``dns.answers``."""
    out = []
    r = f.get("dns.resolved_ip")
    for v in (r if isinstance(r, list) else [r]):
        ip = normalize_ip(v) if isinstance(v, str) else None
        if ip:
            out.append(ip)
    if not out and isinstance(f.get("dns.answers"), list):
        for a in f["dns.answers"]:
            if isinstance(a, dict) and str(a.get("type", "A")).upper() in ("A", "AAAA"):
                ip = normalize_ip(a.get("data")) if isinstance(a.get("data"), str) else None
                if ip:
                    out.append(ip)
    return out


def add_dns_record(f: dict, dns: DnsJoin | None) -> None:
    """Remember the answers of one DNS record (extracted fields ``f``) in ``dns``."""
    if dns is None:
        return
    name = normalize_domain(f.get("dns.question.name")) if isinstance(f.get("dns.question.name"), str) else None
    host, ts = _host_of(f), parse_timestamp(f.get("@timestamp"))
    if not name or not host or ts is None:
        return
    for ip in _answer_ips(f):
        dns.add(host, ip, ts, name)


def _is_ptr(module, code) -> bool:
    return isinstance(module, str) and module.lower() == "sysmon" and str(code) == "3"


def ecs_row(d: dict, stats: ReadStats, dns: DnsJoin | None = None) -> dict | None:
    """One ECS record -> a row dict (schema column -> raw value), or None when skipped (counted). A DNS
    record (``dns.question.name``) feeds ``dns`` and is counted as ``not_network_event``."""
    f: dict = {}
    _extract(d, _TREE, f)
    if f.get("dns.question.name") is not None:
        add_dns_record(f, dns)
        stats.skip("not_network_event")
        return None
    cat = f.get("event.category")
    if cat is not None:
        cats = cat if isinstance(cat, list) else [cat]
        if "network" not in cats:
            stats.skip("not_network_event")
            return None
    row = {}
    for col, paths in _PATHS.items():
        for p in paths:
            v = f.get(p)
            if v is not None:
                row[col] = v
                break
    addr = f.get("destination.address")
    if isinstance(addr, str) and addr:
        if row.get("destination.ip") is None and normalize_ip(addr):
            row["destination.ip"] = addr
        elif row.get("destination.domain") is None and not normalize_ip(addr):
            row["destination.domain"] = addr
    if row.get("destination.ip") is None and row.get("destination.domain") is None:
        stats.skip("no_destination")
        return None
    row["host.id"] = _host_of(f)
    if f.get("destination.domain") is not None and _is_ptr(f.get("event.module"), f.get("event.code")):
        row["raresketch.domain_source"] = "ptr"
    dire = row.get("network.direction")
    if isinstance(dire, str):
        row["network.direction"] = _DIRECTION.get(dire.lower())
    for c in _LOWERED:
        v = row.get(c)
        if isinstance(v, str):
            row[c] = v.lower()
    return row



def read_ecs_slow(src: Source, batch_size: int, stats: ReadStats, dns_join: DnsJoin | None = None,
                  dns_window_s: float = 3600.0) -> Iterator[pa.Table]:
    """The per-line reader (reference for the fast path): yield conformed batches of at most ``batch_size``
    events, named from the run's DNS answers (:func:`raresketch._readers._dns.join_table`)."""
    dns = dns_join if dns_join is not None else DnsJoin(dns_window_s)
    for t in read_json_rows(src, batch_size, stats, lambda d, st: ecs_row(d, st, dns)):
        yield join_table(t, dns, stats)


# --------------------------------------------------------------------------------------------- fast path

BLOCK_BYTES = 1 << 22
_S, _I, _I32, _B = "string", "int", "int32", "bool"

# Every ECS path the per-line reader looks at, with the JSON type the projector accepts for it. A line whose
# value has another type (a numeric ``@timestamp``, a string port, ...) goes the per-line way, which coerces.
_FAST_PATHS: dict[str, str] = {}
for _f in EVENT_SCHEMA:
    if _f.name in ("raresketch.domain_source", "raresketch.dns_answer_time", "host.id"):
        continue
    _FAST_PATHS[_f.name] = (_S if _f.name == "@timestamp" else _I32 if _f.type == pa.int32()
                            else _I if pa.types.is_integer(_f.type) else _B if pa.types.is_boolean(_f.type) else _S)
_FAST_PATHS.update({p: _S for p in _HOST_IDS + _HOST_NAMES + ("destination.address",) + _DNS_PATHS + _PTR_PATHS})
_FAST_PATHS.update({p: _S for ps in _PATHS.values() for p in ps if p not in _FAST_PATHS})
# ecs_row's test: absent/null -> 0, "network" or a list holding it -> 1, anything else -> 2
_FAST_PATHS["event.category"] = "has:network"
assert {p for ps in _PATHS.values() for p in ps} | set(_EXTRA) == set(_FAST_PATHS)
_PROJECTOR = Projector(_FAST_PATHS)
#: Every field path the reader looks at (for the misspelt-key warning).
_READ_PATHS = sorted({"@timestamp", "host.id", *_FAST_PATHS})
_DIRECTIONS = pa.array(list(_DIRECTION))
_DIRECTION_TO = pa.array(list(_DIRECTION.values()))
_HELPERS = ("_line", "_ts_state")


def _truthy(a: pa.Array) -> pa.Array:
    return pc.fill_null(pc.not_equal(a, ""), False)


def _lower(a: pa.Array) -> pa.Array:
    """Exactly the per-line reader's ``str.lower``: Arrow's ``ascii_lower`` when every value is ASCII (the
    same there), else ``str.lower`` once per distinct value."""
    if a.null_count == len(a):
        return a
    if pc.all(pc.string_is_ascii(a)).as_py():
        return pc.ascii_lower(a)
    return map_unique(a, str.lower)


def _flatten(t: dict[str, pa.Array], lines: np.ndarray, stats: ReadStats, dns: DnsJoin | None = None) -> pa.Table:
    """Projected records (``{ECS path: array}``, one value per line of ``lines``) -> candidate rows (schema
    columns + ``_line`` + ``_ts_state``), counting the records ``ecs_row`` would skip. Column-wise
    re-statement of :func:`ecs_row`; O(n) Arrow work, O(distinct) Python calls for non-ASCII lower-casing and
    non-canonical addresses."""
    n = len(lines)
    keep = np.ones(n, bool)
    q = t["dns.question.name"]
    if q.null_count < n:  # DNS records: context for the join (rare in the fast path: answers are lists)
        is_dns = pc.is_valid(q).to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(is_dns).tolist():
            add_dns_record({p: t[p][i].as_py() for p in (("@timestamp",) + _HOST_IDS + _HOST_NAMES + _DNS_PATHS)},
                           dns)
        stats.skip("not_network_event", int(is_dns.sum()))
        keep &= ~is_dns
    not_net = (t["event.category"].to_numpy(zero_copy_only=False) == 2) & keep
    if not_net.any():
        stats.skip("not_network_event", int(not_net.sum()))
        keep &= ~not_net
    cols: dict[str, Any] = {}
    for col, paths in _PATHS.items():
        vals = [v for v in (t[p] for p in paths) if v.null_count < n] or [t[paths[0]]]  # all-null ones add nothing
        cols[col] = vals[0] if len(vals) == 1 or vals[0].null_count == 0 else pc.coalesce(*vals)
    addr = t["destination.address"]
    if addr.null_count < n:
        has = _truthy(addr)
        ip, dom = cols["destination.ip"], cols["destination.domain"]
        is_ip_ = is_ip(pc.if_else(has, addr, pa.scalar(None, pa.string())))
        to_ip = pc.and_(pc.and_(has, pc.is_null(ip)), is_ip_)
        to_dom = pc.and_(pc.and_(pc.and_(has, pc.invert(to_ip)), pc.is_null(dom)), pc.invert(is_ip_))
        if pc.any(to_ip).as_py():  # (usually neither: the address repeats destination.ip)
            cols["destination.ip"] = pc.if_else(to_ip, addr, ip)
        if pc.any(to_dom).as_py():
            cols["destination.domain"] = pc.if_else(to_dom, addr, dom)
    no_dest = pc.and_(pc.is_null(cols["destination.ip"]), pc.is_null(cols["destination.domain"]))
    no_dest = no_dest.to_numpy(zero_copy_only=False) & keep
    if no_dest.any():
        stats.skip("no_destination", int(no_dest.sum()))
        keep &= ~no_dest
    hid = t[_HOST_IDS[0]]
    hid_ok = _truthy(hid)
    first = hid if hid_ok.false_count == 0 else pc.if_else(hid_ok, hid, t[_HOST_IDS[1]])
    if first.null_count == 0:  # every line has a host.id or agent.id: the names are not looked at
        cols["host.id"] = first
    else:
        hn, name = t[_HOST_NAMES[0]], t[_HOST_NAMES[1]]
        cols["host.id"] = pc.coalesce(first, _lower(pc.if_else(_truthy(hn), hn, name)))
    d = cols["network.direction"]
    if d.null_count < n:
        cols["network.direction"] = pc.take(_DIRECTION_TO, pc.index_in(_lower(d), value_set=_DIRECTIONS))
    for c in _LOWERED:
        cols[c] = _lower(cols[c])
    mod = t["event.module"]
    if mod.null_count < n:
        ptr = pc.and_(pc.and_(pc.equal(_lower(mod), "sysmon"), pc.equal(t["event.code"], "3")),
                      pc.is_valid(t["destination.domain"]))
        cols["raresketch.domain_source"] = pc.if_else(pc.fill_null(ptr, False), pa.scalar("ptr"),
                                                      pa.scalar(None, pa.string()))
    ts, state = parse_timestamps(cols["@timestamp"])
    cols["@timestamp"] = ts
    out = pa.table({f.name: cols[f.name] if f.name in cols else pa.nulls(n, f.type) for f in EVENT_SCHEMA})
    out = out.append_column("_line", pa.array(lines, pa.int64())).append_column("_ts_state", pa.array(state))
    return out.filter(pa.array(keep)) if not keep.all() else out


def _rows_table(rows: list[dict], lines: list[int]) -> pa.Table:
    """Slow-path rows -> candidate rows, converted the way RowBuffer converts them."""
    out, state = rows_table(rows)
    return out.append_column("_line", pa.array(lines, pa.int64())).append_column("_ts_state", pa.array(state))


def _finish(t: pa.Table, stats: ReadStats, dns: DnsJoin) -> pa.Table:
    """Candidate rows of one batch -> conformed, time-sorted events (RowBuffer.to_table's counting), named
    from the DNS answers seen so far (:func:`join_table`)."""
    state = t.column("_ts_state").to_numpy()
    ok = state == 0
    host = t.column("host.id")
    no_host = pc.or_(pc.is_null(host), pc.fill_null(pc.equal(host, ""), True)).to_numpy(zero_copy_only=False) & ok
    count_dropped(stats, state, no_host)
    keep = ok & ~no_host
    t = t.drop_columns(list(_HELPERS))
    if not keep.all():
        t = t.filter(pa.array(keep))
    out = join_table(sort_by_time(drop_addressless(t.column("destination.ip"), conform(t), stats)), dns, stats)
    stats.emitted += out.num_rows
    return out


class _Batcher:
    """Candidate rows in file order -> batches of ``batch_size`` candidates, finished like RowBuffer's."""

    def __init__(self, batch_size: int, stats: ReadStats, dns: DnsJoin):
        self.size, self.stats, self.dns = batch_size, stats, dns
        self.parts: list[pa.Table] = []
        self.n = 0

    def add(self, t: pa.Table) -> Iterator[pa.Table]:
        if t.num_rows:
            self.parts.append(t)
            self.n += t.num_rows
        while self.n >= self.size:
            all_ = pa.concat_tables(self.parts) if len(self.parts) > 1 else self.parts[0]
            head, rest = all_.slice(0, self.size), all_.slice(self.size)
            self.parts, self.n = ([rest] if rest.num_rows else []), rest.num_rows
            yield _finish(head, self.stats, self.dns)

    def flush(self) -> Iterator[pa.Table]:
        if self.n:
            t = pa.concat_tables(self.parts) if len(self.parts) > 1 else self.parts[0]
            self.parts, self.n = [], 0
            yield _finish(t, self.stats, self.dns)


def _prepared(src: Source) -> Iterator[tuple[bytes, np.ndarray, np.ndarray, np.ndarray, dict]]:
    """Blocks of the source, each projected by :data:`_PROJECTOR` (``(block, status, starts, ends,
    columns)``; status 0 = projected): the part of the fast path that needs no ``stats`` and that
    :func:`_ahead` may run in a worker thread (the projector releases the GIL). O(block bytes)."""
    for block in src.blocks(BLOCK_BYTES):
        yield (block, *_PROJECTOR.project(block))


def _n_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


_DONE = object()


def _ahead(it: Iterator, depth: int = 1) -> Iterator:
    """The items of ``it`` in order, computed one step ahead by a worker thread: reading, decompressing
    and the projector release the GIL, so block k+1 is parsed while the caller works on
    block k (flattening here, the engine downstream). An exception of ``it`` is raised here, at its place;
    closing this generator stops the worker and waits for it (so the source may be closed after)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for x in it:
                if not put((x, None)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            put((_DONE, exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    th = threading.Thread(target=work, name="raresketch-ecs-parse", daemon=True)
    th.start()
    try:
        while True:
            x, exc = q.get()
            if exc is not None:
                raise exc
            if x is _DONE:
                return
            yield x
    finally:
        stop.set()
        while th.is_alive():
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        th.join()


def _check_keys(head: bytes, stats: ReadStats, lines: int = 200) -> None:
    """Warn for keys of the first ``lines`` records (flattened to dotted paths) that look like a misspelt field
    this reader reads and the records lack (``destinaton.ip``, ``process_name``). Once per input, O(head).
    A line that does not parse is left to the reader, which counts it."""
    keys: set[str] = set()
    for line in head.split(b"\n")[:lines]:
        try:
            d = loads(line)
        except (*JSON_ERRORS, RecursionError):
            continue
        todo = [("", d)] if isinstance(d, dict) else []
        while todo:                       # iterative: nesting depth is the parser's bound, not the stack's
            prefix, obj = todo.pop()
            for k, v in obj.items():
                if isinstance(v, dict):
                    todo.append((f"{prefix}{k}.", v))
                else:
                    keys.add(f"{prefix}{k}")
    if keys:
        warn_misspelt(sorted(keys), _READ_PATHS, stats, "field", "a field this reader reads")


def read_ecs(src: Source, batch_size: int, stats: ReadStats, fast: bool = True, dns_join: DnsJoin | None = None,
             dns_window_s: float = 3600.0) -> Iterator[pa.Table]:
    """Yield conformed batches of at most ``batch_size`` events from an ECS JSON-lines source (fast path
    with per-line fallback; ``fast=False`` reads every line the per-line way). With more than one CPU the
    blocks are read and parsed one block ahead in a worker thread (:func:`_ahead`); everything that counts
    into ``stats`` stays in the caller's thread, in file order."""
    dns = dns_join if dns_join is not None else DnsJoin(dns_window_s)
    _check_keys(src.head, stats)
    if not fast:
        yield from read_ecs_slow(src, batch_size, stats, dns)
        return
    batcher = _Batcher(batch_size, stats, dns)
    blocks = _ahead(_prepared(src)) if _n_cpus() > 1 else _prepared(src)
    try:
        yield from _read_prepared(blocks, batcher, stats)
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:
            close()


def _read_prepared(blocks: Iterator, batcher: _Batcher, stats: ReadStats) -> Iterator[pa.Table]:
    for block, status, starts, ends, cols in blocks:
        slow = np.flatnonzero(status)
        parts = []
        n_fast = len(status) - len(slow)
        if n_fast:
            stats.read += n_fast
            idx = np.flatnonzero(status == 0) if len(slow) else np.arange(len(status))
            parts.append(_flatten(cols, idx, stats, batcher.dns))
        if len(slow):
            rows, at = [], []
            for i in slow.tolist():
                stats.read += 1
                d = loads_line(bytes(block[starts[i]:ends[i]]), stats)
                if d is None:
                    continue
                row = ecs_row(d, stats, batcher.dns)
                if row is not None:
                    rows.append(row)
                    at.append(i)
            if rows:
                parts.append(_rows_table(rows, at))
        parts = [p for p in parts if p.num_rows]
        if not parts:
            continue
        cand = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        if len(parts) > 1:
            order = np.argsort(cand.column("_line").to_numpy(), kind="stable")
            cand = cand.take(pa.array(order))
        yield from batcher.add(cand)
    yield from batcher.flush()
