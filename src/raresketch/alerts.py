"""Alerts: the six alert definitions (from ``data/alerts.toml``), the :class:`Alert` record, and its output as
ECS-style JSON (``to_ecs``), OCSF Detection Finding JSON (class 2004, ``to_ocsf``) and Arrow tables."""
from __future__ import annotations

import datetime as _dt
import json
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import IO, Any, Iterable

import pyarrow as pa


__all__ = ["Alert", "AlertDefinition", "ALERTS", "ALERT_NAMES", "DETECTORS", "to_ecs", "to_ocsf", "write_alerts",
           "alerts_to_table"]

_SEVERITY_ID = {"informational": 1, "low": 2, "medium": 3, "high": 4}


@dataclass(frozen=True)
class AlertDefinition:
    """One alert of the catalogue: name, severity, ATT&CK mapping and analyst texts."""

    detector: str
    variation: str
    name: str
    severity: str
    description: str
    tactic_id: str
    tactic_name: str
    technique_id: str
    technique_name: str
    attacker_goals: str
    investigative_actions: tuple[str, ...]


def _load_definitions() -> dict[tuple[str, str], AlertDefinition]:
    raw = tomllib.loads(resources.files("raresketch").joinpath("data/alerts.toml").read_text("utf-8"))
    out = {}
    for det, d in raw["detectors"].items():
        for a in d["alerts"]:
            out[(det, a["variation"])] = AlertDefinition(
                det, a["variation"], a["name"], a["severity"], a["description"], d["tactic"]["id"],
                d["tactic"]["name"], d["technique"]["id"], d["technique"]["name"], d["attacker_goals"],
                tuple(d["investigative_actions"]))
    return out


#: (detector, variation) -> AlertDefinition, for the six alerts.
ALERTS: dict[tuple[str, str], AlertDefinition] = _load_definitions()
#: The six alert names.
ALERT_NAMES: tuple[str, ...] = tuple(a.name for a in ALERTS.values())
#: Detector ids -> their variations, least to most specific.
DETECTORS: dict[str, tuple[str, ...]] = {}
for (_det, _var) in ALERTS:
    DETECTORS.setdefault(_det, ())
    DETECTORS[_det] += (_var,)


@dataclass
class Alert:
    """One alert: which rule fired on which event, and the figures that made it fire (``evidence``)."""

    detector: str
    variation: str
    timestamp: _dt.datetime
    host_id: str
    process_key: str | None
    destination: str
    variations: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    host_name: str | None = None
    user_name: str | None = None
    process_name: str | None = None
    process_executable: str | None = None
    process_pid: int | None = None
    process_hash: str | None = None
    process_command_line: str | None = None
    process_parent_name: str | None = None
    destination_domain: str | None = None
    destination_ip: str | None = None
    destination_port: int | None = None
    cloud_resource: str | None = None
    im_service: str | None = None
    #: Position of the event among all events the engine processed (sorted by time within each batch).
    row: int | None = None

    @property
    def definition(self) -> AlertDefinition:
        return ALERTS[(self.detector, self.variation)]

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def severity(self) -> str:
        return self.definition.severity

    def explain(self) -> str:
        """A one-line reason an analyst can read."""
        ev = self.evidence
        if self.detector == "rare_cloud":
            why = (f"{ev.get('prevalence')} of {ev.get('active_agents')} agents contacted {self.cloud_resource} in "
                   f"{ev.get('window_days')} days (rare <= {ev.get('rare_threshold')}); first contact by this process")
            if "atypical" in self.variations:
                why += f"; process used {ev.get('service_kind')} on {ev.get('process_kind_agents')} agents"
            if "atypical_to_agent" in self.variations:
                why += f"; agent never used {ev.get('service_kind')}"
        else:
            why = (f"{self.process_key} talked to {self.im_service} on {ev.get('process_im_agents')} agents / "
                   f"{ev.get('process_im_agent_days')} agent-days in {ev.get('window_days')} days")
            if ev.get("suspicious_signals"):
                why += "; suspicious: " + ", ".join(ev["suspicious_signals"])
            if ev.get("script_engine_signals"):
                why += "; uncommon script: " + ", ".join(ev["script_engine_signals"])
        return why


