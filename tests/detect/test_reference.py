"""Scenario tests of the exact reference (tests/support/reference.py) and the engine against docs/DETECTORS.md."""
from __future__ import annotations

import datetime as dt
import sys

import pytest

import raresketch
from raresketch.alerts import ALERTS
from raresketch.config import Config

from support import reference as ref
from support.engine_adapter import EngineAdapter
from support.reference import ReferenceEngine, normalize_command_line
from support.scenarios import D0, HOSTS, T0, background, row, table

#: The implementation under test; every scenario runs against the exact reference and the sketch engine.
Impl = ReferenceEngine


@pytest.fixture(autouse=True, params=["reference", "engine"])
def impl(request, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "Impl", ReferenceEngine if request.param == "reference"
                        else EngineAdapter)
    return request.param

def run(eng, rows: list[dict]) -> list[dict]:
    return eng.process(table(rows))


def dayof(alert: dict) -> int:
    return (alert["timestamp"] - T0).days




# ------------------------------------------------------------------------------------------------ names

def test_alert_names_and_severity():
    names = (ref.RARE_CLOUD, ref.RARE_CLOUD_ATYPICAL, ref.RARE_CLOUD_ATYPICAL_AGENT, ref.IM, ref.IM_SUSPICIOUS,
             ref.IM_SCRIPTING)
    assert sorted(names) == sorted(a.name for a in ALERTS.values())  # six distinct names, those of the rules
    assert all(ref.SEVERITY[a.name] == a.severity for a in ALERTS.values())  # the oracle's severities = the rules'
    assert {ref.SEVERITY[n] for n in (ref.RARE_CLOUD, ref.RARE_CLOUD_ATYPICAL, ref.RARE_CLOUD_ATYPICAL_AGENT,
                                      ref.IM)} == {"informational"}
    assert ref.SEVERITY[ref.IM_SUSPICIOUS] == ref.SEVERITY[ref.IM_SCRIPTING] == "low"


# ------------------------------------------------------------------------------------------- activation

def test_no_alert_before_activation_then_alert():
    eng = Impl()
    rows = background(HOSTS, 16)
    rows.append(row(13, "h1", "evil", "bucket-a.s3.amazonaws.com", seconds=86399))  # day 13: 13 - 0 < 14
    rows.append(row(14, "h1", "evil", "bucket-b.s3.amazonaws.com", seconds=0))  # day 14: activated
    alerts = run(eng, rows)
    # 2 = the day-13 contact + the org's very first contact to the company bucket (day 0, prevalence 0)
    assert eng.suppressed["activation"] == 2
    assert [a["destination"] for a in alerts] == ["aws/s3/bucket-b"]
    a = alerts[0]
    assert a["detector"] == "rare_cloud" and a["severity"] == "informational"
    assert a["timestamp"] == T0 + dt.timedelta(days=14)
    assert a["evidence"]["baseline_days"] == 14 and a["evidence"]["org_first_day"] == eng.first_day


# ------------------------------------------------------------------------------------------- rare cloud

def _cloud_org() -> list[dict]:
    """h1..h5 use chrome with the company S3 bucket daily; h2..h5 also with the company blob store."""
    rows = background(HOSTS, 16)
    rows += background(HOSTS[1:], 16, domain="company.blob.core.windows.net")
    return rows


def test_rare_cloud_base():
    eng = Impl()
    alerts = run(eng, _cloud_org() + [row(15, "h1", "chrome", "newbucket.s3.amazonaws.com")])
    assert len(alerts) == 1
    a = alerts[0]
    assert a["name"] == ref.RARE_CLOUD and a["variations"] == [ref.RARE_CLOUD]
    assert a["host.id"] == "h1" and a["process.key"] == "chrome.exe|google llc"
    assert a["destination"] == "aws/s3/newbucket"
    ev = a["evidence"]
    assert ev["prevalence"] == 0 and ev["threshold"] == 2 and ev["active_agents"] == 5
    assert ev["kind_agents"] == 5 and ev["agent_seen_kind"] is True
    assert ev["new_rare"] == 2  # chrome's first contacts with the company bucket and blob store on day 0


