"""Catalogue: cloud suffixes (PSL private + project list), IM domains, IP ranges, process signals, batches."""
from __future__ import annotations

import ipaddress
import os
import random

import pyarrow as pa
import pytest

from raresketch.catalog import IpOwner, IpTable, parse_cidrs, refresh_ip_ranges
from raresketch._readers import read_events
from raresketch.catalog import RESOLVED_SCHEMA, Catalog, default_catalog, process_key, psl_private_blocks

DATA = os.path.join(os.path.dirname(__file__), "..", "data")


@pytest.fixture(scope="module")
def cat():
    return default_catalog()


@pytest.mark.parametrize("host, key", [
    ("x.s3.us-west-2.amazonaws.com", "aws/s3/x"),
    ("x.s3.dualstack.eu-west-1.amazonaws.com", "aws/s3/x"),
    ("x.s3-us-west-2.amazonaws.com", "aws/s3/x"),
    ("x.s3-website.eu-central-1.amazonaws.com", "aws/s3-website/x"),
    ("x.s3-website-us-east-1.amazonaws.com", "aws/s3-website/x"),
    ("mybucket.s3.amazonaws.com", "aws/s3/mybucket"),
    ("a.b.mybucket.s3.amazonaws.com", "aws/s3/mybucket"),
    ("abc123.execute-api.ap-south-1.amazonaws.com", "aws/api-gateway/abc123"),
    ("d111111abcdef8.cloudfront.net", "aws/cloudfront/d111111abcdef8"),
    ("ec2-54-1-2-3.compute-1.amazonaws.com", "aws/ec2/ec2-54-1-2-3"),
    ("ec2-54-1-2-3.us-west-2.compute.amazonaws.com", "aws/ec2/ec2-54-1-2-3"),
    ("fn.lambda-url.eu-north-1.on.aws", "aws/lambda/fn"),
    ("x.blob.core.windows.net", "azure/blob/x"),
    ("X.BLOB.Core.Windows.NET.", "azure/blob/x"),
    ("app.azurewebsites.net", "azure/app-service/app"),
    ("x.workers.dev", "cloudflare/workers/x"),
    ("proj.pages.dev", "cloudflare/pages/proj"),
    ("foo.appspot.com", "gcp/app-engine/foo"),
    ("bucket.storage.googleapis.com", "gcp/storage/bucket"),
    ("b.objectstorage.us-phoenix-1.oraclecloud.com", "oracle/object-storage/b"),
    ("raw.githubusercontent.com", "github/usercontent/raw"),
    ("abc.ngrok-free.app", "ngrok/tunnel/abc"),
    ("myapp.herokuapp.com", "heroku/apps/myapp"),
])
def test_cloud_resources(cat, host, key):
    assert cat.resolve_host(host).cloud_resource == key


@pytest.mark.parametrize("host", ["s3.amazonaws.com", "s3.us-west-2.amazonaws.com", "blob.core.windows.net"])
def test_provider_endpoint_has_no_resource(cat, host):
    h = cat.resolve_host(host)
    assert h.cloud_provider is not None and h.cloud_resource is None


@pytest.mark.parametrize("host", ["example.com", "amazonaws.com.evil.example", "s3.amazonaws.com.evil.example",
                                  "windows.net", "1.2.3.4", "::1", "", None, "xn--bcher-kva.example"])
def test_not_cloud(cat, host):
    assert cat.resolve_host(host).cloud_resource is None


def test_unicode_and_punycode_same(cat):
    assert cat.resolve_host("bücher.example").name == cat.resolve_host("XN--BCHER-KVA.example.").name


def test_psl_blocks_parsed():
    blocks, meta = psl_private_blocks()
    titles = dict(blocks)
    assert len(titles["Amazon S3"]) > 100
    assert "blob.core.windows.net" in titles["Microsoft Corporation"]
    assert meta["version"] and meta["commit"]


@pytest.mark.parametrize("host, svc", [
    ("api.telegram.org", "telegram"), ("t.me", "telegram"), ("web.whatsapp.com", "whatsapp"),
    ("cdn.discordapp.com", "discord"), ("hooks.slack.com", "slack"), ("teams.microsoft.com", "teams"),
    ("x.teams.microsoft.com", "teams"), ("acme.zulipchat.com", "zulip"), ("signal.org", "signal"),
    ("line.me", "line"), ("viber.com", "viber"), ("matrix.org", "matrix"), ("teams.events.data.microsoft.com", "teams"),
])
def test_im_domains(cat, host, svc):
    assert cat.resolve_host(host).im_service == svc


