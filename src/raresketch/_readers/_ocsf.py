"""OCSF Network Activity (``class_uid`` 4001) JSON lines (or a JSON array per line is not supported).

Mapping (OCSF 1.x attribute -> column): ``time`` (epoch ms) or ``time_dt`` -> ``@timestamp``;
``device.uid`` / ``device.hostname`` / ``device.name`` -> ``host.id``; ``device.os.type`` -> ``host.os.type``;
``actor.process``: ``file.path`` -> ``executable``, ``name``, ``pid``, ``uid`` -> ``entity_id``, ``cmd_line``,
``file.hashes[algorithm_id=3 | algorithm=SHA-256]``, ``file.signature.certificate.subject`` ->
``code_signature.subject_name`` (``.exists`` True when a signature object is present, ``.trusted`` =
``state_id == 1`` (Valid) when a state is given), ``parent_process.file.path``/``name``;
``actor.user.name``; ``dst_endpoint.ip``/``port``/``domain``/``hostname``; ``src_endpoint.ip``/``port``;
``connection_info.protocol_name``; ``connection_info.direction_id`` 1 -> ingress, 2 -> egress.
"""
from __future__ import annotations

from typing import Any, Iterator

import pyarrow as pa

from ..events._values import to_int, to_str
from ._rows import read_json_rows
from ._source import Source
from ._stats import ReadStats


def _g(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


_OS = {"windows": "windows", "linux": "linux", "macos": "macos", "mac os": "macos", "darwin": "macos"}


def _sha256(file: Any) -> str | None:
    for h in _g(file, "hashes") or []:
        if isinstance(h, dict) and (h.get("algorithm_id") == 3 or str(h.get("algorithm", "")).upper().replace("-", "") == "SHA256"):
            v = to_str(h.get("value"))
            return v.lower() if v else None
    return None


def ocsf_row(d: dict, stats: ReadStats) -> dict | None:
    if to_int(d.get("class_uid")) != 4001:
        stats.skip("wrong_ocsf_class")
        return None
    dev = d.get("device") or {}
    proc = _g(d, "actor", "process") or {}
    file = proc.get("file") or {}
    sig = file.get("signature")
    parent = proc.get("parent_process") or {}
    dst, src = d.get("dst_endpoint") or {}, d.get("src_endpoint") or {}
    conn = d.get("connection_info") or {}
    hostname = to_str(dev.get("hostname") or dev.get("name"))
    host_id = to_str(dev.get("uid")) or (hostname.lower() if hostname else None)
    os_type = to_str(_g(dev, "os", "type") or _g(dev, "os", "name"))
    direction = {1: "ingress", 2: "egress"}.get(to_int(conn.get("direction_id")))
    proto = to_str(conn.get("protocol_name"))
    signer = to_str(_g(sig, "certificate", "subject")) if isinstance(sig, dict) else None
    state = to_int(sig.get("state_id")) if isinstance(sig, dict) else None
    row = {
        "@timestamp": d.get("time") if d.get("time") is not None else d.get("time_dt"),
        "host.id": host_id,
        "host.name": hostname,
        "host.os.type": _OS.get(os_type.lower(), os_type.lower()) if os_type else None,
        "process.executable": to_str(file.get("path")),
        "process.name": to_str(proc.get("name") or file.get("name")),
        "process.pid": to_int(proc.get("pid")),
        "process.entity_id": to_str(proc.get("uid")),
        "process.command_line": to_str(proc.get("cmd_line")),
        "process.hash.sha256": _sha256(file),
        "process.code_signature.subject_name": signer,
        "process.code_signature.exists": True if isinstance(sig, dict) else None,
        "process.code_signature.trusted": None if state is None else state == 1,
        "process.parent.executable": to_str(_g(parent, "file", "path")),
        "process.parent.name": to_str(parent.get("name")),
        "user.name": to_str(_g(d, "actor", "user", "name")),
        "destination.ip": to_str(dst.get("ip")),
        "destination.port": to_int(dst.get("port")),
        "destination.domain": to_str(dst.get("domain") or dst.get("hostname")),
        "source.ip": to_str(src.get("ip")),
        "source.port": to_int(src.get("port")),
        "network.transport": proto.lower() if proto else None,
        "network.direction": direction,
    }
    if row["destination.ip"] is None and row["destination.domain"] is None:
        stats.skip("no_destination")
        return None
    return row


def read_ocsf(src: Source, batch_size: int, stats: ReadStats) -> Iterator[pa.Table]:
    """Yield conformed batches from OCSF JSON lines; other classes are counted and skipped."""
    return read_json_rows(src, batch_size, stats, ocsf_row)
