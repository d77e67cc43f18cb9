"""The simulator's traffic has the destination shapes the catalogue tells apart: reverse-lookup names on the agents
that report them, first-party provider noise, web services opened by browsers, a web-service C2 whose name is only
in the command line, and an attacker's own domain on rented VPS space."""
from __future__ import annotations

import copy
import ipaddress

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from raresketch.catalog import default_catalog
from raresketch.simulate import Organisation, load_profiles

NEW = ["regsvr32_pastebin_c2", "implant_own_domain_rented_vps"]


def _org(profiles=None, attacks=NEW) -> Organisation:
    return Organisation(agents=60, days=18, seed=5, events_per_agent_day=120, attacks=attacks, benign=False,
                        profiles=profiles)


@pytest.fixture(scope="module")
def org() -> Organisation:
    return _org()


@pytest.fixture(scope="module")
def events(org: Organisation) -> pa.Table:
    return pa.concat_tables(org.batches(batch_size=200_000))


def _resolved(events: pa.Table) -> pa.Table:
    return default_catalog().resolve_batch(events)


def test_ptr_names_only_on_ptr_agents_and_read_as_the_address(org: Organisation, events: pa.Table) -> None:
    ptr_hosts = {org._world.agent_id[a] for a in range(org.n_agents) if org._world.ptr.agent[a]}
    assert 0.1 * org.n_agents <= len(ptr_hosts) <= 0.4 * org.n_agents      # agent_share 0.25
    dom = events.column("destination.domain").to_pylist()
    host = events.column("host.id").to_pylist()
    shapes = ("compute-1.amazonaws.com", "s3-w.us-east-1.amazonaws.com", ".r.cloudfront.net", ".1e100.net",
              ".bc.googleusercontent.com", ".deploy.static.akamaitechnologies.com")
    is_ptr = [d is not None and d.endswith(shapes) for d in dom]
    assert sum(is_ptr) > 0.02 * events.num_rows
    assert all(h in ptr_hosts for h, p in zip(host, is_ptr) if p)
    r = _resolved(events)
    ptr_col = r.column("raresketch.destination.ptr").to_pylist()
    res = r.column("raresketch.cloud.resource").to_pylist()
    ip = events.column("destination.ip").to_pylist()
    for i in [i for i, p in enumerate(is_ptr) if p][:2000]:
        assert ptr_col[i] == dom[i]                                   # kept as evidence
        assert res[i] is None or res[i].endswith("/ip/" + ip[i])      # the address is the identity
    # an EC2 PTR encodes the event's own address
    ec2 = [(d, a) for d, a, p in zip(dom, ip, is_ptr) if p and d.startswith("ec2-")]
    assert ec2 and all(d.split(".")[0][4:].replace("-", ".") == a for d, a in ec2[:500])


def test_ptr_agents_change_only_names() -> None:
    """Choosing the reverse-lookup agents draws nothing: with none, every other column is the same."""
    p = copy.deepcopy(load_profiles())
    p["ptr"]["agent_share"] = 0.0
    plain = pa.concat_tables(_org(p, attacks=False).batches(batch_size=200_000))
    events = pa.concat_tables(_org(attacks=False).batches(batch_size=200_000))  # attacks avoid the PTR agents
    assert plain.num_rows == events.num_rows
    for c in events.column_names:
        if c not in ("destination.domain", "raresketch.domain_source"):
            assert plain.column(c).equals(events.column(c)), c
    assert not plain.column("destination.domain").equals(events.column("destination.domain"))


def test_first_party_noise_is_no_tenant_resource(events: pa.Table) -> None:
    r = _resolved(events)
    ip = events.column("destination.ip")
    dns = pc.and_(pc.is_in(ip, pa.array(["8.8.8.8", "8.8.4.4"])), pc.equal(events.column("destination.port"), 53))
    assert pc.sum(dns).as_py() > 0
    assert set(events.filter(dns).column("process.name").to_pylist()) == {"svchost.exe"}
    m365 = pc.is_in(ip, pa.array(["13.107.42.12", "13.107.6.152", "13.107.136.9", "40.126.32.134", "20.190.159.4",
                                  "52.96.166.130"]))
    names = set(events.filter(m365).column("process.name").to_pylist())
    assert {"OneDrive.exe", "ms-teams.exe"} <= names
    for mask in (dns, m365):
        sub = r.filter(mask)
        assert sub.column("raresketch.cloud.resource").null_count == sub.num_rows
        assert set(sub.column("raresketch.destination.ip_class").to_pylist()) == {"platform"}


def test_browsers_open_web_services(events: pa.Table) -> None:
    r = _resolved(events)
    res = r.column("raresketch.cloud.resource").to_pylist()
    procs = events.column("process.name").to_pylist()
    hosts = events.column("host.id").to_pylist()
    by: dict[str, set] = {}
    for x, p, h in zip(res, procs, hosts):
        if x and x.startswith("web/") and p in ("chrome.exe", "msedge.exe", "firefox.exe"):
            by.setdefault(x, set()).add(h)
    assert len(by.get("web/file-sharing/drive.google.com", ())) >= 10
    assert len(by.get("web/shortener/bit.ly", ())) >= 10
    assert {k.split("/")[1] for k in by} >= {"file-sharing", "shortener"}


def test_web_service_c2_and_own_domain_on_rented_vps(org: Organisation, events: pa.Table) -> None:
    gt = {g["scenario"]: g for g in org.ground_truth.to_pylist()}
    assert set(gt) == set(NEW)
    cat = default_catalog()
    paste = gt["regsvr32_pastebin_c2"]
    assert paste["destination.domain"] == "pastebin.com" and "pastebin.com/raw/" in paste["process.command_line"]
    assert cat._ip.owner(paste["destination.ip"]).provider == "cloudflare"       # a shared CDN front
    rows = events.filter(pc.equal(events.column("process.name"), "regsvr32.exe"))
    assert set(rows.column("raresketch.domain_source").to_pylist()) == {"command_line"}
    r = cat.resolve_batch(rows)
    assert set(r.column("raresketch.cloud.resource").to_pylist()) == {"web/paste/pastebin.com"}
    own = gt["implant_own_domain_rented_vps"]
    assert ipaddress.ip_address(own["destination.ip"])
    rows = events.filter(pc.equal(events.column("destination.domain"), own["destination.domain"]))
    r = cat.resolve_batch(rows)
    prov = cat._ip.owner(own["destination.ip"]).provider
    assert prov in ("digitalocean", "linode")
    assert set(r.column("raresketch.cloud.resource").to_pylist()) == {f"{prov}/hosted/{own['destination.domain']}"}
