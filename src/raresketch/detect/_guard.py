"""The per-alert gates, one implementation for the Engine and Spark: dedup, then the volume guards.

- Dedup: the same (alert, agent, process, destination) fires at most once per ``dedup_hours`` of event time. Exact:
  a dict of the keys alerted within the window (emitted alerts are few — bounded by the volume guards — so this
  is small), with the duplicates suppressed since each key's last alert (``suppressed_since_last``).
- Volume: a detector that emitted ``max_alerts_per_day`` alerts on a day of event time pauses for the rest of that
  day, and so does one agent after ``max_alerts_per_agent_day`` (so one flooding host cannot spend the budget).
Every suppression is counted by reason; a pause is reported once as a warning.
"""
from __future__ import annotations

import datetime as _dt
from collections import Counter
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from .._core import hash64, hash_pair
from ..config import Config

__all__ = ["Guard", "dedup_key"]

_US_PER_MIN = 60_000_000


def dedup_key(alert_id: str, agent: int, process: int, destination: str | None) -> int:
    """The 64-bit dedup key of an alert: ``alert_id`` is ``<detector>.<variation>``, ``agent`` and ``process``
    the 64-bit keys of host.id and the process key, ``destination`` what the alert names (resource or IM host)."""
    return int(hash_pair(hash_pair(hash64(alert_id), agent), hash_pair(process, hash64(destination or "")))[0])


def _date(day: int) -> _dt.date:
    return _dt.date.fromordinal(719163 + day)


class Guard:
    """Dedup and volume guards over a stream of would-be alerts, in event-time order.

    ``suppressed`` (a Counter, shared with the caller) receives the counts by reason: ``dedup``,
    ``volume_guard``, ``volume_guard_agent``; ``warn(key, message)`` is called when a detector or agent pauses.
    Memory: O(alerts in the dedup window + detector/agent-days with alerts), pruned as time advances.
    """

    def __init__(self, config: Config, suppressed: Counter | None = None,
                 warn: Callable[[str, str], None] | None = None):
        self.config = config
        self.suppressed: Counter = suppressed if suppressed is not None else Counter()
        self._warn = warn or (lambda key, msg: None)
        self.last: dict[int, list[int]] = {}        # dedup key -> [suppressed since last alert, last alert minute]
        self.volume: dict[tuple, int] = {}           # (detector, day[, agent]) -> alerts emitted

    def admit(self, alert_id: str, agent: int, process: int, destination: str | None, t_min: int, day: int,
              host_id: str) -> int | None:
        """None if the alert is suppressed (counted), else the number of its duplicates suppressed since its
        key's last alert. ``t_min``: event time in minutes since the epoch; ``day``: its day. O(1)."""
        cfg = self.config
        key = dedup_key(alert_id, agent, process, destination)
        window = int(cfg.dedup_hours * 60)
        entry = self.last.get(key)
        if entry is not None and window > 0 and t_min - entry[1] < window:
            self.suppressed["dedup"] += 1
            entry[0] += 1
            return None
        det = alert_id.split(".", 1)[0]
        vkey, akey = (det, day), (det, day, host_id)
        if self.volume.get(vkey, 0) >= cfg.max_alerts_per_day:
            self.suppressed["volume_guard"] += 1
            self._warn(f"volume:{det}:{day}", f"{det}: {cfg.max_alerts_per_day} alerts on day {_date(day)}; paused "
                                              "until the next day (raise max_alerts_per_day, or allow-list the noise)")
            return None
        if cfg.max_alerts_per_agent_day is not None and self.volume.get(akey, 0) >= cfg.max_alerts_per_agent_day:
            self.suppressed["volume_guard_agent"] += 1
            self._warn(f"volume:{det}:{day}:{host_id}",
                       f"{det}: {cfg.max_alerts_per_agent_day} alerts from agent {host_id} on day {_date(day)}; "
                       "that agent is paused until the next day")
            return None
        self.volume[vkey] = self.volume.get(vkey, 0) + 1
        self.volume[akey] = self.volume.get(akey, 0) + 1
        prev = self.last.pop(key, None)
        self.last[key] = [0, t_min]
        return prev[0] if prev else 0

    def prune(self, now_min: int) -> None:
        """Forget dedup keys older than the window and volume counts of days before yesterday (when large)."""
        window = int(self.config.dedup_hours * 60)
        if len(self.last) > 10_000:
            self.last = {k: v for k, v in self.last.items() if now_min - v[1] < window}
        today = now_min // 1440
        if len(self.volume) > 4096:
            self.volume = {k: v for k, v in self.volume.items() if k[1] >= today - 2}

    def filter_table(self, alerts: pa.Table) -> pa.Table:
        """The rows of an alerts table (:data:`raresketch.alerts.ALERT_TABLE_SCHEMA`) that pass, in the table's
        order (sort it by event time first). What Spark uses across partitions and across ``score`` calls."""
        if alerts.num_rows == 0:
            return alerts
        ts = alerts["@timestamp"].cast(pa.int64()).to_numpy(zero_copy_only=False)
        ids = [f"{d}.{v}" for d, v in zip(alerts["raresketch.detector"].to_pylist(),
                                          alerts["raresketch.variation"].to_pylist())]
        hosts = alerts["host.id"].to_pylist()
        agents, procs = hash64(alerts["host.id"]), hash64(alerts["raresketch.process_key"])
        dests = alerts["raresketch.destination"].to_pylist()
        keep = np.zeros(alerts.num_rows, bool)
        for r in range(alerts.num_rows):
            t_min = int(ts[r] // _US_PER_MIN)
            keep[r] = self.admit(ids[r], int(agents[r]), int(procs[r]), dests[r], t_min, t_min // 1440,
                                 hosts[r]) is not None
        self.prune(int(ts.max() // _US_PER_MIN))
        return alerts.filter(pa.array(keep))

    # ---- state ---------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {"volume": [[*k, c] for k, c in self.volume.items()],
                "dup_counts": [[str(k), v[0], v[1]] for k, v in self.last.items()]}

    def load_state(self, meta: dict[str, Any]) -> None:
        """Restore :meth:`to_state` (the keys an EngineState has always saved)."""
        self.volume = {(str(v[0]), int(v[1]), *map(str, v[2:-1])): int(v[-1]) for v in meta["volume"]}
        self.last = {int(k): [int(a), int(b)] for k, a, b in meta["dup_counts"]}
