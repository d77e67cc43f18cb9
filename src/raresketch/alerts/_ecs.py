"""Alerts as ECS-style JSON documents (``event.kind: "alert"``, ``rule.*``, ``threat.*``) and JSON lines."""
from __future__ import annotations

import datetime as _dt
from typing import Any

from ._alert import EVENT_FIELDS, Alert

__all__ = ["to_ecs", "SEVERITY_ID"]

#: ECS ``event.severity`` / OCSF ``severity_id`` of each severity.
SEVERITY_ID = {"informational": 1, "low": 2, "medium": 3, "high": 4}


def iso(ts: _dt.datetime) -> str:
    """ISO 8601 in UTC with microseconds and a ``Z``."""
    return ts.astimezone(_dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    """The dict without None values and without sub-dicts left empty by that, recursively, also inside lists
    (an element left empty is dropped; a list left empty is dropped). Unknown fields are omitted, never null."""
    out = {}
    for k, v in d.items():
        v = _drop(v)
        if v is not None:
            out[k] = v
    return out


def _drop(v: Any) -> Any:
    if isinstance(v, dict):
        v = drop_none(v)
        return v or None
    if isinstance(v, list):
        items = [x for x in (_drop(x) for x in v) if x is not None]
        return items if items or not v else None
    return v


def technique(technique_id: str, technique_name: str) -> dict[str, Any]:
    """ECS ``threat.technique``: the technique's id and name, and for a sub-technique (``T1071.001``,
    ``Application Layer Protocol: Web Protocols``) the parent technique with ``subtechnique`` inside, as ECS
    defines them."""
    def ref(i: str) -> str:
        return "https://attack.mitre.org/techniques/" + i.replace(".", "/") + "/"

    if "." not in technique_id:
        return {"id": technique_id, "name": technique_name, "reference": ref(technique_id)}
    parent_id = technique_id.split(".", 1)[0]
    parent_name, _, sub_name = technique_name.partition(": ")
    return {"id": parent_id, "name": parent_name, "reference": ref(parent_id),
            "subtechnique": {"id": technique_id, "name": sub_name or technique_name, "reference": ref(technique_id)}}


def json_safe(v: Any) -> Any:
    """Datetimes as ISO 8601 strings (recursively through dicts and lists); other values unchanged."""
    if isinstance(v, _dt.datetime):
        return iso(v)
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [json_safe(x) for x in v]
    return v


def _nest(fields: dict[str, Any]) -> dict[str, Any]:
    """``{"host.id": x, "host.name": y}`` -> ``{"host": {"id": x, "name": y}}`` (in the order given)."""
    out: dict[str, Any] = {}
    for path, v in fields.items():
        *parents, leaf = path.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


def to_ecs(alert: Alert) -> dict[str, Any]:
    """The alert as a nested ECS-style document (``event.kind: "alert"``, ``rule.*``, ``threat.*``)."""
    d = alert.definition
    doc = {
        "@timestamp": iso(alert.timestamp),
        "message": alert.message(),
        "event": {"kind": "alert", "category": ["network", "threat"], "type": ["connection", "indicator"],
                  "module": "raresketch", "dataset": "raresketch.alerts", "severity": SEVERITY_ID[d.severity]},
        "rule": {"name": d.name, "id": f"raresketch.{d.id}", "description": d.description,
                 "category": d.detector, "ruleset": "raresketch"},
        "threat": {"framework": "MITRE ATT&CK",
                   "tactic": {"id": d.tactic_id, "name": d.tactic_name,
                              "reference": f"https://attack.mitre.org/tactics/{d.tactic_id}/"},
                   "technique": technique(d.technique_id, d.technique_name)},
    }
    doc.update(_nest({f: alert.event.get(f) for f in EVENT_FIELDS if not f.startswith("raresketch.")}))
    doc["raresketch"] = {"detector": d.detector, "variation": d.variation, "severity": d.severity,
                         "variations": list(alert.variations), "destination": alert.destination,
                         "process_key": alert.process_key, "cloud": {"resource": alert.cloud_resource},
                         "im": {"service": alert.im_service}, "evidence": dict(alert.evidence),
                         "destination_identified_by": json_safe(dict(alert.identified_by)),
                         "why": alert.explain(), "attacker_goals": d.attacker_goals,
                         "investigative_actions": list(d.investigative_actions)}
    return drop_none(doc)
