"""The projector's on-demand scan (ext/rs_json_scan.h) gives exactly what the yyjson path gives: the same status
per line and the same columns, on ECS-shaped lines, on every kind of value and escape, and on lines damaged byte
by byte (the scan must never accept a line yyjson rejects, nor read a value differently)."""
from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raresketch._json import Projector
from raresketch._readers._ecs import _FAST_PATHS

_PATHS = {"a": "string", "b.c": "int", "b.d": "int32", "b.e": "bool", "cat": "has:network", "x.y.z": "string"}


def _same(paths: dict, block: bytes) -> list[int]:
    new, old = Projector(paths), Projector(paths, on_demand=False)
    assert new.on_demand and not old.on_demand
    s1, b1, e1, c1 = new.project(block)
    s2, b2, e2, c2 = old.project(block)
    assert s1.tolist() == s2.tolist()
    assert b1.tolist() == b2.tolist() and e1.tolist() == e2.tolist()
    for k in c2:
        assert c1[k].equals(c2[k]), (k, c1[k], c2[k])
    return s1.tolist()


def _ecs_line(rng: random.Random, i: int) -> dict:
    return {"@timestamp": f"2024-05-01T10:00:{i % 60:02d}Z", "agent": {"id": f"a{i}", "type": "endpoint"},
            "host": {"id": f"H{i % 7}", "name": "WS", "ip": ["10.0.0.1", "fe80::1"], "os": {"type": "windows"}},
            "process": {"name": "c\u00e9.exe", "pid": rng.randrange(1 << 40), "executable": "C:\\Windows\\a \"b\".exe",
                        "code_signature": {"trusted": rng.random() < 0.5, "exists": True, "subject_name": None},
                        "Ext": {"code_signature": [{"trusted": True, "x": [1.5e-3, -0.0, 2E+10, {}, []]}]}},
            "destination": {"ip": "1.2.3.4", "port": rng.choice([443, 70000, -1, 0]), "domain": "\u65e5\u672c.jp"},
            "event": {"category": rng.choice([["network"], "network", ["process", "network"], [], "x", None, 3]),
                      "sequence": i, "type": ["start"]},
            "message": "tab\there\u2028 \\u0041 \U0001F600 \u0001", "network": {"direction": "egress"}}


def test_ecs_lines_agree():
    rng = random.Random(7)
    lines = [json.dumps(_ecs_line(rng, i), ensure_ascii=i % 2 == 0).encode() for i in range(400)]
    status = _same(_FAST_PATHS, b"\n".join(lines) + b"\n")
    assert status == [0] * 400


