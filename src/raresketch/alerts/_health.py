"""Health events: what the engine noticed about a sensor rather than about traffic — a host whose clock puts its
events outside the training window. Written into the same stream as the alerts (ECS ``event.kind: "event"``,
``event.dataset: raresketch.health``) so a SIEM sees them."""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

__all__ = ["HealthEvent", "health_to_ecs"]


@dataclass
class HealthEvent:
    """A host whose events were dropped for their time: ``reason`` is ``clock_behind`` (dated a training window
    or more before the stream: counted ``too_old``) or ``clock_ahead`` (dated past the wall clock plus
    ``max_future_days``: counted ``skipped_future``). ``skew_days`` is how far the host's newest such event is
    from the stream's day (behind: positive) or from the wall clock's (ahead: negative)."""

    timestamp: _dt.datetime          # the stream's event time when it was noticed
    host_id: str
    host_name: str | None
    reason: str
    events: int
    first_event: _dt.datetime
    last_event: _dt.datetime
    skew_days: int

    @property
    def message(self) -> str:
        who = self.host_name or self.host_id
        if self.reason == "clock_behind":
            return (f"{who}: {self.events} events dated {self.skew_days} days behind the stream were not learned "
                    "or scored (clock running slow, or a replayed backlog?)")
        return (f"{who}: {self.events} events dated {-self.skew_days} days past the wall clock were not learned "
                "or scored (clock running fast?)")


def _iso(ts: _dt.datetime) -> str:
    return ts.astimezone(_dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def health_to_ecs(h: HealthEvent) -> dict[str, Any]:
    """The health event as an ECS document (``event.kind: "event"``, ``event.dataset: raresketch.health``)."""
    host = {"id": h.host_id}
    if h.host_name is not None:
        host["name"] = h.host_name
    return {
        "@timestamp": _iso(h.timestamp),
        "message": h.message,
        "event": {"kind": "event", "category": ["host"], "type": ["info"], "module": "raresketch",
                  "dataset": "raresketch.health", "action": h.reason, "severity": 2},
        "host": host,
        "raresketch": {"health": {"reason": h.reason, "events": h.events, "first_event": _iso(h.first_event),
                                  "last_event": _iso(h.last_event), "skew_days": h.skew_days}},
    }
