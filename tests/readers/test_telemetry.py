"""Telemetry as it really is (issue 16): the DNS join of ECS input (Elastic Defend, Winlogbeat Sysmon), Sysmon
as Windows event XML, inbound connections, odd address forms, and how every alert says what it knows."""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil

import pyarrow as pa
import pytest

from raresketch import Engine
from raresketch._readers import ReadStats, detect_format, read_events
from raresketch._readers._dns import DnsJoin
from raresketch._readers._source import Source
from raresketch.alerts import to_ecs, to_ocsf
from raresketch.events import conform, normalize_ip
from raresketch.events._normalise import odd_address_reason
from raresketch.simulate import Organisation, write_elastic_defend_jsonl, write_winlogbeat_sysmon_jsonl

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "sysmon-xml", "python_network_traffic.log")


def read_all(src, **kw):
    st = ReadStats()
    tabs = list(read_events(src, stats=st, **kw))
    return (pa.concat_tables(tabs) if tabs else None), st


def jl(*docs) -> bytes:
    return b"".join(json.dumps(d).encode() + b"\n" for d in docs)


# ---------------------------------------------------------------- Sysmon XML

def test_sysmon_xml_sample_reads_its_network_event_with_the_ptr_name():
    assert detect_format(Source(DATA)) == "sysmon_xml"
    t, st = read_all(DATA)
    rows = t.to_pylist()
    assert len(rows) == 1 and st.read == 2 and st.skipped == {"not_network_event": 1}
    r = rows[0]
    assert r["process.name"] == "python.exe" and r["destination.ip"] == "34.117.59.81"
    assert r["destination.domain"] == "81.59.117.34.bc.googleusercontent.com"
    assert r["raresketch.domain_source"] == "ptr"          # Sysmon's DestinationHostname is a reverse lookup
    assert r["host.name"] == "EC2AMAZ-CEMU0P7" and r["network.direction"] == "egress"
    # EID 1 of the same process (logged after the connection, in the same file) enriched it
    assert r["process.hash.sha256"].startswith("03168c01") and st.enriched["process_create"] == 1


def test_sysmon_xml_bad_records_are_counted_and_reading_goes_on():
    good = open(DATA, "rb").read().split(b"\n")[0]
    broken = good.replace(b"</EventData>", b"</EventDat>")
    data = b"<Events>" + broken + good + b"<Event xmlns='x'><System>" + b"</Events>"  # one line, cut last record
    t, st = read_all(io.BytesIO(data))
    assert t.num_rows == 1 and st.skipped["malformed_xml"] == 2


def test_sysmon_xml_dns_join_names_the_connection():
    ns = "http://schemas.microsoft.com/win/2004/08/events/event"

    def ev(eid, **data):
        d = "".join(f"<Data Name='{k}'>{v}</Data>" for k, v in data.items())
        return (f"<Event xmlns='{ns}'><System><Provider Name='Microsoft-Windows-Sysmon'/><EventID>{eid}</EventID>"
                f"<Computer>PC1</Computer></System><EventData>{d}</EventData></Event>\n").encode()

    data = ev(22, UtcTime="2024-01-01 10:00:00.000", QueryName="mybucket.s3.amazonaws.com", QueryStatus="0",
              QueryResults="::ffff:52.216.1.1;") + \
        ev(3, UtcTime="2024-01-01 10:00:01.000", Image="C:\\x\\a.exe", DestinationIp="52.216.1.1",
           DestinationPort="443", Initiated="true", DestinationHostname="s3-1-w.amazonaws.com")
    t, st = read_all(io.BytesIO(data), format="sysmon_xml")
    r = t.to_pylist()[0]
    assert r["destination.domain"] == "mybucket.s3.amazonaws.com" and r["raresketch.domain_source"] == "dns"
    assert r["raresketch.dns_answer_time"] == dt.datetime(2024, 1, 1, 10, 0, tzinfo=dt.timezone.utc)


# ---------------------------------------------------------------- ECS DNS join

