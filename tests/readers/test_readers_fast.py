"""The ECS fast path (compiled projector, column-wise) gives exactly what the per-line reader gives."""
from __future__ import annotations

import gzip
import io
import json
import random

import pyarrow as pa
import pytest

from raresketch._readers import ReadStats, _ecs, read_events
from raresketch._readers._source import Source
from raresketch.events import EVENT_SCHEMA, conform, normalize_ip, normalize_ip_array


def _event(rng: random.Random, i: int, dense: bool = False) -> dict:
    d = {"@timestamp": f"2024-05-01T10:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(1000):03d}Z",
         "host": {"id": f"H{rng.randrange(20)}", "name": f"WS{rng.randrange(20)}", "os": {"type": "Windows"}},
         "process": {"name": rng.choice(["curl.exe", "chrome.exe", None]), "executable": "C:\\Tools\\x.exe",
                     "pid": rng.randrange(1, 9999),
                     "code_signature": {"subject_name": "Acme", "trusted": rng.random() < 0.5, "exists": True},
                     "parent": {"executable": "C:\\Windows\\explorer.exe"}},
         "destination": {"ip": rng.choice(["52.216.1.1", "::ffff:1.2.3.4", "2001:0db8::1", "10.0.0.1"]),
                         "port": rng.choice([443, 80, 70000]),
                         "domain": rng.choice(["MyBucket.S3.us-west-2.amazonaws.com.", None, "api.telegram.org"])},
         "source": {"ip": "10.1.2.3", "port": rng.randrange(1024, 65535)},
         "network": {"transport": rng.choice(["TCP", "udp"]), "direction": rng.choice(["outbound", "Inbound", "x"])},
         "event": {"category": rng.choice([["network"], ["network", "host"], ["process"], None])},
         "user": {"name": "bob"}, "agent": {"id": f"A{rng.randrange(5)}"}, "message": "x" * rng.randrange(50)}
    k = i % 23
    if k == 1:  # dotted keys
        d = {"@timestamp": d["@timestamp"], "host.id": "H2", "process.name": "a.exe", "destination.ip": "1.2.3.4",
             "destination.port": "8443", "event.category": "network"}
    elif k == 2:  # mixed
        d = {"@timestamp": "2024-05-01 10:00:01", "host": {"id": "H3"}, "process.name": "b.exe",
             "destination": {"address": "evil.example"}, "event": {"category": ["network"]}}
    elif k == 3:
        d["@timestamp"] = None
    elif k == 4:
        del d["@timestamp"]
    elif k == 5:
        d["@timestamp"] = "yesterday"
    elif k == 6:
        d["host"] = {"hostname": "WS-Upper"}
        del d["agent"]
    elif k == 7:
        d["destination"] = {"address": rng.choice(["1.2.3.4", "Evil.Example", "::1", "fe80::1%eth0"])}
    elif k == 8:
        d["destination"] = {"port": 1}
    elif k == 9 and (dense or i % 230 == 9):
        d["@timestamp"] = 1714557600123  # number: Arrow rejects the block, bisection finds the line
    elif k == 10:
        d["host"] = {"id": "", "name": "N"}
    elif k == 11:
        d["url"] = {"domain": "X.example"}
        d["destination"].pop("domain", None)
    elif k == 12:
        d["process"] = {"code_signature.subject_name": "Acme", "parent.name": "cmd.exe", "name": "a.exe"}
    elif k == 13:
        d["tls"] = {"client": {"server_name": "tls.example"}}
        d["destination"].pop("domain", None)
    elif k == 14 and (dense or i % 230 == 14):
        d["process"]["pid"] = "123"
    return d


def mixed_file(n: int = 3000, seed: int = 0, dense: bool = False) -> bytes:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        line = json.dumps(_event(rng, i, dense)).encode()
        k = i % 97
        if not dense and k in (1, 9, 10, 12) and i % 491 != k:
            k = 0  # Arrow rejects these lines: keep them rare unless dense
        if k == 1:
            line = line[:-5]  # truncated
        elif k == 2:
            line = line.replace(b'"bob"', b'"b\xe9b"')  # invalid UTF-8
        elif k == 3:
            line = b"[1, 2, 3]"
        elif k == 4:
            line = b""
        elif k == 5:
            line = b"   "
        elif k == 6:
            line += b"\r"
        elif k == 7:
            line = line.replace(b'"host"', b'"ho\\u0073t"')  # escaped key, not dotted
        elif k == 8:
            line = b'{"@timestamp": "2024-05-01T10:00:00Z", "host\\u002eid": "HX", "destination": {"ip": "9.9.9.9"}}'
        elif k == 9 and (dense or i % 230 == 9):
            line = line + b" " + line  # two objects on one line: malformed for the per-line reader
        elif k == 10:
            line = b'{"@timestamp": "2024-05-01T10:00:00Z", "host": {"id": "H1"}, "host": {"id": "H9"}, "destination": {"ip": "9.9.9.9"}}'
        elif k == 11:
            line = b'  ' + line
        elif k == 12:
            line = b'{"process": "not an object", "@timestamp": "2024-05-01T10:00:00Z", "host": {"id": "H1"}, "destination": {"ip": "9.9.9.9"}}'
        out.append(line)
    return b"\n".join(out) + b"\n"


