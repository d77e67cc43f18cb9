"""Scoring a detector's alerts against the simulator's ground truth."""
from __future__ import annotations

from typing import Any, Sequence

import pyarrow as pa

__all__ = ["match_ground_truth"]


def match_ground_truth(alerts: Sequence[Any], ground_truth: pa.Table) -> tuple[list[list[int]], list[int]]:
    """Which alerts explain which injected bursts.

    An alert matches a ground-truth row when it is on the same host, to the same destination (domain, else IP),
    within the burst's time span. Returns, per ground-truth row, the indices of matching alerts, and the
    indices of alerts that match no row (false positives if the simulator's benign traffic is benign).
    ``alerts`` are :class:`raresketch.Alert` (``timestamp`` and the ECS ``event`` fields ``host.id``,
    ``destination.domain``, ``destination.ip``).  O(rows x alerts) time: meant for ground truths of tens of rows.
    """
    used: set[int] = set()
    hits: list[list[int]] = []
    for g in ground_truth.to_pylist():
        found = [k for k, a in enumerate(alerts)
                 if a.event.get("host.id") == g["host.id"] and g["@timestamp"] <= a.timestamp <= g["end"]
                 and ((g["destination.domain"] is not None and a.event.get("destination.domain") == g["destination.domain"])
                      or (g["destination.domain"] is None and a.event.get("destination.ip") == g["destination.ip"]))]
        used.update(found)
        hits.append(found)
    return hits, [k for k in range(len(alerts)) if k not in used]
