"""The vectorised preprocessing equals the scalar definitions, value for value.

- ``normalize_ip_values`` / ``normalize_ip_array``, ``normalize_domain_values`` / ``normalize_domain_array``,
  ``basename_values`` and ``maybe_ip`` against ``normalize_ip``, ``normalize_domain`` and ``basename`` on a large
  randomised corpus plus edge cases (leading zeros, spaces, brackets, zones, IPv6 spellings, garbage, nulls);
- ``IpTable.lookup_v4`` against the string lookup;
- ``conform`` and ``Catalog.resolve_batch`` against the straightforward implementations they replaced (kept
  below as references: per distinct value through the scalar functions), on random batches.
"""
from __future__ import annotations

import ipaddress
import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from raresketch.events._conform import cast_column, _set
from raresketch.events._schema import BUILD_SCHEMA
from raresketch.catalog import RESOLVED_SCHEMA, Catalog, default_catalog
from raresketch.events import (EVENT_SCHEMA, basename, basename_values, conform, maybe_ip, normalize_domain,
                               normalize_domain_array, normalize_domain_values, normalize_ip, normalize_ip_array,
                               normalize_ip_values)

SPACES = [" ", "\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1f", "\x85", "\xa0", "\u3000", "\u2028"]

IP_EDGE = [
    None, "", " ", "-", " - ", "0.0.0.0", "255.255.255.255", "256.1.1.1", "1.2.3", "1.2.3.4.5", "1..2.3",
    "01.2.3.4", "1.2.3.04", "00.0.0.0", "0.0.0.00", "1.2.3.4 ", " 1.2.3.4", "\t1.2.3.4\n", "1.2.3.4\x1c",
    "\xa01.2.3.4", "1.2.3.4\u3000", "１.2.3.4", "1.2.3.٤", "1.2.3.4/32", "1.2.3.4:80", "[1.2.3.4]", "1.2.3.4%eth0",
    "1.2.3.4%", "%1.2.3.4", "+1.2.3.4", "1.2.3.-4", "1.2.3.4.", ".1.2.3.4", "1.2.3.4a", "0x1.2.3.4",
    "::ffff:1.2.3.4", "::FFFF:1.2.3.4", "::ffff:01.2.3.4", "::ffff:1.2.3.256", "::ffff:102:304",
    "0:0:0:0:0:ffff:1.2.3.4", "[::ffff:1.2.3.4]", "::ffff:1.2.3.4%eth0", " ::ffff:1.2.3.4", "::ffff:1.2.3.4 ",
    "::1", "::", "2001:0DB8:0000::1", "2001:db8::1", "[2001:db8::1]", "fe80::1%eth0", "[fe80::1%eth0]",
    "2001:db8::1::2", "2001:db8:0:0:0:0:0:1", "::ffff:0.0.0.0", "64:ff9b::1.2.3.4", "1:2:3:4:5:6:7:8:9",
    "gggg::1", "not-an-ip", "example.com", "a.b.c.d", "999.999.999.999", "1.2.3.4\x00", "\x001.2.3.4",
    "1e1.2.3.4", "1_0.2.3.4", "[]", "[", "]", ":", ":::", "ffff", "1.2.3.4]", "[1.2.3.4",
]

DOMAIN_EDGE = [
    None, "", " ", "-", " - ", ".", "..", "a.", "a..", "A", "a", "-a", "a-", "www.Example.COM", "www.example.com.",
    "www.example.com..", " www.example.com", "www.example.com ", "www.example.com\t", "\x0bexample.com",
    "example.com\x1c", "example.com\x85", "\xa0example.com", "example.com\u3000", "bücher.de", "BÜCHER.de",
    "xn--bcher-kva.de", "例え.jp", "ＥＸＡＭＰＬＥ.com", "a b.com", "a\nb.com", "a.com.\n", "1.2.3.4", "::1",
    "[::1]", "1.2.3.4.", "\udcff.com" if False else "x\u200b.com", "a" * 70 + ".com", "xn--", "_dmarc.example.com",
    "x.s3.us-west-2.amazonaws.com", "X.BLOB.Core.Windows.NET.", "api.telegram.org", "-.", ".-",
]


