"""Vectorised building blocks of the simulator: time units, numpy -> Arrow without copies, random hex / word
labels, weighted draws from concatenated segments.  A leaf: it imports only numpy, pyarrow and the event schema.

Costs are per call and linear in the number of values produced, with no Python loop per value.
"""
from __future__ import annotations

import hashlib
import re
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..events import EVENT_SCHEMA

#: Microseconds per second and per day; event time is generated in 96 slices of 15 minutes a day.
US = 1_000_000
DAY_US = 86_400 * US
SLICES = 96  # 15-minute slices of event time
SLICE_US = DAY_US // SLICES
STR_NULL = pa.scalar(None, pa.string())


def cidr(text: str) -> tuple[int, int]:
    """``a.b.c.d/n`` -> (first address as int, number of addresses)."""
    addr, _, bits = text.partition("/")
    a, b, c, d = (int(x) for x in addr.split("."))
    n = int(bits) if bits else 32
    return (a << 24) | (b << 16) | (c << 8) | d, 1 << (32 - n)


_OCTETS = pa.array([str(i) for i in range(256)], pa.string())
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def format_ips(ips: np.ndarray) -> pa.Array:
    """uint32 IPv4 addresses -> dotted-quad strings, vectorised."""
    ips = np.ascontiguousarray(ips, dtype=np.uint32)
    parts = [_OCTETS.take(arr(((ips >> shift) & 0xFF).astype(np.uint8))) for shift in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*parts, ".")


def ptr_names(ips: np.ndarray, template: str) -> pa.Array:
    """Reverse-lookup names of uint32 IPv4 addresses from ``template``, where ``{a}`` ``{b}`` ``{c}`` ``{d}`` are the
    address's octets (``ec2-{a}-{b}-{c}-{d}.compute-1.amazonaws.com``); vectorised, no randomness."""
    ips = np.ascontiguousarray(ips, dtype=np.uint32)
    n = len(ips)
    parts: list[pa.Array] = []
    for piece in re.split(r"(\{[abcd]\})", template):
        if not piece:
            continue
        if re.fullmatch(r"\{[abcd]\}", piece):
            shift = {"a": 24, "b": 16, "c": 8, "d": 0}[piece[1]]
            parts.append(_OCTETS.take(arr(((ips >> shift) & 0xFF).astype(np.uint8))))
        else:
            parts.append(pa.repeat(pa.scalar(piece, pa.string()), n))
    if not parts:
        raise ValueError(f"empty PTR template {template!r}")
    return pc.binary_join_element_wise(*parts, "") if len(parts) > 1 else parts[0]


def hex_strings(rng: np.random.Generator, n: int, width: int) -> pa.Array:
    """``n`` random lower-case hex strings of ``width`` characters."""
    if n == 0:
        return pa.array([], pa.string())
    chars = _HEX[rng.integers(0, 16, size=(n, width), dtype=np.uint8)]
    return _fixed_strings(chars, width)


def _fixed_strings(chars: np.ndarray, width: int) -> pa.Array:
    """(n, width) uint8 ASCII codes -> n strings of ``width`` characters, via Arrow buffers."""
    n = chars.shape[0]
    data = np.ascontiguousarray(chars, dtype=np.uint8).ravel()
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _digit_strings(rng: np.random.Generator, n: int, width: int) -> pa.Array:
    """``n`` random decimal strings of ``width`` digits."""
    chars = np.frombuffer(b"0123456789", dtype=np.uint8)[rng.integers(0, 10, size=(n, width), dtype=np.uint8)]
    return _fixed_strings(chars, width)


