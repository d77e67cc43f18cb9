"""The alert definitions (``data/rules/*.toml``) and the alert outputs: six alerts with unique stable ids
``<detector>.<variation>``, their ATT&CK mapping, every evidence key computed by ``raresketch.detect._evidence``,
``Alert.explain``'s wording for each variation, and the fields of ``to_ecs``, ``to_ocsf`` and ``alerts_to_table``."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from support.scenarios import HOSTS, background, row, table

import raresketch as rs
from raresketch.alerts import (ALERT_NAMES, ALERT_TABLE_SCHEMA, ALERTS, ALERTS_BY_ID, EVENT_FIELDS, PRECEDENCE, RULES,
                               Alert, alerts_to_table, to_ecs, to_ocsf, write_alerts)
from raresketch.alerts._rules import _load_rule
from raresketch.detect._evidence import EVIDENCE

TS = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.timezone.utc)

# ------------------------------------------------------------------------------------------- rule files


def test_six_alerts_with_unique_stable_ids():
    assert set(RULES) == {"rare_cloud", "uncommon_im"}
    assert sorted(ALERTS_BY_ID) == ["rare_cloud.atypical", "rare_cloud.atypical_to_agent", "rare_cloud.base",
                                    "uncommon_im.base", "uncommon_im.script_engine",
                                    "uncommon_im.suspicious_process"]
    assert len(ALERTS) == len(ALERT_NAMES) == len(set(ALERT_NAMES)) == 6
    for (det, var), d in ALERTS.items():
        assert d.id == f"{det}.{var}" and d.detector == det and d.variation == var
    # least specific first within each detector, the reverse of the precedence
    assert [v for (d, v) in ALERTS if d == "rare_cloud"] == list(reversed(PRECEDENCE["rare_cloud"]))
    assert ALERT_NAMES[0] == "A process connected to a rare cloud resource"


def test_severities_and_attack_mapping():
    sev = {d.id: d.severity for d in ALERTS.values()}
    assert sev == {"rare_cloud.base": "informational", "rare_cloud.atypical": "informational",
                   "rare_cloud.atypical_to_agent": "informational", "uncommon_im.base": "informational",
                   "uncommon_im.suspicious_process": "low", "uncommon_im.script_engine": "low"}
    for d in ALERTS.values():
        assert (d.tactic_id, d.tactic_name) == ("TA0011", "Command and Control")
        assert d.technique_id == {"rare_cloud": "T1071.001", "uncommon_im": "T1102"}[d.detector]
        assert d.attacker_goals and len(d.investigative_actions) == 3 and d.description.endswith(".")


def test_every_evidence_key_is_computed_and_every_computed_key_is_shown():
    shown = {k for r in RULES.values() for k in r.evidence}
    assert shown == set(EVIDENCE)
    for r in RULES.values():
        assert len(r.evidence) == len(set(r.evidence)) and r.evidence[-1] == "suppressed_since_last"


def test_the_alerts_of_a_run_carry_exactly_their_rule_files_evidence():
    eng = rs.Engine()
    rows = background(HOSTS, 20)
    rows.append(row(18, "h1", "evil", "bucket-x.s3.amazonaws.com"))
    rows.append(row(19, "h2", "telegram", "api.telegram.org", sha="9" * 64))
    alerts = eng.process(table(rows))
    assert {a.detector for a in alerts} == {"rare_cloud", "uncommon_im"}
    for a in alerts:
        assert list(a.evidence) == list(RULES[a.detector].evidence)


@pytest.mark.parametrize("text, message", [
    ('detector = "other"', "defines detector 'other'"),
    ('detector = "rare_cloud"\n[[variations]]\nid = "rare_cloud.x"\nvariation = "y"', "is not rare_cloud.y"),
])
def test_a_malformed_rule_file_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        _load_rule("rare_cloud.toml", text)


# ------------------------------------------------------------------------------------------- explain


def cloud_alert(variations, **evidence) -> Alert:
    ev = dict(prevalence=1, active_agents=120, window_days=30, rare_threshold=2, service_kind="aws/s3",
              process_kind_agents=0)
    ev.update(evidence)
    return Alert("rare_cloud", variations[0], TS, "evil.exe", "aws/s3/bucket-x", variations=variations, evidence=ev,
                 cloud_resource="aws/s3/bucket-x")


def im_alert(variations, **evidence) -> Alert:
    ev = dict(process_im_agents=1, process_im_agent_days=2, window_days=30, suspicious_signals=[],
              script_engine_signals=[])
    ev.update(evidence)
    return Alert("uncommon_im", variations[0], TS, "python.exe", "api.telegram.org", variations=variations,
                 evidence=ev, im_service="telegram")


CLOUD_WHY = "1 of 120 agents contacted aws/s3/bucket-x in 30 days (rare <= 2); first contact by this process"
IM_WHY = "python.exe talked to telegram on 1 agents / 2 agent-days in 30 days"


@pytest.mark.parametrize("alert, text", [
    (cloud_alert(["base"]), CLOUD_WHY),
    (cloud_alert(["atypical", "base"]), CLOUD_WHY + "; process used aws/s3 on 0 agents"),
    (cloud_alert(["atypical_to_agent", "base"]), CLOUD_WHY + "; agent never used aws/s3"),
    (cloud_alert(["atypical_to_agent", "atypical", "base"]),
     CLOUD_WHY + "; process used aws/s3 on 0 agents; agent never used aws/s3"),
    (im_alert(["base"]), IM_WHY),
    (im_alert(["suspicious_process", "base"], suspicious_signals=["unsigned", "rare_binary"]),
     IM_WHY + "; suspicious: unsigned, rare_binary"),
    (im_alert(["script_engine", "base"], script_engine_signals=["rare_command_line"]),
     IM_WHY + "; uncommon script: rare_command_line"),
    (im_alert(["script_engine", "suspicious_process", "base"], suspicious_signals=["renamed"],
              script_engine_signals=["rare_parent_engine", "rare_command_line"]),
     IM_WHY + "; suspicious: renamed; uncommon script: rare_parent_engine, rare_command_line"),
], ids=["cloud-base", "cloud-atypical", "cloud-agent", "cloud-all", "im-base", "im-suspicious", "im-script",
        "im-all"])
def test_explain_wording_for_each_variation(alert, text):
    assert alert.explain() == text


def test_explain_reads_none_for_missing_evidence():
    assert Alert("uncommon_im", "base", TS, None, "1.2.3.4").explain() == \
        "None talked to None on None agents / None agent-days in None days"


def test_name_severity_and_host_come_from_the_definition_and_event():
    a = im_alert(["suspicious_process", "base"])
    a.event = {"host.id": "h9"}
    assert a.name == ALERTS_BY_ID["uncommon_im.suspicious_process"].name and a.severity == "low"
    assert a.host_id == "h9" and a.definition is ALERTS[("uncommon_im", "suspicious_process")]


# ------------------------------------------------------------------------------------------- outputs

EVENT = {"host.id": "h1", "host.name": "pc-1", "user.name": "bob", "process.name": "evil.exe",
         "process.executable": r"C:\Windows\evil.exe", "process.pid": 42, "process.command_line": "evil.exe -x",
         "process.hash.sha256": "e" * 64, "process.parent.name": "explorer.exe",
         "destination.domain": "bucket-x.s3.amazonaws.com", "destination.ip": None, "destination.port": 443}


def full_alert() -> Alert:
    a = cloud_alert(["atypical", "base"])
    a.event = dict(EVENT)
    return a


def test_to_ecs_fields():
    doc = to_ecs(full_alert())
    assert doc["@timestamp"] == "2026-01-15T12:00:00.000000Z"
    assert doc["event"]["kind"] == "alert" and doc["event"]["severity"] == 1
    assert doc["rule"] == {"name": "A process connected to an atypical rare cloud resource",
                           "id": "raresketch.rare_cloud.atypical",
                           "description": "A process connected to an atypical rare cloud resource.",
                           "category": "rare_cloud", "ruleset": "raresketch"}
    assert doc["threat"]["tactic"]["id"] == "TA0011" and doc["threat"]["technique"]["id"] == "T1071.001"
    assert doc["threat"]["technique"]["reference"] == "https://attack.mitre.org/techniques/T1071/001/"
    assert doc["host"] == {"id": "h1", "name": "pc-1"} and doc["user"] == {"name": "bob"}
    assert doc["process"]["parent"] == {"name": "explorer.exe"} and doc["process"]["pid"] == 42
    assert doc["destination"] == {"domain": "bucket-x.s3.amazonaws.com", "port": 443}   # None dropped
    rs_ = doc["raresketch"]
    assert rs_["variation"] == "atypical" and rs_["variations"] == ["atypical", "base"]
    assert rs_["destination"] == "aws/s3/bucket-x" and rs_["cloud"] == {"resource": "aws/s3/bucket-x"}
    assert "im" not in rs_ and rs_["why"] == full_alert().explain() and rs_["evidence"]["prevalence"] == 1


def test_to_ocsf_fields():
    doc = to_ocsf(full_alert())
    t_ms = int(TS.timestamp() * 1000)
    assert (doc["class_uid"], doc["activity_id"], doc["type_uid"]) == (2004, 1, 200401)
    assert doc["time"] == t_ms and doc["severity_id"] == 1 and doc["severity"] == "Informational"
    info = doc["finding_info"]
    assert info["uid"] == f"h1:rare_cloud.atypical:{t_ms}:aws/s3/bucket-x"
    assert info["analytic"]["uid"] == "raresketch.rare_cloud.atypical"
    assert info["attacks"][0]["technique"]["uid"] == "T1071.001"
    assert doc["device"]["uid"] == "h1" and doc["device"]["hostname"] == "pc-1"
    proc = doc["actor"]["process"]
    assert proc["file"]["hashes"] == [{"algorithm_id": 3, "algorithm": "SHA-256", "value": "e" * 64}]
    assert proc["parent_process"] == {"name": "explorer.exe"} and proc["cmd_line"] == "evil.exe -x"
    # None values are dropped from objects, not from inside lists (today's output: "ip": null stays)
    assert doc["evidences"] == [{"dst_endpoint": {"hostname": "bucket-x.s3.amazonaws.com", "ip": None, "port": 443}}]
    assert "user" in doc["actor"] and "hostname" in doc["device"] and "pid" in proc
    assert doc["unmapped"]["raresketch"]["why"] == full_alert().explain()


def test_alerts_to_table_fields():
    a, b = full_alert(), im_alert(["base"])
    b.event = {"host.id": "h2", "destination.ip": "149.154.167.51"}
    t = alerts_to_table([a, b])
    assert t.schema == ALERT_TABLE_SCHEMA and t.num_rows == 2
    r = t.to_pylist()
    assert r[0]["rule.name"] == a.name and r[0]["raresketch.variation"] == "atypical"
    assert r[0]["process.executable"] == EVENT["process.executable"] and r[0]["host.name"] == "pc-1"
    assert r[0]["threat.technique.id"] == "T1071.001" and r[1]["threat.technique.id"] == "T1102"
    assert r[1]["destination.ip"] == "149.154.167.51" and r[1]["host.name"] is None
    assert r[0]["raresketch.why"] == a.explain() and json.loads(r[0]["raresketch.evidence"]) == a.evidence
    assert r[0]["@timestamp"] == TS
    assert alerts_to_table([]).num_rows == 0


def test_write_alerts_json_lines_and_refuses_an_unknown_format():
    import io

    out = io.StringIO()
    assert write_alerts([full_alert(), full_alert()], out, "ocsf") == 2
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["class_uid"] == 2004
    with pytest.raises(ValueError, match="'ecs' or 'ocsf'"):
        write_alerts([], io.StringIO(), "cef")


def test_event_fields_are_what_the_alert_documents_carry():
    doc = to_ecs(full_alert())
    for f in EVENT_FIELDS:
        node = doc
        for part in f.split("."):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        assert node == ({} if EVENT[f] is None else EVENT[f]), f
