"""Alerts (and health events) written as JSON lines."""
from __future__ import annotations

import json
from typing import IO, Iterable

from ._alert import Alert
from ._ecs import to_ecs
from ._health import HealthEvent, health_to_ecs
from ._ocsf import to_ocsf

__all__ = ["write_alerts"]


def write_alerts(alerts: Iterable[Alert], out: IO[str], output_format: str = "ecs") -> int:
    """Write alerts as JSON lines (``ecs`` or ``ocsf``) to a text stream; returns the number written.
    :class:`~raresketch.alerts.HealthEvent` items are written as ECS health documents in either format."""
    conv = {"ecs": to_ecs, "ocsf": to_ocsf}.get(output_format)
    if conv is None:
        raise ValueError(f"output format must be 'ecs' or 'ocsf', not {output_format!r}")
    n = 0
    for a in alerts:
        doc = health_to_ecs(a) if isinstance(a, HealthEvent) else conv(a)
        out.write(json.dumps(doc, separators=(",", ":"), default=str))
        out.write("\n")
        n += 1
    return n
