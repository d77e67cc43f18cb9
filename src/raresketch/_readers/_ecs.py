"""ECS JSON lines (Elastic Endpoint, Winlogbeat/Filebeat/Auditbeat output): nested or dotted keys.

A record becomes one event when it looks like a network event: ``event.category`` absent or containing
``network``, and a ``destination.ip`` or ``destination.domain``. Field fallbacks (first present wins):

- ``host.id``: ``host.id``, ``agent.id``, ``host.hostname``, ``host.name`` (lower-cased for names)
- ``destination.domain``: ``destination.domain``, ``destination.address`` when not an IP, ``url.domain``,
  ``tls.client.server_name``
- ``network.direction``: ECS ``outbound``/``egress`` -> ``egress``, ``inbound``/``ingress`` -> ``ingress``

Cost: one ``orjson.loads`` plus one visit of the record's keys that lie on a wanted ECS path.
"""
from __future__ import annotations

from typing import Any, Iterator

import pyarrow as pa

from ..events import EVENT_SCHEMA, normalize_ip
from ._common import ReadStats, RowBuffer, Source, loads_line

# Output column -> ECS paths to try in order.
_PATHS: dict[str, tuple[str, ...]] = {f.name: (f.name,) for f in EVENT_SCHEMA}
_PATHS.update({
    "destination.domain": ("destination.domain", "url.domain", "tls.client.server_name"),
    "process.code_signature.subject_name": ("process.code_signature.subject_name",),
})
_PATHS.pop("raresketch.domain_source")
_PATHS.pop("host.id")


def _prefixes(path: str) -> list[tuple[str, tuple]]:
    parts = path.split(".")
    return [(".".join(parts[:k]), tuple(parts[k:])) for k in range(len(parts), 0, -1)]


_PREFIX_CACHE: dict[tuple, list] = {}


def get_path(d: dict, path: str) -> Any:
    """Value at an ECS dotted path in a record written nested (``{"a": {"b": 1}}``), dotted (``{"a.b": 1}``)
    or mixed. O(depth^2) dict lookups at worst."""
    v = d.get(path)
    if v is not None:
        return v
    return _walk(d, tuple(path.split(".")))


def _walk(node: Any, parts: tuple) -> Any:
    if not parts:
        return node
    if not isinstance(node, dict):
        return None
    pre = _PREFIX_CACHE.get(parts)
    if pre is None:
        pre = _PREFIX_CACHE[parts] = _prefixes(".".join(parts))
    for key, rest in pre:
        if key in node:
            v = _walk(node[key], rest)
            if v is not None:
                return v
    return None


_DIRECTION = {"outbound": "egress", "egress": "egress", "inbound": "ingress", "ingress": "ingress"}

_EXTRA = ("event.category", "destination.address", "host.id", "agent.id", "host.hostname", "host.name")


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


def ecs_row(d: dict, stats: ReadStats) -> dict | None:
    """One ECS record -> a row dict (schema column -> raw value), or None when skipped (counted)."""
    f: dict = {}
    _extract(d, _TREE, f)
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
    hid = f.get("host.id") or f.get("agent.id")
    if hid is None:
        hid = f.get("host.hostname") or f.get("host.name")
        hid = hid.lower() if isinstance(hid, str) else hid
    row["host.id"] = None if hid is None or isinstance(hid, (dict, list)) else str(hid)
    dire = row.get("network.direction")
    if isinstance(dire, str):
        row["network.direction"] = _DIRECTION.get(dire.lower())
    tr = row.get("network.transport")
    if isinstance(tr, str):
        row["network.transport"] = tr.lower()
    os_type = row.get("host.os.type")
    if isinstance(os_type, str):
        row["host.os.type"] = os_type.lower()
    return row


def read_ecs(src: Source, batch_size: int, stats: ReadStats) -> Iterator[pa.Table]:
    """Yield conformed batches of at most ``batch_size`` events from an ECS JSON-lines source."""
    buf = RowBuffer()
    for line in src.lines():
        stats.read += 1
        d = loads_line(line, stats)
        if d is None:
            continue
        row = ecs_row(d, stats)
        if row is None:
            continue
        buf.append(row)
        if len(buf) >= batch_size:
            yield buf.to_table(stats)
    if len(buf):
        yield buf.to_table(stats)
