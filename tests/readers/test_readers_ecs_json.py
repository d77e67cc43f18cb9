"""The compiled JSON-lines projector (``raresketch._json``, yyjson) and the ECS reader's fast path built on it.

Projector: every kind of line gets the status the docstring promises (projected, or left to the per-line reader
with a reason), nested/dotted/mixed keys give the same columns, values keep their bytes (escapes, unicode,
NUL). Reader: the fast path gives exactly the per-line reader's tables and ReadStats on varied inputs,
including random ones (hypothesis)."""
from __future__ import annotations

import gzip
import json

import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raresketch._core import ipv4_canonical
from raresketch._json import STATUS, Projector
from raresketch._readers import ReadStats, _ecs, read_events
from raresketch._readers._source import Source

OK, INVALID, NOT_OBJECT, WRONG_TYPE, DUPLICATE, TOO_DEEP = 0, 1, 2, 3, 4, 5

P = Projector({"a.b": "string", "a.c.d": "int", "e": "bool", "cat": "has:network", "x.y.z": "string"})


def project(lines: list[bytes], p: Projector = P, end: bytes = b"\n"):
    status, starts, ends, cols = p.project(end.join(lines) + end)
    return status.tolist(), {k: v.to_pylist() for k, v in cols.items()}, starts, ends


# ------------------------------------------------------------------------------------------ projector

def test_nested_dotted_and_mixed_keys_give_the_same_columns():
    lines = [b'{"a": {"b": "v", "c": {"d": 1}}, "e": true, "x": {"y": {"z": "n"}}}',
             b'{"a.b": "v", "a.c.d": 1, "e": true, "x.y.z": "n"}',
             b'{"a": {"b": "v", "c.d": 1}, "e": true, "x.y": {"z": "n"}}',
             b'{"a.c": {"d": 1}, "a": {"b": "v"}, "e": true, "x": {"y.z": "n"}}',
             b'{"a\\u002eb": "v", "a": {"c\\u002ed": 1}, "e": true, "x.y\\u002ez": "n"}']
    status, cols, _, _ = project(lines)
    assert status == [OK] * 5
    assert cols["a.b"] == ["v"] * 5 and cols["a.c.d"] == [1] * 5 and cols["x.y.z"] == ["n"] * 5
    assert cols["e"] == [True] * 5 and cols["cat"] == [0] * 5


def test_nulls_absent_and_other_keys():
    lines = [b'{}', b'{"a": null, "e": null, "cat": null}', b'{"a": {"b": null}, "zz": [1, {"a": 2}], "q": {"b": 1}}',
             b'{"a": 5, "x": "not an object", "e": false}', b'{"a": {"b": "", "c": {"d": -9223372036854775808}}}']
    status, cols, _, _ = project(lines)
    assert status == [OK] * 5
    assert cols["a.b"] == [None, None, None, None, ""]
    assert cols["a.c.d"] == [None, None, None, None, -(1 << 63)]
    assert cols["e"] == [None, None, None, False, None]
    assert cols["cat"] == [0] * 5


@pytest.mark.parametrize("line", [b'{"a": {"b": 1}}', b'{"a.b": true}', b'{"a": {"b": ["x"]}}', b'{"a.b": {"c": 1}}',
                                  b'{"a.c.d": "443"}', b'{"a.c.d": 1.0}', b'{"a.c.d": 9223372036854775808}',
                                  b'{"a.c.d": 1e30}', b'{"a.c.d": true}', b'{"e": 1}', b'{"e": "true"}',
                                  b'{"x": {"y": {"z": 0}}}'])
def test_wrong_types_go_to_the_per_line_reader(line):
    status, cols, _, _ = project([line, b'{"a.b": "ok"}'])
    assert status == [WRONG_TYPE, OK]
    assert cols["a.b"] == ["ok"]  # the rejected line left no value behind


@pytest.mark.parametrize("line", [b'{"a": {"b": "1"}, "a.b": "2"}', b'{"a.b": "1", "a": {"b": "2"}}',
                                  b'{"a": {"b": "1"}, "a": {"c": {"d": 3}}}', b'{"a": {"b": "1"}, "a": 5}',
                                  b'{"e": true, "e": false}', b'{"a": {"b": null}, "a.b": "x"}',
                                  b'{"x.y": {"z": "1"}, "x": {"y": {}}}'])
