"""Writers of simulated events: Parquet (one row group per batch), ECS JSON lines (optionally gzip-compressed),
and two shapes of real endpoint telemetry in which names travel apart from connections:

- :func:`write_elastic_defend_jsonl`: Elastic Defend network events carry ``destination.ip`` and no name;
  names come in separate DNS events of the same host (``event.action: lookup_result``, ``dns.question.name``,
  ``dns.resolved_ip``);
- :func:`write_winlogbeat_sysmon_jsonl`: Winlogbeat's Sysmon module: ``event.code: "3"`` connections whose
  ``destination.domain`` is Sysmon's reverse (PTR) lookup of the address, and ``event.code: "22"`` DNS events.

Both write the same connections and the same DNS answers: a host logs an answer just before a connection when
it has not logged one for that (name, address) in the last :data:`DNS_TTL_S` seconds, except for the
(host, name) pairs resolved where the endpoint agent does not see it (DNS over HTTPS, a browser's own
resolver, answers cached before the recording began): :data:`NO_DNS_PERCENT` % of the pairs, chosen by a hash,
whose connections have no DNS answer at all.

All stream: memory is bounded by one batch whatever the number of events (plus one entry per (host, name,
address) answered in the last :data:`DNS_TTL_S` seconds for the two DNS-bearing shapes).
"""
from __future__ import annotations

import gzip
import json
import os
from typing import Any, Callable, Iterable, Iterator, Protocol, Union

import pyarrow as pa
import pyarrow.compute as pc

from ..events import EVENT_SCHEMA
from ._vec import US

__all__ = ["write_ecs_jsonl", "write_parquet", "write_elastic_defend_jsonl", "write_winlogbeat_sysmon_jsonl"]

#: A host logs a new DNS answer for a (name, address) only when its last one is older than this (seconds).
DNS_TTL_S = 300
#: Share (%) of (host, name) pairs whose connections have no DNS answer in the endpoint's events.
NO_DNS_PERCENT = 15
#: How long before its connection the DNS answer is logged (microseconds).
DNS_LEAD_US = 40_000


class _Batched(Protocol):
    """A source of event batches, like :class:`raresketch.simulate.Organisation`."""

    def batches(self, batch_size: int) -> Iterator[pa.Table]: ...


Source = Union[_Batched, Iterable[pa.Table], pa.Table]


def _tables(source: Source, batch_size: int) -> Iterator[pa.Table]:
    """The tables of ``source``: a table itself, an organisation's ``batches(batch_size)``, or the iterable."""
    if isinstance(source, pa.Table):
        yield source
    elif callable(getattr(source, "batches", None)):
        yield from source.batches(batch_size=batch_size)  # type: ignore[union-attr]
    else:
        yield from source  # type: ignore[union-attr]


