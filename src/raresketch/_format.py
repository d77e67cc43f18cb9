"""The versioned, checksummed binary container shared by every saved structure.

Layout (all integers little-endian)::

    offset  size  field
    0       4     magic b"RSKT"
    4       2     format version (1)
    6       2     family id (which structure: see FAMILIES)
    8       4     header length H
    12      H     header: UTF-8 JSON {"params": {...}, "arrays": [{"dtype": "<u4", "shape": [..]}, ...]}
    ...           zero padding to a multiple of 8, then each array's raw bytes, each padded to 8
    end-4   4     CRC-32 (zlib) of every byte before it

The header is JSON, parsed with ``json.loads`` (never pickle, never executed); array dtypes are checked
against a whitelist and sizes against the bytes present before anything is allocated. Writers keep the header
small (parameters only); anything that grows with the data travels as arrays. The header's length is bounded by
the blob only: a state written with a large header (the dedup table of earlier versions) still loads.
"""
from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import numpy as np

MAGIC = b"RSKT"
FORMAT_VERSION = 1

#: family id -> structure name. Ids are never reused.
FAMILIES = {
    1: "CountMinSketch",
    2: "HyperLogLog",
    3: "BloomFilter",
    4: "KeyedDistinct",
    5: "AgentTable",
    6: "KeyedDistinctSparse",
    7: "AgentTableSparse",
    16: "Baseline",
    17: "EngineState",
    18: "BaselineSparse",
    19: "PrevalenceExport",
    20: "Consortium",
}
_FAMILY_IDS = {v: k for k, v in FAMILIES.items()}
_DTYPES = {"|u1", "<u2", "<u4", "<u8", "<i8", "<f4", "<f8", "|b1"}
_PREFIX = struct.Struct("<4sHHI")


def _pad8(n: int) -> int:
    return (-n) % 8


def pack(family: str, params: dict[str, Any], arrays: list[np.ndarray]) -> bytes:
    """Serialise ``params`` (JSON-able scalars) and ``arrays`` (numpy, written little-endian) as one blob."""
    metas = []
    blobs = []
    for a in arrays:
        a = np.ascontiguousarray(a)
        if a.dtype.kind == "V":  # packed records (little-endian fields) travel as raw bytes
            a = a.view(np.uint8).reshape(a.shape + (a.dtype.itemsize,))
        le = a.dtype if a.dtype.itemsize == 1 else a.dtype.newbyteorder("<")
        raw = a.astype(le, copy=False).tobytes()
        dt = le.str
        if dt not in _DTYPES:
            raise TypeError(f"cannot serialise dtype {dt}")
        metas.append({"dtype": dt, "shape": list(a.shape)})
        blobs.append(raw)
    header = json.dumps({"params": params, "arrays": metas}, sort_keys=True, separators=(",", ":")).encode()
    parts = [_PREFIX.pack(MAGIC, FORMAT_VERSION, _FAMILY_IDS[family], len(header)), header]
    parts.append(b"\0" * _pad8(_PREFIX.size + len(header)))
    for raw in blobs:
        parts.append(raw)
        parts.append(b"\0" * _pad8(len(raw)))
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


def family_of(data: bytes | bytearray | memoryview) -> str | None:
    """The structure name a blob says it holds (its family id), or None when it is not a raresketch blob. Reads
    the 8-byte prefix only: :func:`unpack` still validates everything."""
    buf = memoryview(data).cast("B")
    if len(buf) < _PREFIX.size or bytes(buf[:4]) != MAGIC:
        return None
    return FAMILIES.get(_PREFIX.unpack_from(buf, 0)[2])


def unpack(data: bytes | bytearray | memoryview, family: str) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Validate and split a blob written by :func:`pack`; raises ``ValueError`` naming the problem.

    Returns the params and the arrays (read-only views into ``data`` are copied, so the result owns them).
    """
    buf = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    n = len(buf)
    if n < _PREFIX.size + 4:
        raise ValueError(f"not a raresketch {family}: {n} bytes is shorter than the smallest valid blob")
    magic, version, fam, hlen = _PREFIX.unpack_from(buf, 0)
    if magic != MAGIC:
        raise ValueError(f"not a raresketch {family}: bad magic {bytes(magic)!r} (expected {MAGIC!r})")
    if version != FORMAT_VERSION:
        raise ValueError(f"unsupported raresketch format version {version} (this build reads {FORMAT_VERSION})")
    if FAMILIES.get(fam) != family:
        raise ValueError(f"this blob holds a {FAMILIES.get(fam, f'unknown family {fam}')}, not a {family}")
    (crc,) = struct.unpack_from("<I", buf, n - 4)
    if zlib.crc32(buf[: n - 4]) != crc:
        raise ValueError(f"corrupt raresketch {family}: checksum mismatch (truncated or modified bytes)")
    if _PREFIX.size + hlen > n - 4:   # no fixed cap: a header that fits in the blob is read (never refuse a state)
        raise ValueError(f"corrupt raresketch {family}: header length {hlen} exceeds the blob")
    try:
        header = json.loads(bytes(buf[_PREFIX.size : _PREFIX.size + hlen]).decode("utf-8"))
        params = header["params"]
        metas = header["arrays"]
        if not isinstance(params, dict) or not isinstance(metas, list):
            raise TypeError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ValueError(f"corrupt raresketch {family}: unreadable header") from None
    pos = _PREFIX.size + hlen
    pos += _pad8(pos)
    arrays = []
    for meta in metas:
        try:
            dt = meta["dtype"]
            shape = tuple(int(s) for s in meta["shape"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"corrupt raresketch {family}: bad array description") from None
        if dt not in _DTYPES or any(s < 0 for s in shape):
            raise ValueError(f"corrupt raresketch {family}: unsupported array dtype {dt!r} or shape {shape}")
        dtype = np.dtype(dt)
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if pos + size > n - 4:
            raise ValueError(f"corrupt raresketch {family}: array of {size} bytes runs past the end of the blob")
        arr = np.frombuffer(buf, dtype=np.uint8, count=size, offset=pos).copy()
        arrays.append(arr.view(dtype).reshape(shape))
        pos += size + _pad8(size)
    if pos != n - 4:
        raise ValueError(f"corrupt raresketch {family}: {n - 4 - pos} unexpected trailing bytes")
    return params, arrays


def expect(cond: bool, family: str, what: str) -> None:
    """Raise ``ValueError`` for a blob whose contents contradict its parameters."""
    if not cond:
        raise ValueError(f"corrupt raresketch {family}: {what}")
