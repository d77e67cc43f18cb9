"""Tests of the organisation simulator (raresketch.simulate).

The simulator feeds the demo, the accuracy tests and the benchmarks, so these tests check what those rely on:
determinism, the exact event schema, global time order, bounded memory, and the realism the detectors are judged
on (Zipf popularity, habitual explorers, vendor IM clients, IP-only rows, late joiners) -- plus an independent
exact check that every injected attack meets the conditions of the alert names its ground truth claims.
"""
from __future__ import annotations

import collections
import datetime as dt
import gzip
import inspect
import ipaddress
import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from raresketch.alerts import ALERTS
from raresketch.events import EVENT_SCHEMA
from raresketch.simulate import GROUND_TRUTH_SCHEMA, Organisation, load_profiles, write_ecs_jsonl, write_parquet

DAY_US = 86_400 * 1_000_000
ACTIVATION = 14
WINDOW_DAYS = 30
ATYPICAL = ALERTS[("rare_cloud", "atypical")].name
ATYPICAL_TO_AGENT = ALERTS[("rare_cloud", "atypical_to_agent")].name


@pytest.fixture(scope="module")
def org() -> Organisation:
    return Organisation(agents=150, days=32, seed=7, events_per_agent_day=160)


@pytest.fixture(scope="module")
def events(org: Organisation) -> pa.Table:
    return pa.concat_tables(org.batches(batch_size=50_000)).combine_chunks()


def _small(seed: int = 3, **kw) -> Organisation:
    kw.setdefault("agents", 40)
    kw.setdefault("days", 3)
    kw.setdefault("events_per_agent_day", 60)
    return Organisation(seed=seed, **kw)


# ---------------------------------------------------------------------------------------------- contract


def test_schema_is_exactly_event_schema(org: Organisation) -> None:
    for i, b in enumerate(org.batches(batch_size=20_000, end_day=2)):
        assert b.schema.equals(EVENT_SCHEMA, check_metadata=False)
        assert b.column("@timestamp").null_count == 0 and b.column("host.id").null_count == 0
        if i > 3:
            break


def test_deterministic_same_seed() -> None:
    a = pa.concat_tables(_small(seed=11).batches())
    b = pa.concat_tables(_small(seed=11).batches())
    assert a.num_rows > 1000
    assert a.equals(b)
    assert _small(seed=11).ground_truth.equals(_small(seed=11).ground_truth)


def test_different_seeds_differ() -> None:
    a = pa.concat_tables(_small(seed=1).batches())
    b = pa.concat_tables(_small(seed=2).batches())
    assert not a.equals(b)
    assert set(a.column("host.id").to_pylist()).isdisjoint(b.column("host.id").to_pylist())


def test_batch_size_does_not_change_the_events() -> None:
    o = _small(seed=5, days=2)
    small = list(o.batches(batch_size=777))
    assert all(t.num_rows == 777 for t in small[:-1]) and 0 < small[-1].num_rows <= 777
    assert pa.concat_tables(small).equals(pa.concat_tables(o.batches(batch_size=1_000_000)))


def test_day_range_selects_whole_days() -> None:
    o = _small(seed=5, days=3)
    full = pa.concat_tables(o.batches())
    day1 = pa.concat_tables(o.batches(start_day=1, end_day=2))
    ts = full.column("@timestamp").cast(pa.int64()).to_numpy()
    lo = o.start_us + DAY_US
    mask = (ts >= lo) & (ts < lo + DAY_US)
    assert day1.equals(full.filter(pa.array(mask)))


def test_global_time_order(events: pa.Table) -> None:
    ts = events.column("@timestamp").cast(pa.int64()).to_numpy()
    assert (np.diff(ts) >= 0).all()


def test_batches_is_a_generator_with_bounded_memory() -> None:
    o = Organisation(agents=300, days=6, seed=1, events_per_agent_day=300, attacks=False)
    assert inspect.isgenerator(o.batches())

    def peak(days: int) -> int:
        base = pa.total_allocated_bytes()
        top = 0
        for b in o.batches(batch_size=20_000, end_day=days):
            top = max(top, pa.total_allocated_bytes() - base)
            del b
        return top

    short, long_ = peak(1), peak(6)
    assert long_ < 1.5 * short + (8 << 20), (short, long_)


