"""Raw values -> typed values: booleans, integers, strings and timestamps as the readers find them.

Pure Python + pyarrow + numpy. The scalar functions are the reference; :func:`parse_timestamps` is the one
timestamp parser, for a list of raw values or an Arrow column alike.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


def to_bool(v: Any) -> bool | None:
    """``True``/``"true"``/``"T"``/1 -> True, the negatives -> False, anything else -> None."""
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return bool(v)
    s = str(v).strip().lower()
    return True if s in _TRUE else False if s in _FALSE else None


def to_int(v: Any) -> int | None:
    """Integer from int/float/str (``"443"``, ``"0x1bb"``); ``-``, empty, out of int64 range -> None."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if -(1 << 63) <= v < (1 << 63) else None
    if isinstance(v, float):
        return int(v) if v == v and abs(v) < 9.2e18 else None
    s = str(v).strip()
    try:
        r = int(s, 0) if s[:2].lower() == "0x" else int(s)
    except ValueError:
        return None
    return r if -(1 << 63) <= r < (1 << 63) else None


def to_str(v: Any) -> str | None:
    """String form; None, empty and ``-`` (the usual "no value" markers) -> None."""
    if v is None:
        return None
    if not isinstance(v, str):
        if isinstance(v, (list, dict)):
            return None
        v = str(v)
    return None if v == "" or v == "-" else v


# --------------------------------------------------------------------------------------------- time

_FRACTION = re.compile(r"(\.\d{6})\d+")
_INF = float("inf")
_US_MIN, _US_MAX = -(1 << 63) + 1, (1 << 63) - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_TS = pa.timestamp("us", tz="UTC")

#: :func:`parse_timestamps` states: parsed, missing (null or empty string), present but unparsable.
PARSED, MISSING, BAD = 0, 1, 2


def parse_timestamp(v: Any) -> int | None:
    """One timestamp -> UTC microseconds since the epoch, or None. Numbers: seconds, ms, us or ns by magnitude
    (|v| < 1e11 seconds, < 1e14 ms, < 1e17 us, else ns cut to microseconds: each unit covers 1973-5138 AD). Strings: ISO 8601 (``T`` or space, ``Z`` or offset, any fraction,
    cut to microseconds); a string without a zone is UTC (Sysmon ``UtcTime``); a string of digits is a
    number. O(len(v))."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        if v != v or v in (_INF, -_INF):
            return None
        a = abs(v)
        if a > _US_MAX:  # beyond int64 in any unit: not a time
            return None
        if a >= 1e17:   # nanoseconds (Arrow/pandas int64 epochs)
            us = v // 1000 if isinstance(v, int) else int(v / 1e3 // 1)
        else:
            us = int(round(v * 1e6 if a < 1e11 else v * 1e3 if a < 1e14 else v))
        return us if _US_MIN <= us <= _US_MAX else None  # beyond int64 microseconds: not a time
    s = str(v).strip()
    if not s:
        return None
    try:
        if s.isdigit():   # an integer epoch kept exact (nanoseconds do not fit a float)
            return parse_timestamp(int(s))
        return parse_timestamp(float(s)) if s[0].isdigit() and s.replace(".", "", 1).isdigit() else _iso(s)
    except (ValueError, OverflowError):
        return None


def _iso(s: str) -> int:
    s = _FRACTION.sub(r"\1", s)
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    d = datetime.fromisoformat(s)
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    delta = d - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _cast_strings(vals: pa.Array) -> pa.Array | None:
    """ISO strings (nulls allowed) -> timestamp[us, UTC] by Arrow's cast (with zone, then zone-less as UTC),
    or None when Arrow cannot cast every value."""
    for t in (pa.timestamp("ns", tz="UTC"), pa.timestamp("ns")):
        try:
            return pc.divide(vals.cast(t).cast(pa.int64()), 1000).cast(_TS)  # ns -> us
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return None


def _scale_numbers(raw: pa.Array) -> pa.Array | None:
    """Numbers without nulls -> timestamp[us, UTC], scaled by magnitude as :func:`parse_timestamp` does
    (seconds, ms, us, ns);
    None when a value is not finite or beyond int64 microseconds (those go value by value)."""
    x = raw.to_numpy().astype(np.float64)
    a = np.abs(x)
    us = np.where(a < 1e11, x * 1e6, np.where(a < 1e14, x * 1e3, np.where(a < 1e17, x, np.floor(x / 1e3))))
    if not (np.all(np.isfinite(us)) and np.all(a < 9.2e18)):
        return None
    out = np.round(us).astype(np.int64)
    if pa.types.is_integer(raw.type):  # microseconds given as integers stay exact (no float rounding)
        ints = raw.to_numpy()
        big = (a >= 1e14) & (a < 1e17)
        if big.any():
            out[big] = ints[big]
        ns = a >= 1e17
        if ns.any():
            out[ns] = np.floor_divide(ints[ns], 1000)
    return pa.array(out).cast(_TS)


def parse_timestamps(values: list | pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Raw timestamps (a list, or an Arrow column) -> ``(timestamp[us, UTC] array, state)``: state (int8) is
    :data:`PARSED`, :data:`MISSING` (null or empty string) or :data:`BAD` (present but unparsable, null in
    the array). Every value gets :func:`parse_timestamp`'s result.

    Strings are cast by Arrow in one call (ISO with zone, then zone-less as UTC), the missing ones masked
    out; numbers without nulls are scaled by magnitude in numpy; anything else, or a failed cast, goes value
    by value. O(n) Arrow work in the usual case, one Python call per value otherwise.
    """
    raw: pa.Array | None
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        raw = values
        if pa.types.is_dictionary(raw.type):
            raw = raw.dictionary_decode()
        if pa.types.is_large_string(raw.type):
            raw = raw.cast(pa.string())
    else:
        try:
            raw = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # mixed types; integers beyond int64
            raw = None
    n = len(values)
    if n == 0:
        return pa.array([], _TS), np.zeros(0, np.int8)
    miss = None
    if raw is not None:
        if pa.types.is_string(raw.type):
            missing = pc.fill_null(pc.equal(raw, ""), True)
            miss = missing.to_numpy(zero_copy_only=False)
            vals = pc.if_else(missing, pa.scalar(None, pa.string()), raw) if miss.any() else raw
            arr = _cast_strings(vals)
            if arr is not None:
                return arr, miss.astype(np.int8)  # MISSING = 1
            values = vals.to_pylist()
        else:
            if raw.null_count == 0 and (pa.types.is_integer(raw.type) or pa.types.is_floating(raw.type)):
                arr = _scale_numbers(raw)
                if arr is not None:
                    return arr, np.zeros(n, np.int8)
            if isinstance(values, pa.Array):
                values = raw.to_pylist()
    if miss is None:
        miss = np.fromiter((v is None or v == "" for v in values), bool, n)
    parsed = [parse_timestamp(v) for v in values]
    ok = np.fromiter((p is not None for p in parsed), bool, n)
    state = np.where(ok, PARSED, np.where(miss, MISSING, BAD)).astype(np.int8)
    return pa.array(parsed, pa.int64()).cast(_TS), state
