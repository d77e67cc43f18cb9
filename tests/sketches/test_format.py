"""The shared binary container: every refusal names the problem; nothing is unpickled or executed.
Every structure's refusal of cut, flipped, random and foreign bytes: test_contract.py."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

import raresketch as rs
from raresketch import _format


def reseal(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_layout_prefix_and_alignment():
    blob = _format.pack("CountMinSketch", {"a": 1}, [np.arange(3, dtype=np.uint32), np.ones(5, np.uint8)])
    magic, version, family, hlen = struct.unpack_from("<4sHHI", blob)
    assert (magic, version, family) == (b"RSKT", 1, 1)
    params, arrays = _format.unpack(blob, "CountMinSketch")
    assert params == {"a": 1}
    assert arrays[0].tolist() == [0, 1, 2] and arrays[1].tolist() == [1] * 5
    assert (len(blob) - 4) % 8 == 0


def test_refusals_name_the_problem():
    blob = rs.sketches.CountMinSketch(8, 2).to_bytes()
    body = blob[:-4]
    with pytest.raises(ValueError, match="format version 2"):
        _format.unpack(reseal(body[:4] + struct.pack("<H", 2) + body[6:]), "CountMinSketch")
    with pytest.raises(ValueError, match="unknown family 99"):
        _format.unpack(reseal(body[:6] + struct.pack("<H", 99) + body[8:]), "CountMinSketch")
    with pytest.raises(ValueError, match="header length"):
        _format.unpack(reseal(body[:8] + struct.pack("<I", 10**6) + body[12:]), "CountMinSketch")
    with pytest.raises(ValueError, match="trailing bytes"):
        _format.unpack(reseal(body + b"\0" * 8), "CountMinSketch")
    with pytest.raises(ValueError, match="runs past the end"):
        _format.unpack(reseal(body[:-16]), "CountMinSketch")
    hlen = struct.unpack_from("<I", body, 8)[0]
    junk = body[:12] + b"{" * hlen + body[12 + hlen:]
    with pytest.raises(ValueError, match="unreadable header"):
        _format.unpack(reseal(junk), "CountMinSketch")