def test_parameters_are_validated() -> None:
    for kw in ({"agents": 0}, {"days": 0}, {"events_per_agent_day": 0}, {"late_join_share": 2}, {"mean_burst": 0.5}):
        with pytest.raises(ValueError):
            Organisation(**kw)
    with pytest.raises(ValueError, match="unknown attack scenario"):
        Organisation(agents=20, days=20, attacks=["nope"])
    with pytest.raises(ValueError):
        next(_small().batches(batch_size=0))


def test_volume_follows_events_per_agent_day() -> None:
    n1 = sum(t.num_rows for t in Organisation(agents=60, days=2, seed=4, events_per_agent_day=100, attacks=False).batches())
    n4 = sum(t.num_rows for t in Organisation(agents=60, days=2, seed=4, events_per_agent_day=400, attacks=False).batches())
    assert 3.3 < n4 / n1 < 4.7
    # about the requested rate on weekdays (2026-01-01 and 02 are Thursday and Friday)
    assert 0.6 * 60 * 2 * 100 < n1 < 1.8 * 60 * 2 * 100


# ---------------------------------------------------------------------------------------------- realism


def test_agents_os_roles_and_late_joiners(org: Organisation, events: pa.Table) -> None:
    ag = org.agents
    os_counts = collections.Counter(ag.column("host.os.type").to_pylist())
    assert os_counts["windows"] > 0.6 * org.n_agents and os_counts["macos"] > 0 and os_counts["linux"] > 0
    roles = set(ag.column("role").to_pylist())
    assert {"office", "developer", "kiosk", "server_aws", "server_azure"} <= roles
    join = dict(zip(ag.column("host.id").to_pylist(), ag.column("join_day").to_pylist()))
    late = {h: d for h, d in join.items() if d > 0}
    assert len(late) >= 5
    by_host = events.group_by("host.id").aggregate([("@timestamp", "min")])
    first_seen = dict(zip(by_host.column("host.id").to_pylist(), by_host.column("@timestamp_min").cast(pa.int64()).to_pylist()))
    for h, d in late.items():
        if h in first_seen:
            assert first_seen[h] >= org.start_us + d * DAY_US, h
    # early agents really start on day 0
    early = [h for h, d in join.items() if d == 0]
    assert sum(first_seen[h] < org.start_us + DAY_US for h in early) > 0.9 * len(early)


def test_users_and_processes_look_real(events: pa.Table) -> None:
    names = set(events.column("process.name").to_pylist())
    for n in ("chrome.exe", "msedge.exe", "OUTLOOK.EXE", "OneDrive.exe", "ms-teams.exe", "svchost.exe", "MsMpEng.exe",
              "slack.exe", "Telegram.exe", "git-remote-https.exe", "Code.exe", "python.exe", "node.exe",
              "WindowsAzureGuestAgent.exe", "amazon-ssm-agent", "powershell.exe"):
        assert n in names, n
    chrome = events.filter(pc.equal(events.column("process.name"), "chrome.exe")).slice(0, 1).to_pylist()[0]
    assert chrome["process.executable"] == r"C:\Program Files\Google\Chrome\Application\chrome.exe"
    assert chrome["process.code_signature.subject_name"] == "Google LLC" and chrome["process.code_signature.trusted"]
    assert len(chrome["process.hash.sha256"]) == 64 and chrome["process.parent.name"] == "explorer.exe"
    slack = events.filter(pc.equal(events.column("process.name"), "slack.exe")).slice(0, 1).to_pylist()[0]
    assert slack["process.executable"].startswith("C:\\Users\\") and "\\AppData\\Local\\slack\\" in slack["process.executable"]
    assert slack["user.name"] and slack["user.name"] in slack["process.executable"]
    # hashes change with updates: chrome (updated every ~14 days) has several over a month
    ch = events.filter(pc.equal(events.column("process.name"), "chrome.exe"))
    assert len(set(ch.column("process.hash.sha256").to_pylist())) >= 2
    # Linux processes carry no signature information (null = unknown)
    lx = events.filter(pc.equal(events.column("host.os.type"), "linux"))
    assert lx.column("process.code_signature.exists").null_count == lx.num_rows


