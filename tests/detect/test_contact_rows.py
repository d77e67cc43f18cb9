"""Dropping and ordering rows by index instead of copying the table: ``contact_rows`` drops what
``drop_non_contacts`` drops, and ``KeyResolver.resolve(events, days, rows)`` equals resolving ``events.take(rows)``
(keys, flags, texts), also on a resolver that has seen other rows first and for values found only on dropped rows."""
from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter

import numpy as np
import pyarrow as pa

import raresketch as rs
from raresketch import conform, default_catalog
from raresketch.catalog._batch import TEXT_COLUMNS
from raresketch.detect import KeyResolver
from raresketch.detect._contacts import contact_rows, drop_non_contacts
from raresketch.simulate import Organisation


def _days(t: pa.Table) -> np.ndarray:
    return t["@timestamp"].combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False) // 86_400_000_000


def _mixed() -> pa.Table:
    t0 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
    doms = [None, "evil.s3.amazonaws.com", "slack.com", "10.0.0.1", "x.blob.core.windows.net"]
    ips = [None, "52.216.0.1", "10.0.0.7", "192.168.1.1", "149.154.167.99", "fe80::1", "8.8.8.8"]
    dirs = [None, "egress", "ingress"]
    srcs = [None, "ptr", "event"]
    exes = [None, r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe", "/usr/bin/only-dropped"]
    rows = list(itertools.product(doms, ips, dirs, srcs, exes))
    n = len(rows)
    return conform(pa.table({
        "@timestamp": pa.array([t0 + dt.timedelta(seconds=(i * 7919) % n) for i in range(n)],
                               pa.timestamp("us", tz="UTC")),
        "host.id": [f"h{i % 5}" for i in range(n)], "destination.domain": [r[0] for r in rows],
        "destination.ip": [r[1] for r in rows], "network.direction": [r[2] for r in rows],
        "raresketch.domain_source": [r[3] for r in rows], "process.executable": [r[4] for r in rows],
        "process.parent.name": ["explorer.exe"] * n, "process.command_line": ["powershell -c 1"] * n,
    }))


def test_contact_rows_drop_what_drop_non_contacts_drops():
    t = _mixed()
    s1, s2 = Counter(), Counter()
    rows = contact_rows(t, s1)
    assert rows is not None and 0 < rows.size < t.num_rows
    assert t.take(pa.array(rows)).equals(drop_non_contacts(t, s2))
    assert s1 == s2 and s1["skipped_inbound"] and s1["skipped_internal_destination"]
    assert contact_rows(t.take(pa.array(rows)), Counter()) is None


def _same(a, b) -> None:
    (ev1, f1), (ev2, f2) = a, b
    for k in vars(ev1):
        assert np.array_equal(getattr(ev1, k), getattr(ev2, k)), k
    for k in ("allow", "user_writable_path", "renamed", "source"):
        assert np.array_equal(getattr(f1, k), getattr(f2, k)), k
    pos = np.arange(len(ev1.days))
    assert f1.texts(pos) == f2.texts(pos)
    assert set(f1.texts(pos)) == set(TEXT_COLUMNS)


def test_resolve_rows_equals_resolve_of_the_taken_rows():
    t = _mixed()
    rng = np.random.default_rng(0)
    for rows in (contact_rows(t, Counter()), rng.permutation(t.num_rows), rng.choice(t.num_rows, 50, False)):
        sub = t.take(pa.array(rows))
        # fresh resolvers: what only the other rows hold is not resolved (the names table agrees too)
        a, b = KeyResolver(default_catalog()), KeyResolver(default_catalog())
        _same(a.resolve(t, _days(sub), rows), b.resolve(sub, _days(sub)))
        assert a.names == b.names
        _same(a.resolve(t, _days(sub), rows), b.resolve(sub, _days(sub)))      # from the caches


def test_engine_same_alerts_from_a_shuffled_batch_with_non_contacts():
    """The Engine orders and drops rows by index: a batch shuffled (and holding inbound and internal rows)
    gives the alerts of the same events in order."""
    batches = list(Organisation(agents=30, days=28, seed=5).batches(50_000))
    e1, e2 = rs.Engine(), rs.Engine()
    rng = np.random.default_rng(2)
    a1 = [a for b in batches for a in e1.process(b)]
    a2 = [a for b in batches for a in e2.process(b.take(pa.array(rng.permutation(b.num_rows))))]
    key = lambda a: (a.name, a.row, a.timestamp, a.destination, a.process_key)  # noqa: E731
    assert len(a1) > 50 and sorted(map(key, a1)) == sorted(map(key, a2))
    assert e1.stats == e2.stats and e1.stats["skipped_internal_destination"]
