"""Alerts as OCSF 1.1 Detection Findings (class_uid 2004, activity Create)."""
from __future__ import annotations

from typing import Any

from .._version import __version__
from ._alert import Alert
from ._ecs import SEVERITY_ID, drop_none, json_safe

__all__ = ["to_ocsf"]


def to_ocsf(alert: Alert) -> dict[str, Any]:
    """The alert as an OCSF 1.1 Detection Finding (class_uid 2004, activity Create)."""
    d = alert.definition
    e = alert.event
    t_ms = int(alert.timestamp.timestamp() * 1000)
    sha = e.get("process.hash.sha256")
    return drop_none({
        "class_uid": 2004, "class_name": "Detection Finding", "category_uid": 2, "category_name": "Findings",
        "activity_id": 1, "activity_name": "Create", "type_uid": 200401, "type_name": "Detection Finding: Create",
        "time": t_ms, "severity_id": SEVERITY_ID[d.severity], "severity": d.severity.capitalize(), "status_id": 1,
        "status": "New", "message": alert.message(),
        "metadata": {"version": "1.1.0", "product": {"name": "raresketch", "vendor_name": "raresketch",
                                                     "version": __version__}},
        "finding_info": {"uid": f"{alert.host_id}:{d.id}:{t_ms}:{alert.destination}",
                         "title": d.name, "desc": d.description, "types": [d.detector],
                         "created_time": t_ms,
                         "analytic": {"name": d.name, "uid": f"raresketch.{d.id}",
                                      "type_id": 3, "type": "Statistical"},
                         "attacks": [_attack(d)]},
        "device": {"uid": alert.host_id, "hostname": e.get("host.name"), "type_id": 0},
        "actor": {"process": {"name": e.get("process.name"), "pid": e.get("process.pid"),
                              "cmd_line": e.get("process.command_line"),
                              "file": {"path": e.get("process.executable"), "name": e.get("process.name"),
                                       "hashes": [{"algorithm_id": 3, "algorithm": "SHA-256", "value": sha}]
                                       if sha else None},
                              "parent_process": {"name": e.get("process.parent.name")}},
                  "user": {"name": e.get("user.name")}},
        "evidences": [{"dst_endpoint": {"hostname": e.get("destination.domain"), "ip": e.get("destination.ip"),
                                        "port": e.get("destination.port")}}],
        "unmapped": {"raresketch": {"variations": list(alert.variations), "destination": alert.destination,
                                    "cloud_resource": alert.cloud_resource, "im_service": alert.im_service,
                                    "evidence": dict(alert.evidence), "why": alert.explain(),
                                    "destination_identified_by": json_safe(dict(alert.identified_by)),
                                    "attacker_goals": d.attacker_goals,
                                    "investigative_actions": list(d.investigative_actions)}},
    })


def _attack(d) -> dict[str, Any]:
    """OCSF ``attack``: tactic, technique and (for ``T1071.001``) the sub-technique, as OCSF 1.1 defines them."""
    out: dict[str, Any] = {"version": "15", "tactic": {"uid": d.tactic_id, "name": d.tactic_name}}
    if "." in d.technique_id:
        parent, _, sub = d.technique_name.partition(": ")
        out["technique"] = {"uid": d.technique_id.split(".", 1)[0], "name": parent}
        out["sub_technique"] = {"uid": d.technique_id, "name": sub or d.technique_name}
    else:
        out["technique"] = {"uid": d.technique_id, "name": d.technique_name}
    return out