def test_im_exact_vs_suffix(cat):
    # 'exact' rows match only that name; 'suffix' rows every subdomain
    assert cat.resolve_host("a.teams.events.data.microsoft.com").im_service is None
    assert cat.resolve_host("events.data.microsoft.com").im_service is None
    assert cat.resolve_host("notdiscord.com").im_service is None
    assert cat.resolve_host("config.edge.skype.com").im_service is None
    assert cat.resolve_host("mail.protonmail.com").im_service is None  # mail services dropped


@pytest.mark.parametrize("ip, provider, im", [
    ("52.216.1.1", "aws", None), ("91.108.4.5", "telegram", "telegram"), ("149.154.167.99", "telegram", "telegram"),
    ("2001:67c:4e8::1", "telegram", "telegram"), ("::ffff:91.108.4.5", "telegram", "telegram"),
    ("8.8.8.8", "google", None), ("140.82.112.3", "github", None), ("52.167.249.196", "azure", None),
    ("104.16.0.1", "cloudflare", None), ("2606:4700::1", "cloudflare", None),
    ("10.0.0.1", None, None), ("127.0.0.1", None, None), ("fe80::1", None, None), ("nonsense", None, None),
])
def test_ip_ranges(cat, ip, provider, im):
    o = cat.resolve_ip(ip)
    assert (o.provider if o else None) == provider
    assert (o.im_service if o else None) == im


def test_ip_table_boundaries_priority_specificity():
    a, b, c = IpOwner("a"), IpOwner("b"), IpOwner("tg", "im", "telegram")
    t = IpTable([(ipaddress.ip_network("10.0.0.0/8"), 2, a), (ipaddress.ip_network("10.1.0.0/16"), 1, b),
                 (ipaddress.ip_network("10.1.2.0/24"), 2, a), (ipaddress.ip_network("2001:db8::/32"), 5, c),
                 (ipaddress.ip_network("2001:db8:1::/48"), 5, a), (ipaddress.ip_network("::/0"), 9, b)])
    own = lambda ip: (t.owner(ip).provider if t.owner(ip) else None)  # noqa: E731
    assert own("9.255.255.255") is None and own("10.0.0.0") == "a" and own("10.255.255.255") == "a"
    assert own("11.0.0.0") is None and own("::ffff:11.0.0.0") is None  # an IPv6 ::/0 never covers IPv4
    assert own("10.1.0.0") == "b" and own("10.1.2.3") == "b"  # priority 1 beats the more specific /24 of priority 2
    assert own("10.2.0.0") == "a"
    assert own("2001:db8::1") == "tg" and own("2001:db8:1::5") == "a" and own("2001:db9::") == "b"


