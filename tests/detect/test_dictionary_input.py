"""Dictionary-encoded input (as Parquet and Arrow store text): ``conform(t, dictionary=True)`` keeps the
encoding with the same values, and the Engine raises the same alerts with the same counters as on dense input,
while the catalogue still runs once per distinct value."""
from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import raresketch as rs
from raresketch.events import conform
from raresketch.events._schema import DICT_TEXT, is_conformed
from raresketch.simulate import Organisation


def _dict(t: pa.Table, index=pa.int32(), large=False) -> pa.Table:
    cols = []
    for c in t.columns:
        if pa.types.is_string(c.type):
            e = pc.dictionary_encode(c).combine_chunks()
            vt = pa.large_string() if large else pa.string()
            c = pa.DictionaryArray.from_arrays(e.indices.cast(index), e.dictionary.cast(vt))
        cols.append(c)
    return pa.Table.from_arrays(cols, names=t.column_names)


def _odd() -> pa.Table:
    t0 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
    n = 12
    return pa.table({
        "@timestamp": pa.array([t0 + dt.timedelta(seconds=i) for i in range(n)], pa.timestamp("us", tz="UTC")),
        "host.id": ["h1", "h2"] * 6,
        "destination.domain": ["Evil.S3.AmazonAWS.com.", "slack.com", None, "-", "", "10.0.0.1", None, "x.example.org",
                               "ÄBC.example", "slack.com", None, "api.telegram.org"],
        "destination.ip": ["::ffff:52.216.0.1", "52.216.0.1", "010.1.2.3", None, "fe80::1%eth0", "not-ip",
                           "149.154.167.99", "[2001:db8::1]:443", "8.8.8.8:53", None, "10.0.0.7", "1.2.3.4"],
        "process.executable": [r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe", None] * 6,
        "process.name": [None, "curl"] * 6,
        "raresketch.domain_source": [None, "ptr", "event", None] * 3,
        "source.ip": ["::ffff:10.0.0.1"] * n,
    })


@pytest.mark.parametrize("index,large", [(pa.int32(), False), (pa.int8(), True), (pa.int64(), False)])
def test_conform_keeps_the_encoding_with_the_same_values(index, large):
    t = _odd()
    want = conform(t)
    got = conform(_dict(t, index, large), dictionary=True)
    assert is_conformed(got, dictionary=True) and not is_conformed(got)
    assert any(f.type == DICT_TEXT for f in got.schema)
    for c in want.column_names:
        assert got.column(c).to_pylist() == want.column(c).to_pylist(), c
        col = got.column(c).combine_chunks()
        if col.type == DICT_TEXT:                       # nulls are in the indices, never in the values used
            assert col.null_count == sum(v is None for v in want.column(c).to_pylist())
    assert conform(got, dictionary=True) is got
    assert conform(got).schema.equals(want.schema)    # the dense contract is unchanged
    assert conform(_dict(t)).equals(want)


def test_engine_dense_and_dictionary_give_the_same_alerts_and_counters():
    batches = list(Organisation(agents=30, days=28, seed=5).batches(50_000))
    dense, enc = rs.Engine(), rs.Engine(catalog=rs.Catalog())
    calls = []
    orig = enc.catalog.host_rows
    enc.catalog.host_rows = lambda values: (calls.append(list(values)), orig(values))[1]
    a1 = [a for b in batches for a in dense.process(b)]
    a2 = [a for b in batches for a in enc.process(_dict(b))]
    assert len(a1) > 50
    assert [a.to_dict() if hasattr(a, "to_dict") else vars(a) for a in a1] == \
        [a.to_dict() if hasattr(a, "to_dict") else vars(a) for a in a2]
    assert dense.stats == enc.stats and dense.suppressed == enc.suppressed
    names = [v for c in calls for v in c]
    assert len(names) == len(set(names))            # each distinct name resolved once in the stream
    assert dense._names == enc._names


def test_mixed_dense_and_dictionary_batches_share_the_caches():
    b = next(iter(Organisation(agents=20, days=10, seed=1).batches(20_000)))
    eng = rs.Engine()
    eng.process(b.slice(0, 10_000))
    n = len(eng._resolver._dom.index)
    eng.process(_dict(b.slice(0, 10_000)).replace_schema_metadata(None))
    assert len(eng._resolver._dom.index) == n        # same values, same index keys: nothing resolved again


def test_unread_columns_change_nothing():
    from raresketch.detect._prepare import INPUT_COLUMNS, UNREAD_COLUMNS

    assert set(INPUT_COLUMNS) | set(UNREAD_COLUMNS) == set(rs.EVENT_SCHEMA.names)
    batches = list(Organisation(agents=30, days=28, seed=7).batches(50_000))
    full, part = rs.Engine(), rs.Engine()
    a1 = [vars(a) for b in batches for a in full.process(b)]
    a2 = [vars(a) for b in batches for a in part.process(b.select(list(INPUT_COLUMNS)))]
    assert a1 and a1 == a2 and full.stats == part.stats