def read(data: bytes, fast: bool, batch_size: int, block: int | None = None, monkeypatch=None):
    if block is not None:
        monkeypatch.setattr(_ecs, "BLOCK_BYTES", block)
    st = ReadStats()
    tabs = list(_ecs.read_ecs(Source(data), batch_size, st, fast=fast))
    for t in tabs:
        assert t.schema == EVENT_SCHEMA and t.num_rows > 0
    return tabs, st


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("batch_size,block", [(65536, 1 << 22), (100, 1 << 22), (256, 8192), (7, 3000)])
def test_fast_equals_slow_on_mixed_file(monkeypatch, batch_size, block, dense):
    data = mixed_file(dense=dense)
    slow, st_slow = read(data, False, batch_size)
    flat = _ecs._flatten
    n_fast = [0]

    def counting(t, lines, stats):
        n_fast[0] += len(lines)
        return flat(t, lines, stats)

    monkeypatch.setattr(_ecs, "_flatten", counting)
    fast, st_fast = read(data, True, batch_size, block, monkeypatch)
    if not dense and block >= 8192:  # most lines really went the column-wise way
        assert n_fast[0] > 0.6 * st_slow.read, n_fast[0]
    assert [t.num_rows for t in fast] == [t.num_rows for t in slow]
    for a, b in zip(fast, slow):
        assert a.equals(b), (a.to_pylist()[:3], b.to_pylist()[:3])
    assert st_fast.as_dict() == st_slow.as_dict()
    assert st_slow.n_skipped > 0 and st_slow.repaired["undecodable_bytes"] > 0
    assert set(st_slow.skipped) >= {"malformed_json", "not_an_object", "missing_timestamp", "bad_timestamp",
                                    "not_network_event", "no_destination"}


def test_fast_path_really_parses_column_wise(monkeypatch):
    """On clean nested lines no line goes the per-line way."""
    calls = []
    monkeypatch.setattr(_ecs, "ecs_row", lambda d, st: calls.append(d))
    rng = random.Random(1)
    objs = [_event(rng, 0) for _ in range(500)]
    for o in objs:
        o["event"]["category"] = ["network"]
    data = b"\n".join(json.dumps(o).encode() for o in objs)  # no final newline
    st = ReadStats()
    n = sum(t.num_rows for t in read_events(data, format="ecs", stats=st))
    assert calls == [] and n == 500 and st.read == 500 and st.emitted == 500


def test_one_bad_line_in_a_block_counts_only_that_line():
    rng = random.Random(2)
    objs = [_event(rng, 0) for _ in range(2000)]
    for o in objs:
        o["event"]["category"] = ["network"]
        o["@timestamp"] = "2024-05-01T10:00:00Z"
    lines = [json.dumps(o).encode() for o in objs]
    lines[1234] = lines[1234][:-1]
    st = ReadStats()
    t = pa.concat_tables(read_events(b"\n".join(lines), format="ecs", stats=st))
    assert st.skipped == {"malformed_json": 1} and t.num_rows == 1999 and st.read == 2000


def test_gzip_fast_equals_slow(tmp_path):
    data = mixed_file(800, seed=3)
    p = tmp_path / "e.json.gz"
    p.write_bytes(gzip.compress(data))
    st = ReadStats()
    a = pa.concat_tables(read_events(str(p), format="ecs", stats=st))
    b, st_b = read(data, False, 65536)
    assert a.equals(pa.concat_tables(b)) and st.read == st_b.read


def test_normalize_ip_array_and_conform_paths_agree():
    vals = ["1.2.3.4", "001.2.3.4", "::ffff:8.8.8.8", " 1.1.1.1 ", "255.255.255.255", "256.1.1.1", "0.0.0.0",
            "fe80::1%eth0", "[::1]", "-", "", None, "2001:0DB8::1", "10.0.0.01", "x"]
    got = normalize_ip_array(pa.array(vals)).to_pylist()
    assert got == [normalize_ip(v) for v in vals]
    t = pa.table({"@timestamp": pa.array([0, 1, None, 3], pa.timestamp("us", tz="UTC")),
                  "host.id": ["a", None, "c", "d"], "destination.ip": ["::ffff:1.2.3.4", "1.2.3.4", "x", "1.1.1.1"],
                  "source.ip": [None, None, None, "01.1.1.1"], "destination.domain": ["A.B.", None, None, "c"]})
    # typed timestamps (rows dropped before any work) and dictionary addresses (normalised on the dictionary)
    # give what text timestamps and plain strings give
    as_text = t.set_column(0, "@timestamp", pa.array(["1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000001Z",
                                                      None, "1970-01-01T00:00:00.000003Z"]))
    as_dict = t.set_column(2, "destination.ip", t.column("destination.ip").dictionary_encode())
    want = conform(as_text)
    assert want.num_rows == 2 and want.column("destination.ip").to_pylist() == ["1.2.3.4", "1.1.1.1"]
    assert want.column("source.ip").to_pylist() == [None, None]
    assert conform(t).equals(want) and conform(as_dict).equals(want)


def test_text_and_file_objects_still_read():
    data = mixed_file(200, seed=4)
    a = pa.concat_tables(read_events(io.BytesIO(data), format="ecs"))
    b = pa.concat_tables(read_events(data, format="ecs"))
    assert a.equals(b) and a.num_rows > 0
