"""Sysmon events: JSON lines in any of the common export shapes, and ``.evtx`` files.

Record shapes understood (one file may mix them, as the OTRF datasets do):

- flat (NXLog / OTRF): ``EventID``, ``Hostname``, the event fields at top level;
- Winlogbeat 6: ``event_id``, ``computer_name``, ``event_data{...}``;
- Winlogbeat 7+/ECS: ``winlog{event_id, computer_name, event_data{...}}``;
- Azure Log Analytics ``WindowsEvent``: ``EventID``, ``Computer``, ``EventData`` (a JSON string or object);
- evtx JSON (the ``evtx`` package): ``Event{System{EventID, Computer}, EventData{...}}``.

Network-connect events (EID 3) become events. Within one file or stream they are enriched from:

- EID 22 (DNS query) of the same host: ``QueryResults`` IPs -> ``QueryName``. A connection takes the name of
  the latest answer for its destination IP at most ``dns_window_s`` (default 3600 s) before it (1 s of
  clock slack after), marked ``raresketch.domain_source = "dns"`` with the answer's time in
  ``raresketch.dns_answer_time``. The DNS name is preferred over Sysmon's own ``DestinationHostname``
  because the latter is a *reverse* lookup (``s3-w.us-west-2.amazonaws.com``, never the bucket name);
  ``prefer_dns=False`` reverses that. ``DestinationHostname`` gives ``"ptr"``.
- EID 1 (process create) on (host, ProcessGuid): SHA256 from ``Hashes``, ``CommandLine``, ``ParentImage``,
  ``OriginalFileName``.
- EID 7 (image load) where ``ImageLoaded == Image``: ``Signature`` -> ``code_signature.subject_name``,
  ``Signed`` -> ``.exists``, ``SignatureStatus == "Valid"`` -> ``.trusted`` (else False), and its hash.
- When no DNS answer names it: the host of the only URL in the process command line (``command_line``,
  inferred; it beats the PTR name, which is the address's identity rather than a name), unless the
  destination IP is private, loopback or link-local (an internal hop says nothing about that URL).

EID 3 events are held until ``batch_size`` of them are pending (or the input ends), so context records
logged shortly after a connection in the same batch still enrich it. Context tables are per source;
process entries are dropped after their EID 5 (process end) once pending events are flushed; the DNS join
(:class:`raresketch._readers._dns.DnsJoin`, shared with Zeek and ECS; one per run when ``dns_join`` is given,
so answers in one file name connections in the next) forgets answers older than ``dns_window_s`` + 2 s behind
the newest connection.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Iterator

import pyarrow as pa

from ..events import is_internal_ip, normalize_domain, normalize_ip
from ..events._values import parse_timestamp, to_int, to_str
from ._dns import DnsJoin, command_line_url_host
from ._rows import RowBuffer, loads, loads_line
from ._source import Source
from ._stats import ReadStats

_SYSMON_PROVIDER = "microsoft-windows-sysmon"


def _event_id(v: Any) -> int | None:
    if isinstance(v, dict):  # evtx: {"#text": 3, "#attributes": {...}}
        v = v.get("#text")
    return to_int(v)


def normalise_record(d: dict) -> tuple[int | None, str | None, dict, Any] | None:
    """A Sysmon record in any supported shape -> (event id, computer name, event data, fallback time).

    Returns None when the record is not Sysmon (for example another Windows channel).
    """
    if "Event" in d and isinstance(d["Event"], dict):  # evtx JSON
        ev = d["Event"]
        system = ev.get("System") or {}
        prov = ((system.get("Provider") or {}).get("#attributes") or {}).get("Name", "")
        if prov and prov.lower() != _SYSMON_PROVIDER:
            return None
        created = ((system.get("TimeCreated") or {}).get("#attributes") or {}).get("SystemTime")
        data = ev.get("EventData") or {}
        return _event_id(system.get("EventID")), system.get("Computer"), data if isinstance(data, dict) else {}, created
    w = d.get("winlog")
    if isinstance(w, dict) and "event_data" in w:  # Winlogbeat 7+
        prov = str(w.get("provider_name") or w.get("channel") or "")
        if prov and "sysmon" not in prov.lower():
            return None
        return _event_id(w.get("event_id")), w.get("computer_name") or _host_name(d), w["event_data"] or {}, d.get("@timestamp")
    if "event_data" in d:  # Winlogbeat 6
        prov = str(d.get("source_name") or d.get("log_name") or "")
        if prov and "sysmon" not in prov.lower():
            return None
        return _event_id(d.get("event_id")), d.get("computer_name"), d["event_data"] or {}, d.get("@timestamp")
    if "EventData" in d:  # Azure Log Analytics WindowsEvent
        data = d["EventData"]
        if isinstance(data, str):
            try:
                data = loads(data)
            except ValueError:
                data = {}
        prov = str(d.get("Provider") or d.get("Channel") or "")
        if prov and "sysmon" not in prov.lower():
            return None
        return _event_id(d.get("EventID")), d.get("Computer"), data if isinstance(data, dict) else {}, d.get("TimeGenerated")
    # flat NXLog / OTRF
    prov = str(d.get("SourceName") or d.get("Channel") or "")
    if prov and "sysmon" not in prov.lower():
        return None
    return _event_id(d.get("EventID")), d.get("Hostname") or d.get("Computer"), d, d.get("@timestamp")


def _host_name(d: dict) -> str | None:
    h = d.get("host")
    return h.get("name") if isinstance(h, dict) else None


def _guid(v: Any) -> str | None:
    s = to_str(v)
    return s.strip("{}").lower() if s else None


def sha256_of(hashes: Any) -> str | None:
    """``SHA1=..,MD5=..,SHA256=ABC..,IMPHASH=..`` -> ``abc..`` (lower-case hex) or None."""
    s = to_str(hashes)
    if not s:
        return None
    for part in s.split(","):
        k, _, v = part.partition("=")
        if k.strip().upper() == "SHA256" and v.strip():
            return v.strip().lower()
    if len(s) == 64 and "=" not in s:
        return s.lower()
    return None


def dns_answer_ips(results: Any) -> list[str]:
    """Sysmon ``QueryResults`` (``type:  5 alias.example;::ffff:1.2.3.4;2001:db8::1;``) -> IP strings
    (IPv4-mapped IPv6 unwrapped); CNAME and other typed entries are dropped."""
    s = to_str(results)
    if not s:
        return []
    out = []
    for part in s.split(";"):
        part = part.strip()
        if not part or part.startswith("type:"):
            continue
        ip = normalize_ip(part)
        if ip:
            out.append(ip)
    return out


class SysmonContext:
    """Per-source join tables: DNS answers by (host, ip) (:class:`DnsJoin`), process facts by
    (host, ProcessGuid)."""

    def __init__(self, dns_window_s: float = 3600.0, prefer_dns: bool = True, dns_join: DnsJoin | None = None):
        self.dns = dns_join if dns_join is not None else DnsJoin(dns_window_s)
        self.procs: dict[tuple[str, str], dict] = {}
        self.ended: list[tuple[str, str]] = []
        self.prefer_dns = prefer_dns

    # -- learning from context records
    def add_dns(self, host: str, data: dict, ts_us: int | None) -> None:
        status = to_str(data.get("QueryStatus"))
        name = normalize_domain(to_str(data.get("QueryName")))
        if ts_us is None or not name or (status not in (None, "0")):
            return
        for ip in dns_answer_ips(data.get("QueryResults")):
            self.dns.add(host, ip, ts_us, name)

    def add_process(self, host: str, data: dict) -> None:
        g = _guid(data.get("ProcessGuid"))
        if not g:
            return
        p = self.procs.setdefault((host, g), {})
        h = sha256_of(data.get("Hashes"))
        if h:
            p["process.hash.sha256"] = h
        for src, dst in (("CommandLine", "process.command_line"), ("ParentImage", "process.parent.executable"),
                         ("OriginalFileName", "process.pe.original_file_name")):
            v = to_str(data.get(src))
            if v:
                p[dst] = v
        p["_create"] = True

    def add_image_load(self, host: str, data: dict) -> None:
        image, loaded = to_str(data.get("Image")), to_str(data.get("ImageLoaded"))
        if not image or not loaded or image.lower() != loaded.lower():
            return
        g = _guid(data.get("ProcessGuid"))
        if not g:
            return
        p = self.procs.setdefault((host, g), {})
        h = sha256_of(data.get("Hashes"))
        if h and "process.hash.sha256" not in p:
            p["process.hash.sha256"] = h
        signed = to_str(data.get("Signed"))
        if signed is not None:
            p["process.code_signature.exists"] = signed.lower() == "true"
        sig = to_str(data.get("Signature"))
        if sig:
            p["process.code_signature.subject_name"] = sig
        status = to_str(data.get("SignatureStatus"))
        if status is not None:
            p["process.code_signature.trusted"] = status.lower() == "valid"
        elif signed is not None and signed.lower() == "false":
            p["process.code_signature.trusted"] = False
        ofn = to_str(data.get("OriginalFileName"))
        if ofn and "process.pe.original_file_name" not in p:
            p["process.pe.original_file_name"] = ofn
        p["_signature"] = True

    def end_process(self, host: str, data: dict) -> None:
        g = _guid(data.get("ProcessGuid"))
        if g:
            self.ended.append((host, g))

    # -- enrichment
    def enrich(self, row: dict, stats: ReadStats) -> None:
        host, g = row["host.id"], row.get("process.entity_id")
        p = self.procs.get((host, g)) if g else None
        if p:
            for k, v in p.items():
                if not k.startswith("_"):
                    row[k] = v
            if p.get("_create"):
                stats.enriched["process_create"] += 1
            if p.get("_signature"):
                stats.enriched["signature"] += 1
        event_name = normalize_domain(row.get("destination.domain"))   # DestinationHostname: a reverse lookup
        ip = normalize_ip(row.get("destination.ip"))
        dns = self.dns.answer(host, ip, row.get("_ts"))
        if dns and (self.prefer_dns or not event_name):
            row["destination.domain"], row["raresketch.domain_source"] = dns[1], "dns"
            row["raresketch.dns_answer_time"] = dns[0]
            stats.enriched["domain_dns"] += 1
        elif event_name and not self.prefer_dns:
            row["destination.domain"], row["raresketch.domain_source"] = event_name, "ptr"
        else:   # the command-line URL beats the PTR name (the address's identity, not a destination name)
            h = command_line_url_host(row.get("process.command_line"))
            if h and not is_internal_ip(ip):
                row["destination.domain"], row["raresketch.domain_source"] = h, "command_line"
                stats.enriched["domain_command_line"] += 1
            elif event_name:
                row["destination.domain"], row["raresketch.domain_source"] = event_name, "ptr"

    def after_flush(self) -> None:
        for k in self.ended:
            self.procs.pop(k, None)
        self.ended.clear()
        self.dns.prune()


def network_row(host: str, data: dict, ts: Any) -> dict:
    """EID 3 event data -> row dict (schema columns, raw values)."""
    image = to_str(data.get("Image"))
    if image and image.startswith(("<", "&lt;")):  # "<unknown process>", HTML-escaped in some exports
        image = None
    init = to_str(data.get("Initiated"))
    direction = None if init is None else ("egress" if init.lower() == "true" else "ingress")
    proto = to_str(data.get("Protocol"))
    return {
        "@timestamp": ts,
        "host.id": host.lower(),
        "host.name": host,
        "host.os.type": "windows",
        "process.executable": image,
        "process.pid": to_int(data.get("ProcessId")),
        "process.entity_id": _guid(data.get("ProcessGuid")),
        "user.name": to_str(data.get("User")),
        "destination.ip": to_str(data.get("DestinationIp")),   # normalised by conform (odd forms counted)
        "destination.port": to_int(data.get("DestinationPort")),
        "destination.domain": to_str(data.get("DestinationHostname")),
        "source.ip": to_str(data.get("SourceIp")),
        "source.port": to_int(data.get("SourcePort")),
        "network.transport": proto.lower() if proto else None,
        "network.direction": direction,
    }


class SysmonReader:
    """Streaming state machine shared by the JSON-lines and evtx paths."""

    def __init__(self, batch_size: int, stats: ReadStats, dns_window_s: float = 3600.0, prefer_dns: bool = True,
                 dns_join: DnsJoin | None = None):
        self.batch_size = batch_size
        self.stats = stats
        self.ctx = SysmonContext(dns_window_s, prefer_dns, dns_join)
        self.pending: list[dict] = []

    def feed(self, d: dict) -> pa.Table | None:
        """Consume one decoded record; return a batch when ``batch_size`` network events are pending."""
        stats = self.stats
        norm = normalise_record(d)
        if norm is None:
            stats.skip("not_network_event")
            return None
        eid, host, data, fallback_ts = norm
        raw_ts = data.get("UtcTime") or fallback_ts
        if eid != 3:
            stats.skip("not_network_event")
            host_s = to_str(host)
            if not host_s:
                return None
            host_s = host_s.lower()
            if eid == 22:
                self.ctx.add_dns(host_s, data, parse_timestamp(raw_ts))
            elif eid == 1:
                self.ctx.add_process(host_s, data)
            elif eid == 7:
                self.ctx.add_image_load(host_s, data)
            elif eid == 5:
                self.ctx.end_process(host_s, data)
            return None
        host_s = to_str(host)
        if not host_s:
            stats.skip("missing_host")
            return None
        row = network_row(host_s, data, raw_ts)
        ts_us = parse_timestamp(raw_ts)
        row["_ts"] = ts_us
        self.pending.append(row)
        if len(self.pending) >= self.batch_size:
            return self.flush()
        return None

    def run(self, records: Iterable[dict]) -> Iterator[pa.Table]:
        """Feed decoded records in order; yield each full batch, then what is left at the end."""
        for d in records:
            t = self.feed(d)
            if t is not None:
                yield t
        t = self.flush()
        if t is not None:
            yield t

    def flush(self) -> pa.Table | None:
        if not self.pending:
            return None
        buf = RowBuffer()
        for row in self.pending:
            self.ctx.enrich(row, self.stats)
            buf.append(row)
        self.pending = []
        self.ctx.after_flush()
        return buf.to_table(self.stats)


def read_sysmon(src: Source, batch_size: int, stats: ReadStats, **opts) -> Iterator[pa.Table]:
    """Yield conformed batches of Sysmon network events from a JSON-lines source (any supported shape)."""
    def records() -> Iterator[dict]:
        for line in src.lines():
            stats.read += 1
            d = loads_line(line, stats)
            if d is not None:
                yield d

    return SysmonReader(batch_size, stats, **opts).run(records())


def read_evtx(path: str, batch_size: int, stats: ReadStats, **opts) -> Iterator[pa.Table]:
    """Yield batches from a Windows ``.evtx`` file through the ``evtx`` package.

    Records or chunks the parser cannot read are counted as ``evtx_unreadable`` and skipped; reading goes on
    with the next chunk. Non-Sysmon records (other channels) count as ``not_network_event``.
    """
    try:
        import evtx
    except ImportError as e:  # pragma: no cover
        raise ImportError("reading .evtx needs the 'evtx' package: pip install evtx") from e
    try:
        parser = evtx.PyEvtxParser(path)
    except (OSError, RuntimeError) as e:
        raise ValueError(f"{path}: not a readable evtx file ({e})") from e

    def records() -> Iterator[dict]:
        it = parser.records_json()
        errors_in_row = 0
        while True:
            try:
                rec = next(it)
            except StopIteration:
                return
            except (RuntimeError, OSError, ValueError):
                stats.read += 1
                stats.skip("evtx_unreadable")
                errors_in_row += 1
                if errors_in_row > 100_000:  # a parser stuck on one spot: give up on the file, keep what we have
                    return
                continue
            errors_in_row = 0
            stats.read += 1
            try:
                yield loads(rec["data"])
            except (ValueError, KeyError, TypeError):
                stats.skip("malformed_json")

    yield from SysmonReader(batch_size, stats, **opts).run(records())
