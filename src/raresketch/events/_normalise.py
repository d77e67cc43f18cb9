"""Normalised forms of addresses, domain names and executable names: the scalar functions (the reference)
and their column-wise forms over Arrow string arrays (same values, value for value: tests/events/test_fast_paths.py).

The column-wise forms recognise the values that are already canonical in one pass (the compiled IPv4 check
:func:`raresketch._core.ipv4_canonical`, or one RE2 regex) and keep them as they are; the few others go
through the scalar function once per distinct value.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._core import decode_dictionary, ipv4_canonical


def basename(path: str | None) -> str | None:
    """Last component of a Windows or POSIX path (``C:\\x\\A.exe`` -> ``A.exe``); None stays None."""
    if not path:
        return None
    cut = max(path.rfind("\\"), path.rfind("/"))
    return path[cut + 1 :] or None


def normalize_domain(name: str | None) -> str | None:
    """Lower-case, strip spaces and trailing dots; empty and ``-`` become None. O(len(name)).

    Punycode (``xn--...``) is kept as is; a Unicode name is IDNA-encoded to its punycode form when it can be,
    so both spellings give one key.
    """
    if name is None:
        return None
    s = name.strip().rstrip(".").lower()
    if not s or s == "-":
        return None
    if not s.isascii():
        try:
            s = s.encode("idna").decode("ascii")
        except UnicodeError:
            pass
    return s


#: The NAT64 well-known prefix (RFC 6052): ``64:ff9b::a.b.c.d`` is the IPv4 address ``a.b.c.d`` reached
#: through a NAT64 gateway; it is read as that IPv4 address (its cloud or messaging network is the IPv4 one).
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
_DECIMAL_RE = re.compile(r"[0-9]{1,10}")
_V4_PORT_RE = re.compile(r"([0-9.]+):[0-9]{1,5}")
_V6_PORT_RE = re.compile(r"\[([0-9A-Fa-f:.%\w]+)\]:[0-9]{1,5}")


def normalize_ip(ip: str | None) -> str | None:
    """Canonical text form of an IP (``::ffff:1.2.3.4`` -> ``1.2.3.4``, IPv6 compressed, zone and brackets
    dropped); a string that is not an IP becomes None; empty and ``-`` become None.

    Odd forms seen in exports: the NAT64 form ``64:ff9b::1.2.3.4`` -> ``1.2.3.4``; an ``ip:port`` or
    ``[ipv6]:port`` form -> the address; a plain decimal number below 2**32 (``3232235777``) -> that IPv4
    address. A dotted quad with a leading-zero octet (``010.1.2.3``: octal to ``inet_aton``, decimal to
    others) is ambiguous and becomes None (:func:`odd_address_reason` names why). O(len(ip))."""
    if ip is None:
        return None
    s = ip.strip()
    if not s or s == "-":
        return None
    m = _V6_PORT_RE.fullmatch(s) or _V4_PORT_RE.fullmatch(s)
    if m:
        s = m.group(1)
    if s.startswith("[") and s.endswith("]"):
        s = s[1:-1]
    s = s.split("%", 1)[0]
    try:
        a = ipaddress.ip_address(s)
    except ValueError:
        if _DECIMAL_RE.fullmatch(s) and int(s) < 1 << 32:
            return str(ipaddress.IPv4Address(int(s)))
        return None
    if a.version == 6:
        if a.ipv4_mapped is not None:
            a = a.ipv4_mapped
        elif a in NAT64_PREFIX:
            a = ipaddress.IPv4Address(int(a) & 0xFFFFFFFF)
    return str(a)


def odd_address_reason(ip: str | None) -> str | None:
    """Why :func:`normalize_ip` gives None for a non-empty ``ip``: ``ambiguous_address`` (a leading-zero
    octet), ``unparsed_address`` (anything else that is not an address); None when it parses or is empty."""
    if ip is None or normalize_ip(ip) is not None:
        return None
    s = ip.strip()
    if not s or s == "-":
        return None
    parts = s.split(":", 1)[0].split(".")
    if len(parts) == 4 and all(p.isdigit() for p in parts) and any(len(p) > 1 and p[0] == "0" for p in parts):
        return "ambiguous_address"
    return "unparsed_address"


# ------------------------------------------------------------------------ helpers over Arrow arrays

#: Strings :func:`normalize_domain` may change: ASCII capitals, non-ASCII, a leading (ASCII) space, a trailing
#: space or dot, empty or ``-``. The other strings are returned unchanged by it. (Python's ``str.strip``
#: strips \t..\r, \x1c..\x1f and space among ASCII characters.)
_DOMAIN_NONCANONICAL = r"[A-Z]|[^\x00-\x7f]|^[\t-\r\x1c-\x1f ]|[\t-\r\x1c-\x1f .]$|^-?$"
#: Strings that may be an address to :func:`normalize_ip`: a ``:`` anywhere, or no ASCII letter, ``-`` or
#: ``_`` before the first ``%``. Every other string (every host name) is certainly not one.
MAYBE_IP = r":|^[^%A-Za-z_\-]*(?:%|$)"
#: The prefix of an IPv4-mapped IPv6 address in the form :func:`normalize_ip` unwraps without a Python call.
_MAPPED_PREFIX = "::ffff:"


def as_string_array(arr) -> pa.Array:
    """One ``pa.string()`` array from a (chunked) string, large string, dictionary or other array. O(n)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not pa.types.is_string(arr.type):
        arr = arr.cast(pa.string())
    return arr