def write_parquet(
    path: str | os.PathLike[str],
    source: Source,
    *,
    batch_size: int = 500_000,
    compression: str = "zstd",
    progress: Callable[[int], Any] | None = None,
) -> int:
    """Stream ``source`` (an :class:`Organisation` or tables in :data:`EVENT_SCHEMA`) to a Parquet file.

    Each batch becomes a row group (``batch_size`` events); ``progress(n)`` is called with each batch's number
    of events once it is written.  Returns the number of events written.
    """
    import pyarrow.parquet as pq

    n = 0
    with pq.ParquetWriter(os.fspath(path), EVENT_SCHEMA, compression=compression) as w:
        for t in _tables(source, batch_size):
            w.write_table(t.cast(EVENT_SCHEMA) if t.schema != EVENT_SCHEMA else t)
            n += t.num_rows
            if progress is not None:
                progress(t.num_rows)
    return n


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys -> nested objects (``{"host.id": x}`` -> ``{"host": {"id": x}}``), None values dropped."""
    out: dict[str, Any] = {}
    for k, v in flat.items():
        if v is None:
            continue
        parts = k.split(".")
        d = out
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        d[parts[-1]] = v
    return out


def _dumps():
    try:
        import orjson

        return orjson.dumps
    except ImportError:  # pragma: no cover - orjson is optional
        return lambda o: json.dumps(o, separators=(",", ":")).encode()


def _iso_us(us: int) -> str:
    import datetime as _dt

    return _dt.datetime.fromtimestamp(us / 1e6, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def resolved_elsewhere(host: str, name: str) -> bool:
    """True for the (host, name) pairs whose answers the endpoint never logs (:data:`NO_DNS_PERCENT` %)."""
    import zlib

    return zlib.crc32(f"{host}|{name}".encode()) % 100 < NO_DNS_PERCENT


def ptr_name(ip: str) -> str | None:
    """A reverse-lookup name of the shape providers publish (``81.59.117.34.bc.example.net``); None for IPv6."""
    parts = ip.split(".")
    return None if len(parts) != 4 else ".".join(reversed(parts)) + ".rev.example.net"


_PROCESS_FIELDS = ("process.executable", "process.name", "process.pid", "process.hash.sha256",
                   "process.code_signature.subject_name", "process.code_signature.trusted",
                   "process.code_signature.exists", "process.pe.original_file_name", "process.command_line",
                   "process.parent.executable", "process.parent.name", "process.entity_id", "user.name")


def _write_split_dns(path, source, batch_size: int, connection, answer) -> int:
    """The common part of the two DNS-bearing shapes: ``connection(flat row, ts) -> doc`` and
    ``answer(flat row, ts) -> doc`` build the documents."""
    dumps = _dumps()
    p = os.fspath(path)
    opener = gzip.open if p.endswith(".gz") else open
    last: dict[tuple[str, str, str], int] = {}
    ttl = DNS_TTL_S * US
    n = 0
    with opener(p, "wb") as fh:
        for t in _tables(source, batch_size):
            ts = t.column("@timestamp").cast(pa.int64()).to_numpy()
            names = [c for c in t.column_names if c != "@timestamp"]
            cols = [t.column(c).to_pylist() for c in names]
            lines = []
            for i in range(t.num_rows):
                row = {name: col[i] for name, col in zip(names, cols)}
                now = int(ts[i])
                dom, ip = row.get("destination.domain"), row.get("destination.ip")
                if dom and ip and not resolved_elsewhere(row["host.id"], dom):
                    k = (row["host.id"], dom, ip)
                    if now - last.get(k, -ttl - 1) > ttl:
                        lines.append(dumps(_nest(answer(row, now - DNS_LEAD_US))))
                        last[k] = now
                lines.append(dumps(_nest(connection(row, now))))
            if len(last) > 4 * max(1, t.num_rows):  # forget answers past their TTL
                newest = int(ts[-1]) if len(ts) else 0
                last = {k: v for k, v in last.items() if newest - v <= ttl}
            if lines:
                fh.write(b"\n".join(lines) + b"\n")
            n += t.num_rows
    return n


def _common(row: dict, ts: int) -> dict:
    d = {"@timestamp": _iso_us(ts), "host.id": row["host.id"], "host.name": row.get("host.name"),
         "host.os.type": row.get("host.os.type")}
    d.update({k: row.get(k) for k in _PROCESS_FIELDS})
    return d


def write_elastic_defend_jsonl(path: str | os.PathLike[str], source: Source, *, batch_size: int = 100_000) -> int:
    """Stream ``source`` as Elastic Defend-shaped JSON lines: network events with ``destination.ip`` and no
    name, preceded by the host's ``lookup_result`` DNS events (module docstring). Returns the connections
    written."""
    def connection(row: dict, ts: int) -> dict:
        d = _common(row, ts)
        d.update({"agent.id": row["host.id"], "agent.type": "endpoint", "event.kind": "event",
                  "event.category": ["network"], "event.type": ["start"], "event.action": "connection_attempted",
                  "event.module": "endpoint", "event.dataset": "endpoint.events.network",
                  "destination.ip": row.get("destination.ip"), "destination.port": row.get("destination.port"),
                  "source.ip": row.get("source.ip"), "source.port": row.get("source.port"),
                  "network.transport": row.get("network.transport"), "network.direction": "egress"})
        return d

    def answer(row: dict, ts: int) -> dict:
        d = _common(row, ts)
        d.update({"agent.id": row["host.id"], "agent.type": "endpoint", "event.kind": "event",
                  "event.category": ["network"], "event.type": ["protocol", "info"], "event.action": "lookup_result",
                  "event.module": "endpoint", "event.dataset": "endpoint.events.network", "network.protocol": "dns",
                  "dns.question.name": row["destination.domain"], "dns.question.type": "A",
                  "dns.resolved_ip": [row["destination.ip"]]})
        return d

    return _write_split_dns(path, source, batch_size, connection, answer)


def write_winlogbeat_sysmon_jsonl(path: str | os.PathLike[str], source: Source, *,
                                  batch_size: int = 100_000) -> int:
    """Stream ``source`` as Winlogbeat-Sysmon-shaped ECS JSON lines: ``event.code: "3"`` connections whose
    ``destination.domain`` is the address's reverse (PTR) name, preceded by ``event.code: "22"`` DNS events
    (module docstring). Returns the connections written."""
    def base(row: dict, ts: int, code: str, action: str) -> dict:
        d = _common(row, ts)
        d.update({"agent.type": "winlogbeat", "event.kind": "event", "event.category": ["network"],
                  "event.code": code, "event.module": "sysmon", "event.provider": "Microsoft-Windows-Sysmon",
                  "event.action": action, "winlog.channel": "Microsoft-Windows-Sysmon/Operational",
                  "winlog.provider_name": "Microsoft-Windows-Sysmon", "winlog.event_id": code,
                  "winlog.computer_name": row.get("host.name")})
        return d

    def connection(row: dict, ts: int) -> dict:
        d = base(row, ts, "3", "Network connection detected (rule: NetworkConnect)")
        ip = row.get("destination.ip")
        d.update({"event.type": ["connection", "start", "protocol"], "destination.ip": ip,
                  "destination.port": row.get("destination.port"), "destination.domain": ptr_name(ip) if ip else None,
                  "source.ip": row.get("source.ip"), "source.port": row.get("source.port"),
                  "network.transport": row.get("network.transport"), "network.direction": "egress"})
        return d

    def answer(row: dict, ts: int) -> dict:
        d = base(row, ts, "22", "Dns query (rule: DnsQuery)")
        ip = row["destination.ip"]
        d.update({"event.type": ["connection", "protocol", "info"], "network.protocol": "dns",
                  "dns.question.name": row["destination.domain"], "dns.resolved_ip": [ip],
                  "dns.answers": [{"type": "AAAA" if ":" in ip else "A", "data": ip}]})
        return d

    return _write_split_dns(path, source, batch_size, connection, answer)


def write_ecs_jsonl(
    path: str | os.PathLike[str],
    source: Source,
    *,
    batch_size: int = 100_000,
    nested: bool = True,
    progress: Callable[[int], Any] | None = None,
) -> int:
    """Stream ``source`` to ECS JSON lines (one event per line; ``.gz`` paths are gzip-compressed).

    ``nested`` writes ECS objects (``{"host": {"id": ...}}``), otherwise dotted keys as in the schema.  Null
    fields are omitted; ``@timestamp`` is RFC 3339 UTC with microseconds; each event also carries
    ``event.kind: "event"``, ``event.category: ["network"]`` and ``event.type: ["connection", "start"]``.
    ``progress(n)`` is called with each batch's number of events once it is written.  Returns the number of
    events written.
    """
    try:
        import orjson

        def dumps(o: Any) -> bytes:
            return orjson.dumps(o)
    except ImportError:  # pragma: no cover - orjson is optional
        def dumps(o: Any) -> bytes:
            return json.dumps(o, separators=(",", ":")).encode()

    p = os.fspath(path)
    opener = gzip.open if p.endswith(".gz") else open
    n = 0
    event_fields = {"event.kind": "event", "event.category": ["network"], "event.type": ["connection", "start"]}
    with opener(p, "wb") as fh:
        for t in _tables(source, batch_size):
            # whole seconds first: Arrow's %S carries the sub-second digits of a finer unit
            secs = pc.cast(t.column("@timestamp"), pa.timestamp("s", tz="UTC"), safe=False)
            ts = pc.strftime(secs, format="%Y-%m-%dT%H:%M:%S").to_pylist()
            us = (t.column("@timestamp").cast(pa.int64()).to_numpy() % US).tolist()
            names = [c for c in t.column_names if c != "@timestamp"]
            cols = [t.column(c).to_pylist() for c in names]
            lines = []
            for i in range(t.num_rows):
                flat = {"@timestamp": f"{ts[i]}.{us[i]:06d}Z"}
                flat.update(event_fields)
                for name, col in zip(names, cols):
                    v = col[i]
                    if v is not None:
                        flat[name] = v
                lines.append(dumps(_nest(flat) if nested else flat))
            fh.write(b"\n".join(lines) + b"\n")
            n += t.num_rows
            if progress is not None:
                progress(t.num_rows)
    return n