def test_a_path_or_prefix_given_twice_goes_to_the_per_line_reader(line):
    assert project([line])[0] == [DUPLICATE]


def test_int32_kind_nulls_values_outside_int32():
    p = Projector({"p": "int32"})
    vals = [0, -1, 443, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 63 - 1, -(2 ** 63), None]
    status, _, _, cols = p.project(b"\n".join(json.dumps({"p": v}).encode() for v in vals) + b"\n")
    assert not status.any() and cols["p"].type == pa.int32()
    assert cols["p"].to_pylist() == [v if v is not None and -(2 ** 31) <= v < 2 ** 31 else None for v in vals]
    status = p.project(b'{"p": 2e3}\n{"p": "1"}\n{"p": 9223372036854775808}\n{"p": true}\n')[0]
    assert status.tolist() == [WRONG_TYPE] * 4


def test_has_kind():
    lines = [b'{"cat": ["network"]}', b'{"cat": "network"}', b'{"cat": ["process", "network"]}',
             b'{"cat": []}', b'{"cat": "process"}', b'{"cat": [["network"]]}', b'{"cat": {"network": 1}}',
             b'{"cat": 0}', b'{"cat": [1, null, "network"]}', b'{"cat": "Network"}', b'{"cat": null}']
    status, cols, _, _ = project(lines)
    assert status == [OK] * len(lines)
    assert cols["cat"] == [1, 1, 1, 2, 2, 2, 2, 2, 1, 2, 0]


@pytest.mark.parametrize("line,code", [
    (b'', INVALID), (b'   ', INVALID), (b'{"a": ', INVALID), (b'{"a": 1} x', INVALID), (b'{"a": 1}{"b": 2}', INVALID),
    (b"{'a': 1}", INVALID), (b'{"a": NaN}', INVALID), (b'{"a": 1,}', INVALID), (b'{"a": 1e400}', INVALID),
    (b'\xef\xbb\xbf{"a": 1}', INVALID), (b'{"a": "\xff"}', INVALID), (b'{"a": "\xed\xa0\x80"}', INVALID),
    (b'{"a": "\\ud800"}', INVALID), (b'{"a": "\x01"}', INVALID), (b'{"a": // c\n 1}', INVALID),
    (b'[1, 2]', NOT_OBJECT), (b'"x"', NOT_OBJECT), (b'null', NOT_OBJECT), (b'3', NOT_OBJECT)])
def test_lines_yyjson_or_the_root_rejects(line, code):
    status = project([b'{"a.b": "ok"}', line, b'{"a.b": "ok"}'])[0]
    if b"\n" in line:  # a raw newline splits the line
        assert status[1] == INVALID
        return
    assert status == [OK, code, OK]
    # the per-line reader (orjson) rejects the same lines, or reads them as a non-object
    try:
        v = orjson.loads(line)
    except orjson.JSONDecodeError:
        assert code == INVALID
    else:
        assert code == NOT_OBJECT and not isinstance(v, dict)


def test_orjson_nesting_limit_is_never_passed_on_the_fast_path():
    deep = [b'{"a": {"b": "v"}, "z": ' + b"[" * d + b"]" * d + b"}" for d in (1000, 1022, 1023, 1024, 3000)]
    status = project(deep)[0]
    assert status[:2] == [OK, OK] and status[2:] == [TOO_DEEP] * 3
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(deep[3])
    orjson.loads(deep[2])  # 1023 + the root: orjson reads it, and so does the per-line reader


def test_strings_keep_their_bytes():
    vals = ["caf\u00e9", "\u65e5\u672c", "\U0001f600", "a\x00b", 'q"uote\\back', "tab\tnl\n", "\u2028", "x" * 70_000]
    lines = [json.dumps({"a": {"b": v}}, ensure_ascii=ea).encode() for v in vals for ea in (True, False)]
    status, cols, _, _ = project(lines)
    assert status == [OK] * len(lines)
    assert cols["a.b"] == [v for v in vals for _ in (0, 1)]