def test_destination_popularity_is_zipf_like(org: Organisation, events: pa.Table) -> None:
    dom = events.filter(pc.is_valid(events.column("destination.domain")))
    prev = dom.group_by("destination.domain").aggregate([("host.id", "count_distinct")])
    counts = np.sort(prev.column("host.id_count_distinct").to_numpy())[::-1]
    workstations = sum(r in ("office", "developer") for r in org.agents.column("role").to_pylist())
    assert counts[0] >= 0.85 * workstations  # the top destinations are seen by (nearly) every workstation
    assert (counts[:10] >= 0.5 * workstations).all()
    assert (counts <= 2).mean() > 0.5  # and most distinct destinations by one or two agents
    assert len(counts) > 5_000
    company = dict(zip(prev.column("destination.domain").to_pylist(), prev.column("host.id_count_distinct").to_pylist()))
    assert company["acme-assets.s3.amazonaws.com"] >= 0.8 * workstations
    assert company["acmecorp.blob.core.windows.net"] >= 0.7 * workstations


CLOUD_SUFFIXES = sorted(
    {s[0] for p in load_profiles()["pools"].values() for s in p.get("suffixes", []) + p.get("cloud_tail", [])}
    | {"trycloudflare.com", "r2.dev", "lambda-url.us-east-1.on.aws"},
    key=len,
    reverse=True,
)


# paste sites among the web services the simulated browsers open (the catalogue's web/paste kind)
WEB_PASTE = {"pastebin.com"}
# the rented VPS space of the attacker's-own-domain scenario (no legitimate traffic goes there)
RENTED = {"digitalocean": [ipaddress.ip_network(c) for c in ("159.89.0.0/16", "167.99.0.0/16")],
          "linode": [ipaddress.ip_network(c) for c in ("139.162.0.0/16", "172.104.0.0/15")]}


def cloud_resource(domain: str | None, ip: str | None = None) -> tuple[str, str] | None:
    """(service kind, tenant label) by the suffixes of the profiles, the paste sites and a name hosted on rented
    VPS space -- a small stand-in for the catalogue."""
    if not domain:
        return None
    for s in CLOUD_SUFFIXES:
        if domain.endswith("." + s):
            return s, domain[: -len(s) - 1].rsplit(".", 1)[-1]
    if domain in WEB_PASTE:
        return "web/paste", domain
    if ip is not None:
        a = ipaddress.ip_address(ip)
        for prov, nets in RENTED.items():
            if any(a in n for n in nets):
                return f"{prov}/hosted", domain
    return None


def test_habitual_explorers_meet_many_rare_cloud_resources(events: pa.Table, org: Organisation) -> None:
    """DESIGN.md: browsers, sync clients, dev tools and cloud agents meet >= 20 first-seen rare cloud resources."""
    cutoff = org.start_us + WINDOW_DAYS * DAY_US  # "counted org-wide from the first day", over the training window
    early = events.filter(pc.less(events.column("@timestamp").cast(pa.int64()), cutoff))
    hosts = early.column("host.id").to_pylist()
    doms = early.column("destination.domain").to_pylist()
    keys = [f"{n}|{s}" for n, s in zip(early.column("process.name").to_pylist(),
                                         early.column("process.code_signature.subject_name").to_pylist())]
    agents_of = collections.defaultdict(set)
    met = collections.defaultdict(set)
    for h, d, k in zip(hosts, doms, keys):
        cr = cloud_resource(d)
        if cr:
            agents_of[cr].add(h)
            met[k].add(cr)
    rare = {cr for cr, a in agents_of.items() if len(a) <= 2}
    n_rare = {k: len(v & rare) for k, v in met.items()}
    for k in ("chrome.exe|Google LLC", "msedge.exe|Microsoft Corporation", "OneDrive.exe|Microsoft Corporation",
              "Code.exe|Microsoft Corporation", "git-remote-https.exe|Johannes Schindelin",
              "python.exe|Python Software Foundation", "cbengine.exe|Microsoft Corporation"):
        assert n_rare.get(k, 0) >= 20, (k, n_rare.get(k))
    # cloud agents too, if less (few servers in a small org)
    assert n_rare.get("WindowsAzureGuestAgent.exe|Microsoft Corporation", 0) + n_rare.get("amazon-ssm-agent|None", 0) >= 20
    # ... while the scripting engines and LOLBins used by IT do not
    assert n_rare.get("powershell.exe|Microsoft Windows", 0) < 5
    assert n_rare.get("OUTLOOK.EXE|Microsoft Corporation", 0) < 20