def test_ip_table_vectorised_matches_brute_force():
    rng = random.Random(7)
    nets = []
    for _ in range(300):
        if rng.random() < 0.5:
            nets.append(ipaddress.ip_network(f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.0/{rng.randrange(8, 25)}", strict=False))
        else:
            nets.append(ipaddress.ip_network(f"2001:db8:{rng.randrange(65536):x}::/{rng.randrange(36, 65)}", strict=False))
    owners = [IpOwner(f"p{i}") for i in range(300)]
    t = IpTable([(n, i, o) for i, (n, o) in enumerate(zip(nets, owners))])
    ips = [str(n.network_address + rng.randrange(n.num_addresses)) for n in nets[:150]]
    ips += [f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}" for _ in range(500)]
    ips += [str(n.broadcast_address + 1) for n in nets[:50] if n.broadcast_address != ipaddress.ip_address("255.255.255.255")]
    got = t.lookup(ips)
    for ip, g in zip(ips, got):
        a = ipaddress.ip_address(ip)
        cands = [i for i, n in enumerate(nets) if a.version == n.version and a in n]
        want = min(cands, key=lambda i: (i, -nets[i].prefixlen)) if cands else -1  # lower priority number wins
        assert (t.owners[g].provider if g >= 0 else None) == (owners[want].provider if want >= 0 else None), ip


def test_parse_cidrs_and_refresh_failure(tmp_path):
    nets = parse_cidrs("# comment\n91.108.4.0/22\n\n2001:67c:4e8::/48  # tg\n10.0.0.1/8\n")
    assert [str(n) for n in nets] == ["91.108.4.0/22", "2001:67c:4e8::/48", "10.0.0.0/8"]
    with pytest.raises(ValueError, match="line 2"):
        parse_cidrs("1.2.3.0/24\nnot-a-cidr\n")
    with pytest.raises(RuntimeError, match="shipped snapshot stays in use"):
        refresh_ip_ranges(["telegram"], str(tmp_path), timeout=2, url="http://127.0.0.1:9/{directory}/{family}.txt")
    assert not os.listdir(tmp_path)


def test_ip_ranges_dir_override(tmp_path):
    d = tmp_path / "telegram"
    d.mkdir()
    (d / "ipv4_merged.txt").write_text("198.51.100.0/24\n")
    c = Catalog(ip_ranges_dir=str(tmp_path))
    assert c.resolve_ip("198.51.100.7").im_service == "telegram"
    assert c.resolve_ip("91.108.4.5") is None
    assert "overridden" in c.sources()["ip_ranges"]


def test_process_signals(cat):
    p = cat.process_info("C:\\Users\\bob\\AppData\\Local\\Temp\\PowerShell.EXE", signer="Microsoft Windows")
    assert p.key == "powershell.exe|microsoft windows"
    assert p.is_script_engine and p.script_engine == "powershell" and p.user_writable_path is True
    assert p.renamed is None  # original file name unknown
    q = cat.process_info("C:\\Windows\\System32\\svchost.exe", original_file_name="svchost.exe")
    assert q.key == "svchost.exe" and q.is_script_engine is False and q.user_writable_path is False and q.renamed is False
    assert cat.process_info("C:\\Program Files\\PowerShell\\7\\pwsh.exe", original_file_name="pwsh.dll").renamed is False
    assert cat.process_info("C:\\Users\\Public\\svch0st.exe", original_file_name="mimikatz.exe").renamed is True
    assert cat.process_info("C:\\ProgramData\\x.exe").user_writable_path is True
    assert cat.process_info("/usr/bin/python3.11", os_type="linux").script_engine == "python"
    assert cat.process_info("/dev/shm/.x", os_type="linux").user_writable_path is True
    assert cat.process_info("/tmp/a.out").user_writable_path is True
    assert cat.process_info("/usr/sbin/sshd", os_type="linux").is_script_engine is False
    assert cat.process_info("/usr/bin/osascript", os_type="macos").script_engine == "applescript"
    assert cat.process_info(None).key is None
    assert process_key(None, "Teams.exe", " ") == "teams.exe"


def test_extensions_and_allowlist(tmp_path):
    ext = tmp_path / "ext.toml"
    ext.write_text('''
source = "test SOC 2026-11-23"
[[cloud]]
provider = "acme"
service = "files"
suffix = "files.acme.example"
[[im]]
service = "mattermost"
match = "exact"
domain = "chat.acme.example"
[[ip_ranges]]
provider = "acme"
cidrs = ["203.0.113.0/24", "52.216.0.0/24"]
[process]
script_engines = [{os = "windows", pattern = "autohotkey*.exe", engine = "autohotkey"}]
user_writable_paths = [{os = "windows", pattern = "^d:/scratch/"}]
[allow]
destinations = ["good.s3.amazonaws.com", ".corp.example", "198.51.100.9"]
processes = ["backup.exe|acme corp"]
''')
    c = Catalog(str(ext))
    assert c.resolve_host("t1.files.acme.example").cloud_resource == "acme/files/t1"
    assert c.resolve_host("chat.acme.example").im_service == "mattermost"
    assert c.resolve_host("x.chat.acme.example").im_service is None
    assert c.resolve_ip("203.0.113.5").provider == "acme" and c.resolve_ip("52.216.0.9").provider == "acme"
    assert c.resolve_ip("52.216.1.1").provider == "aws"
    assert c.process_info("C:\\x\\AutoHotkey64.exe").script_engine == "autohotkey"
    assert c.process_info("D:\\scratch\\a.exe").user_writable_path is True
    assert c.resolve_host("good.s3.amazonaws.com").allowlisted and c.resolve_host("a.b.corp.example").allowlisted
    assert not c.resolve_host("bad.s3.amazonaws.com").allowlisted
    assert c.process_info("C:\\b\\backup.exe", signer="ACME Corp").allowlisted
    assert not c.process_info("C:\\b\\backup.exe").allowlisted
    assert "test SOC" in c.sources()["extension ext.toml"]
    bad = tmp_path / "bad.toml"
    bad.write_text("[[cloud]\nprovider=")
    with pytest.raises(ValueError, match="invalid TOML"):
        Catalog(str(bad))


def test_sources_have_provenance(cat):
    s = cat.sources()
    for k in ("cloud_suffixes.tsv", "public_suffix_list", "im_domains.tsv", "ip_ranges", "script_engines.tsv",
              "user_writable_paths.tsv"):
        assert s[k]
    assert "2026-08-22" in s["ip_ranges"] and "v2fly" in s["im_domains.tsv"]


# ------------------------------------------------------------------------------------------ batches

def _batch(rows):
    cols = ["destination.domain", "destination.ip", "process.executable", "process.name",
            "process.code_signature.subject_name", "process.pe.original_file_name", "host.os.type"]
    return pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in cols})


