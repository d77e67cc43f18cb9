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
import re

from ..events import is_internal_ip, normalize_domain, normalize_ip

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
        a = self.answer(host, ip, ts_us)
        return None if a is None else a[1]

    def answer(self, host: str, ip: str | None, ts_us: int | None) -> tuple[int, str] | None:
        """``(answer time in us, name)`` of the answer :meth:`name` gives, or None. O(log k)."""
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
            return lst[i]
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


def join_table(t, dns: DnsJoin, stats) -> "pa.Table":
    """Name the connections of a conformed, time-sorted batch ``t`` from ``dns`` (the answers of the same run
    seen so far), for readers whose DNS answers are separate records (ECS: Elastic Defend ``lookup_result``,
    Winlogbeat Sysmon ``event.code: "22"``). Precedence: a DNS answer replaces no name or a ``ptr`` name
    (source ``dns``, answer time in ``raresketch.dns_answer_time``); a connection still without a name, or
    with only a PTR name (the address's identity, not what the process asked for), takes the host of the one
    URL of its command line when its address is not internal (``command_line``, inferred). Then prunes ``dns``. O(rows with an address and no event name) Python calls of O(log k)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from ..events._schema import mark_conformed

    n = t.num_rows
    if n == 0:
        return t
    ts = t.column("@timestamp").combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    newest = int(ts.max())
    if dns.newest_us is None or newest > dns.newest_us:
        dns.newest_us = newest
    src = t.column("raresketch.domain_source")
    ip = t.column("destination.ip")
    open_ = pc.and_(pc.is_valid(ip), pc.fill_null(pc.equal(src, "ptr"), True))
    if dns.size == 0:  # no answer to give: only the command-line fallback (a URL: "://") can name anything
        open_ = pc.and_(open_, pc.fill_null(pc.match_substring(t.column("process.command_line"), "://"), False))
    rows = np.flatnonzero(open_.combine_chunks().to_numpy(zero_copy_only=False)
                          if isinstance(open_, pa.ChunkedArray) else open_.to_numpy(zero_copy_only=False))
    if rows.size == 0:
        dns.prune()
        return t
    take = pa.array(rows)
    hosts = t.column("host.id").take(take).to_pylist()
    ips = ip.take(take).to_pylist()
    cmds = t.column("process.command_line").take(take).to_pylist()
    named = t.column("destination.domain").take(take).is_valid().to_numpy(zero_copy_only=False)
    ptr = pc.fill_null(pc.equal(src.take(take), "ptr"), False).to_numpy(zero_copy_only=False)
    at, doms, srcs, times = [], [], [], []
    url_host: dict = {}
    for j, r in enumerate(rows.tolist()):
        a = dns.answer(hosts[j], ips[j], int(ts[r])) if dns.size else None
        if a is not None:
            at.append(r), doms.append(a[1]), srcs.append("dns"), times.append(a[0])
            stats.enriched["domain_dns"] += 1
        elif (not named[j] or ptr[j]) and cmds[j] is not None:  # a PTR name is the address's, not a name
            c = cmds[j]
            h = url_host[c] if c in url_host else url_host.setdefault(c, command_line_url_host(c))
            if h and not is_internal_ip(ips[j]):
                at.append(r), doms.append(h), srcs.append("command_line"), times.append(None)
                stats.enriched["domain_command_line"] += 1
    dns.prune()
    if not at:
        return t
    mask = np.zeros(n, bool)
    mask[at] = True
    m = pa.array(mask)
    for name, vals in (("destination.domain", doms), ("raresketch.domain_source", srcs),
                       ("raresketch.dns_answer_time", times)):
        f = t.schema.field(name)
        new = pa.array(vals, pa.int64()).cast(f.type) if pa.types.is_timestamp(f.type) else pa.array(vals, f.type)
        col = pc.replace_with_mask(t.column(name).combine_chunks(), m, new)
        t = t.set_column(t.schema.get_field_index(name), f, col)
    return mark_conformed(t)


_URL_RE = re.compile(r"(?i)\b(?:https?|ftps?|wss?)://(?:[^\s/@\"'<>]*@)?(\[[0-9a-f:.]+\]|[^\s/:?#\"'<>\\|`^]+)")


def command_line_url_host(cmd: str | None) -> str | None:
    """Host of the URLs in a command line when they all share one host name; None when there is no URL,
    several hosts, or the host is an IP literal. O(len(cmd))."""
    if not cmd or "://" not in cmd:
        return None
    hosts = {normalize_domain(h.rstrip(".,;)]}'\"")) for h in _URL_RE.findall(cmd)}
    hosts.discard(None)
    if len(hosts) != 1:
        return None
    h = hosts.pop()
    if normalize_ip(h) or "." not in h:
        return None
    return h