def test_rare_cloud_atypical():
    eng = Impl()
    alerts = run(eng, _cloud_org() + [row(15, "h1", "evil", "newbucket.s3.amazonaws.com")])
    assert [(a["name"], a["variations"]) for a in alerts] == [
        (ref.RARE_CLOUD_ATYPICAL, [ref.RARE_CLOUD_ATYPICAL, ref.RARE_CLOUD])]
    assert alerts[0]["evidence"]["kind_agents"] == 0


def test_rare_cloud_atypical_to_agent():
    eng = Impl()
    # chrome is a typical azure/blob client (h2..h5), but h1 never contacted azure/blob
    alerts = run(eng, _cloud_org() + [row(15, "h1", "chrome", "newacct.blob.core.windows.net")])
    assert [(a["name"], a["variations"]) for a in alerts] == [
        (ref.RARE_CLOUD_ATYPICAL_AGENT, [ref.RARE_CLOUD_ATYPICAL_AGENT, ref.RARE_CLOUD])]
    assert alerts[0]["evidence"]["agent_seen_kind"] is False
    assert alerts[0]["evidence"]["kind_agents"] == 4


def test_rare_cloud_precedence_all_three():
    eng = Impl()
    alerts = run(eng, _cloud_org() + [row(15, "h1", "evil", "newacct.blob.core.windows.net")])
    assert len(alerts) == 1
    assert alerts[0]["name"] == ref.RARE_CLOUD_ATYPICAL_AGENT
    assert alerts[0]["variations"] == [ref.RARE_CLOUD_ATYPICAL_AGENT, ref.RARE_CLOUD_ATYPICAL, ref.RARE_CLOUD]


def test_agent_variation_needs_activated_agent():
    eng = Impl()
    rows = _cloud_org() + background(["late"], 16, start=5)  # late agent observed from day 5
    rows.append(row(15, "late", "chrome", "newacct.blob.core.windows.net"))  # 10 days < 14: not activated
    rows.append(row(15, "h1", "chrome", "other.blob.core.windows.net"))  # h1 activated: agent variation
    alerts = run(eng, rows)
    by_host = {a["host.id"]: a for a in alerts}
    assert by_host["late"]["name"] == ref.RARE_CLOUD
    assert by_host["late"]["evidence"]["agent_activated"] is False
    assert by_host["late"]["evidence"]["agent_first_day"] == D0 + 5
    assert by_host["h1"]["name"] == ref.RARE_CLOUD_ATYPICAL_AGENT


def test_agent_run_restarts_after_leaving_window():
    eng = Impl()
    rows = background(HOSTS[1:], 50) + background(HOSTS[1:], 50, domain="company.blob.core.windows.net")
    rows += background(["h1"], 5)  # h1 present days 0..4, then absent 35 days
    rows.append(row(40, "h1", "chrome", seconds=3600, domain="company.s3.amazonaws.com"))  # new run on day 40
    rows.append(row(45, "h1", "chrome", "newacct.blob.core.windows.net"))  # 5 days into the run
    alerts = run(eng, rows)
    assert [a["name"] for a in alerts] == [ref.RARE_CLOUD]
    assert alerts[0]["evidence"]["agent_first_day"] == D0 + 40


def test_company_bucket_everyone_uses_never_alerts():
    eng = Impl()
    hosts = [f"h{i}" for i in range(10)]
    rows = background(hosts, 20)
    # new processes on every agent reach the company bucket after activation: prevalence 10 > threshold 2
    for i, h in enumerate(hosts):
        rows.append(row(15 + i * 0.1, h, "evil", "company.s3.amazonaws.com"))
        rows.append(row(15 + i * 0.1, h, "powershell", "company.s3.amazonaws.com", seconds=50000))
    assert run(eng, rows) == []
    assert dict(eng.suppressed) == {"activation": 1}  # only the org's first-ever contact, on day 0