@pytest.mark.parametrize("line,status", [
    (b'{"a": "x", "b": {"c": 1, "d": 2, "e": true}, "cat": ["network"]}', 0),
    (b' \t{ "a" : "x\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u65e5\\u0000" , "b" : { } } \r ', 0),
    (b'{"a": "\\ud83d\\ude00"}', 0),              # a surrogate pair: yyjson reads it
    (b'{"a": "\\ud83d"}', 1),                     # a lone surrogate
    (b'{"a": "\\udc00x"}', 1),
    (b'{"a": "x\\q"}', 1), (b'{"a": "x\\u12"}', 1), (b'{"a": "x\x01"}', 1), (b'{"a": "x\xff"}', 1),
    (b'{"a": "\xc0\xaf"}', 1), (b'{"a": "\xed\xa0\x80"}', 1), (b'{"a": "\xf4\x90\x80\x80"}', 1),
    (b'{"a": "\xe2\x82"}', 1), (b'{"z": "\xf0\x9f\x98\x80\xe2\x82\xac\xc3\xa9"}', 0),
    (b'{"b": {"c": 01}}', 1), (b'{"b": {"c": -0}}', 0), (b'{"b": {"c": 1.0}}', 3), (b'{"b": {"c": 1e2}}', 3),
    (b'{"b": {"c": 9223372036854775807}}', 0), (b'{"b": {"c": 9223372036854775808}}', 3),
    (b'{"b": {"c": -9223372036854775808}}', 0), (b'{"b": {"c": 123456789012345678901234}}', 3),
    (b'{"b": {"d": 2147483648}}', 0), (b'{"b": {"d": "7"}}', 3), (b'{"b": {"e": 1}}', 3),
    (b'{"z": [1e400]}', 1), (b'{"z": 1e-400}', 0), (b'{"z": 0.' + b"0" * 400 + b'1}', 0),
    (b'{"z": 1' + b"0" * 400 + b'}', 1), (b'{"z": -}', 1), (b'{"z": .5}', 1), (b'{"z": 5.}', 1),
    (b'{"z": +5}', 1), (b'{"z": 1e}', 1), (b'{"z": tru}', 1), (b'{"z": nul}', 1), (b'{"z": NaN}', 1),
    (b'{"a": "x",}', 1), (b'{"a": "x" "b": 1}', 1), (b'{"a" "x"}', 1), (b'{"a": "x"}}', 1), (b'{"a": "x"', 1),
    (b'{"a": "x"} x', 1), (b'[1]', 2), (b'"a"', 2), (b'', 1), (b'   ', 1), (b'\xef\xbb\xbf{}', 1),
    (b'{"a": "x", "a": "y"}', 4), (b'{"b": 1, "b": {"c": 1}}', 4), (b'{"b": {"c": 1}, "b.c": 2}', 4),
    (b'{"b.c": 2, "b": {"d": 1}}', 0), (b'{"\\u0061": "x", "a": "y"}', 4), (b'{"a\\u002ex": 1}', 0),
    (b'{"x": {"y.z": "q"}, "x.y": {"z": "r"}}', 4), (b'{"a": 5}', 3), (b'{"a": null, "b": null}', 0),
    (b'{"cat": "network"}', 0), (b'{"cat": ["a", ["network"], {"k": "network"}, "network"]}', 0),
    (b'{"cat": ["n\\u0065twork"]}', 0), (b'{"cat": {"x": [}}', 1), (b'{"cat": 7}', 0),
    (b'{"q": ' + b"[" * 1100 + b"]" * 1100 + b'}', 5), (b'{"q": ' + b"[" * 1100 + b"]" * 1099 + b'}', 1),
    (b'{"q": ' + b"[" * 1000 + b"]" * 1000 + b'}', 0),
])
def test_edge_cases_agree(line, status):
    assert _same(_PATHS, line + b"\n") == [status]


@settings(max_examples=300, deadline=None)
@given(st.booleans(), st.text("0123456789", min_size=1, max_size=22), st.text("0123456789", max_size=34),
       st.sampled_from(["", "e", "E", "e+", "e-", "E-"]), st.text("0123456789", max_size=3))
def test_numbers_agree(neg, whole, frac, e, exp):
    num = ("-" if neg else "") + whole + ("." + frac if frac else "") + (e + exp if e else "")
    line = ('{"z": [%s], "b": {"c": %s, "d": %s}}' % (num, num, num)).encode()
    _same(_PATHS, line + b"\n")


_DAMAGE = [b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"0", b"-", b".", b"e", b"\xc3", b"\xff", b"\x00",
           b" ", b"u", b"n", b"t"]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**9), st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 2),
                                                 st.sampled_from(_DAMAGE)), min_size=1, max_size=3))
def test_damaged_lines_agree(seed, edits):
    rng = random.Random(seed)
    line = bytearray(json.dumps(_ecs_line(rng, seed % 1000), ensure_ascii=seed % 2 == 0).encode())
    for pos, op, b in edits:
        pos %= len(line) + 1
        if op == 0:
            line[pos:pos] = b
        elif op == 1:
            del line[pos:pos + 1]
        else:
            line[pos:pos + 1] = b
    line = bytes(line).replace(b"\n", b" ")
    _same(_FAST_PATHS, line + b"\n")
    _same(_PATHS, line + b"\n")
