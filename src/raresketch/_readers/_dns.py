"""The DNS join of the readers that see DNS answers beside connections (Sysmon EID 22, Zeek ``dns.log``): a
connection from a host to an IP takes the name of that host's latest DNS answer for the IP, seen at most
``window_s`` before the connection (and at most :data:`SLACK_US` after it, for clock skew between the two
records).

Memory is bounded: answers more than ``window_s`` + 2 s older than the newest connection joined so far are
forgotten (they could only serve a connection logged that much out of order). They are pruned when the
table has grown past ``prune_at`` answers and has doubled since the last pruning (amortised O(1) per
answer), and at each :meth:`DnsJoin.prune` a reader calls after a batch.
"""
from __future__ import annotations

import bisect

#: How far after a connection an answer may be stamped and still name it (clock skew), in microseconds.
SLACK_US = 1_000_000


class DnsJoin:
    """DNS answers by (host, IP), each a time-sorted list of ``(time in us, name)``.

    :meth:`add` is O(log k) for k answers of one (host, IP) (O(1) when answers arrive in time order),
    :meth:`name` O(log k). Among answers stamped the same microsecond the one added last wins.
    """

    def __init__(self, window_s: float = 3600.0, prune_at: int = 4096):
        self.window_us = int(window_s * 1e6)
        self.prune_at = prune_at
        self.answers: dict[tuple[str, str], list[tuple[int, str]]] = {}
        self.size = 0  # answers held
        self.newest_us: int | None = None  # newest connection time joined
        self._next_prune = prune_at

    def add(self, host: str, ip: str, ts_us: int, name: str) -> None:
        """Remember that ``host`` got the answer ``ip`` for ``name`` at ``ts_us``."""
        lst = self.answers.setdefault((host, ip), [])
        if not lst or lst[-1][0] <= ts_us:
            lst.append((ts_us, name))
        else:
            lst.insert(bisect.bisect_right(lst, ts_us, key=_time), (ts_us, name))
        self.size += 1
        if self.size > self._next_prune:
            self.prune()

    def name(self, host: str, ip: str | None, ts_us: int | None) -> str | None:
        """The name of ``host``'s latest answer for ``ip`` stamped at most ``window_s`` before ``ts_us`` (and
        at most :data:`SLACK_US` after), or None. Records ``ts_us`` as a connection time joined."""
        if ts_us is None:
            return None
        if self.newest_us is None or ts_us > self.newest_us:
            self.newest_us = ts_us
        if not ip:
            return None
        lst = self.answers.get((host, ip))
        if not lst:
            return None
        i = bisect.bisect_right(lst, ts_us + SLACK_US, key=_time) - 1
        if i >= 0 and ts_us - lst[i][0] <= self.window_us:
            return lst[i][1]
        return None

    def prune(self) -> None:
        """Forget the answers older than ``window_s`` + 2 s behind the newest connection joined. O(answers)
        when the table holds more than ``prune_at`` answers, O(1) otherwise."""
        if self.size > self.prune_at and self.newest_us is not None:
            cutoff = self.newest_us - self.window_us - 2 * SLACK_US
            size = 0
            for k in list(self.answers):
                lst = self.answers[k]
                if lst[-1][0] < cutoff:
                    del self.answers[k]
                    continue
                if lst[0][0] < cutoff:
                    del lst[: bisect.bisect_left(lst, cutoff, key=_time)]
                size += len(lst)
            self.size = size
        self._next_prune = max(self.prune_at, 2 * self.size)


def _time(entry: tuple[int, str]) -> int:
    return entry[0]