def _iso(ts: _dt.datetime) -> str:
    return ts.astimezone(_dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            v = _drop_none(v)
            if not v:
                continue
        if v is not None:
            out[k] = v
    return out


def to_ecs(alert: Alert) -> dict[str, Any]:
    """The alert as a nested ECS-style document (``event.kind: "alert"``, ``rule.*``, ``threat.*``)."""
    d = alert.definition
    return _drop_none({
        "@timestamp": _iso(alert.timestamp),
        "message": d.description,
        "event": {"kind": "alert", "category": ["network", "threat"], "type": ["connection", "indicator"],
                  "module": "raresketch", "dataset": "raresketch.alerts", "severity": _SEVERITY_ID[d.severity]},
        "rule": {"name": d.name, "id": f"raresketch.{d.detector}.{d.variation}", "description": d.description,
                 "category": d.detector, "ruleset": "raresketch"},
        "threat": {"framework": "MITRE ATT&CK",
                   "tactic": {"id": d.tactic_id, "name": d.tactic_name,
                              "reference": f"https://attack.mitre.org/tactics/{d.tactic_id}/"},
                   "technique": {"id": d.technique_id, "name": d.technique_name,
                                 "reference": "https://attack.mitre.org/techniques/"
                                              + d.technique_id.replace(".", "/") + "/"}},
        "host": {"id": alert.host_id, "name": alert.host_name},
        "user": {"name": alert.user_name},
        "process": {"name": alert.process_name, "executable": alert.process_executable, "pid": alert.process_pid,
                    "command_line": alert.process_command_line, "hash": {"sha256": alert.process_hash},
                    "parent": {"name": alert.process_parent_name}},
        "destination": {"domain": alert.destination_domain, "ip": alert.destination_ip,
                        "port": alert.destination_port},
        "raresketch": {"detector": d.detector, "variation": d.variation, "severity": d.severity,
                       "variations": list(alert.variations), "destination": alert.destination,
                       "process_key": alert.process_key, "cloud": {"resource": alert.cloud_resource},
                       "im": {"service": alert.im_service}, "evidence": dict(alert.evidence),
                       "why": alert.explain(), "attacker_goals": d.attacker_goals,
                       "investigative_actions": list(d.investigative_actions)},
    })


def to_ocsf(alert: Alert) -> dict[str, Any]:
    """The alert as an OCSF 1.1 Detection Finding (class_uid 2004, activity Create)."""
    d = alert.definition
    t_ms = int(alert.timestamp.timestamp() * 1000)
    sev = _SEVERITY_ID[d.severity]
    return _drop_none({
        "class_uid": 2004, "class_name": "Detection Finding", "category_uid": 2, "category_name": "Findings",
        "activity_id": 1, "activity_name": "Create", "type_uid": 200401, "type_name": "Detection Finding: Create",
        "time": t_ms, "severity_id": sev, "severity": d.severity.capitalize(), "status_id": 1, "status": "New",
        "message": d.description,
        "metadata": {"version": "1.1.0", "product": {"name": "raresketch", "vendor_name": "raresketch",
                                                     "version": _package_version()}},
        "finding_info": {"uid": f"{alert.host_id}:{d.detector}.{d.variation}:{t_ms}:{alert.destination}",
                         "title": d.name, "desc": d.description, "types": [d.detector],
                         "created_time": t_ms,
                         "analytic": {"name": d.name, "uid": f"raresketch.{d.detector}.{d.variation}",
                                      "type_id": 3, "type": "Statistical"},
                         "attacks": [{"version": "15", "tactic": {"uid": d.tactic_id, "name": d.tactic_name},
                                      "technique": {"uid": d.technique_id, "name": d.technique_name}}]},
        "device": {"uid": alert.host_id, "hostname": alert.host_name, "type_id": 0},
        "actor": {"process": {"name": alert.process_name, "pid": alert.process_pid,
                              "cmd_line": alert.process_command_line,
                              "file": {"path": alert.process_executable, "name": alert.process_name,
                                       "hashes": [{"algorithm_id": 3, "algorithm": "SHA-256",
                                                   "value": alert.process_hash}] if alert.process_hash else None},
                              "parent_process": {"name": alert.process_parent_name}},
                  "user": {"name": alert.user_name}},
        "evidences": [{"dst_endpoint": {"hostname": alert.destination_domain, "ip": alert.destination_ip,
                                        "port": alert.destination_port}}],
        "unmapped": {"raresketch": {"variations": list(alert.variations), "destination": alert.destination,
                                    "cloud_resource": alert.cloud_resource, "im_service": alert.im_service,
                                    "evidence": dict(alert.evidence), "why": alert.explain(),
                                    "attacker_goals": d.attacker_goals,
                                    "investigative_actions": list(d.investigative_actions)}},
    })


def _package_version() -> str:
    from . import __version__

    return __version__


def write_alerts(alerts: Iterable[Alert], out: IO[str], output_format: str = "ecs") -> int:
    """Write alerts as JSON lines (``ecs`` or ``ocsf``) to a text stream; returns the number written."""
    conv = {"ecs": to_ecs, "ocsf": to_ocsf}.get(output_format)
    if conv is None:
        raise ValueError(f"output format must be 'ecs' or 'ocsf', not {output_format!r}")
    n = 0
    for a in alerts:
        out.write(json.dumps(conv(a), separators=(",", ":"), default=str))
        out.write("\n")
        n += 1
    return n


ALERT_TABLE_SCHEMA = pa.schema([
    pa.field("@timestamp", pa.timestamp("us", tz="UTC")),
    pa.field("rule.name", pa.string()),
    pa.field("event.severity", pa.string()),
    pa.field("raresketch.detector", pa.string()),
    pa.field("raresketch.variation", pa.string()),
    pa.field("host.id", pa.string()),
    pa.field("host.name", pa.string()),
    pa.field("process.name", pa.string()),
    pa.field("process.executable", pa.string()),
    pa.field("raresketch.process_key", pa.string()),
    pa.field("destination.domain", pa.string()),
    pa.field("destination.ip", pa.string()),
    pa.field("raresketch.destination", pa.string()),
    pa.field("threat.tactic.id", pa.string()),
    pa.field("threat.technique.id", pa.string()),
    pa.field("raresketch.why", pa.string()),
    pa.field("raresketch.evidence", pa.string()),  # JSON
])


def alerts_to_table(alerts: Iterable[Alert]) -> pa.Table:
    """Alerts as an Arrow table with ECS column names (evidence as a JSON string)."""
    rows = {f.name: [] for f in ALERT_TABLE_SCHEMA}
    for a in alerts:
        d = a.definition
        vals = [a.timestamp, d.name, d.severity, d.detector, d.variation, a.host_id, a.host_name, a.process_name,
                a.process_executable, a.process_key, a.destination_domain, a.destination_ip, a.destination,
                d.tactic_id, d.technique_id, a.explain(), json.dumps(a.evidence, default=str, sort_keys=True)]
        for f, v in zip(ALERT_TABLE_SCHEMA, vals):
            rows[f.name].append(v)
    return pa.table(rows, schema=ALERT_TABLE_SCHEMA)