def test_habitual_explorer_gate():
    eng = Impl()
    rows = _cloud_org()
    # before activation, "evil" meets 19 rare buckets for the first time (learned anyway), on four hosts
    rows += [row(1, HOSTS[1 + i % 4], "evil", f"explore{i}.s3.amazonaws.com", seconds=100 + i) for i in range(19)]
    rows.append(row(15, "h1", "evil", "twenty.s3.amazonaws.com"))  # new_rare = 19 -> fires
    rows.append(row(15, "h1", "evil", "twentyone.s3.amazonaws.com", seconds=50000))  # new_rare = 20 -> gated
    alerts = run(eng, rows)
    assert eng.suppressed["activation"] == 19 + 2  # + the first contacts to the company bucket and blob
    assert [a["destination"] for a in alerts] == ["aws/s3/twenty"]
    assert alerts[0]["evidence"]["new_rare"] == 19
    assert eng.suppressed["habitual_explorer"] == 1
    assert eng.new_rare.count("evil.exe|evil ltd") == 21  # learned whatever the outcome
    # another process is unaffected
    assert [a["process.key"] for a in run(eng, [row(15, "h1", "powershell", "z.s3.amazonaws.com", seconds=86000)])] == [
        "powershell.exe|microsoft corporation"]


def test_one_agent_counts_at_most_half_towards_habitual():
    eng = Impl()
    rows = _cloud_org()
    # one host makes "evil" meet 25 rare buckets: only 15 (3/4 of 20) count for the organisation ...
    rows += [row(1, "h2", "evil", f"flood{i}.s3.amazonaws.com", seconds=100 + i) for i in range(25)]
    rows.append(row(15, "h1", "evil", "c2.s3.amazonaws.com"))
    # ... while on h2 itself "evil" is a habitual explorer (a host can only blind itself)
    rows.append(row(15, "h2", "evil", "more.s3.amazonaws.com"))
    alerts = run(eng, rows)
    assert [a["destination"] for a in alerts] == ["aws/s3/c2"]
    assert alerts[0]["evidence"]["new_rare"] == 15 and alerts[0]["evidence"]["new_rare_agent"] == 0
    assert eng.suppressed["habitual_explorer"] == 1


def test_per_agent_volume_guard_pauses_only_that_agent():
    eng = Impl(Config(max_alerts_per_agent_day=3))
    rows = background(HOSTS, 20)
    rows += [row(15, "h1", "evil", f"n{i}.s3.amazonaws.com", seconds=1000 + i) for i in range(6)]
    rows.append(row(15, "h2", "evil", "other.s3.amazonaws.com", seconds=5000))
    rows.append(row(16, "h1", "evil", "next-day.s3.amazonaws.com"))
    alerts = run(eng, rows)
    assert [(a["host.id"], dayof(a)) for a in alerts] == [("h1", 15)] * 3 + [("h2", 15), ("h1", 16)]
    assert eng.suppressed["volume_guard_agent"] == 3 and eng.suppressed["volume_guard"] == 0


def test_habitual_explorer_forgets_with_window():
    eng = Impl()
    rows = background(HOSTS, 40)
    rows += [row(1, HOSTS[1 + i % 4], "evil", f"explore{i}.s3.amazonaws.com", seconds=100 + i) for i in range(20)]
    rows.append(row(30, "h1", "evil", "a.s3.amazonaws.com"))  # day 1 still live at day 30: gated
    rows.append(row(31, "h1", "evil", "b.s3.amazonaws.com"))  # day 1 forgotten at day 31 (1 <= 31 - 30)
    alerts = run(eng, rows)
    assert eng.suppressed["habitual_explorer"] == 1
    assert [a["destination"] for a in alerts] == ["aws/s3/b"]
    assert alerts[0]["evidence"]["new_rare"] == 1  # only the day-30 contact remains