def test_resolve_batch_columns_and_keys(cat):
    t = _batch([
        {"destination.domain": "X.S3.us-west-2.amazonaws.com.", "destination.ip": "52.216.1.1",
         "process.executable": "C:\\Users\\bob\\Downloads\\curl.exe"},
        {"destination.ip": "52.216.1.1", "process.name": "powershell.exe"},
        {"destination.ip": "91.108.4.5", "process.executable": "/tmp/x", "host.os.type": "linux"},
        {"destination.domain": "149.154.167.99"},  # IP literal in the domain field
        {"destination.domain": "api.telegram.org", "destination.ip": "10.0.0.1"},
        {"destination.domain": "intranet.corp", "destination.ip": "52.216.1.1"},
        {},
    ])
    r = cat.resolve_batch(t)
    assert r.schema == RESOLVED_SCHEMA and r.num_rows == 7
    d = r.to_pydict()
    assert d["raresketch.destination.key"] == ["x.s3.us-west-2.amazonaws.com", "52.216.1.1", "91.108.4.5",
                                               "149.154.167.99", "api.telegram.org", "intranet.corp", None]
    assert d["raresketch.cloud.resource"] == ["aws/s3/x", "aws/ip/52.216.1.1", None, None, None, None, None]
    assert d["raresketch.cloud.service"][:2] == ["s3", "ip"]
    assert d["raresketch.destination.ip_provider"][:3] == ["aws", "aws", "telegram"]
    assert d["raresketch.im.service"] == [None, None, "telegram", "telegram", "telegram", None, None]
    assert d["raresketch.process.key"][:3] == ["curl.exe", "powershell.exe", "x"]
    assert d["raresketch.process.user_writable_path"][:3] == [True, None, True]
    assert d["raresketch.process.is_script_engine"][:2] == [False, True]
    assert d["raresketch.allowlisted"] == [False] * 6 + [False]


def test_resolve_batch_once_per_distinct_value():
    c = Catalog()
    hosts = [f"b{i}.s3.amazonaws.com" for i in range(50)]
    rows = [{"destination.domain": hosts[i % 50], "destination.ip": f"52.216.0.{i % 7}",
             "process.executable": f"C:\\p\\{i % 5}.exe"} for i in range(20000)]
    r = c.resolve_batch(_batch(rows))
    assert r.num_rows == 20000
    seen = c._batch_resolver                            # one cached answer per distinct name / address / process
    assert (len(seen._dom.index), len(seen._ip.index), len(seen._proc.index)) == (50, 7, 5)
    assert c._process.cache_info().misses == 5
    calls = []
    c.host_rows = lambda values: calls.append(values) or Catalog.host_rows(c, values)
    assert c.resolve_batch(_batch(rows[::-1])).equals(r.take(pa.array(range(19999, -1, -1))))
    assert calls == [] and len(seen._dom.index) == 50   # a second batch of known values asks the catalogue nothing
    assert r.column("raresketch.cloud.resource").to_pylist()[:2] == ["aws/s3/b0", "aws/s3/b1"]
    # same answer as the scalar API
    for i in (0, 1, 4999, 19999):
        assert r.column("raresketch.cloud.resource")[i].as_py() == c.resolve_host(rows[i]["destination.domain"]).cloud_resource


def test_resolve_batch_empty_and_missing_columns(cat):
    r = cat.resolve_batch(pa.table({"x": pa.array([], pa.int8())}))
    assert r.schema == RESOLVED_SCHEMA and r.num_rows == 0
    r = cat.resolve_batch(pa.table({"destination.ip": ["91.108.4.5"]}))
    assert r.column("raresketch.im.service").to_pylist() == ["telegram"]