def test_vendor_im_clients_are_common_across_the_org(events: pa.Table, org: Organisation) -> None:
    def agents(name: str, signer: str) -> int:
        t = events.filter(pc.and_(pc.equal(events.column("process.name"), name),
                                  pc.equal(events.column("process.code_signature.subject_name"), signer)))
        return len(set(t.column("host.id").to_pylist()))

    assert agents("slack.exe", "Slack Technologies, LLC") >= 20
    assert agents("Telegram.exe", "Telegram FZ-LLC") >= 4
    assert agents("Discord.exe", "Discord Inc.") >= 3
    # Telegram Desktop talks MTProto to bare IPs inside Telegram's published networks
    tg = events.filter(pc.equal(events.column("process.name"), "Telegram.exe"))
    ip_only = tg.filter(pc.is_null(tg.column("destination.domain")))
    nets = [ipaddress.ip_network(c) for c in ("149.154.160.0/20", "91.108.56.0/22")]
    assert ip_only.num_rows > 0.5 * tg.num_rows
    assert all(any(ipaddress.ip_address(ip) in n for n in nets) for ip in set(ip_only.column("destination.ip").to_pylist()))
    # browsers reach web IM
    web_im = events.filter(pc.is_in(events.column("destination.domain"), pa.array(["web.telegram.org", "web.whatsapp.com", "discord.com"])))
    assert set(web_im.column("process.name").to_pylist()) & {"chrome.exe", "msedge.exe", "firefox.exe"}


def test_ip_only_rows_and_domain_source(events: pa.Table) -> None:
    dom_valid = pc.is_valid(events.column("destination.domain"))
    src = events.column("raresketch.domain_source")
    assert pc.all(pc.equal(pc.is_valid(src), dom_valid)).as_py()
    assert set(src.drop_null().to_pylist()) == {"event", "command_line"}
    # a name from the command line only on the injected web-service C2 (the connection carries only an address)
    cl = events.filter(pc.equal(src, "command_line"))
    assert set(cl.column("destination.domain").to_pylist()) == {"pastebin.com"}
    assert set(cl.column("process.name").to_pylist()) == {"regsvr32.exe"}
    share_null = 1 - pc.sum(dom_valid).as_py() / events.num_rows
    assert 0.01 < share_null < 0.3
    ips = events.column("destination.ip")
    assert ips.null_count == 0
    sample = set(ips.slice(0, 5000).to_pylist())
    for ip in sample:
        ipaddress.IPv4Address(ip)
    # IP-only rows inside AWS / Azure published ranges exist (telemetry without a name)
    null_ips = set(events.filter(pc.invert(dom_valid)).column("destination.ip").to_pylist())
    aws = [ipaddress.ip_network(c) for c in ("52.216.0.0/15", "3.5.0.0/19", "54.231.0.0/16", "16.182.0.0/16", "3.208.0.0/12", "54.144.0.0/12", "44.192.0.0/11", "13.32.0.0/15", "18.64.0.0/14", "13.224.0.0/14", "108.138.0.0/15", "3.160.0.0/14")]
    azure = [ipaddress.ip_network(c) for c in ("52.112.0.0/14", "20.60.0.0/16", "20.150.0.0/15", "52.239.128.0/17", "20.209.0.0/16", "20.42.0.0/15", "40.64.0.0/10", "104.40.0.0/13", "13.64.0.0/11", "52.224.0.0/11")]
    addrs = [ipaddress.ip_address(i) for i in null_ips]
    assert any(any(a in n for n in aws) for a in addrs)
    assert any(any(a in n for n in azure) for a in addrs)