def _rand_ip(r: random.Random) -> str | None:
    k = r.random()
    if k < 0.03:
        return None
    if k < 0.45:  # canonical IPv4 (edge octets often)
        return ".".join(str(r.choice([0, 1, 9, 10, 99, 100, 199, 200, 249, 250, 255, r.randrange(256)]))
                        for _ in range(4))
    if k < 0.55:  # odd octets: leading zeros, out of range, signs
        return ".".join(r.choice(["0" + str(r.randrange(100)), str(r.randrange(256, 1000)), str(r.randrange(256)),
                                  "", "00", "+1", "1 "]) for _ in range(r.choice([3, 4, 4, 4, 5])))
    if k < 0.62:
        v4 = ".".join(str(r.randrange(256)) for _ in range(4))
        return r.choice(["::ffff:", "::FFFF:", "::ffff:0:", "0::ffff:", "::"]) + v4
    if k < 0.75:
        a = ipaddress.IPv6Address(r.getrandbits(128) if r.random() < 0.5 else r.getrandbits(16) << 112)
        s = r.choice([a.compressed, a.exploded, a.exploded.upper(), a.compressed.upper()])
        return r.choice([s, f"[{s}]", f"{s}%eth0", f"[{s}%1]"])
    if k < 0.85:  # canonical IPv4 wrapped in spaces, brackets or a zone
        v4 = ".".join(str(r.randrange(256)) for _ in range(4))
        return r.choice(SPACES) + v4 + r.choice(SPACES + [""]) if r.random() < 0.5 else r.choice(
            [f"[{v4}]", f"{v4}%eth0", f"{v4}%", f"[{v4}%x]"])
    alphabet = "0123456789abcdefABCDEF.:%[]- x\t١"
    return "".join(r.choice(alphabet) for _ in range(r.randrange(0, 20)))


def _rand_domain(r: random.Random) -> str | None:
    k = r.random()
    if k < 0.03:
        return None
    labels = ["www", "api", "s3", "us-west-2", "amazonaws", "com", "Example", "CDN", "blob", "core", "windows",
              "net", "telegram", "org", "xn--bcher-kva", "bücher", "例え", "a-b", "_x", "0", "1"]
    name = ".".join(r.choice(labels) for _ in range(r.randrange(1, 6)))
    if k < 0.6:
        return name.lower() if name.isascii() else name
    if k < 0.8:
        return r.choice(["", " ", "\t", "\xa0"]) + name + r.choice(["", ".", "..", " ", ". ", "\x1c", "\u3000"])
    if k < 0.9:
        return _rand_ip(r)
    return "".join(r.choice("abcXYZ.-_ \t\xa0é0") for _ in range(r.randrange(0, 12)))


@pytest.fixture(scope="module")
def ip_corpus() -> list[str | None]:
    r = random.Random(8)
    return IP_EDGE + [_rand_ip(r) for _ in range(40_000)]


@pytest.fixture(scope="module")
def domain_corpus() -> list[str | None]:
    r = random.Random(9)
    return DOMAIN_EDGE + [_rand_domain(r) for _ in range(30_000)]


def _ip_int(s: str) -> int:
    a = ipaddress.ip_address(s)
    return int(a)


def test_normalize_ip_values_equals_scalar(ip_corpus):
    arr = pa.array(ip_corpus, pa.string())
    norm, is_v4, v4 = normalize_ip_values(arr)
    want = [normalize_ip(v) for v in ip_corpus]
    assert norm.to_pylist() == want
    assert norm.type == pa.string()
    for s, ok, x in zip(norm.to_pylist(), is_v4.tolist(), v4.tolist()):
        if ok:
            assert ipaddress.ip_address(s).version == 4 and int(ipaddress.ip_address(s)) == x
        else:
            assert x == 0
    assert is_v4.sum() > 10_000  # the vectorised path did the bulk