def segment_cum(weights_per_segment: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenated cumulative weights, segment ``k`` normalised to ``(k, k + 1]``.

    ``searchsorted(cum, k + u, side="right")`` with ``u`` uniform in [0, 1) then draws an element of segment
    ``k`` with probability proportional to its weight (zero-weight elements are never drawn).
    """
    out = []
    for k, w in enumerate(weights_per_segment):
        w = np.asarray(w, dtype=np.float64)
        total = w.sum()
        if total <= 0:
            raise ValueError(f"segment {k} has no positive weight")
        c = np.cumsum(w) / total
        c[-1] = 1.0
        out.append(k + c)
    return np.concatenate(out) if out else np.zeros(0)


def draw(cum: np.ndarray, seg: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One index per element of ``seg`` into ``cum`` (from :func:`segment_cum`), using uniforms ``u``."""
    idx = np.searchsorted(cum, seg + u, side="right")
    return np.minimum(idx, len(cum) - 1)


_NP_TYPES = {
    np.dtype(np.int64): pa.int64(),
    np.dtype(np.int32): pa.int32(),
    np.dtype(np.uint32): pa.uint32(),
    np.dtype(np.uint8): pa.uint8(),
    np.dtype(np.float64): pa.float64(),
}


def arr(a: np.ndarray, type: pa.DataType | None = None) -> pa.Array:
    """numpy -> Arrow without ``pa.array``'s per-call probing for pandas (slow when it is absent).

    Numeric arrays are wrapped zero-copy; booleans are bit-packed.  ``type`` reinterprets the values (for
    example int64 -> timestamp).
    """
    a = np.ascontiguousarray(a)
    if a.dtype == np.bool_:
        bits = np.packbits(a, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(a), [None, pa.py_buffer(bits)])
    t = _NP_TYPES[a.dtype] if type is None else type
    return pa.Array.from_buffers(t, len(a), [None, pa.py_buffer(a)])


#: Arrow string scalars reused when a column repeats one value.
S = {k: pa.scalar(k, pa.string()) for k in ("udp", "tcp", "event", "egress", "{", "}", "d", "md")}


def fmt(template: str | None, **kw: str) -> str | None:
    """``template`` with each ``{key}`` replaced by ``kw[key]`` (no other brace handling); None stays None."""
    if template is None:
        return None
    for k, v in kw.items():
        template = template.replace("{" + k + "}", v)
    return template


def to_schema(cols: dict[str, pa.Array], n: int) -> pa.Table:
    """Columns -> a table with exactly EVENT_SCHEMA; a schema column we do not generate is all null."""
    arrays = []
    for f in EVENT_SCHEMA:
        a = cols.get(f.name)
        if a is None:
            a = pa.nulls(n, f.type)
        elif a.type != f.type:
            a = a.cast(f.type)
        arrays.append(a)
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)


def stable_hash(*parts: object) -> int:
    """A 64-bit hash of ``parts`` (BLAKE2b of their ``str``), stable across runs and platforms."""
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little")


class Labeler:
    """Vectorised tenant labels (the first DNS label of a cloud host) in the styles the profiles document (``fresh_styles``)."""

    def __init__(self, words: Sequence[str]):
        self.words = pa.array(list(words), pa.string())
        self.n = len(words)

    def _w(self, rng: np.random.Generator, n: int) -> pa.Array:
        return self.words.take(arr(rng.integers(0, self.n, n)))

    def labels(self, rng: np.random.Generator, style: str, n: int) -> pa.Array:
        if n == 0:
            return pa.array([], pa.string())
        w, j = self._w, pc.binary_join_element_wise
        if style == "words":
            return j(w(rng, n), w(rng, n), "-")
        if style == "words_hex":
            return j(w(rng, n), w(rng, n), hex_strings(rng, n, 6), "-")
        if style == "cfdist":
            return j(pa.repeat(S["d"], n), hex_strings(rng, n, 13), "")
        if style == "account":
            return j(w(rng, n), w(rng, n), hex_strings(rng, n, 4), "")
        if style == "md":
            return j(pa.repeat(S["md"], n), hex_strings(rng, n, 12), "-")
        if style == "worker":
            return j(j(w(rng, n), w(rng, n), "-"), w(rng, n), ".")
        if style == "tunnel":
            return j(w(rng, n), w(rng, n), w(rng, n), w(rng, n), "-")
        if style == "ngrok":
            return j(hex_strings(rng, n, 4), hex_strings(rng, n, 4), hex_strings(rng, n, 4), "-")
        if style == "appspot":
            return j(w(rng, n), w(rng, n), _digit_strings(rng, n, 6), "-")
        if style == "lambda":
            return hex_strings(rng, n, 32)
        raise ValueError(f"unknown label style {style!r}")
