"""Published cloud / IM networks as a sorted interval table with a vectorised lookup, and their refresh.

All addresses live in one 129-bit space (IPv4 below 2^32, IPv6 offset by 2^128, so an IPv6 network never
covers an IPv4 address; IPv4-mapped IPv6 input ``::ffff:a.b.c.d`` is looked up as IPv4), stored as
big-endian 17-byte strings (numpy ``S17``), whose byte order is the numeric order. Lookup is
``numpy.searchsorted`` over the interval starts: O(log R) per address, O(n log R) for n addresses, with
R the number of elementary intervals (about 2x the number of published prefixes).
"""
from __future__ import annotations

import ipaddress
import os
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import AbstractSet, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..events import normalize_ip_values

_V6 = 1 << 128
_MAX = (1 << 129) - 1
_W = 17  # bytes per packed address


@dataclass(frozen=True)
class IpOwner:
    """Who publishes a network: ``provider`` (``aws``, ``azure``, ...; ``telegram`` for its own networks),
    ``kind`` (``cloud``: tenant-rentable, ``platform``: the provider's first-party services, ``edge``: a shared CDN
    front, or ``im``) and ``im_service`` (for ``kind == "im"``)."""

    provider: str
    kind: str = "cloud"
    im_service: str | None = None


def parse_cidrs(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """One CIDR per line (blank lines and ``#`` comments ignored; host bits tolerated) -> networks.

    Raises ``ValueError`` naming the first line that is not a network.
    """
    out = []
    for n, s in _cidr_lines(text):
        try:
            out.append(ipaddress.ip_network(s, strict=False))
        except ValueError as e:
            raise ValueError(f"line {n}: {s!r} is not an IP network ({e})") from None
    return out


def parse_cidr_spans(text: str) -> list[tuple[int, int, int]]:
    """As :func:`parse_cidrs`, but each network as its span ``(first, last, prefix length)`` in the 129-bit space
    (:func:`cidr_span`): what :class:`IpTable` is built from, without ``ipaddress`` objects. Same errors."""
    out = []
    for n, s in _cidr_lines(text):
        try:
            out.append(cidr_span(s))
        except ValueError as e:
            raise ValueError(f"line {n}: {s!r} is not an IP network ({e})") from None
    return out


def _cidr_lines(text: str):
    for n, line in enumerate(text.splitlines(), 1):
        s = line.split("#", 1)[0].strip()
        if s:
            yield n, s


def cidr_span(cidr: str) -> tuple[int, int, int]:
    """``ipaddress.ip_network(cidr, strict=False)`` as ``(first, last, prefix length)`` in the 129-bit space (IPv6
    offset by 2^128; the prefix length counted over 128 bits, an IPv4 ``/24`` is 120), without building the object.

    Exactly the answer (or the ``ValueError``) of the ``ipaddress`` parse: an address the C parser
    ``socket.inet_pton`` reads and a plain decimal prefix length take the fast path (about 1 us instead of about
    20 us); anything else (a netmask or host-mask suffix, an IPv6 scope, an odd spelling) is handed to
    ``ipaddress``. Both parsers reject leading zeros in IPv4 octets and accept the same IPv6 spellings
    (tests/catalog/test_ip_fast.py checks the shipped tables and random CIDRs)."""
    addr, sep, plen = cidr.partition("/")
    try:
        if ":" in addr:
            value, bits, offset = int.from_bytes(socket.inet_pton(socket.AF_INET6, addr), "big"), 128, _V6
        else:
            value, bits, offset = int.from_bytes(socket.inet_pton(socket.AF_INET, addr), "big"), 32, 0
    except (OSError, ValueError):
        return _slow_span(cidr)
    if not sep:
        p = bits
    elif plen.isascii() and plen.isdigit() and int(plen) <= bits:
        p = int(plen)
    else:
        return _slow_span(cidr)
    host = (1 << (bits - p)) - 1
    lo = (value & ~host) + offset
    return lo, lo + host, p + 128 - bits


def _slow_span(cidr: str) -> tuple[int, int, int]:
    net = ipaddress.ip_network(cidr, strict=False)
    lo, hi = _span(net)
    return lo, hi, _prefix128(net)


def _pack(values: list[int]) -> np.ndarray:
    """Integers of the 129-bit space -> big-endian ``S17`` array (numpy sorts and searches it numerically)."""
    return np.array([v.to_bytes(_W, "big") for v in values], dtype=f"S{_W}")


def _unique_packed(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of an ``S17`` array and each input's index among them (``numpy.unique`` with
    ``return_inverse``, but sorting three integer keys, leading byte and two big-endian 64-bit words, which is
    several times faster than sorting 17-byte strings). O(n log n)."""
    if len(packed) == 0:
        return packed, np.zeros(0, np.int64)
    raw = packed.view(np.uint8).reshape(-1, _W)
    k0 = raw[:, 0]
    k1 = raw[:, 1:9].copy().view(">u8").ravel()
    k2 = raw[:, 9:].copy().view(">u8").ravel()
    order = np.lexsort((k2, k1, k0))
    s0, s1, s2 = k0[order], k1[order], k2[order]
    new = np.ones(len(order), bool)
    new[1:] = (s0[1:] != s0[:-1]) | (s1[1:] != s1[:-1]) | (s2[1:] != s2[:-1])
    where = np.empty(len(order), np.int64)
    where[order] = np.cumsum(new) - 1
    return packed[order[new]], where


def _span(net) -> tuple[int, int]:
    if isinstance(net, tuple):
        return net[0], net[1]
    lo, hi = int(net.network_address), int(net.broadcast_address)
    if net.version == 6:
        lo, hi = lo + _V6, hi + _V6
    return lo, hi


def _prefix128(net) -> int:
    if isinstance(net, tuple):
        return net[2]
    return net.prefixlen + (96 if net.version == 4 else 0)


def ip_to_int(ip: str) -> int | None:
    """Address text -> integer in the 129-bit space; None when not an address."""
    try:
        a = ipaddress.ip_address(ip.strip().strip("[]").split("%", 1)[0])
    except (ValueError, AttributeError):
        return None
    if a.version == 6 and a.ipv4_mapped is not None:
        a = a.ipv4_mapped
    return int(a) if a.version == 4 else int(a) + _V6


class IpTable:
    """Non-overlapping intervals -> owner index; built from possibly overlapping prefixes.

    Overlaps resolve to the owner with the lower ``priority`` number, then (within one priority) to the
    most specific prefix.
    Build cost O(P log P) to sort and search the P prefixes' bounds plus P numpy slice writes (O(P * R) element
    writes in the worst case; about 0.1 s for the ~50k shipped prefixes).
    """

    def __init__(self, entries: Iterable[tuple[object, int, IpOwner]]):
        """``entries``: (network, priority, owner) triples; a network is an ``ipaddress`` network or its
        :func:`cidr_span` tuple (the same table either way)."""
        owners: list[IpOwner] = []
        index: dict[IpOwner, int] = {}
        by_id: dict[int, int] = {}                     # id(owner) -> index: one dataclass hash per distinct object
        prio, plen, los, ends, oi = [], [], [], [], []
        for net, p, owner in entries:
            i = by_id.get(id(owner))
            if i is None:
                i = index.get(owner)
                if i is None:
                    i = index[owner] = len(owners)
                    owners.append(owner)
                by_id[id(owner)] = i
            lo, hi = _span(net)
            prio.append(-p)
            plen.append(_prefix128(net))
            los.append(lo)
            ends.append(hi + 1)
            oi.append(i)
        self.owners = owners
        # every span start and end (last + 1, except past the space) as S17: byte order is numeric order
        top = np.array([e > _MAX for e in ends], bool)
        bounds, where = _unique_packed(_pack(los + [e for e in ends if e <= _MAX]))
        i0 = where[:len(los)]
        i1 = np.full(len(ends), len(bounds), np.int64)
        i1[~top] = where[len(los):]
        owner_of = np.full(len(bounds), -1, np.int32)
        # high priority number first, then general before specific, then by start, then by owner index:
        # later writes win, so the lowest priority number and the most specific prefix end on top
        order = np.lexsort((np.array(oi, np.int64), i0, np.array(plen, np.int64), np.array(prio, float)))
        for a, b, o in zip(i0[order].tolist(), i1[order].tolist(), np.array(oi, np.int64)[order].tolist()):
            owner_of[a:b] = o
        # merge neighbours with one owner
        keep = np.ones(len(bounds), bool)
        if len(bounds) > 1:
            keep[1:] = owner_of[1:] != owner_of[:-1]
        self._starts = bounds[keep]
        self._owner = owner_of[keep]
        # The IPv4 part as integers: the starts below 2^32 come first in the sorted starts, so for an IPv4
        # address x the interval is the last start <= x among them (the next start, if any, is above x).
        raw = self._starts.view(np.uint8).reshape(-1, _W) if len(self._starts) else np.zeros((0, _W), np.uint8)
        v4 = ~raw[:, :_W - 4].any(axis=1)
        self._v4_starts = raw[v4, _W - 4:].copy().view(">u4").ravel().astype(np.int64)

    def __len__(self) -> int:
        return int((self._owner >= 0).sum())

    def lookup_packed(self, packed: np.ndarray) -> np.ndarray:
        """``S17`` big-endian addresses (see :func:`ip_to_int`) -> owner index (int32, -1 = none). O(n log R)."""
        if len(self._starts) == 0 or len(packed) == 0:
            return np.full(len(packed), -1, np.int32)
        i = np.searchsorted(self._starts, packed, side="right") - 1
        out = np.where(i >= 0, self._owner[np.maximum(i, 0)], -1)
        return out.astype(np.int32)

    def lookup_v4(self, addrs: np.ndarray) -> np.ndarray:
        """IPv4 addresses as integers (uint32) -> owner index (int32, -1 = none). O(n log R), numpy only."""
        if len(self._v4_starts) == 0 or len(addrs) == 0:
            return np.full(len(addrs), -1, np.int32)
        i = np.searchsorted(self._v4_starts, addrs.astype(np.int64), side="right") - 1
        return np.where(i >= 0, self._owner[np.maximum(i, 0)], -1).astype(np.int32)

    def lookup(self, ips: Sequence[str | None]) -> np.ndarray:
        """Address strings (None / non-addresses allowed) -> owner index array (-1 = none)."""
        ints = [ip_to_int(ip) if ip else None for ip in ips]
        valid = np.fromiter((v is not None for v in ints), bool, len(ints))
        packed = np.array([(v if v is not None else 0).to_bytes(_W, "big") for v in ints], dtype=f"S{_W}")
        out = self.lookup_packed(packed)
        out[~valid] = -1
        return out

    def owner_columns(self) -> dict[str, pa.Array]:
        """Per owner index, plus a trailing null for "no owner": ``provider``, ``cloud`` (provider of a cloud
        owner) and ``im`` (IM service of an IM owner) as string arrays. Built once."""
        t = self.__dict__.get("_owner_columns")
        if t is None:
            owners = self.owners
            t = {"provider": pa.array([o.provider for o in owners] + [None], pa.string()),
                 "kind": pa.array([o.kind for o in owners] + [None], pa.string()),
                 "cloud": pa.array([o.provider if o.kind == "cloud" else None for o in owners] + [None], pa.string()),
                 "im": pa.array([o.im_service if o.kind == "im" else None for o in owners] + [None], pa.string())}
            self._owner_columns = t
        return t

    def owner(self, ip: str | None) -> IpOwner | None:
        """Owner of one address, or None."""
        if not ip:
            return None
        i = int(self.lookup([ip])[0])
        return self.owners[i] if i >= 0 else None


def ip_values(table: IpTable, values: pa.Array, allow_exact: AbstractSet[str]) -> dict[str, pa.Array | np.ndarray]:
    """What the catalogue knows of each address text in ``values`` (a string array, usually distinct values), as
    aligned columns: ``norm`` (normalised address, null when not an address), ``provider`` (owner of any kind),
    ``kind`` (the owner's class: cloud, platform, edge, im),
    ``cloud`` (owner when a cloud), ``service`` (``ip`` for a cloud), ``resource`` (``cloud/ip/norm``), ``im``
    (IM service of an IM network), ``allow`` (numpy bool: ``norm`` is allow-listed).

    Vectorised: canonical IPv4 by one regex pass and ``numpy.searchsorted`` (O(n log R)); Python only for IPv6
    and odd spellings."""
    norm, is_v4, v4 = normalize_ip_values(values)
    owner = np.full(len(norm), -1, np.int32)
    if is_v4.any():
        owner[is_v4] = table.lookup_v4(v4[is_v4])
    other = ~is_v4 & _valid(norm)
    if other.any():
        owner[other] = table.lookup(norm.filter(pa.array(other)).to_pylist())
    tables = table.owner_columns()
    o = pa.array(np.where(owner >= 0, owner, len(table.owners)))
    cloud = tables["cloud"].take(o)
    if allow_exact:
        allow = pc.is_in(norm, value_set=pa.array(sorted(allow_exact), pa.string())).fill_null(False).to_numpy(
            zero_copy_only=False)
    else:
        allow = np.zeros(len(norm), bool)
    return {
        "norm": norm,
        "provider": tables["provider"].take(o),
        "kind": tables["kind"].take(o),
        "cloud": cloud,
        "service": pc.if_else(pc.is_valid(cloud), pa.scalar("ip"), pa.scalar(None, pa.string())),
        "resource": pc.binary_join_element_wise(cloud, pa.scalar("ip"), norm, "/"),
        "im": tables["im"].take(o),
        "allow": allow,
    }


def _valid(a: pa.Array) -> np.ndarray:
    """Validity of an Arrow array as a numpy bool array."""
    if a.null_count == 0:
        return np.ones(len(a), bool)
    return pc.is_valid(a).to_numpy(zero_copy_only=False)


# ------------------------------------------------------------------------------------------ refresh

#: Where :func:`refresh_ip_ranges` fetches the merged per-provider lists (the shipped snapshot's source).
REFRESH_URL = "https://raw.githubusercontent.com/lord-alfred/ipranges/main/{directory}/{family}_merged.txt"


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "raresketch", "ip_ranges")


def refresh_ip_ranges(directories: Iterable[str], dest: str | None = None, timeout: float = 20.0,
                      url: str = REFRESH_URL) -> str:
    """Download fresh ``ipv4_merged.txt`` / ``ipv6_merged.txt`` for each provider directory into ``dest``
    (default: ``~/.cache/raresketch/ip_ranges``), validating every file with :func:`parse_cidrs` before any
    is written. ``Catalog(ip_ranges_dir=dest)`` (or ``RARESKETCH_IP_RANGES=dest``) then uses them.

    Returns ``dest``. Raises ``RuntimeError`` with the failing URL when the network does not allow the
    download; the shipped snapshot stays in use.
    """
    dest = dest or default_cache_dir()
    fetched: dict[str, str] = {}
    for d in directories:
        for fam in ("ipv4", "ipv6"):
            u = url.format(directory=d, family=fam)
            try:
                with urllib.request.urlopen(u, timeout=timeout) as r:  # noqa: S310 (fixed https URL)
                    text = r.read().decode("utf-8")
            except urllib.error.HTTPError as e:
                if e.code == 404 and fam == "ipv6":  # some providers publish no IPv6 list
                    continue
                raise RuntimeError(f"refresh failed: {u}: HTTP {e.code}; the shipped snapshot stays in use") from e
            except (urllib.error.URLError, OSError, TimeoutError) as e:
                raise RuntimeError(
                    f"refresh failed: cannot download {u} ({e}); this network does not allow it. "
                    "The shipped snapshot stays in use.") from e
            parse_cidrs(text)
            fetched[os.path.join(d, f"{fam}_merged.txt")] = text
    for rel, text in fetched.items():
        p = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w", encoding="utf-8") as f:
            f.write(text)
    return dest