def test_window_forgetting_exact_boundary():
    eng = Impl()
    rows = background(HOSTS, 40)
    rows.append(row(0, "h1", "evil", "b1.s3.amazonaws.com", seconds=50000))
    rows.append(row(0, "h1", "powershell", "b2.s3.amazonaws.com", seconds=50000))
    rows.append(row(29, "h1", "evil", "b1.s3.amazonaws.com"))  # day 0 > 29 - 30: still seen
    rows.append(row(30, "h1", "powershell", "b2.s3.amazonaws.com"))  # day 0 <= 30 - 30: forgotten
    alerts = run(eng, rows)
    assert [(a["process.key"], a["destination"]) for a in alerts] == [
        ("powershell.exe|microsoft corporation", "aws/s3/b2")]
    assert dayof(alerts[0]) == 30


def test_prevalence_forgets():
    eng = Impl()
    rows = [row(0, h, "chrome", "popular.s3.amazonaws.com") for h in HOSTS]  # 5 agents on day 0
    rows += background(HOSTS, 40, domain="company.s3.amazonaws.com")
    rows.append(row(29, "h1", "evil", "popular.s3.amazonaws.com"))  # prevalence 5 > 2: no alert
    rows.append(row(35, "h1", "powershell", "popular.s3.amazonaws.com", seconds=50000))  # rare again
    alerts = run(eng, rows)
    # prevalence 1 at day 35: the day-0 contacts left the window, the day-29 one by h1 remains
    assert [(dayof(a), a["evidence"]["prevalence"]) for a in alerts] == [(35, 1)]


def test_active_agents_counts_w_days_before():
    eng = Impl()
    run(eng, [row(0, "a"), row(0, "b"), row(30, "c")])
    assert eng.active_agents(D0 + 30) == 2  # a, b on day 0 = 30 - W; c on day 30 itself not counted
    run(eng, [row(31, "c")])
    assert eng.active_agents(D0 + 31) == 1  # c on day 30
    eng2 = Impl()
    hosts = [f"x{i}" for i in range(350)]
    rows = background(hosts, 16)
    rows.append(row(15, "x0", "evil", "n.s3.amazonaws.com"))
    (a,) = run(eng2, rows)
    assert a["evidence"]["active_agents"] == 350 and a["evidence"]["threshold"] == 3  # floor(0.01 * 350)


# ---------------------------------------------------------------------------------------- dedup / guard

def test_dedup_within_24h_and_count_on_next_alert():
    eng = Impl()
    rows = background(HOSTS, 20)
    beacon = [row(15, "h1", "dropper", "api.telegram.org", seconds=36000 + 60 * i) for i in range(5)]
    beacon.append(row(16, "h1", "dropper", "api.telegram.org", seconds=36000 - 1))  # 24h - 1s after first
    beacon.append(row(16, "h1", "dropper", "api.telegram.org", seconds=36000 + 1))  # 24h + 1s after first
    alerts = run(eng, rows + beacon)
    assert [a["name"] for a in alerts] == [ref.IM_SUSPICIOUS, ref.IM_SUSPICIOUS]
    assert eng.suppressed["dedup"] == 5
    assert alerts[0]["evidence"]["dedup_suppressed"] == 0
    assert alerts[1]["evidence"]["dedup_suppressed"] == 5
    assert alerts[1]["timestamp"] == T0 + dt.timedelta(days=16, seconds=36001)


def test_rare_cloud_same_key_never_rematches():
    # process_seen(R, p) is learned with the alerting event, so the cloud detector does not re-match it
    eng = Impl()
    rows = background(HOSTS, 20) + [row(15, "h1", "evil", "b.s3.amazonaws.com", seconds=s) for s in (10, 20, 30)]
    alerts = run(eng, rows)
    assert len(alerts) == 1 and eng.suppressed["dedup"] == 0


