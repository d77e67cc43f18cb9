"""``raresketch.detect.Guard``, the per-alert gates shared by the Engine and Spark: dedup exactly once per window
per key (with the count of duplicates since the key's last alert), the global and per-agent volume pauses (one
warning key each), pruning, ``filter_table`` equal to ``admit`` in order, and its state round trip."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from support.scenarios import HOSTS, background, row, table

import raresketch as rs
from raresketch.alerts import alerts_to_table
from raresketch.detect import Guard

DAY = 20_100
T0 = DAY * 1440                         # minutes since the epoch at the start of DAY
NO_VOLUME = dict(max_alerts_per_day=10**9, max_alerts_per_agent_day=None)


def guard(**cfg) -> tuple[Guard, list[tuple[str, str]]]:
    warned: list[tuple[str, str]] = []
    return Guard(rs.Config(**cfg), Counter(), lambda k, m: warned.append((k, m))), warned


def admit(g: Guard, t_min: int, alert_id="rare_cloud.base", agent=1, process=2, dest="aws/s3/x", host="h1"):
    return g.admit(alert_id, agent, process, dest, t_min, t_min // 1440, host)


# ------------------------------------------------------------------------------------------- dedup


def test_dedup_admits_a_key_once_per_window_and_counts_the_duplicates_since():
    g, _ = guard(dedup_hours=24, **NO_VOLUME)
    window = 24 * 60
    assert admit(g, T0) == 0
    assert admit(g, T0 + 1) is None and admit(g, T0 + window - 1) is None
    assert g.suppressed == Counter(dedup=2)
    assert admit(g, T0 + window) == 2                 # suppressed_since_last: the two duplicates
    assert admit(g, T0 + window + 5) is None
    assert admit(g, T0 + 2 * window) == 1
    assert g.suppressed == Counter(dedup=3)


@pytest.mark.parametrize("change", [dict(alert_id="rare_cloud.atypical"), dict(agent=9), dict(process=9),
                                    dict(dest="aws/s3/y"), dict(alert_id="uncommon_im.base")])
def test_each_part_of_the_key_makes_a_different_alert(change):
    g, _ = guard(**NO_VOLUME)
    assert admit(g, T0) == 0
    assert admit(g, T0 + 1, **change) == 0
    assert admit(g, T0 + 2) is None and admit(g, T0 + 3, **change) is None


def test_dedup_hours_zero_admits_every_alert():
    g, _ = guard(dedup_hours=0, **NO_VOLUME)
    assert [admit(g, T0) for _ in range(3)] == [0, 0, 0] and not g.suppressed


def test_the_window_is_in_event_time_and_follows_dedup_hours():
    g, _ = guard(dedup_hours=1.5, **NO_VOLUME)
    assert admit(g, T0) == 0 and admit(g, T0 + 89) is None and admit(g, T0 + 90) == 1


# ------------------------------------------------------------------------------------------- volume


def test_global_volume_pauses_a_detector_for_the_rest_of_the_day_with_one_warning_key():
    g, warned = guard(max_alerts_per_day=3, max_alerts_per_agent_day=None)
    got = [admit(g, T0 + i, agent=i) for i in range(6)]
    assert got == [0, 0, 0, None, None, None]
    assert g.suppressed == Counter(volume_guard=3)
    assert {k for k, _ in warned} == {f"volume:rare_cloud:{DAY}"}
    assert "3 alerts on day" in warned[0][1] and "max_alerts_per_day" in warned[0][1]
    assert admit(g, T0 + 10, alert_id="uncommon_im.base") == 0          # the other detector goes on
    assert admit(g, T0 + 1440, agent=99) == 0                          # and the next day resumes
    assert {k for k, _ in warned} == {f"volume:rare_cloud:{DAY}"}


def test_per_agent_volume_pauses_only_that_agent_with_one_warning_key():
    g, warned = guard(max_alerts_per_day=100, max_alerts_per_agent_day=2)
    got = [admit(g, T0 + i, process=i, host="h1") for i in range(4)]
    assert got == [0, 0, None, None] and g.suppressed == Counter(volume_guard_agent=2)
    assert admit(g, T0 + 5, process=5, agent=7, host="h2") == 0
    assert {k for k, _ in warned} == {f"volume:rare_cloud:{DAY}:h1"}
    assert "agent h1" in warned[0][1]


def test_dedup_comes_before_volume_and_suppressed_alerts_do_not_spend_the_budget():
    g, _ = guard(max_alerts_per_day=2, max_alerts_per_agent_day=None)
    assert admit(g, T0) == 0 and admit(g, T0 + 1) is None and admit(g, T0 + 2, agent=5) == 0
    assert g.suppressed == Counter(dedup=1)
    assert admit(g, T0 + 3, agent=6) is None and g.suppressed["volume_guard"] == 1


def test_the_engine_reports_each_pause_once():
    cfg = rs.Config(max_alerts_per_day=1, max_alerts_per_agent_day=None)
    eng = rs.Engine(cfg)
    rows = background(HOSTS, 20)
    rows += [row(19, h, "evil", f"bucket-{h}-{i}.s3.amazonaws.com", seconds=3600 + i) for h in HOSTS
             for i in range(3)]
    eng.process(table(rows))
    assert eng.suppressed["volume_guard"] > 1
    assert sum("rare_cloud: 1 alerts on day" in w for w in eng.warnings) == 1


# ------------------------------------------------------------------------------------------- prune


def test_prune_forgets_old_keys_and_old_days_without_changing_decisions():
    g, _ = guard(dedup_hours=1, **NO_VOLUME)
    for i in range(10_001):
        admit(g, T0, agent=i)
    g.volume.update({("rare_cloud", DAY - 10 - i): 1 for i in range(5000)})
    g.prune(T0 + 60)
    assert g.last == {} and all(k[1] >= DAY - 2 for k in g.volume)
    assert admit(g, T0 + 60, agent=0) == 0           # what it answered before pruning too


def test_prune_keeps_keys_inside_the_window():
    g, _ = guard(dedup_hours=1, **NO_VOLUME)
    for i in range(10_001):
        admit(g, T0 + (i % 2) * 30, agent=i)
    g.prune(T0 + 60)
    assert len(g.last) == 5000
    assert admit(g, T0 + 61, agent=1) is None        # admitted at T0 + 30: still inside the hour


# ------------------------------------------------------------------------------------------- filter_table


def _scenario_rows() -> list[dict]:
    """Repeated rare contacts (dedup), one host with many (per-agent volume), an IM contact."""
    rows = background(HOSTS, 22)
    for d in (15, 15.2, 15.9, 16.5, 18):
        rows += [row(d, h, "evil", "bucket-z.s3.amazonaws.com") for h in HOSTS[:2]]
        rows += [row(d, "h3", "evil", f"bucket-{d}-{i}.s3.amazonaws.com") for i in range(3)]
        rows.append(row(d, "h4", "telegram", "api.telegram.org", sha="9" * 64))
    return rows


@pytest.fixture(scope="module")
def raw_alerts():
    """Every candidate alert of a scenario (no dedup, no volume guard), as an alerts table in event order."""
    eng = rs.Engine(rs.Config(dedup_hours=0, **NO_VOLUME))
    alerts = eng.process(table(_scenario_rows()))
    assert len(alerts) > 15
    return alerts


def test_filter_table_equals_admit_in_order(raw_alerts):
    cfg = dict(max_alerts_per_day=12, max_alerts_per_agent_day=4)
    tbl = alerts_to_table(raw_alerts)
    g1, w1 = guard(**cfg)
    kept = g1.filter_table(tbl)
    g2, w2 = guard(**cfg)
    want = []
    for a in raw_alerts:
        t_min = int(a.timestamp.timestamp()) // 60
        agent = int(rs.sketches.hash64(a.host_id))
        proc = int(rs.sketches.hash64(a.process_key))
        if g2.admit(f"{a.detector}.{a.variation}", agent, proc, a.destination, t_min, t_min // 1440,
                    a.host_id) is not None:
            want.append(a)
    assert 0 < kept.num_rows < tbl.num_rows
    assert kept.equals(alerts_to_table(want))
    assert g1.suppressed == g2.suppressed and set(g1.suppressed) >= {"dedup", "volume_guard_agent"}
    assert w1 == w2


def test_filter_table_gives_what_the_engine_emits(raw_alerts):
    """The Engine admits with the same Guard: filtering the unguarded run's alerts gives the guarded run's."""
    eng = rs.Engine(rs.Config(max_alerts_per_agent_day=4))
    guarded = eng.process(table(_scenario_rows()))
    g, _ = guard(max_alerts_per_agent_day=4)
    kept = g.filter_table(alerts_to_table(raw_alerts))
    cols = ["@timestamp", "rule.name", "host.id", "raresketch.destination"]
    assert kept.select(cols).equals(alerts_to_table(guarded).select(cols))
    assert g.suppressed["dedup"] == eng.suppressed["dedup"]


def test_filter_table_of_no_rows():
    g, _ = guard()
    empty = alerts_to_table([])
    assert g.filter_table(empty).num_rows == 0 and not g.suppressed


# ------------------------------------------------------------------------------------------- state


def test_state_round_trip_through_json_gives_the_same_decisions():
    cfg = dict(dedup_hours=24, max_alerts_per_day=5, max_alerts_per_agent_day=2)
    g, _ = guard(**cfg)
    rng = np.random.default_rng(4)
    stream = [(int(T0 + t), int(a), int(p), f"h{a}") for t, a, p in
              zip(np.sort(rng.integers(0, 3 * 1440, 200)), rng.integers(0, 4, 200), rng.integers(0, 3, 200))]
    for t, a, p, h in stream[:100]:
        admit(g, t, agent=a, process=p, host=h)
    back, _ = guard(**cfg)
    back.load_state(json.loads(json.dumps(g.to_state())))
    assert back.last == g.last and back.volume == g.volume
    first = [admit(g, t, agent=a, process=p, host=h) for t, a, p, h in stream[100:]]
    second = [admit(back, t, agent=a, process=p, host=h) for t, a, p, h in stream[100:]]
    assert first == second and any(x is None for x in first) and any(x for x in first)
