"""Alerts as an Arrow table with ECS column names (what Spark's ``score`` returns)."""
from __future__ import annotations

import json
from typing import Iterable

import pyarrow as pa

from ._alert import Alert

__all__ = ["ALERT_TABLE_SCHEMA", "alerts_to_table"]

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
    pa.field("threat.technique.subtechnique.id", pa.string()),
    pa.field("message", pa.string()),
    pa.field("raresketch.why", pa.string()),
    pa.field("raresketch.destination_identified_by", pa.string()),  # JSON
    pa.field("raresketch.evidence", pa.string()),  # JSON
])


def alerts_to_table(alerts: Iterable[Alert]) -> pa.Table:
    """Alerts as an Arrow table of :data:`ALERT_TABLE_SCHEMA` (evidence as a JSON string)."""
    rows: dict[str, list] = {f.name: [] for f in ALERT_TABLE_SCHEMA}
    for a in alerts:
        d = a.definition
        vals = {"@timestamp": a.timestamp, "rule.name": d.name, "event.severity": d.severity,
                "raresketch.detector": d.detector, "raresketch.variation": d.variation,
                "raresketch.process_key": a.process_key, "raresketch.destination": a.destination,
                "threat.tactic.id": d.tactic_id, "threat.technique.id": d.technique_id.split(".", 1)[0],
                "threat.technique.subtechnique.id": d.technique_id if "." in d.technique_id else None,
                "message": a.message(),
                "raresketch.destination_identified_by": json.dumps(a.identified_by, default=str, sort_keys=True),
                "raresketch.why": a.explain(), "raresketch.evidence": json.dumps(a.evidence, default=str,
                                                                                sort_keys=True)}
        for name, col in rows.items():
            col.append(vals[name] if name in vals else a.event.get(name))
    return pa.table(rows, schema=ALERT_TABLE_SCHEMA)
