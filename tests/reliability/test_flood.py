"""Hostile cardinality: one host contacting very many unique hostnames under a cloud suffix (each a distinct
cloud resource) must not grow memory beyond the configured budget nor blind the detector for the other hosts.

CI runs a scaled-down flood (capacity 2**14 pair slots, 20k hostnames = 2.4x the prevalence key capacity); the 1 M-hostname
figures at default capacity come from ``python benches/reports/flood.py`` (docs/RELIABILITY.md).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import raresketch as rs

_spec = importlib.util.spec_from_file_location("rs_flood_bench", Path(__file__).parents[2] / "benches" / "reports" / "flood.py")
flood = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(flood)

SMALL = dict(agents=30, days=20, epd=60, capacity=1 << 14, seed=0)


@pytest.fixture(scope="module")
def unique_process_flood():
    return flood.run(flood=20_000, process="svcupdate.exe", trace=True, **SMALL)


def test_memory_stays_within_budget(unique_process_flood):
    r = unique_process_flood
    c, f = r["clean"], r["flood"]
    # The baseline is allocated once from Config.capacity and never grows.
    assert f["baseline_bytes_after"] == f["baseline_bytes_budget"] == c["baseline_bytes_budget"]
    # It is full: new keys are dropped (counted), not stored.
    assert f["dropped_keys"].get("prevalence", 0) > 0
    # Outside the baseline the engine keeps a bounded name table (200k) and per-batch temporaries.
    assert f["names_kept"] <= 200_000
    assert f["tracemalloc_retained_mib"] < 64, f
    assert f["tracemalloc_peak_mib"] < 256, f


def test_other_hosts_detections_still_fire(unique_process_flood):
    c, f = unique_process_flood["clean"], unique_process_flood["flood"]
    assert c["attacks_caught_other_hosts"] == c["attacks_other_hosts"] > 10
    assert f["attacks_caught_other_hosts"] == f["attacks_other_hosts"], f["missed_attacks"]
    # Dropped keys make the next new resources look rare: a few more false alerts, measured, bounded here.
    assert f["unexplained_alerts_other_hosts"] <= 1.25 * c["unexplained_alerts_other_hosts"] + 5, (c, f)
    # The flooding process itself: 20 alerts, then a habitual explorer (suppressed and counted).
    assert f["suppressed"]["habitual_explorer"] >= 20_000 - 20


@pytest.mark.xfail(strict=True, reason=(
    "baseline/config: habitual-explorer poisoning from one host. Before: first rare contacts counted per process "
    "org-wide, so one host running the signed powershell.exe against 25 random *.s3.amazonaws.com names made it a "
    "habitual explorer and 3 of 20 injected attacks (PowerShell C2 on other hosts) were missed. Now (per-agent "
    "share capped at the default 3N/4 = 15) 1 is still missed: 15 from the flooding host + 5 legitimate first rare "
    "contacts elsewhere reach N = 20. With habitual_explorer_per_agent = 10 (N/2) none is missed on this org "
    "(test below); docs/RELIABILITY.md, still open 1"))
def test_one_host_cannot_make_a_process_habitual_for_the_org():
    f = flood.run(flood=200, process="powershell.exe", signer="Microsoft Windows", only="flood", **SMALL)["flood"]
    assert f["attacks_caught_other_hosts"] == f["attacks_other_hosts"], f["missed_attacks"]


def test_per_agent_cap_of_half_n_stops_single_host_poisoning():
    cfg = rs.Config(capacity=SMALL["capacity"], habitual_explorer_per_agent=10)
    small = {k: v for k, v in SMALL.items() if k != "capacity"}
    f = flood.run(flood=200, process="powershell.exe", signer="Microsoft Windows", only="flood", config=cfg,
                  **small)["flood"]
    assert f["attacks_caught_other_hosts"] == f["attacks_other_hosts"], f["missed_attacks"]


def test_one_host_cannot_exhaust_the_org_alert_budget():
    """Regression (found here, fixed in engine.py: per-agent volume guard): one host contacting 6,000 random
    hostnames, each from a new random process name, emitted 5,000 alerts and paused the rare-cloud detector for the
    whole org for the rest of the day (2 of 20 attacks on other hosts missed)."""
    f = flood.run(flood=6_000, random_process=True, only="flood", **SMALL)["flood"]
    assert f["suppressed"].get("volume_guard_agent", 0) > 0          # the noisy agent is paused ...
    assert f["attacks_caught_other_hosts"] == f["attacks_other_hosts"], f["missed_attacks"]   # ... not the org


def test_budget_is_fixed_by_capacity():
    """Baseline bytes are a function of Config alone (no data dependence): the budget a user sets."""
    for cap in (1 << 12, 1 << 14, 1 << 16):
        a, b = rs.Baseline(rs.Config(capacity=cap)), rs.Baseline(rs.Config(capacity=cap))
        assert a.nbytes == b.nbytes
    assert rs.Baseline(rs.Config(capacity=1 << 16)).nbytes > rs.Baseline(rs.Config(capacity=1 << 12)).nbytes
