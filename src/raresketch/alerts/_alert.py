"""The :class:`Alert` record: which rule fired on which event, the triggering event's fields under their ECS
names, and the figures that made it fire."""
from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from ._rules import ALERTS, RULES, AlertDefinition

__all__ = ["Alert", "EVENT_FIELDS"]

#: The triggering event's fields an alert carries (ECS names, in the order the ECS document nests them).
EVENT_FIELDS: tuple[str, ...] = (
    "host.id", "host.name", "user.name", "process.name", "process.executable", "process.pid",
    "process.command_line", "process.hash.sha256", "process.parent.name", "destination.domain", "destination.ip",
    "destination.port", "raresketch.domain_source", "raresketch.dns_answer_time")


@dataclass
class Alert:
    """One alert: which rule fired on which event, and the figures that made it fire (``evidence``).

    ``event`` holds the triggering event's :data:`EVENT_FIELDS` under their ECS names (``alert.event["host.name"]``);
    ``destination`` is what dedup keys on (the cloud resource, else the IM destination's name or address).
    """

    detector: str
    variation: str
    timestamp: _dt.datetime
    process_key: str | None
    destination: str
    event: dict[str, Any] = field(default_factory=dict)
    variations: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    cloud_resource: str | None = None
    im_service: str | None = None
    #: Position of the event among all events the engine processed (sorted by time within each batch).
    row: int | None = None
    #: How the destination was identified (``method``: event | dns_answer | command_line | ptr | address, with
    #: the DNS answer's time, ``inferred``, the provider network and its list's date where they apply).
    identified_by: dict[str, Any] = field(default_factory=dict)
    #: A severity the alert was raised to (global prevalence: a resource no other organisation holds), else None.
    raised_to: str | None = None

    @property
    def definition(self) -> AlertDefinition:
        d = ALERTS[(self.detector, self.variation)]
        return d if self.raised_to is None else dataclasses.replace(d, severity=self.raised_to)

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def severity(self) -> str:
        return self.definition.severity

    @property
    def host_id(self) -> str:
        return self.event.get("host.id")

    def message(self) -> str:
        """What happened, in one sentence (the rule file's ``message``, filled from the event and evidence):
        e.g. ``powershell.exe on WS-0037 connected to aws/s3/docs-glade, a cloud resource 0 of 140 agents used
        in 30 days``."""
        rule = RULES[self.detector]
        e = self.event
        values = {"process": e.get("process.name") or self.process_key or "a process",
                  "host": e.get("host.name") or self.host_id, "destination": self.destination,
                  "cloud_resource": self.cloud_resource, "im_service": self.im_service,
                  "process_key": self.process_key}
        values.update({k: ", ".join(v) if isinstance(v, list) else v for k, v in self.evidence.items()
                       if not isinstance(v, dict)})
        return (rule.message or self.definition.description).format_map(_Missing(values))

    def explain(self) -> str:
        """A one-line reason an analyst can read: the rule's sentence, then the clause of each matched
        variation, least specific first (texts in ``data/rules``)."""
        rule = RULES[self.detector]
        values = {"cloud_resource": self.cloud_resource, "process_key": self.process_key,
                  "im_service": self.im_service}
        values.update({k: ", ".join(v) if isinstance(v, list) else v for k, v in self.evidence.items()})
        parts = [rule.why.format_map(_Missing(values))]
        for d in reversed(rule.variations):
            if d.why and d.variation in self.variations:
                parts.append(d.why.format_map(_Missing(values)))
        return "; ".join(parts)


class _Missing(dict):
    """Format values; a key the evidence lacks reads ``None`` (as ``dict.get`` did)."""

    def __missing__(self, key: str) -> None:
        return None
