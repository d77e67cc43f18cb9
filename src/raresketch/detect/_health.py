"""Per-host clock health: a host whose events keep falling outside the window (its clock slow by a month, or
fast past the wall clock) is a host the detectors cannot see. Each such host is reported once per day of stream
time as a :class:`~raresketch.alerts.HealthEvent` (and a warning), with how many events it lost and by how much."""
from __future__ import annotations

import datetime as _dt

import numpy as np
import pyarrow as pa

from ..alerts import HealthEvent

__all__ = ["ClockMonitor"]

_US_PER_DAY = 86_400_000_000
_REASONS = {"too_old": "clock_behind", "skipped_future": "clock_ahead"}


def _dt_us(us: int) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(us / 1e6, _dt.timezone.utc)


class ClockMonitor:
    """Collects health events from the rows a batch dropped for their time. Memory: the hosts reported in the
    last two days of stream time (pruned), plus the events not yet taken."""

    def __init__(self) -> None:
        self.pending: list[HealthEvent] = []
        self._reported: dict[tuple[str, str], int] = {}      # (host, reason) -> stream day of the last report

    def note(self, events: pa.Table, dropped: dict[str, np.ndarray], stream_us: int) -> list[HealthEvent]:
        """Group each reason's dropped rows of ``events`` by host; report a host at most once per stream day.
        ``stream_us``: the stream's newest event time. Returns the new health events. O(dropped rows)."""
        new: list[HealthEvent] = []
        stream_day = stream_us // _US_PER_DAY
        wall_day = int(_dt.datetime.now(_dt.timezone.utc).timestamp() // 86400)
        for reason, rows in dropped.items():
            sub = events.take(pa.array(rows))
            hosts = sub.column("host.id").to_pylist()
            names = sub.column("host.name").to_pylist()
            ts = sub.column("@timestamp").cast(pa.int64()).to_numpy(zero_copy_only=False)
            by_host: dict[str, list[int]] = {}
            for k, h in enumerate(hosts):
                by_host.setdefault(h, []).append(k)
            kind = _REASONS[reason]
            for h, ks in by_host.items():
                if self._reported.get((h, kind)) == stream_day:
                    continue
                self._reported[(h, kind)] = stream_day
                t = ts[ks]
                newest_day = int(t.max()) // _US_PER_DAY
                skew = stream_day - newest_day if kind == "clock_behind" else wall_day - newest_day
                new.append(HealthEvent(_dt_us(stream_us), h, names[ks[0]], kind, len(ks), _dt_us(int(t.min())),
                                       _dt_us(int(t.max())), int(skew)))
        if len(self._reported) > 100_000:
            self._reported = {k: d for k, d in self._reported.items() if d >= stream_day - 1}
        self.pending.extend(new)
        return new

    def take(self) -> list[HealthEvent]:
        """The health events not yet taken (and forget them)."""
        out, self.pending = self.pending, []
        return out