def test_normalize_ip_array_equals_scalar(ip_corpus):
    want = [normalize_ip(v) for v in ip_corpus]
    assert normalize_ip_array(pa.array(ip_corpus)).to_pylist() == want
    chunked = pa.chunked_array([pa.array(ip_corpus[:100]), pa.array(ip_corpus[100:])])
    assert normalize_ip_array(chunked).to_pylist() == want
    dict_typed = pa.array(ip_corpus).dictionary_encode()
    assert normalize_ip_array(dict_typed).to_pylist() == want
    # already canonical: the same array comes back (no copy)
    canon = pa.array(["1.2.3.4", None, "10.0.0.255", "1.2.3.4"])
    assert normalize_ip_array(canon) is canon
    for empty in (pa.array([], pa.string()), pa.nulls(3, pa.string())):
        assert normalize_ip_array(empty).to_pylist() == empty.to_pylist()
        assert normalize_ip_values(empty)[0].to_pylist() == empty.to_pylist()


def test_maybe_ip_never_misses_an_address(ip_corpus, domain_corpus):
    vals = ip_corpus + domain_corpus
    m = maybe_ip(pa.array(vals, pa.string()))
    for v, maybe in zip(vals, m.tolist()):
        if not maybe:
            assert normalize_ip(v) is None, v
    from raresketch.catalog._catalog import _ip_literal

    for v in vals:
        if v is not None:
            assert _ip_literal(v) == normalize_ip(v), v
    hosts = pa.array(["www.example.com", "x.s3.amazonaws.com", "a-b.c", None])
    assert not maybe_ip(hosts).any()


def test_normalize_domain_equals_scalar(domain_corpus):
    want = [normalize_domain(v) for v in domain_corpus]
    assert normalize_domain_values(pa.array(domain_corpus, pa.string())).to_pylist() == want
    assert normalize_domain_array(pa.array(domain_corpus, pa.string())).to_pylist() == want
    canon = pa.array(["www.example.com", None, "x.s3.amazonaws.com"])
    assert normalize_domain_array(canon) is canon


def test_basename_values_equals_scalar():
    r = random.Random(3)
    parts = ["C:", "Users", "a b", "AppData", "x.exe", "", "/", "\\", "ü", "\n", ".", "sh"]
    paths = [None, "", "/", "\\", "C:\\", "a/", "a\\b/", "/usr/bin/python3", "C:\\Windows\\System32\\cmd.exe",
             "x", "a\nb/c\nd", "\\\\server\\share\\t.exe"]
    paths += ["".join(r.choice(parts) + r.choice(["\\", "/", ""]) for _ in range(r.randrange(0, 6)))
              for _ in range(5000)]
    assert basename_values(pa.array(paths, pa.string())).to_pylist() == [basename(p) for p in paths]


def test_ip_table_lookup_v4_equals_string_lookup():
    cat = default_catalog()
    r = random.Random(5)
    # addresses inside and next to published networks, and random ones
    starts = [int.from_bytes(s, "big") for s in cat._ip._starts[:20000:7].tolist()]
    xs = [s + d for s in starts if s < (1 << 32) for d in (-1, 0, 1) if 0 <= s + d < (1 << 32)]
    xs += [r.getrandbits(32) for _ in range(20_000)] + [0, (1 << 32) - 1]
    strs = [str(ipaddress.IPv4Address(x)) for x in xs]
    got = cat._ip.lookup_v4(np.array(xs, np.uint32))
    assert got.tolist() == cat._ip.lookup(strs).tolist()
    assert (got >= 0).sum() > 100


# ------------------------------------------------------------------------------ references (pre-vectorisation)

def _reference_map_unique(arr, fn):
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if len(arr) == 0:
        return pa.array([], pa.string())
    enc = pc.dictionary_encode(arr)
    return pa.array([fn(v) for v in enc.dictionary.to_pylist()], pa.string()).take(enc.indices)