def is_text(t: pa.DataType) -> bool:
    """string, large_string, or a dictionary of either."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def map_unique(arr: pa.ChunkedArray | pa.Array, fn: Callable[[str], str | None]) -> pa.Array:
    """Apply a scalar str->str|None function once per distinct value of a string array (dictionary-encode,
    map the dictionary, take). Cost O(n) Arrow work + O(distinct) Python calls."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if len(arr) == 0:
        return pa.array([], pa.string())
    enc = pc.dictionary_encode(arr)
    mapped = pa.array([fn(v) for v in enc.dictionary.to_pylist()], pa.string())
    return mapped.take(enc.indices)


def _mask(a: pa.Array, default: bool) -> np.ndarray:
    return a.fill_null(default).to_numpy(zero_copy_only=False)


def _replace_rows(arr: pa.Array, rows: np.ndarray, fn) -> pa.Array:
    """``arr`` with the values at ``rows`` (a bool mask) replaced by ``fn(value)`` (one Python call each)."""
    idx = np.flatnonzero(rows)
    if idx.size == 0:
        return arr
    vals = pa.array([fn(v) for v in arr.take(pa.array(idx)).to_pylist()], pa.string())
    return pc.replace_with_mask(arr, pa.array(rows), vals)


# A few recent (column -> dictionary encoding) pairs, so that the catalogue does not hash again a column that
# conform just encoded (the Engine hands conform's columns to Catalog.resolve_batch when the batch is already in
# time order). Entries hold the column itself, so its buffers cannot be freed and their addresses reused while
# cached: a hit is the same immutable memory.
_ENCODINGS: list[tuple[tuple, pa.Array, pa.DictionaryArray]] = []
_ENCODINGS_MAX = 8


def _array_id(arr: pa.Array) -> tuple:
    return (arr.type, len(arr), arr.offset, arr.null_count,
            tuple(b.address if b is not None else 0 for b in arr.buffers()))


def dictionary_encode(arr) -> pa.DictionaryArray:
    """``pyarrow.compute.dictionary_encode`` of a string array, reusing the encoding of a column encoded just
    before (by :func:`raresketch.events.conform`); O(n) hashing otherwise."""
    arr = as_string_array(arr)
    key = _array_id(arr)
    for k, a, enc in _ENCODINGS:
        if k == key:
            return enc
    enc = pc.dictionary_encode(arr)
    _remember_encoding(arr, enc, key)
    return enc


def _remember_encoding(arr: pa.Array, enc: pa.DictionaryArray, key: tuple | None = None) -> None:
    _ENCODINGS.append((key or _array_id(arr), arr, enc))
    del _ENCODINGS[:-_ENCODINGS_MAX]


def _decode(values: pa.Array, indices: pa.Array) -> pa.Array:
    """``values.take(indices)``, remembering its encoding for :func:`dictionary_encode` (only when the mapped
    values are still distinct, as a dictionary must be)."""
    out = values.take(indices)
    if values.null_count == 0 and pc.count_distinct(values).as_py() == len(values):
        _remember_encoding(out, pa.DictionaryArray.from_arrays(indices, values))
    return out


# ------------------------------------------------------------------------ addresses