def test_volume_guard():
    eng = Impl(Config(max_alerts_per_day=3))
    rows = background(HOSTS, 20)
    rows += [row(15, "h1", "evil", f"b{i}.s3.amazonaws.com", seconds=40000 + i) for i in range(5)]
    rows += [row(15, "h1", "dropper", "api.telegram.org", seconds=40000)]  # other detector: own budget
    rows += [row(16, "h1", "evil", "c.s3.amazonaws.com")]  # next day: resumes
    alerts = run(eng, rows)
    cloud = [a for a in alerts if a["detector"] == "rare_cloud"]
    assert [a["destination"] for a in cloud] == ["aws/s3/b0", "aws/s3/b1", "aws/s3/b2", "aws/s3/c"]
    assert [a["detector"] for a in alerts].count("uncommon_im") == 1
    assert eng.suppressed["volume_guard"] == 2
    assert len(eng.warnings) == 1 and "rare_cloud" in eng.warnings[0]


# ------------------------------------------------------------------------------------------- allow-list

def _allow_catalog(tmp_path, text):
    p = tmp_path / "allow.toml"
    p.write_text(text)
    return raresketch.Catalog(str(p))


def test_allowlist_never_alerts_but_learns(tmp_path):
    cat = _allow_catalog(tmp_path, '[allow]\nprocesses = ["evil.exe"]\n')
    eng = Impl(catalog=cat)
    rows = background(HOSTS, 20)
    rows += [row(15, h, "evil", "shared.s3.amazonaws.com", seconds=40000 + i) for i, h in enumerate(HOSTS[:3])]
    rows.append(row(15, "h4", "powershell", "shared.s3.amazonaws.com", seconds=50000))  # prevalence 3: common
    alerts = run(eng, rows)
    assert alerts == []
    # only h1's contact matched (after it, process_seen(R, evil) is true); all three were learned
    assert eng.suppressed["allowlist"] == 1
    assert eng.prevalence.count("aws/s3/shared") == 4


def test_allowlist_not_learned_when_disabled(tmp_path):
    cat = _allow_catalog(tmp_path, '[allow]\nprocesses = ["evil.exe"]\n')
    eng = Impl(Config(allowlist_learn=False), catalog=cat)
    rows = background(HOSTS, 20)
    rows += [row(15, h, "evil", "shared.s3.amazonaws.com", seconds=40000 + i) for i, h in enumerate(HOSTS[:3])]
    rows.append(row(15, "h4", "powershell", "shared.s3.amazonaws.com", seconds=50000))  # still rare
    alerts = run(eng, rows)
    assert [(a["host.id"], a["evidence"]["prevalence"]) for a in alerts] == [("h4", 0)]
    assert eng.suppressed["allowlist"] == 3  # nothing learned, so each of the three contacts matched
    assert eng.prevalence.count("aws/s3/shared") == 1  # only h4


def test_allowlisted_destination(tmp_path):
    cat = _allow_catalog(tmp_path, '[allow]\ndestinations = ["ok.s3.amazonaws.com", ".telegram.org"]\n')
    eng = Impl(catalog=cat)
    rows = background(HOSTS, 20) + [row(15, "h1", "evil", "ok.s3.amazonaws.com"),
                                    row(15, "h1", "dropper", "api.telegram.org")]
    assert run(eng, rows) == []
    assert eng.suppressed["allowlist"] == 2


# ---------------------------------------------------------------------------------------------------- IM

def _im_org() -> list[dict]:
    """Background in which explorer, powershell (parent explorer, usual command line) are common binaries."""
    rows = background(HOSTS, 16)
    rows += background(HOSTS, 16, proc="explorer", domain="company.blob.core.windows.net")
    rows += background(HOSTS, 16, proc="powershell", domain="company.blob.core.windows.net")
    return rows


def test_im_base():
    eng = Impl()
    alerts = run(eng, _im_org() + [row(15, "h1", "explorer", "api.telegram.org")])
    assert [(a["name"], a["variations"], a["detector"], a["severity"]) for a in alerts] == [
        (ref.IM, [ref.IM], "uncommon_im", "informational")]
    ev = alerts[0]["evidence"]
    assert ev["im_service"] == "telegram" and ev["im_agents"] == 0 and ev["im_agent_days"] == 0
    assert ev["binary_agents"] == 5 and ev["suspicious_signals"] == []
    assert alerts[0]["destination"] == "api.telegram.org"


