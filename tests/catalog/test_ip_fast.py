"""The catalogue's fast CIDR parse and interval-table build give exactly the ``ipaddress`` answers.

The reference below is the straightforward construction (``ipaddress`` objects, Python integers, ``bisect``) that
the vectorised :class:`IpTable` replaced; both must give the same starts and owners on the shipped tables and on
random prefixes.
"""
import bisect
import ipaddress
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raresketch.catalog import Catalog, IpOwner, IpTable
from raresketch.catalog._data import data_dir, read_tsv
from raresketch.catalog._ip import _MAX, _V6, cidr_span, parse_cidr_spans, parse_cidrs
from raresketch.catalog._tenancy import read_ip_services


def _ref_span(cidr: str):
    net = ipaddress.ip_network(cidr, strict=False)
    lo, hi = int(net.network_address), int(net.broadcast_address)
    if net.version == 6:
        lo, hi = lo + _V6, hi + _V6
    return lo, hi, net.prefixlen + (96 if net.version == 4 else 0)


def _ref_table(entries):
    """(cidr text, priority, owner) -> (starts as ints, owners): the ipaddress-and-bisect construction."""
    owners, index, spans = [], {}, []
    for cidr, prio, owner in entries:
        if owner not in index:
            index[owner] = len(owners)
            owners.append(owner)
        lo, hi, p = _ref_span(cidr)
        spans.append((-prio, p, lo, hi, index[owner]))
    bounds = sorted({b for _, _, lo, hi, _ in spans for b in (lo, hi + 1) if b <= _MAX})
    owner_of = np.full(len(bounds), -1, np.int32)
    for _, _, lo, hi, oi in sorted(spans):
        i0 = bisect.bisect_left(bounds, lo)
        i1 = bisect.bisect_left(bounds, hi + 1) if hi < _MAX else len(bounds)
        owner_of[i0:i1] = oi
    keep = np.ones(len(bounds), bool)
    keep[1:] = owner_of[1:] != owner_of[:-1]
    return [b for b, k in zip(bounds, keep) if k], owner_of[keep], owners


def _assert_same(table: IpTable, ref) -> None:
    starts, owner_of, owners = ref
    assert [int.from_bytes(b.ljust(17, b"\0"), "big") for b in table._starts.tolist()] == starts
    assert table._owner.tolist() == owner_of.tolist()
    assert table.owners == owners
    assert table._v4_starts.tolist() == [b for b in starts if b < (1 << 32)]


def _shipped_entries():
    """The shipped per-service table and merged lists as (cidr text, priority, owner), as the catalogue ranks them."""
    data = data_dir()
    import gzip
    out = []
    with gzip.open(os.path.join(data, "ip_services.tsv.gz"), "rt", encoding="utf-8") as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if line.startswith("#") or p[0] == "provider":
                continue
            out.append((p[2], -0.6 + 0.1 * int(p[3]), IpOwner(p[0], p[1])))
    rows, _ = read_tsv(os.path.join(data, "ip_providers.tsv"))
    for r in rows:
        owner = IpOwner(r["provider"], r["kind"], r["im_service"] or None)
        for fam in ("ipv4", "ipv6"):
            path = os.path.join(data, "ip_ranges", r["directory"], f"{fam}_merged.txt")
            if os.path.exists(path):
                text = open(path, encoding="utf-8").read()
                lines = [x.split("#", 1)[0].strip() for x in text.splitlines()]
                out += [(x, int(r["priority"]), owner) for x in lines if x]
    return out


def test_shipped_tables_parse_and_build_exactly_as_ipaddress():
    entries = _shipped_entries()
    assert len(entries) > 40_000
    spans = [cidr_span(c) for c, _, _ in entries]
    assert spans == [_ref_span(c) for c, _, _ in entries]
    rows, _ = read_ip_services(os.path.join(data_dir(), "ip_services.tsv.gz"))
    assert [r[2] for r in rows] == spans[:len(rows)]
    ref = _ref_table(entries)
    _assert_same(IpTable([(s, p, o) for s, (_, p, o) in zip(spans, entries)]), ref)
    _assert_same(IpTable([(ipaddress.ip_network(c, strict=False), p, o) for c, p, o in entries]), ref)
    # the default catalogue's table is that table
    _assert_same(Catalog()._ip, ref)