def _host(doc):
    doc.update({"host": {"id": "h1", "name": "PC1"}, "agent": {"id": "h1"}})
    return doc


def defend_dns(ts, name, ips):
    return _host({"@timestamp": ts, "event": {"category": ["network"], "action": "lookup_result",
                                              "module": "endpoint"},
                  "process": {"name": "a.exe"}, "dns": {"question": {"name": name}, "resolved_ip": ips}})


def defend_conn(ts, ip, **extra):
    d = _host({"@timestamp": ts, "event": {"category": ["network"], "action": "connection_attempted",
                                           "module": "endpoint"},
               "process": {"name": "a.exe", "executable": "C:\\x\\a.exe"}, "destination": {"ip": ip, "port": 443},
               "network": {"direction": "egress"}})
    d.update(extra)
    return d


def wlb(ts, code, **extra):
    d = _host({"@timestamp": ts, "event": {"category": ["network"], "code": code, "module": "sysmon"},
               "winlog": {"provider_name": "Microsoft-Windows-Sysmon", "event_id": code},
               "process": {"name": "a.exe", "executable": "C:\\x\\a.exe"}})
    d.update(extra)
    return d


@pytest.mark.parametrize("batch_size", [1, 65536])
def test_elastic_defend_lookup_result_names_the_connection(batch_size):
    data = jl(defend_dns("2024-01-01T10:00:00Z", "MyBucket.s3.amazonaws.com", ["52.216.1.1", "52.216.1.2"]),
              defend_conn("2024-01-01T10:00:01Z", "52.216.1.2"),
              defend_conn("2024-01-01T10:00:02Z", "52.216.9.9"),                       # no answer: bare address
              defend_conn("2024-01-01T12:00:02Z", "52.216.1.1"),                       # answer too old
              defend_conn("2024-01-01T12:00:03Z", "52.216.7.7",
                          process={"name": "a.exe", "command_line": "a.exe https://files.example.org/x"}))
    t, st = read_all(io.BytesIO(data), format="ecs", batch_size=batch_size)
    rows = t.to_pylist()
    assert [r["destination.domain"] for r in rows] == ["mybucket.s3.amazonaws.com", None, None, "files.example.org"]
    assert [r["raresketch.domain_source"] for r in rows] == ["dns", None, None, "command_line"]
    assert rows[0]["raresketch.dns_answer_time"] == dt.datetime(2024, 1, 1, 10, tzinfo=dt.timezone.utc)
    assert st.skipped["not_network_event"] == 1 and st.enriched["domain_dns"] == 1
    # the per-line reader gives the same
    from raresketch._readers._ecs import read_ecs
    st2 = ReadStats()
    slow = pa.concat_tables(list(read_ecs(Source(io.BytesIO(data)), batch_size, st2, fast=False)))
    assert slow.to_pylist() == rows and st2.skipped == st.skipped


def test_winlogbeat_sysmon_ecs_dns_beats_ptr_and_ptr_is_marked():
    data = jl(wlb("2024-01-01T10:00:00Z", "22", dns={"question": {"name": "evil.example.com"},
                                                     "answers": [{"type": "A", "data": "52.216.1.1"}]}),
              wlb("2024-01-01T10:00:01Z", "3", destination={"ip": "52.216.1.1", "domain": "s3-1-w.amazonaws.com"}),
              wlb("2024-01-01T10:00:02Z", "3", destination={"ip": "52.216.9.9", "domain": "s3-9-w.amazonaws.com"}))
    assert detect_format(Source(io.BytesIO(data))) == "ecs"     # no raw event_data: the ECS fields are read
    t, st = read_all(io.BytesIO(data))
    rows = t.to_pylist()
    assert [(r["destination.domain"], r["raresketch.domain_source"]) for r in rows] == [
        ("evil.example.com", "dns"), ("s3-9-w.amazonaws.com", "ptr")]