def test_im_destination_is_ip_when_no_domain():
    eng = Impl()
    alerts = run(eng, _im_org() + [row(15, "h1", "explorer", None, ip="149.154.167.220")])
    assert [(a["name"], a["destination"]) for a in alerts] == [(ref.IM, "149.154.167.220")]


def test_im_suspicious_process():
    eng = Impl()
    alerts = run(eng, _im_org() + [row(15, "h1", "dropper", "api.telegram.org")])
    assert [(a["name"], a["variations"], a["severity"]) for a in alerts] == [
        (ref.IM_SUSPICIOUS, [ref.IM_SUSPICIOUS, ref.IM], "low")]
    assert set(alerts[0]["evidence"]["suspicious_signals"]) == {"unsigned", "user_writable_path", "rare_binary"}


@pytest.mark.parametrize("over,signal", [
    (dict(exists=False), "unsigned"),
    (dict(trusted=False), "untrusted"),
    (dict(exe=r"C:\Users\Public\explorer.exe"), "user_writable_path"),
    (dict(sha="9" * 64), "rare_binary"),
    (dict(orig="rclone.exe"), "renamed"),
])
def test_im_each_suspicious_signal(over, signal):
    eng = Impl()
    alerts = run(eng, _im_org() + [row(15, "h1", "explorer", "api.telegram.org", **over)])
    assert [a["name"] for a in alerts] == [ref.IM_SUSPICIOUS]
    assert alerts[0]["evidence"]["suspicious_signals"] == [signal]


def test_im_null_signals_are_unknown():
    eng = Impl()
    alerts = run(eng, _im_org() + [row(15, "h1", "explorer", "api.telegram.org", exists=None, trusted=None,
                                       orig=None)])
    assert [a["name"] for a in alerts] == [ref.IM]


def test_im_scripting_engine_rare_parent():
    eng = Impl()
    alerts = run(eng, _im_org() + [row(15, "h1", "powershell", "discord.com", parent="WINWORD.EXE")])
    assert [(a["name"], a["variations"]) for a in alerts] == [(ref.IM_SCRIPTING, [ref.IM_SCRIPTING, ref.IM])]
    ev = alerts[0]["evidence"]
    assert ev["scripting_signals"] == ["rare_parent_engine_pair"] and ev["pair_agents"] == 0
    assert ev["cmdline_agents"] == 5 and ev["script_engine"] == "powershell"


def test_im_scripting_engine_rare_command_line():
    eng = Impl()
    alerts = run(eng, _im_org() + [row(15, "h1", "powershell", "discord.com",
                                       cmd="powershell -w hidden -c iwr https://discord.com/api/webhooks/1")])
    assert [a["name"] for a in alerts] == [ref.IM_SCRIPTING]
    assert alerts[0]["evidence"]["scripting_signals"] == ["rare_command_line"]


def test_im_scripting_engine_common_execution_is_base():
    eng = Impl()
    # usual parent; the command line differs from the usual only in numbers (normalised away)
    alerts = run(eng, _im_org() + [row(15, "h1", "powershell", "discord.com",
                                       cmd="POWERSHELL.EXE   -NoProfile -File C:\\it\\inventory.ps1")])
    assert [a["name"] for a in alerts] == [ref.IM]


def test_im_scripting_null_parent_and_cmdline_unknown():
    eng = Impl()
    alerts = run(eng, _im_org() + [row(15, "h1", "powershell", "discord.com", parent=None, cmd=None)])
    assert [a["name"] for a in alerts] == [ref.IM]