def ipv4_words(arr: pa.Array) -> np.ndarray:
    """Canonical dotted quads (every value must pass :func:`ipv4_canonical`) -> uint32 numbers. O(n) Arrow."""
    if len(arr) == 0:
        return np.zeros(0, np.uint32)
    parts = pc.list_flatten(pc.split_pattern(arr, ".")).cast(pa.uint32()).to_numpy(zero_copy_only=False)
    parts = parts.reshape(-1, 4)
    return (parts[:, 0] << 24) | (parts[:, 1] << 16) | (parts[:, 2] << 8) | parts[:, 3]


def normalize_ip_values(arr) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """:func:`normalize_ip` over a string array, vectorised: ``(normalised strings, is_v4, v4)``.

    ``is_v4`` marks the results that are IPv4 found by the vectorised path (canonical dotted quads and
    ``::ffff:a.b.c.d``) and ``v4`` holds their uint32 value (0 elsewhere); any other non-null value goes through
    :func:`normalize_ip` itself (IPv6, odd spellings: rare), with ``is_v4`` False even if the result is IPv4.
    O(n) work + one Python call per odd value. Meant for distinct values (a dictionary).
    """
    arr = as_string_array(arr)
    n = len(arr)
    if n == 0 or arr.null_count == n:
        return arr, np.zeros(n, bool), np.zeros(n, np.uint32)
    canon = _mask(ipv4_canonical(arr), False)
    out = arr
    is_v4 = canon
    if not canon.all():
        valid = _mask(pc.is_valid(arr), False)
        prefixed = _mask(pc.starts_with(arr, _MAPPED_PREFIX), False)
        mapped = prefixed & _mask(ipv4_canonical(pc.utf8_slice_codeunits(arr, len(_MAPPED_PREFIX))), False)
        odd = valid & ~canon & ~mapped
        if mapped.any():
            out = pc.if_else(pa.array(mapped), pc.utf8_slice_codeunits(arr, len(_MAPPED_PREFIX)), arr)
            is_v4 = canon | mapped
        out = _replace_rows(out, odd, normalize_ip)
    v4 = np.zeros(n, np.uint32)
    if is_v4.all():
        v4 = ipv4_words(out)
    elif is_v4.any():
        v4[is_v4] = ipv4_words(out.filter(pa.array(is_v4)))
    return out, is_v4, v4