def test_parse_cidr_spans_matches_parse_cidrs_and_its_errors():
    text = "# c\n91.108.4.0/22\n\n2001:67c:4e8::/48  # tg\n10.0.0.1/8\n10.0.0.0/255.255.0.0\nfe80::1/64\n"
    assert parse_cidr_spans(text) == [_ref_span(str(n)) for n in parse_cidrs(text)]
    for bad in ("1.2.3.0/24\nnot-a-cidr\n", "01.2.3.4/8\n", "1.2.3.4/33\n", "::1/129\n", "1.2.3.4/-1\n"):
        with pytest.raises(ValueError) as slow:
            parse_cidrs(bad)
        with pytest.raises(ValueError) as fast:
            parse_cidr_spans(bad)
        assert str(fast.value) == str(slow.value)


@st.composite
def cidr_texts(draw):
    v6 = draw(st.booleans())
    bits = 128 if v6 else 32
    value = draw(st.integers(0, (1 << bits) - 1))
    addr = ipaddress.ip_address(value) if not v6 else ipaddress.IPv6Address(value)
    form = draw(st.sampled_from(["str", "exploded", "leading0", "mapped", "upper", "junk", "three"]))
    if form == "exploded":
        text = addr.exploded
    elif form == "leading0" and not v6:
        text = ".".join(f"{int(o):02d}" for o in str(addr).split("."))
    elif form == "mapped":
        text = f"::ffff:{ipaddress.IPv4Address(value & 0xFFFFFFFF)}"
    elif form == "upper":
        text = str(addr).upper()
    elif form == "junk":
        text = str(addr) + draw(st.sampled_from([" ", "%eth0", "x", ":", "::", ".1"]))
    elif form == "three" and not v6:
        text = str(addr).rsplit(".", 1)[0]
    else:
        text = str(addr)
    suffix = draw(st.one_of(
        st.just(""),
        st.integers(0, bits + 2).map(lambda p: f"/{p}"),
        st.integers(0, bits).map(lambda p: f"/0{p}"),
        st.integers(0, 32).map(lambda p: f"/{ipaddress.IPv4Network(f'0.0.0.0/{p}').netmask}"),
        st.sampled_from(["/", "/x", "/24/1", "/ 24", "/+8", "/٣"])))
    return text + suffix


@settings(max_examples=600, deadline=None)
@given(cidr_texts())
def test_cidr_span_is_the_ipaddress_parse(text):
    try:
        want = _ref_span(text)
    except ValueError:
        with pytest.raises(ValueError):
            cidr_span(text)
        return
    assert cidr_span(text) == want


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, (1 << 128) - 1), st.integers(0, 128), st.integers(-1, 3),
                          st.integers(0, 3)), min_size=1, max_size=30))
def test_table_from_random_prefixes_is_the_reference_table(nets):
    owners = [IpOwner("a"), IpOwner("b", "platform"), IpOwner("c", "edge"), IpOwner("d", "im", "x")]
    entries = []
    for v6, value, plen, prio, o in nets:
        if v6:
            cidr = f"{ipaddress.IPv6Address(value)}/{plen}"
        else:  # cluster IPv4 prefixes so that they overlap
            cidr = f"{ipaddress.IPv4Address((value % 4096) << 20 | value % 256)}/{plen % 33}"
        entries.append((cidr, prio, owners[o]))
    ref = _ref_table(entries)
    _assert_same(IpTable([(cidr_span(c), p, o) for c, p, o in entries]), ref)
    _assert_same(IpTable([(ipaddress.ip_network(c, strict=False), p, o) for c, p, o in entries]), ref)