def test_im_precedence_scripting_over_suspicious():
    eng = Impl()
    alerts = run(eng, _im_org() + [row(15, "h1", "pythonw_tmp", "api.telegram.org")])
    assert len(alerts) == 1
    assert alerts[0]["name"] == ref.IM_SCRIPTING
    assert alerts[0]["variations"] == [ref.IM_SCRIPTING, ref.IM_SUSPICIOUS, ref.IM]


def test_im_vendor_client_across_org_does_not_alert():
    eng = Impl()
    hosts = [f"h{i}" for i in range(10)]
    rows = background(hosts, 20)
    rows += background(hosts, 20, proc="telegram", domain="api.telegram.org")
    rows.append(row(17, "new", "telegram", "api.telegram.org", seconds=50000))  # a new agent installs it
    alerts = run(eng, rows)
    assert alerts == []
    assert eng.suppressed["activation"] > 0  # the first days were matches stopped by activation
    assert eng.im_agents.count(("telegram.exe|telegram fz-llc", "telegram")) == 11


def test_im_agent_days_limit():
    eng = Impl()
    rows = background(HOSTS, 40)
    # one agent, one process, a beacon every day: base matches while agent-days <= 10
    rows += [row(d, "h1", "explorer", "api.telegram.org", seconds=50000) for d in range(3, 40)]
    alerts = run(eng, rows)
    days = [dayof(a) for a in alerts]
    # agent-days 0..10 before the event on days 3..13 (not activated), 14 is the 12th agent-day -> none
    assert days == []
    eng2 = Impl()
    rows2 = background(HOSTS, 40) + [row(d, "h1", "explorer", "api.telegram.org", seconds=50000)
                                     for d in range(10, 40)]
    days2 = [dayof(a) for a in run(eng2, rows2)]
    assert days2 == [14, 15, 16, 17, 18, 19, 20]  # before day 21 the process has <= 10 agent-days


def test_event_both_cloud_and_im(tmp_path):
    # a cloud-hosted IM endpoint: an extension makes S3 names an IM service too
    eng = Impl(catalog=_allow_catalog(
        tmp_path, '[[im]]\nservice = "chatty"\nmatch = "suffix"\ndomain = "s3.amazonaws.com"\n'))
    alerts = run(eng, _im_org() + [row(15, "h1", "evil", "chatbucket.s3.amazonaws.com")])
    assert sorted((a["detector"], a["destination"]) for a in alerts) == [
        ("rare_cloud", "aws/s3/chatbucket"), ("uncommon_im", "chatbucket.s3.amazonaws.com")]


# ----------------------------------------------------------------------------------------- late events

def test_late_event_scored_and_learned_with_own_day():
    eng = Impl()
    run(eng, background(HOSTS, 51))  # newest day 50
    late = run(eng, [row(21, "h1", "evil", "late.s3.amazonaws.com")])  # 29 days old: late, scored
    assert [(a["destination"], dayof(a), a["evidence"]["late"], a["evidence"]["reference_day"]) for a in late] == [
        ("aws/s3/late", 21, True, D0 + 50)]
    assert run(eng, [row(20, "h1", "evil", "old.s3.amazonaws.com")]) == []  # 30 days old: too old
    assert eng.suppressed["too_old"] == 1
    assert eng.prevalence.count("aws/s3/old") == 0  # not learned
    assert eng.process_seen.d["aws/s3/late"] == {"evil.exe|evil ltd": D0 + 21}  # learned with its own day
    assert run(eng, [row(50, "h1", "evil", "late.s3.amazonaws.com", seconds=86000)]) == []  # day 21 live at day 50
    # in a twin engine, the day-21 fact leaves the window at day 51 (21 <= 51 - 30)
    eng2 = Impl()
    run(eng2, background(HOSTS, 51))
    run(eng2, [row(21, "h1", "evil", "late.s3.amazonaws.com")])
    out = run(eng2, [row(51, "h1", "evil", "late.s3.amazonaws.com")])
    assert [a["destination"] for a in out] == ["aws/s3/late"]