# ---------------------------------------------------------------------------------------------- ground truth


def test_ground_truth_schema_and_coverage(org: Organisation) -> None:
    gt = org.ground_truth
    assert gt.schema.equals(GROUND_TRUTH_SCHEMA)
    assert org.skipped_scenarios == []
    assert set(gt.column("alert_name").to_pylist()) == {a.name for a in ALERTS.values()}  # every alert is injected
    mal = gt.filter(gt.column("malicious"))
    assert 10 <= mal.num_rows <= 40  # needles
    assert gt.num_rows - mal.num_rows >= 1  # benign-but-rare injections too
    for r in gt.to_pylist():
        assert r["alert_name"] in r["matched_alert_names"]
        assert r["day"] > ACTIVATION
    # renamed binaries are in there
    assert any(r["process.name"] == "svchost.exe" and "ProgramData" in r["process.executable"] for r in gt.to_pylist())


def test_scenarios_name_alerts_by_rule_ids() -> None:
    for s in load_profiles()["scenarios"]:
        for ref in (s["alert"], *s["matches"]):
            assert tuple(ref.split(".")) in ALERTS, (s["id"], ref)
    bad = load_profiles()
    sc = bad["scenarios"][0]
    sc["alert"] = "rare_cloud_atypical"  # not a "<detector>.<variation>" id
    with pytest.raises(ValueError, match="unknown alert 'rare_cloud_atypical'"):
        Organisation(agents=60, days=20, seed=3, attacks=[sc["id"]], benign=False, profiles=bad)


def test_ground_truth_rows_are_in_the_data(org: Organisation, events: pa.Table) -> None:
    gt = org.ground_truth.to_pylist()
    ts = events.column("@timestamp").cast(pa.int64()).to_numpy()
    for r in gt:
        t0 = r["@timestamp"]
        lo = int(pa.scalar(t0).cast(pa.int64()).as_py())
        hi = int(pa.scalar(r["end"]).cast(pa.int64()).as_py())
        a, b = np.searchsorted(ts, lo, "left"), np.searchsorted(ts, hi, "right")
        win = events.slice(a, b - a).to_pylist()
        hits = [e for e in win if e["host.id"] == r["host.id"] and e["process.name"] == r["process.name"]
                and e["destination.ip"] == r["destination.ip"] and e["destination.domain"] == r["destination.domain"]]
        assert len(hits) == r["n_connections"], r["scenario"]
        assert hits[0]["@timestamp"] == t0
        assert hits[0]["process.hash.sha256"] == r["process.hash.sha256"]


def test_attacked_agents_were_observed_for_the_activation_period(org: Organisation) -> None:
    join = dict(zip(org.agents.column("host.id").to_pylist(), org.agents.column("join_day").to_pylist()))
    for r in org.ground_truth.to_pylist():
        assert join[r["host.id"]] <= r["day"] - ACTIVATION - 1


IM_SUFFIXES = {
    "telegram": ("telegram.org", "t.me", "telegram-cdn.org", "tdesktop.com", "telegram.me"),
    "discord": ("discord.com", "discordapp.com", "discordapp.net", "discord.gg", "discord.media"),
    "slack": ("slack.com", "slack-edge.com", "slack-imgs.com", "slackb.com"),
    "whatsapp": ("whatsapp.com", "whatsapp.net"),
}
TELEGRAM_NETS = [ipaddress.ip_network(c) for c in ("149.154.160.0/20", "91.108.56.0/22")]


def im_service(domain: str | None, ip: str) -> str | None:
    if domain:
        for svc, sfx in IM_SUFFIXES.items():
            if any(domain == s or domain.endswith("." + s) for s in sfx):
                return svc
        return None
    a = ipaddress.ip_address(ip)
    return "telegram" if any(a in n for n in TELEGRAM_NETS) else None