def test_dns_join_spans_the_files_of_a_folder_and_of_a_run(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.json").write_bytes(jl(defend_dns("2024-01-01T10:00:00Z", "x.example.com", ["52.216.1.1"])))
    (d / "b.json").write_bytes(jl(defend_conn("2024-01-01T10:00:05Z", "52.216.1.1")))
    t, _ = read_all(str(d))
    assert t.column("destination.domain").to_pylist() == ["x.example.com"]
    join = DnsJoin()
    list(read_events(str(d / "a.json"), dns_join=join))
    t2 = pa.concat_tables(list(read_events(str(d / "b.json"), dns_join=join)))
    assert t2.column("raresketch.domain_source").to_pylist() == ["dns"]
    # bounded: answers far behind the newest connection are pruned
    j = DnsJoin(window_s=10, prune_at=4)
    for k in range(100):
        j.add("h", f"10.0.0.{k}", k * 60_000_000, "n")
        j.name("h", "10.0.0.1", k * 60_000_000)
    assert j.size <= 8


def test_elastic_defend_and_winlogbeat_streams_of_the_same_traffic_give_the_same_alerts(tmp_path):
    org = Organisation(agents=30, days=18, seed=3)
    paths = {"defend": str(tmp_path / "defend.jsonl"), "winlogbeat": str(tmp_path / "wlb.jsonl")}
    write_elastic_defend_jsonl(paths["defend"], org)
    write_winlogbeat_sysmon_jsonl(paths["winlogbeat"], org)
    out, stats = {}, {}
    for k, p in paths.items():
        st, eng, alerts = ReadStats(), Engine(), []
        for b in read_events(p, stats=st):
            alerts += eng.process(b)
        out[k] = sorted((a.name, a.host_id, a.process_key, a.destination, a.cloud_resource, a.timestamp,
                         a.identified_by["method"] in ("ptr", "address")) for a in alerts)
        stats[k] = st
        assert all(a.identified_by and "count_intervals" in a.evidence for a in alerts)
    assert out["defend"] == out["winlogbeat"] and len(out["defend"]) > 5
    st = stats["defend"]
    # a realistic share of connections has no DNS answer before it
    assert 0.05 < 1 - st.enriched["domain_dns"] / st.emitted < 0.6
    assert stats["defend"].enriched == stats["winlogbeat"].enriched


# ---------------------------------------------------------------- inbound and internal

def _events(rows):
    return conform(pa.Table.from_pylist(rows))


def _day(d, h=10, m=0, s=0):
    return dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(days=d, hours=h, minutes=m, seconds=s)


def test_inbound_scans_raise_nothing_and_do_not_hide_the_real_outbound_c2():
    rows = []
    for d in range(18):
        for a in range(20):
            rows.append({"@timestamp": _day(d, 9, a), "host.id": f"h{a}", "host.name": f"WEB-{a:02d}",
                         "process.executable": "C:\\Program Files\\x\\svc.exe", "destination.ip": "93.184.216.34",
                         "destination.domain": "www.example.com", "destination.port": 443,
                         "network.direction": "egress"})
    w3wp = "C:\\Windows\\System32\\inetsrv\\w3wp.exe"
    for host in ("h0", "h1"):
        for k in range(20):   # inbound scans from cloud addresses (Sysmon Initiated=false)
            rows.append({"@timestamp": _day(15, 11, k), "host.id": host, "host.name": host.upper(),
                         "process.executable": w3wp, "destination.ip": f"54.152.221.{10 + k}",
                         "destination.port": 50000 + k, "network.direction": "ingress",
                         "source.ip": "10.0.0.5", "source.port": 443})
    rows.append({"@timestamp": _day(15, 11, 30), "host.id": "h0", "host.name": "H0", "process.executable": w3wp,
                 "destination.ip": "10.1.2.3", "destination.port": 445})          # internal hop, no name
    rows.append({"@timestamp": _day(16, 3), "host.id": "h0", "host.name": "H0", "process.executable": w3wp,
                 "destination.ip": "52.216.1.1", "destination.domain": "c2-drop-7731.s3.amazonaws.com",
                 "destination.port": 443, "network.direction": "egress"})
    rows.sort(key=lambda r: r["@timestamp"])
    eng = Engine()
    alerts = eng.process(_events(rows))
    assert [a.cloud_resource for a in alerts] == ["aws/s3/c2-drop-7731"]
    assert eng.stats["skipped_inbound"] == 40 and eng.stats["skipped_internal_destination"] == 1
    assert not [p for p, _ in eng.habitual_explorers() if "w3wp" in p]


# ---------------------------------------------------------------- addresses in odd forms

@pytest.mark.parametrize("raw,ip", [("64:ff9b::149.154.167.51", "149.154.167.51"), ("64:ff9b::959a:a733", "149.154.167.51"),
                                    ("52.216.1.1:443", "52.216.1.1"), ("[2001:db8::1]:443", "2001:db8::1"),
                                    ("3232235777", "192.168.1.1"), ("010.1.2.3", None), ("1.2.3", None)])
def test_odd_address_forms(raw, ip):
    assert normalize_ip(raw) == ip


def test_odd_addresses_are_counted_by_reason_not_silently_lost():
    data = jl(defend_conn("2024-01-01T10:00:00Z", "010.001.002.003"), defend_conn("2024-01-01T10:00:01Z", "zz:q"),
              defend_conn("2024-01-01T10:00:02Z", "64:ff9b::3499:101"))
    t, st = read_all(io.BytesIO(data), format="ecs")
    assert t.column("destination.ip").to_pylist() == ["52.153.1.1"]
    assert st.skipped["ambiguous_address"] == 1 and st.skipped["unparsed_address"] == 1
    assert odd_address_reason("010.1.2.3") == "ambiguous_address" and odd_address_reason("1.2.3.4") is None


# ---------------------------------------------------------------- what an analyst sees

@pytest.fixture(scope="module")
def demo_alerts():
    org = Organisation(agents=40, days=20, seed=1)
    eng, alerts = Engine(), []
    for b in org.batches(100_000):
        alerts += eng.process(b)
    assert alerts
    return alerts


def test_every_alert_says_how_the_destination_was_identified_and_its_bounds(demo_alerts):
    for a in demo_alerts:
        doc = to_ecs(a)
        ident = doc["raresketch"]["destination_identified_by"]
        assert ident["method"] in ("event", "dns_answer", "command_line", "ptr", "address")
        assert ident["inferred"] == (ident["method"] == "command_line")
        if ident["method"] == "address" and a.cloud_resource:
            assert ident["provider_network"] and len(ident["network_snapshot"]) == 10
        ev = doc["raresketch"]["evidence"]
        for k, (lo, hi) in ev["count_intervals"].items():
            assert lo <= ev[k] <= hi
        assert "rare_threshold" in ev
        dt.date.fromisoformat(ev["org_first_day"]) and dt.date.fromisoformat(ev["agent_first_day"])
        assert doc["message"].startswith(a.event.get("process.name") or a.process_key or "a process")
        assert (a.event.get("host.name") or a.host_id) in doc["message"]
        if a.detector == "rare_cloud":
            assert doc["threat"]["technique"]["id"] == "T1071"
            assert doc["threat"]["technique"]["subtechnique"]["id"] == "T1071.001"
        else:
            assert doc["threat"]["technique"]["id"] == "T1102" and "subtechnique" not in doc["threat"]["technique"]


def test_ocsf_omits_unknown_fields_even_inside_lists(demo_alerts):
    a = demo_alerts[0]
    a.event = {**a.event, "destination.domain": None, "host.name": None}
    text = json.dumps(to_ocsf(a))
    assert "null" not in text and '"hostname"' not in text.split('"device"')[1].split("}")[0]
    assert to_ocsf(a)["evidences"][0]["dst_endpoint"].get("hostname") is None


def test_demo_never_cuts_the_alert_name_or_the_why(demo_alerts):
    from raresketch.cli import ALERT_HEADERS, ALERT_WIDTHS, _alert_rows, _fmt_table

    text = _fmt_table(_alert_rows(demo_alerts), ALERT_HEADERS, ALERT_WIDTHS)
    for a in demo_alerts:
        assert a.name in text and a.explain() in text