def test_late_event_never_moves_last_seen_back():
    eng = Impl()
    run(eng, background(HOSTS, 41) + [row(40, "h1", "evil", "b.s3.amazonaws.com", seconds=50000)])
    run(eng, [row(15, "h1", "evil", "b.s3.amazonaws.com")])  # late: process_seen already true
    assert eng.process_seen.d["aws/s3/b"]["evil.exe|evil ltd"] == D0 + 40
    assert run(eng, background(HOSTS, 60, start=41) + [row(55, "h1", "evil", "b.s3.amazonaws.com")]) == []


def test_rows_index_sorted_concatenation():
    eng = Impl()
    run(eng, background(HOSTS, 15))  # 75 rows
    batch = [row(15, "h1", "evil", "b2.s3.amazonaws.com", seconds=200),  # sorted position 1
             row(15, "h1", "chrome", "company.s3.amazonaws.com", seconds=100),  # position 0
             row(15, "h1", "powershell", "b3.s3.amazonaws.com", seconds=300)]  # position 2
    alerts = run(eng, batch)
    assert [(a["row"], a["destination"]) for a in alerts] == [(76, "aws/s3/b2"), (77, "aws/s3/b3")]
    assert eng.rows == 78


def test_stable_sort_equal_timestamps():
    eng = Impl()
    rows = background(HOSTS, 15)
    rows += [row(15, "h1", "evil", "same.s3.amazonaws.com"), row(15, "h2", "evil", "same.s3.amazonaws.com")]
    alerts = run(eng, rows)
    # score-then-learn in input order for ties: h1 first (prevalence 0), then h2 sees process_seen true
    assert [(a["host.id"], a["evidence"]["prevalence"]) for a in alerts] == [("h1", 0)]


# ------------------------------------------------------------------------------------ command-line rule

@pytest.mark.parametrize("raw,norm", [
    ("  PowerShell.EXE   -NoProfile\t-File  X.ps1 ", "powershell.exe -noprofile -file x.ps<num>"),
    ("svc {0A1B2C3D-1111-2222-3333-444455556666} run", "svc <guid> run"),
    ("x 0a1b2c3d-1111-2222-3333-444455556666", "x <guid>"),
    ("open deadbeefcafe0123 now", "open <hex> now"),
    ("sleep 5 then 1200", "sleep <num> then <num>"),
    ("--chat-id -1001234567890", "--chat-id -<hex>"),
    ('run "C:\\Users\\bob\\AppData\\Local\\Temp\\a123.ps1" -x 1', "run <tmp> -x <num>"),
    ("cp '/tmp/x9/y' z", "cp <tmp> z"),
    ("cat /tmp/x9", "cat /tmp/x<num>"),
    (None, None),
])
def test_normalize_command_line(raw, norm):
    assert normalize_command_line(raw) == norm


# ---------------------------------------------------------------------------------------- simulator

def test_reference_over_simulator_catches_every_attack():
    sim = pytest.importorskip("raresketch.simulate")
    Organisation = getattr(sim, "Organisation", None)
    if Organisation is None or not hasattr(Organisation, "batches") or not hasattr(Organisation, "ground_truth"):
        pytest.skip("raresketch.simulate lacks Organisation.batches / ground_truth")
    try:
        org = Organisation(agents=60, days=35, seed=7, events_per_agent_day=100.0)
    except TypeError as e:
        pytest.skip(f"Organisation API differs: {e}")
    eng = Impl()
    alerts = []
    for b in org.batches(50_000):
        alerts += eng.process(b)
    gt = org.ground_truth.to_pylist()
    assert gt, "the simulator injected nothing"
    missed = []
    for g in gt:
        hits = [a for a in alerts if a["host.id"] == g["host.id"] and g["@timestamp"] <= a["timestamp"] <= g["end"]
                and a["name"] in g["matched_alert_names"]]
        if not hits:
            missed.append(g["scenario"])
    assert missed == []
    assert {g["scenario"] for g in gt if g["malicious"]} >= {
        s["id"] for s in org.profiles["scenarios"] if s["malicious"]} - set(org.skipped_scenarios)
