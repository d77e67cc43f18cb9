"""Edge cases of the ECS fast path (benches/reports/compare_json.py measures it): dotted keys (plain or
``\\u002e``-escaped) are read by the compiled projector, a wanted path given twice goes the per-line way,
invalid UTF-8 lines are found by yyjson's validation, and lower-casing goes through Arrow's ``ascii_lower``
when every value is ASCII. Each must give what the per-line reader gives."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from raresketch._readers import ReadStats, _ecs
from raresketch._readers._source import Source


def _base(i: int = 0, **over) -> dict:
    d = {"@timestamp": f"2024-05-01T10:00:{i % 60:02d}Z", "host": {"id": f"H{i % 3}", "name": "WS1"},
         "process": {"name": "a.exe", "pid": 7}, "destination": {"ip": "1.2.3.4", "port": 443},
         "network": {"transport": "tcp", "direction": "outbound"}, "event": {"category": ["network"]}}
    d.update(over)
    return d


def _both(data: bytes, batch_size: int = 65536):
    out = []
    for fast in (True, False):
        st = ReadStats()
        tabs = list(_ecs.read_ecs(Source(data), batch_size, st, fast=fast))
        out.append((pa.concat_tables(tabs) if tabs else None, st))
    (a, st_a), (b, st_b) = out
    assert (a is None) == (b is None)
    if a is not None:
        assert a.equals(b), (a.to_pylist(), b.to_pylist())
    assert st_a.as_dict() == st_b.as_dict()
    return a, st_a


def _good_mask(lines: list[bytes]) -> np.ndarray:
    status = _ecs._PROJECTOR.project(b"\n".join(lines) + b"\n")[0]
    return status == 0


# A dotted key that repeats a nested wanted path (process.name twice) goes slow; other dotted keys stay fast.
@pytest.mark.parametrize("key,fast", [(b'"process.name"', False), (b'"process\\u002ename"', False),
                                      (b'"process\\u002Ename"', False), (b'"process\\u002e name" ', True),
                                      (b'"x.y"  :', True), (b'"process.parent.name"', True)])
def test_dotted_keys_plain_and_escaped(key, fast):
    plain = json.dumps(_base()).encode()
    dotted = plain[:-1] + b", " + key + b': "b.exe"}' if not key.endswith(b":") else plain[:-1] + b", " + key + b' 1}'
    assert _good_mask([plain, dotted]).tolist() == [True, fast]
    t, st = _both(b"\n".join([plain, dotted, plain]) + b"\n")
    assert st.emitted == 3 and st.read == 3


def test_escapes_that_are_not_dotted_keys_stay_fast():
    lines = [json.dumps(_base(process={"name": "caf\u00e9.exe", "command_line": "a\\u002e"})).encode(),
             json.dumps(_base(message="see \\u002e or a.b: c")).encode()]
    assert _good_mask(lines).tolist() == [True, True]
    t, st = _both(b"\n".join(lines) + b"\n")
    assert "caf\u00e9.exe" in t.column("process.name").to_pylist()


def test_invalid_utf8_lines_found_among_many():
    objs = [json.dumps(_base(i)).encode() for i in range(500)]
    bad = {3, 250, 499}
    for i in bad:
        objs[i] = objs[i].replace(b'"a.exe"', b'"a\xe9\xff.exe"')
    objs[100] = objs[100].replace(b'"WS1"', b'"W\xed\xa0\x80"')  # encoded surrogate: invalid UTF-8 too
    good = _good_mask(objs)
    assert set(np.flatnonzero(~good).tolist()) == bad | {100}
    t, st = _both(b"\n".join(objs) + b"\n")
    assert st.repaired == {"undecodable_bytes": 4} and st.emitted == 500
    assert sum("\ufffd" in (v or "") for v in t.column("process.name").to_pylist()) == 3


def test_lowercasing_ascii_and_unicode_like_str_lower():
    vals = ["TCP", "Udp", "\u0130CMP", "STRA\u00dfE", "\u1e9e", "\u03a3\u039f\u03a3"]
    lines = []
    for i, v in enumerate(vals):
        d = _base(i, network={"transport": v, "direction": "OUTBOUND" if i % 2 else "Ingress"},
                  host={"hostname": v + "-Host", "os": {"type": v}})
        lines.append(json.dumps(d).encode())
    t, st = _both(b"\n".join(lines) + b"\n")
    got = t.to_pylist()
    assert sorted(r["network.transport"] for r in got) == sorted(v.lower() for v in vals)
    assert sorted(r["host.id"] for r in got) == sorted((v + "-Host").lower() for v in vals)
    assert {r["network.direction"] for r in got} == {"egress", "ingress"}
    ascii_only = [json.dumps(_base(i, network={"transport": "TCP"})).encode() for i in range(5)]
    t, _ = _both(b"\n".join(ascii_only) + b"\n")
    assert set(t.column("network.transport").to_pylist()) == {"tcp"}


def test_lower_helper():
    a = pa.array(["ABC", None, "\u0130x", "d"])
    assert _ecs._lower(a).to_pylist() == [None if v is None else v.lower() for v in a.to_pylist()]
    b = pa.array(["ABC", None, "d"])
    assert _ecs._lower(b).to_pylist() == ["abc", None, "d"]
    n = pa.nulls(3, pa.string())
    assert _ecs._lower(n).null_count == 3


# ------------------------------------------------------------------------------------------ parse-ahead thread

@pytest.mark.parametrize("cpus", [1, 2])
def test_parse_ahead_thread_gives_the_same_batches_and_stats(monkeypatch, cpus):
    from test_readers_fast import mixed_file

    data = mixed_file(3000, seed=5)
    monkeypatch.setattr(_ecs, "BLOCK_BYTES", 20_000)  # many blocks
    monkeypatch.setattr(_ecs, "_n_cpus", lambda: cpus)
    st = ReadStats()
    got = list(_ecs.read_ecs(Source(data), 500, st))
    st_ref = ReadStats()
    ref = list(_ecs.read_ecs(Source(data), 500, st_ref, fast=False))
    assert [t.num_rows for t in got] == [t.num_rows for t in ref]
    assert all(a.equals(b) for a, b in zip(got, ref))
    assert st.as_dict() == st_ref.as_dict()


def test_parse_ahead_propagates_errors_in_order_and_stops_when_closed():
    import threading

    def items(fail_at):
        for i in range(10):
            if i == fail_at:
                raise ValueError(f"bad {i}")
            yield i

    assert list(_ecs._ahead(items(-1))) == list(range(10))
    seen = []
    with pytest.raises(ValueError, match="bad 4"):
        for x in _ecs._ahead(items(4)):
            seen.append(x)
    assert seen == [0, 1, 2, 3]
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    g = _ecs._ahead(endless())
    assert [next(g) for _ in range(3)] == [0, 1, 2]
    g.close()
    assert closed.is_set()  # the worker closed the source generator before close() returned
    assert not any(t.name == "raresketch-ecs-parse" for t in threading.enumerate())


def test_read_events_stopped_early_closes_the_file(tmp_path, monkeypatch):
    from test_readers_fast import mixed_file
    from raresketch._readers import read_events

    p = tmp_path / "e.json"
    p.write_bytes(mixed_file(2000, seed=6))
    monkeypatch.setattr(_ecs, "BLOCK_BYTES", 10_000)
    monkeypatch.setattr(_ecs, "_n_cpus", lambda: 2)
    it = read_events(str(p), format="ecs", batch_size=50)
    first = next(it)
    it.close()
    assert 0 < first.num_rows <= 50
    assert not any(t.name == "raresketch-ecs-parse" for t in __import__("threading").enumerate())