def test_ground_truth_meets_the_detector_conditions(org: Organisation, events: pa.Table) -> None:
    """An exact (dict-and-set) reading of DESIGN.md's conditions over the 30 days before each injection."""
    gt = [r for r in org.ground_truth.to_pylist() if r["destination.domain"] is not None or r["scenario"] != "ec2_ip_beacon"]
    ts = events.column("@timestamp").cast(pa.int64()).to_numpy()
    cols = {c: events.column(c).to_pylist() for c in ("host.id", "process.name", "process.code_signature.subject_name", "destination.domain", "destination.ip")}
    res = [cloud_resource(d, ip) for d, ip in zip(cols["destination.domain"], cols["destination.ip"])]
    ims = [im_service(d, ip) for d, ip in zip(cols["destination.domain"], cols["destination.ip"])]
    keys = [f"{n}|{s}" for n, s in zip(cols["process.name"], cols["process.code_signature.subject_name"])]
    for r in gt:
        t0 = int(pa.scalar(r["@timestamp"]).cast(pa.int64()).as_py())
        end = np.searchsorted(ts, t0, "left")
        start = np.searchsorted(ts, t0 - WINDOW_DAYS * DAY_US, "left")
        key = None
        # the attack process key as the events carry it
        i_first = next(i for i in range(end, len(ts)) if cols["host.id"][i] == r["host.id"] and cols["process.name"][i] == r["process.name"])
        key = keys[i_first]
        agent = r["host.id"]
        names = set(r["matched_alert_names"])
        active = len(set(cols["host.id"][start:end]))
        cr = cloud_resource(r["destination.domain"], r["destination.ip"])
        if cr is not None:
            kind = cr[0]
            prevalence = {cols["host.id"][i] for i in range(start, end) if res[i] == cr}
            assert len(prevalence) <= max(2, 0.01 * active), r["scenario"]
            assert not any(keys[i] == key and res[i] == cr for i in range(start, end)), r["scenario"]
            proc_kind_agents = {cols["host.id"][i] for i in range(start, end) if keys[i] == key and res[i] and res[i][0] == kind}
            agent_kind = any(cols["host.id"][i] == agent and res[i] and res[i][0] == kind for i in range(start, end))
            if ATYPICAL in names:
                assert len(proc_kind_agents) <= 1, (r["scenario"], len(proc_kind_agents))
            else:
                assert len(proc_kind_agents) >= 5, (r["scenario"], len(proc_kind_agents))  # a typical client
            if ATYPICAL_TO_AGENT in names:
                assert not agent_kind, r["scenario"]
            else:
                assert agent_kind, r["scenario"]
            # not a habitual explorer: few first-seen rare cloud resources for that process key
            met = {res[i] for i in range(0, end) if keys[i] == key and res[i]}
            assert len(met) < 20, (r["scenario"], len(met))
        else:
            svc = im_service(r["destination.domain"], r["destination.ip"])
            assert svc is not None, r["scenario"]
            before = [i for i in range(start, end) if keys[i] == key and ims[i] == svc]
            assert len({cols["host.id"][i] for i in before}) <= 1, r["scenario"]
            assert any(n.startswith("Uncommon communication") for n in names)


# ---------------------------------------------------------------------------------------------- writers


def test_write_parquet_round_trip(tmp_path) -> None:
    o = _small(seed=9, days=1)
    p = tmp_path / "ev.parquet"
    n = write_parquet(p, o, batch_size=1_000)
    back = pq.read_table(p)
    assert n == back.num_rows
    assert back.schema.equals(EVENT_SCHEMA, check_metadata=False)
    assert back.equals(pa.concat_tables(o.batches()))