def test_line_ranges_crlf_and_last_line_without_newline():
    status, starts, ends, cols = P.project(b'{"a.b": "1"}\r\n\r\n{"a.b": "2"}\n{"a.b": "3"}')
    assert status.tolist() == [OK, INVALID, OK, OK]
    assert starts.tolist() == [0, 14, 16, 29] and ends.tolist() == [12, 14, 28, 41]
    assert cols["a.b"].to_pylist() == ["1", "2", "3"]
    status, starts, ends, cols = P.project(b"")
    assert len(status) == 0 and len(cols["a.b"]) == 0 and cols["a.b"].type == pa.string()
    status, *_ = P.project(memoryview(b'{"a.b": "1"}\n'))
    assert status.tolist() == [OK]


def test_huge_and_truncated_lines():
    big = json.dumps({"a": {"b": "v" * (3 << 20)}, "m": ["w" * 100] * 5000}).encode()
    status, cols, _, _ = project([big, big[:-1], big[: len(big) // 2], big])
    assert status == [OK, INVALID, INVALID, OK]
    assert [len(v) for v in cols["a.b"]] == [3 << 20] * 2


def test_column_types_validity_and_many_lines():
    n = 10_000
    lines = [json.dumps({"a": {"b": str(i) if i % 3 else None, "c": {"d": i if i % 5 else None}},
                         "e": bool(i % 2) if i % 7 else None}).encode() for i in range(n)]
    status, starts, ends, cols = P.project(b"\n".join(lines) + b"\n")
    assert not status.any()
    assert cols["a.b"].type == pa.string() and cols["a.c.d"].type == pa.int64() and cols["e"].type == pa.bool_()
    assert cols["cat"].type == pa.int8()
    for c in cols.values():
        c.validate(full=True)
    assert cols["a.b"].to_pylist() == [str(i) if i % 3 else None for i in range(n)]
    assert cols["a.c.d"].to_pylist() == [i if i % 5 else None for i in range(n)]
    assert cols["e"].to_pylist() == [bool(i % 2) if i % 7 else None for i in range(n)]
    assert cols["a.b"].null_count == sum(1 for i in range(n) if not i % 3)


def test_projector_arguments():
    with pytest.raises(ValueError, match="prefix"):
        Projector({"a": "string", "a.b": "int"})
    with pytest.raises(ValueError, match="kind"):
        Projector({"a": "float"})
    for bad in ("", ".a", "a.", "a..b"):
        with pytest.raises(ValueError):
            Projector({bad: "string"})
    with pytest.raises(ValueError):
        Projector({})
    assert STATUS[0] == "ok" and set(STATUS) == set(range(7))


def test_releases_the_gil():
    import threading
    import time

    data = b"\n".join(json.dumps({"a": {"b": "x" * 50, "c": {"d": i}}}).encode() for i in range(200_000)) + b"\n"
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    th = threading.Thread(target=tick)
    th.start()
    t0 = time.perf_counter()
    P.project(data)
    t1 = time.perf_counter()
    done.set()
    th.join()
    inside = [t for t in ticks if t0 < t < t1]
    assert t1 - t0 < 0.02 or len(inside) >= 1, (t1 - t0, len(inside))  # with the GIL held: none


_octets = st.sampled_from(["0", "00", "01", "1", "9", "10", "99", "100", "199", "200", "249", "250", "255", "256",
                           "260", "300", "999", "1000", "", "a", "-1", " 1", "\uff11"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.lists(_octets, min_size=1, max_size=6).map(".".join), st.text(max_size=16)),
                max_size=40), st.integers(0, 5))
def test_ipv4_canonical_is_the_regex(vals, cut):
    import pyarrow.compute as pc

    octet = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # the reference: a dotted quad, no leading zero
    IPV4_CANONICAL = rf"^{octet}(\.{octet}){{3}}$"

    a = pa.array(vals + ["1.2.3.4", "255.255.255.255", "0.0.0.0", "1.2.3.4\n"], pa.string())
    for x in (a, a.slice(min(cut, len(a)))):
        assert ipv4_canonical(x).equals(pc.match_substring_regex(x, IPV4_CANONICAL)), x.to_pylist()
    with pytest.raises(TypeError):
        ipv4_canonical(pa.array([1]))


# ------------------------------------------------------------------------------------------ the ECS reader

def both(data: bytes, batch_size: int = 65536):
    """Read ``data`` with the fast path and with the per-line reader; assert same tables and stats."""
    out = []
    for fast in (True, False):
        stats = ReadStats()
        tabs = list(_ecs.read_ecs(Source(data), batch_size, stats, fast=fast))
        out.append((tabs, stats))
    (a, sa), (b, sb) = out
    assert [t.num_rows for t in a] == [t.num_rows for t in b]
    for x, y in zip(a, b):
        assert x.equals(y), (x.to_pylist()[:3], y.to_pylist()[:3])
    assert sa.as_dict() == sb.as_dict()
    return (pa.concat_tables(a) if a else None), sa


def _ev(i: int, **over) -> dict:
    d = {"@timestamp": f"2024-05-01T10:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
         "host": {"id": f"H{i % 7}", "name": f"WS{i % 7}", "os": {"type": "Windows"}},
         "agent": {"id": f"A{i % 5}"}, "event": {"category": ["network"], "kind": "event"},
         "process": {"name": "a.exe", "pid": i, "executable": "C:\\a.exe",
                     "code_signature": {"trusted": bool(i % 2), "exists": True, "subject_name": "Acme"}},
         "destination": {"ip": f"52.1.{i % 250}.{i % 200}", "port": 443, "address": f"52.1.{i % 250}.{i % 200}"},
         "source": {"ip": "10.0.0.1", "port": 50000 + i % 1000},
         "network": {"transport": "TCP", "direction": "outbound"}, "user": {"name": "bob"},
         "message": "x" * (i % 300)}
    d.update(over)
    return d


def _dotted(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_dotted(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


VARIANTS = [
    lambda i: _ev(i),
    lambda i: _dotted(_ev(i)),
    lambda i: {**{k: v for k, v in _ev(i).items() if k != "process"}, "process.name": "b.exe", "process.pid": 5},
    lambda i: _ev(i, destination={"address": "evil.example.com", "port": "8443"}),
    lambda i: _ev(i, destination={"address": "1.2.3.4"}, url={"domain": "x.example"}),
    lambda i: _ev(i, destination={"domain": "d.example", "ip": None}, tls={"client": {"server_name": "t.example"}}),
    lambda i: _ev(i, event={"category": "network"}),
    lambda i: _ev(i, event={"category": ["process"]}),
    lambda i: _ev(i, event={"category": "process"}),
    lambda i: _ev(i, **{"@timestamp": 1714557600 + i}),
    lambda i: _ev(i, **{"@timestamp": "not a time"}),
    lambda i: _ev(i, **{"@timestamp": None}),
    lambda i: _ev(i, host={"hostname": "MiXeD-Host", "name": "n"}, agent={}),
    lambda i: _ev(i, host={"name": "\u0130STANBUL"}, agent=None),
    lambda i: _ev(i, host={}, agent={}),
    lambda i: _ev(i, host={"id": 42}),
    lambda i: _ev(i, network={"transport": "UDP", "direction": "INBOUND"}),
    lambda i: _ev(i, network={"direction": "sideways"}),
    lambda i: _ev(i, process={"name": "caf\u00e9 \u65e5\u672c.exe", "command_line": 'a "b" \\c \u0000'}),
    lambda i: _ev(i, process={"pid": "77", "code_signature": {"trusted": "true"}}),
    lambda i: _ev(i, process={"pid": 2 ** 63}),
    lambda i: _ev(i, destination={"ip": "1.2.3.4", "port": 70000}),
    lambda i: _ev(i, destination={"ip": "::FFFF:8.8.8.8", "port": -1}),
    lambda i: _ev(i, destination={"ip": "001.2.3.4"}),
    lambda i: _ev(i, destination={"port": 443, "address": ""}),
    lambda i: {"process": {"name": "x"}, "process.name": "y", **{k: v for k, v in _ev(i).items() if k != "process"}},
]


def varied_lines(n: int = 3000) -> list[bytes]:
    out = []
    for i in range(n):
        k = i % (len(VARIANTS) + 8)
        if k < len(VARIANTS):
            out.append(json.dumps(VARIANTS[k](i), ensure_ascii=bool(i % 2)).encode())
        elif k == len(VARIANTS):
            out.append(b"")
        elif k == len(VARIANTS) + 1:
            out.append(json.dumps(_ev(i)).encode()[:-7])  # truncated
        elif k == len(VARIANTS) + 2:
            out.append(json.dumps(_ev(i, user={"name": "\u00e9"}), ensure_ascii=False).encode().replace(
                "\u00e9".encode(), b"\xe9"))  # latin-1 byte: repaired by the per-line reader
        elif k == len(VARIANTS) + 3:
            out.append(b"[1, 2, 3]")
        elif k == len(VARIANTS) + 4:
            out.append(json.dumps(_ev(i)).encode() + b"\r")
        elif k == len(VARIANTS) + 5:
            out.append(b"  " + json.dumps(_ev(i), indent=None, separators=(" , ", " : ")).encode() + b"\t")
        elif k == len(VARIANTS) + 6:
            out.append(json.dumps(_ev(i, z=[[[[["deep"]]]]] )).encode())
        else:
            out.append(b'{"@timestamp": "2024-05-01T10:00:00Z", "host.id": "h", "destination.ip": "9.9.9.9", '
                       b'"huge": "' + b"h" * 200_000 + b'"}')
    return out


@pytest.mark.parametrize("batch_size,block", [(65536, 1 << 22), (333, 1 << 22), (100, 20_000), (7, 3000)])
def test_fast_path_equals_per_line_reader_on_varied_lines(monkeypatch, batch_size, block):
    monkeypatch.setattr(_ecs, "BLOCK_BYTES", block)
    data = b"\n".join(varied_lines()) + b"\n"
    t, st = both(data, batch_size)
    assert t.num_rows > 1000
    assert {"malformed_json", "not_an_object", "missing_timestamp", "bad_timestamp", "not_network_event",
            "no_destination", "missing_host"} <= set(st.skipped)
    assert st.repaired["undecodable_bytes"] > 0


def test_nested_dotted_and_mixed_lines_all_take_the_fast_path():
    lines = [json.dumps(VARIANTS[i % 3](i)).encode() for i in range(3000)]  # nested, dotted, mixed
    status = _ecs._PROJECTOR.project(b"\n".join(lines) + b"\n")[0]
    assert not status.any()
    dup = json.dumps(VARIANTS[-1](0)).encode()  # process.name nested and dotted: per-line
    assert _ecs._PROJECTOR.project(dup + b"\n")[0].tolist() == [DUPLICATE]


def test_read_events_gz_and_plain_file_equal_per_line(tmp_path):
    data = b"\n".join(varied_lines(1500)) + b"\n"
    (tmp_path / "e.jsonl").write_bytes(data)
    (tmp_path / "e.jsonl.gz").write_bytes(gzip.compress(data))
    ref_stats = ReadStats()
    ref = pa.concat_tables(_ecs.read_ecs(Source(data), 65536, ref_stats, fast=False))
    for name in ("e.jsonl", "e.jsonl.gz"):
        stats = ReadStats()
        got = pa.concat_tables(read_events(str(tmp_path / name), format="ecs", stats=stats))
        assert got.equals(ref) and stats.as_dict() == {**ref_stats.as_dict(), "files": 1}


def test_truncated_gzip_keeps_what_came_before(tmp_path):
    data = b"\n".join(json.dumps(_ev(i)).encode() for i in range(5000)) + b"\n"
    z = gzip.compress(data)
    (tmp_path / "t.jsonl.gz").write_bytes(z[: len(z) // 2])
    stats = ReadStats()
    got = pa.concat_tables(read_events(str(tmp_path / "t.jsonl.gz"), format="ecs", stats=stats))
    assert stats.skipped["truncated_input"] == 1 and 0 < got.num_rows < 5000


# Values a field may take: every JSON type, strings that look like other things. Not "" or "-" as a string
# value of a column whose other rows may be non-strings: the per-line reader converts a whole batch with
# to_str (""/"-" -> null) as soon as one value of the column is not a string, the fast path only the lines it
# leaves to the per-line reader (a batch-dependent difference that predates the projector; see the report).
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 64), 2 ** 64), st.floats(allow_nan=False,
                     allow_infinity=False), st.sampled_from(["tcp", "UDP", "outbound", "Inbound", "network",
                     "1.2.3.4", "::1", "x.example.COM", "2024-05-01T10:00:00Z", "2024-05-01 10:00:00",
                     "1714557600", "caf\u00e9", "\u0130", "a\x00b", "\\u002e"]),
                     st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=8).filter(
                         lambda s: s not in ("-",)))
_values = st.one_of(_scalars, st.lists(_scalars, max_size=3), st.dictionaries(st.sampled_from(["a", "b"]),
                                                                             _scalars, max_size=2))
_PATHS = sorted(_ecs._FAST_PATHS) + ["process", "host.os", "event.kind", "x.y", "destination"]


_strings = st.one_of(st.sampled_from(["tcp", "UDP", "outbound", "Inbound", "egress", "network", "1.2.3.4", "::1",
                                      "8.8.8.8", "x.example.COM", "Windows", "\u0130X", "caf\u00e9"]),
                     st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=8).filter(lambda s: s != "-"))
_RIGHT = {"string": _strings, "int": st.integers(-(2 ** 63), 2 ** 63 - 1), "bool": st.booleans(),
          "int32": st.one_of(st.integers(-(2 ** 31) - 2, 2 ** 31 + 1), st.integers(-(2 ** 63), 2 ** 63 - 1)),
          "has:network": st.sampled_from([["network"], "network", ["process"], ["network", "x"], []])}


@st.composite
def _field_value(draw, path):
    """Mostly a value of the type the fast path takes for ``path`` (so lines do go fast), else anything."""
    kind = _ecs._FAST_PATHS.get(path)
    if kind is not None and draw(st.integers(0, 9)) < 8:
        return draw(st.one_of(st.none(), _RIGHT[kind]) if draw(st.booleans()) else _RIGHT[kind])
    return draw(_values)


@st.composite
def records(draw):
    """A record as (path -> value) written nested, dotted or mixed, with some fields given twice."""
    paths = draw(st.lists(st.sampled_from(_PATHS), max_size=12, unique=True))
    fields = {p: draw(_field_value(p)) for p in paths}
    base = {"@timestamp": draw(st.sampled_from(["2024-05-01T10:00:00Z", "2024-05-01T10:00:01.5+02:00", 17e8])),
            "host.id": draw(st.sampled_from(["H1", "H2", ""])),
            "destination.ip": draw(st.sampled_from(["1.2.3.4", "010.0.0.1", None]))}
    fields = {**base, **fields}
    doc: dict = {}
    for path, v in fields.items():
        parts = path.split(".")
        cut = draw(st.integers(0, len(parts) - 1))  # 0: fully dotted; len-1: fully nested
        node = doc
        for p in parts[:cut]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                nxt = node[p] = {}
            node = nxt
        node[".".join(parts[cut:])] = v
    return doc


_FAST_SEEN: list = []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=st.lists(records(), min_size=1, max_size=40), mangle=st.lists(st.integers(0, 10 ** 6), max_size=4),
       ascii_=st.booleans(), batch=st.sampled_from([3, 65536]))
def test_hypothesis_fast_path_equals_per_line_reader(docs, mangle, ascii_, batch):
    lines = [json.dumps(d, ensure_ascii=ascii_).encode() for d in docs]
    _FAST_SEEN.append(int((_ecs._PROJECTOR.project(b"\n".join(lines) + b"\n")[0] == 0).sum()))
    for m in mangle:  # truncate a line, or put a stray byte in it
        i = m % len(lines)
        j = m % (len(lines[i]) + 1)
        lines[i] = lines[i][:j] if m % 2 else lines[i][:j] + bytes([m % 256]) + lines[i][j:]
    data = b"\n".join(lines).replace(b"\n\n", b"\n") + b"\n"
    both(data, batch)


def test_hypothesis_inputs_do_reach_the_fast_path():
    """Guard for the test above: its random lines must not all be left to the per-line reader."""
    if not _FAST_SEEN:
        test_hypothesis_fast_path_equals_per_line_reader()
    assert sum(_FAST_SEEN) > 100, _FAST_SEEN