def normalize_ip_array(col) -> pa.Array:
    """:func:`normalize_ip` over a (chunked, dictionary, string) array, as a ``pa.string()`` array of the same
    values: work once per distinct value (canonical IPv4 strings, most of them, are kept as they are; only the
    others are mapped); a dictionary is normalised on its dictionary, then decoded. When every value is canonical
    IPv4 (or null) the input comes back as it is. O(n) hashing plus O(distinct bytes)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_dictionary(arr.type) and is_text(arr.type):  # once per distinct value
        return decode_dictionary(pa.DictionaryArray.from_arrays(arr.indices, normalize_ip_array(arr.dictionary)))
    arr = as_string_array(arr)
    if arr.null_count == len(arr):
        return arr
    # The compiled check is branchy per byte (about 30 ns a row on random addresses): run it on the distinct
    # values, which Arrow's hash encoding finds in about half that.
    enc = pc.dictionary_encode(arr)
    d = enc.dictionary
    other = pc.invert(pc.fill_null(ipv4_canonical(d), True))
    if not pc.any(other).as_py():
        return arr
    mapped = pc.replace_with_mask(d, other, normalize_ip_values(d.filter(other))[0])
    return decode_dictionary(pa.DictionaryArray.from_arrays(enc.indices, mapped))


def is_ip(arr: pa.Array) -> pa.Array:
    """``bool(normalize_ip(v))`` per value of a string array (null stays null): canonical IPv4 by one compiled
    pass, the other values once per distinct. O(n + bytes)."""
    canon = pc.fill_null(ipv4_canonical(arr), False)
    other = pc.and_(pc.invert(canon), pc.is_valid(arr))
    if not pc.any(other).as_py():
        return canon
    ok = pc.is_valid(map_unique(arr.filter(other), normalize_ip))
    return pc.replace_with_mask(canon, other, ok)


def maybe_ip(arr: pa.Array) -> np.ndarray:
    """False where :func:`normalize_ip` certainly returns None (host names, nulls); True where it might not."""
    if len(arr) == 0:
        return np.zeros(0, bool)
    return _mask(pc.match_substring_regex(arr, MAYBE_IP), False)


# ------------------------------------------------------------------------ names

def normalize_domain_values(arr) -> pa.Array:
    """:func:`normalize_domain` over a string array (same values): canonical names kept by one regex pass,
    the others mapped one by one."""
    arr = as_string_array(arr)
    if arr.null_count == len(arr):
        return arr
    odd = _mask(pc.match_substring_regex(arr, _DOMAIN_NONCANONICAL), False)
    return _replace_rows(arr, odd, normalize_domain)


def normalize_domain_array(arr) -> pa.Array:
    """:func:`normalize_domain` over a string array, once per distinct value; the input comes back as it is
    when every value is already canonical. Remembers the encoding for :func:`dictionary_encode`. O(n)."""
    arr = as_string_array(arr)
    if arr.null_count == len(arr):
        return arr
    enc = dictionary_encode(arr)
    d = enc.dictionary
    if not _mask(pc.match_substring_regex(d, _DOMAIN_NONCANONICAL), False).any():
        return arr
    return _decode(normalize_domain_values(d), enc.indices)


def basename_values(arr) -> pa.Array:
    """:func:`basename` over a string array (same values), vectorised."""
    arr = as_string_array(arr)
    if arr.null_count == len(arr):
        return arr
    b = pc.replace_substring_regex(arr, r"(?s)^.*[\\/]", "")
    return pc.if_else(pc.equal(b, ""), pa.scalar(None, pa.string()), b)


def is_internal_ip(ip: str | None) -> bool:
    """True for a loopback, private (RFC 1918, ULA, CGNAT), link-local, multicast or unspecified address."""
    if not ip:
        return False
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return a.is_private or a.is_loopback or a.is_link_local or a.is_multicast or a.is_unspecified or \
        (a.version == 4 and a in _CGNAT)


_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def _v4_nets(nets) -> np.ndarray:
    """(network address, mask) rows (uint32) of IPv4 networks."""
    return np.array([(int(n.network_address), int(n.netmask)) for n in nets], np.uint32).reshape(-1, 2)


_V4 = ipaddress.IPv4Address._constants
# is_internal_ip's IPv4 answer as networks, read from this Python's ipaddress (its private list and, in the
# versions that have them, the exceptions to it), so that the vectorised form agrees with the scalar one.
_V4_INTERNAL = _v4_nets([_V4._linklocal_network, _V4._multicast_network, ipaddress.ip_network("127.0.0.0/8"),
                         ipaddress.ip_network("0.0.0.0/32"), _CGNAT])
_V4_PRIVATE = _v4_nets(_V4._private_networks)
_V4_PRIVATE_EXCEPT = _v4_nets(getattr(_V4, "_private_networks_exceptions", []))


def _in_nets(words: np.ndarray, nets: np.ndarray) -> np.ndarray:
    out = np.zeros(words.shape[0], bool)
    for addr, mask in nets:
        out |= (words & mask) == addr
    return out


def internal_ip_mask(arr) -> np.ndarray:
    """:func:`is_internal_ip` per value of a (chunked, dictionary or plain) string array, as a bool array (null ->
    False): canonical IPv4 values by a few numpy range checks over the distinct values, the others (IPv6, odd
    spellings) by the scalar function once per distinct value. O(n) hashing plus O(distinct x 20) numpy."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    if n == 0 or arr.null_count == n:
        return np.zeros(n, bool)
    enc = arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(as_string_array(arr))
    d = as_string_array(enc.dictionary)
    canon = _mask(ipv4_canonical(d), False)
    hit = np.zeros(len(d) + 1, bool)                  # the last entry: null rows
    if canon.any():
        w = ipv4_words(d.filter(pa.array(canon))) if not canon.all() else ipv4_words(d)
        hit[:-1][canon] = _in_nets(w, _V4_INTERNAL) | (_in_nets(w, _V4_PRIVATE) & ~_in_nets(w, _V4_PRIVATE_EXCEPT))
    other = np.flatnonzero(~canon & _mask(pc.is_valid(d), False))
    if other.size:
        vals = d.take(pa.array(other)).to_pylist()
        hit[other] = [is_internal_ip(v) for v in vals]
    idx = enc.indices.fill_null(len(d)).to_numpy(zero_copy_only=False)
    return hit[idx]