def reference_conform(table: pa.Table) -> pa.Table:
    n = table.num_rows
    cols = [cast_column(table.column(f.name), f) if f.name in table.column_names else pa.nulls(n, f.type)
            for f in EVENT_SCHEMA]
    out = pa.Table.from_arrays(cols, schema=BUILD_SCHEMA)
    if n:
        keep = pc.and_(pc.is_valid(out.column("@timestamp")), pc.is_valid(out.column("host.id")))
        if not pc.all(keep).as_py():
            out = out.filter(keep)
        t = out
        dom = t.column("destination.domain")
        if dom.null_count < len(dom):
            t = _set(t, "destination.domain", _reference_map_unique(dom, normalize_domain))
            src = t.column("raresketch.domain_source")
            has = pc.is_valid(t.column("destination.domain"))
            t = _set(t, "raresketch.domain_source", pc.if_else(
                pc.and_(has, pc.is_null(src)), pa.scalar("event"), pc.if_else(has, src, None)))
        for c in ("destination.ip", "source.ip"):
            col = t.column(c)
            if col.null_count < len(col):
                t = _set(t, c, _reference_map_unique(col, normalize_ip))
        for name_col, path_col in (("process.name", "process.executable"),
                                   ("process.parent.name", "process.parent.executable")):
            names, paths = t.column(name_col), t.column(path_col)
            if names.null_count and paths.null_count < len(paths):
                t = _set(t, name_col, pc.coalesce(names, _reference_map_unique(paths, basename)))
        out = t
    return out.cast(EVENT_SCHEMA)


def reference_resolve_batch(self: Catalog, table: pa.Table) -> pa.Table:
    n = table.num_rows
    col = lambda c: table.column(c).combine_chunks() if c in table.column_names else pa.nulls(n, pa.string())  # noqa: E731
    if n == 0:
        return RESOLVED_SCHEMA.empty_table()
    d_enc = pc.dictionary_encode(col("destination.domain"))
    hinfo = [self.resolve_host(v) for v in d_enc.dictionary.to_pylist()]
    is_ip_lit = [h.name is not None and normalize_ip(h.name) is not None for h in hinfo]
    dtake = lambda values, typ=pa.string(): pa.array(values, typ).take(d_enc.indices)  # noqa: E731
    name_key = dtake([None if lit else h.name for h, lit in zip(hinfo, is_ip_lit)])
    ip_from_dom = dtake([normalize_ip(h.name) if lit else None for h, lit in zip(hinfo, is_ip_lit)])
    c_prov = dtake([h.cloud_provider for h in hinfo])
    c_svc = dtake([h.cloud_service for h in hinfo])
    c_res = dtake([h.cloud_resource for h in hinfo])
    im_dom = dtake([h.im_service for h in hinfo])
    allow_dom = dtake([h.allowlisted for h in hinfo], pa.bool_())
    ip = pc.coalesce(col("destination.ip").cast(pa.string()), ip_from_dom)
    i_enc = pc.dictionary_encode(ip)
    i_vals = [normalize_ip(v) for v in i_enc.dictionary.to_pylist()]
    owners = [self._ip.owners[i] if i >= 0 else None for i in self._ip.lookup(i_vals)]
    itake = lambda vals, typ=pa.string(): pa.array(vals, typ).take(i_enc.indices)  # noqa: E731
    ip_norm = itake(i_vals)
    ip_prov = itake([o.provider if o else None for o in owners])
    ip_cloud = itake([o.provider if o and o.kind == "cloud" else None for o in owners])
    ip_im = itake([o.im_service if o and o.kind == "im" else None for o in owners])
    ip_res = itake([f"{o.provider}/ip/{v}" if o and o.kind == "cloud" else None for o, v in zip(owners, i_vals)])
    ip_allow = itake([v in self._allow_exact if v else False for v in i_vals], pa.bool_())
    ip_only = pc.is_null(name_key)
    pcols = ["process.executable", "process.name", "process.code_signature.subject_name",
             "process.pe.original_file_name", "host.os.type"]
    tuples = list(zip(*[col(c).cast(pa.string()).to_pylist() for c in pcols]))
    infos = [self.process_info(*t) for t in tuples]
    allow_proc = pa.array([i.allowlisted for i in infos], pa.bool_())
    out = {
        "raresketch.destination.key": pc.coalesce(name_key, ip_norm),
        "raresketch.cloud.provider": pc.if_else(ip_only, ip_cloud, c_prov),
        "raresketch.cloud.service": pc.if_else(ip_only, pc.if_else(pc.is_valid(ip_cloud), pa.scalar("ip"),
                                                                   pa.scalar(None, pa.string())), c_svc),
        "raresketch.cloud.resource": pc.if_else(ip_only, ip_res, c_res),
        "raresketch.destination.ip_provider": ip_prov,
        "raresketch.im.service": pc.coalesce(im_dom, ip_im),
        "raresketch.process.key": pa.array([i.key for i in infos], pa.string()),
        "raresketch.process.is_script_engine": pa.array([i.is_script_engine for i in infos], pa.bool_()),
        "raresketch.process.script_engine": pa.array([i.script_engine for i in infos], pa.string()),
        "raresketch.process.user_writable_path": pa.array([i.user_writable_path for i in infos], pa.bool_()),
        "raresketch.process.renamed": pa.array([i.renamed for i in infos], pa.bool_()),
        "raresketch.allowlisted": pc.or_(pc.or_(allow_dom.fill_null(False), ip_allow.fill_null(False)),
                                         allow_proc.fill_null(False)),
    }
    return pa.Table.from_arrays([out[f.name] for f in RESOLVED_SCHEMA], schema=RESOLVED_SCHEMA)