def test_write_ecs_jsonl(tmp_path) -> None:
    o = _small(seed=9, days=1)
    p = tmp_path / "ev.jsonl.gz"
    n = o.write_ecs_jsonl(p)
    with gzip.open(p, "rt") as fh:
        lines = [json.loads(x) for x in fh]
    assert len(lines) == n == sum(t.num_rows for t in o.batches())
    rows = pa.concat_tables(o.batches()).to_pylist()
    first = rows[0]
    e = lines[0]
    assert e["host"]["id"] == first["host.id"]
    i = next(i for i, r in enumerate(rows) if r["process.code_signature.subject_name"])
    assert lines[i]["process"]["code_signature"]["subject_name"] == rows[i]["process.code_signature.subject_name"]
    assert lines[i]["process"]["code_signature"]["trusted"] is rows[i]["process.code_signature.trusted"]
    assert e["event"]["category"] == ["network"]
    assert e["@timestamp"].endswith("Z") and e["@timestamp"].startswith("2026-01-01T")
    # RFC 3339 with one fraction of microseconds, equal to the event's own time
    for line, row in zip(lines[:50], rows[:50]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["@timestamp"]), line["@timestamp"]
        assert dt.datetime.fromisoformat(line["@timestamp"].replace("Z", "+00:00")) == row["@timestamp"]
    flat = tmp_path / "flat.jsonl"
    write_ecs_jsonl(flat, o, nested=False)
    row = json.loads(flat.read_text().splitlines()[0])
    assert row["host.id"] == first["host.id"]


def test_ground_truth_holds_under_the_project_catalog(org: Organisation, events: pa.Table) -> None:
    """The same exact reading with the product's own resolution (skipped where the catalogue is unavailable)."""
    catalog = pytest.importorskip("raresketch.catalog")
    cat = catalog.default_catalog()
    r = cat.resolve_batch(events)
    ts = events.column("@timestamp").cast(pa.int64()).to_numpy()
    host = events.column("host.id").to_pylist()
    name = events.column("process.name").to_pylist()
    key = r.column("raresketch.process.key").to_pylist()
    res = r.column("raresketch.cloud.resource").to_pylist()
    kind = pc.binary_join_element_wise(r.column("raresketch.cloud.provider"), r.column("raresketch.cloud.service"), "/").to_pylist()
    im = r.column("raresketch.im.service").to_pylist()
    agents_of = collections.defaultdict(set)
    for h, x in zip(host, res):
        if x:
            agents_of[x].add(h)
    for g in org.ground_truth.to_pylist():
        t0 = int(pa.scalar(g["@timestamp"]).cast(pa.int64()).as_py())
        e, s = np.searchsorted(ts, t0), np.searchsorted(ts, t0 - WINDOW_DAYS * DAY_US)
        i0 = next(i for i in range(e, len(ts)) if host[i] == g["host.id"] and name[i] == g["process.name"])
        k, R, K, S, a = key[i0], res[i0], kind[i0], im[i0], g["host.id"]
        names = set(g["matched_alert_names"])
        active = len(set(host[s:e]))
        if R:
            assert len({host[i] for i in range(s, e) if res[i] == R}) <= max(2, 0.01 * active)
            proc_kind = {host[i] for i in range(s, e) if key[i] == k and kind[i] == K}
            assert (len(proc_kind) <= 1) == (ATYPICAL in names), (g["scenario"], len(proc_kind))
            agent_kind = any(host[i] == a and kind[i] == K for i in range(s, e))
            assert agent_kind != (ATYPICAL_TO_AGENT in names), g["scenario"]
            met = {res[i] for i in range(e) if key[i] == k and res[i] and len(agents_of[res[i]]) <= max(2, 0.01 * active)}
            assert len(met) < 20, (g["scenario"], len(met))  # not a habitual explorer
        else:
            assert S is not None, g["scenario"]
            assert len({host[i] for i in range(s, e) if key[i] == k and im[i] == S}) <= 1, g["scenario"]
    # the vendors' own clients are common for their service
    pairs = collections.defaultdict(set)
    for h, k, s_ in zip(host, key, im):
        if s_:
            pairs[(k, s_)].add(h)
    assert len(pairs[("slack.exe|slack technologies, llc", "slack")]) >= 20
    assert len(pairs[("telegram.exe|telegram fz-llc", "telegram")]) >= 4