def test_resolve_real_otrf_batch(cat):
    t = pa.concat_tables(read_events(os.path.join(DATA, "otrf", "sysmon_net_subset")))
    r = cat.resolve_batch(t)
    both = {n: r.column(n).to_pylist() for n in r.column_names}
    names = t.column("process.name").to_pylist()
    res = both["raresketch.cloud.resource"]
    # the known positives: powershell / wmic fetching from raw.githubusercontent.com
    assert any(n == "WMIC.exe" and k == "github/usercontent/raw" for n, k in zip(names, res))
    assert any(n == "Teams.exe" and s == "teams" for n, s in zip(names, both["raresketch.im.service"]))
    assert sum(1 for k in res if k and "/ip/" in k) > 50
    assert both["raresketch.process.is_script_engine"].count(True) > 500


def _host_tuple_by_full_walk(cat, name):
    """The definition _host_tuples memoises per parent domain: a full suffix-rule walk of the name and every
    suffix of it for IM services and allow-listing."""
    from raresketch.catalog._catalog import _ip_literal
    from raresketch.events import normalize_domain

    n = normalize_domain(name)
    if not n:
        return (n, None, None, None, None, None, None, False)
    lit = _ip_literal(n)
    if lit is not None:
        return (n, lit, None, None, None, None, None, lit in cat._allow_exact)
    labels = n.split(".")
    prov = svc = label = res = None
    m = cat._trie.match(labels[::-1])
    if m is not None:
        depth, (prov, svc), star = m
        label = labels[-depth - 1] if depth < len(labels) else star
        res = f"{prov}/{svc}/{label}" if label else None
    suffixes = [".".join(labels[i:]) for i in range(len(labels))]
    im = cat._im_exact.get(n) or next((cat._im_suffix[s] for s in suffixes if s in cat._im_suffix), None)
    allowed = n in cat._allow_exact or any(s in cat._allow_suffix for s in suffixes)
    return (n, None, prov, svc, label, res, im, allowed)


def test_host_tuples_memo_per_parent_equals_full_walk(tmp_path):
    """Every rule of the catalogue (plus globs, ``*`` rules, IM and allow-list suffixes of an extension) under
    random and repeated prefixes: the per-parent memo gives exactly the full walk's answer."""
    import random

    ext = tmp_path / "ext.toml"
    ext.write_text('[[cloud]]\nsuffix = "*.data.acme.example"\nprovider = "acme"\nservice = "data"\n'
                   '[[cloud]]\nsuffix = "bkt-*.acme.example"\nprovider = "acme"\nservice = "bucket"\n'
                   '[[im]]\nservice = "chatco"\ndomain = "chat.example"\n'
                   '[allow]\ndestinations = [".corp.example", "ok.acme.example"]\n')
    cat = Catalog(str(ext))
    rules = []

    def walk(node, path):
        if node.value is not None:
            rules.append(".".join(reversed(path)))
        for lab, child in node.exact.items():
            walk(child, path + [lab])
        if node.star is not None:
            walk(node.star, path + ["*"])
        for g, child in node.globs:
            walk(child, path + [g])

    walk(cat._trie.root, [])
    r = random.Random(7)
    fills = ["x", "abc123", "s3", "bkt-9", "s3-website-eu-west-1", "data", "ok", "www", "a-b", "core"]
    names = ["", "localhost", "com", "10.1.2.3", "[::1]", "chat.example", "a.chat.example", "corp.example",
             "x.corp.example", "ok.acme.example", "no.acme.example", None]
    for rule in rules:
        for _ in range(4):
            labs = [r.choice(fills) + (str(r.randrange(50)) if r.random() < 0.5 else "") if lab in ("*",) or
                    "*" in lab else lab for lab in rule.split(".")]
            prefix = [r.choice(fills) for _ in range(r.randrange(3))]
            names.append(".".join(prefix + labs).upper() if r.random() < 0.1 else ".".join(prefix + labs))
    names += names[: len(names) // 2]                      # repeats hit the memo
    assert len(rules) > 500
    got = cat._host_tuples(names)
    assert got == [_host_tuple_by_full_walk(cat, v) for v in names]
    assert sum(1 for g in got if g[5]) > 1000             # resources named, several per rule
    assert any(g[6] == "chatco" for g in got) and any(g[7] for g in got)