# ------------------------------------------------------------------------------ batches

EXES = [None, "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "C:\\Users\\bob\\AppData\\x.exe",
        "/usr/bin/python3", "/tmp/.x/agent", "C:\\Program Files\\Google\\Chrome\\chrome.exe", "", "wscript.exe",
        "/Applications/Slack.app/Contents/MacOS/Slack", "C:\\ProgramData\\upd\\Telegram.exe"]
SIGNERS = [None, "Microsoft Windows", "Google LLC", " ", "Telegram FZ-LLC", "microsoft windows"]
HOSTS = ["x.s3.us-west-2.amazonaws.com", "Api.Telegram.org", "cdn.discordapp.com.", "mybucket.s3.amazonaws.com",
         "www.example.com", "corp.example", "a.corp.example", "tenant1.blob.core.windows.net", "1.2.3.4", "::1",
         "149.154.167.220", "[2001:db8::1]", "-", None, "", "bücher.de", "allowed.example"]
IPS = ["149.154.167.220", "52.95.110.1", "13.107.6.152", "8.8.8.8", "203.0.113.7", "::ffff:52.95.110.1",
       "2001:db8::5", "01.2.3.4", "garbage", "-", None, " 10.0.0.1 ", "2600:1f18::1", "162.159.128.233"]


def random_batch(r: random.Random, n: int, columns_dropped: float = 0.1) -> pa.Table:
    cols = {
        "@timestamp": pa.array([1_700_000_000_000_000 + r.randrange(10**10) if r.random() > 0.01 else None
                                for _ in range(n)], pa.timestamp("us", tz="UTC")),
        "host.id": pa.array([f"h{r.randrange(30)}" if r.random() > 0.01 else None for _ in range(n)]),
        "host.os.type": pa.array([r.choice(["windows", "linux", "macos", None, "Windows"]) for _ in range(n)]),
        "process.executable": pa.array([r.choice(EXES) for _ in range(n)]),
        "process.name": pa.array([r.choice([None, None, "PowerShell.exe", "x.exe", "python3"]) for _ in range(n)]),
        "process.code_signature.subject_name": pa.array([r.choice(SIGNERS) for _ in range(n)]),
        "process.pe.original_file_name": pa.array([r.choice([None, "PowerShell.EXE", "-", "chrome.exe"])
                                                   for _ in range(n)]),
        "process.parent.executable": pa.array([r.choice(EXES) for _ in range(n)]),
        "destination.domain": pa.array([r.choice(HOSTS) if r.random() < 0.7 else _rand_domain(r)
                                        for _ in range(n)]),
        "destination.ip": pa.array([r.choice(IPS) if r.random() < 0.6 else _rand_ip(r) for _ in range(n)]),
        "source.ip": pa.array([r.choice(["10.0.0.1", None, "fe80::1%2", "010.0.0.1"]) for _ in range(n)]),
        "raresketch.domain_source": pa.array([r.choice([None, None, "dns", "event"]) for _ in range(n)]),
    }
    for c in list(cols):
        if c not in ("@timestamp", "host.id") and r.random() < columns_dropped:
            del cols[c]
    t = pa.table(cols)
    if r.random() < 0.5 and n > 3:  # several chunks
        k = r.randrange(1, n)
        t = pa.concat_tables([t.slice(0, k), t.slice(k)])
    return t


@pytest.fixture(scope="module")
def ext_catalog(tmp_path_factory) -> Catalog:
    p = tmp_path_factory.mktemp("cat") / "ext.toml"
    p.write_text("""
[[ip_ranges]]
provider = "acme"
kind = "cloud"
cidrs = ["203.0.113.0/24", "2001:db8::/32"]
[[ip_ranges]]
provider = "chatco"
kind = "im"
im_service = "chatco"
cidrs = ["8.8.8.0/24"]
[allow]
destinations = ["allowed.example", ".corp.example", "8.8.8.8", "::FFFF:52.95.110.1"]
processes = ["python3"]
""")
    return Catalog(str(p))


@pytest.mark.parametrize("seed", range(12))
def test_conform_equals_reference(seed):
    r = random.Random(seed)
    t = random_batch(r, r.choice([0, 1, 5, 300, 3000]))
    got, want = conform(t), reference_conform(t)
    assert got.schema == want.schema == EVENT_SCHEMA
    assert got.equals(want)


@pytest.mark.parametrize("seed", range(12))
def test_resolve_batch_equals_reference(seed, ext_catalog):
    r = random.Random(100 + seed)
    t = random_batch(r, r.choice([1, 7, 500, 4000]), columns_dropped=0.2)
    for cat in (default_catalog(), ext_catalog):
        for table in (t, conform(t)):
            got, want = cat.resolve_batch(table), reference_resolve_batch(cat, table)
            assert got.schema == RESOLVED_SCHEMA
            for f in RESOLVED_SCHEMA:
                assert got.column(f.name).to_pylist() == want.column(f.name).to_pylist(), f.name


def test_resolve_batch_edge_tables(ext_catalog):
    n = 4
    for t in (pa.table({"@timestamp": pa.array([1] * n, pa.timestamp("us", tz="UTC"))}),
              pa.table({"destination.domain": pa.array(["1.2.3.4", "8.8.8.8", None, "allowed.example"]),
                        "destination.ip": pa.nulls(n, pa.string())}),
              pa.table({"destination.domain": pa.nulls(n, pa.string()),
                        "destination.ip": pa.array(["8.8.8.8", "::ffff:8.8.8.9", None, "x"])}),
              pa.table({"destination.ip": pa.array(["8.8.8.8"] * n).dictionary_encode()}),
              EVENT_SCHEMA.empty_table()):
        got, want = ext_catalog.resolve_batch(t), reference_resolve_batch(ext_catalog, t)
        assert got.equals(want) or got.to_pylist() == want.to_pylist()


def test_resolve_batch_simulated_equals_reference():
    from raresketch.simulate import Organisation

    cat = default_catalog()
    for i, b in enumerate(Organisation(agents=30, days=20, seed=3).batches(20_000)):
        ev = conform(b)
        assert ev.equals(reference_conform(b))
        assert cat.resolve_batch(ev).equals(reference_resolve_batch(cat, ev))
        if i == 3:
            break


@pytest.mark.parametrize("seed", range(6))
def test_conform_of_dictionary_columns_equals_dense(seed):
    """Dictionary-typed text columns (as the Parquet reader yields them) conform to the same table."""
    r = random.Random(100 + seed)
    t = random_batch(r, r.choice([1, 5, 300, 3000]))
    enc = pa.table({c: (t.column(c).dictionary_encode() if pa.types.is_string(t.column(c).type) else t.column(c))
                    for c in t.column_names})
    assert conform(enc).equals(conform(t))


def test_conform_of_dictionary_binary_with_invalid_utf8_replaces_as_dense_binary():
    """A dictionary of binary values goes the binary way (invalid UTF-8 replaced), like a dense binary column."""
    t = pa.table({"@timestamp": pa.array([0, 1], pa.timestamp("us", tz="UTC")), "host.id": ["h", "h"],
                  "process.name": pa.array([b"a\xffb", b"ok"])})
    enc = t.set_column(2, "process.name", t.column("process.name").dictionary_encode())
    assert conform(enc).column("process.name").to_pylist() == conform(t).column("process.name").to_pylist() \
        == ["a\ufffdb", "ok"]
