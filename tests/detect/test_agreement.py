"""The sketch engine against the exact reference on a simulated organisation: alert for alert.

Target (issue 4): precision and recall of the engine's alerts against the reference's >= 99.5 % at default
memory. ``benches/reports/accuracy.py agreement`` reports how agreement falls as memory shrinks.
"""
from __future__ import annotations


import pytest

import raresketch
from raresketch.simulate import Organisation

from support.reference import ReferenceEngine


def alert_keys(alerts):
    return {(a["name"], a["host.id"], a["process.key"], a["destination"], a["timestamp"]) for a in alerts}


def engine_keys(alerts):
    return {(a.name, a.host_id, a.process_key, a.destination, a.timestamp) for a in alerts}


def run_both(org, config=None):
    eng, ref = raresketch.Engine(config), ReferenceEngine(config)
    got, want = [], []
    for batch in org.batches(50_000):
        got += eng.process(batch)
        want += ref.process(batch)
    return eng, ref, engine_keys(got), alert_keys(want)


def precision_recall(got, want):
    tp = len(got & want)
    return tp / max(1, len(got)), tp / max(1, len(want))


@pytest.fixture(scope="module")
def org():
    return Organisation(agents=60, days=40, seed=3, events_per_agent_day=150)


def test_engine_agrees_with_exact_reference(org):
    eng, ref, got, want = run_both(org)
    precision, recall = precision_recall(got, want)
    print(f"\nagreement on {eng.stats['events']:,} events: {len(want)} reference alerts, {len(got)} engine alerts, "
          f"precision {precision:.4f}, recall {recall:.4f}")
    assert len(want) > 50                      # a workload where both detectors really fire
    assert {k[0] for k in want} == set(raresketch.ALERT_NAMES)  # every alert name is exercised
    assert precision >= 0.995 and recall >= 0.995
    assert dict(eng.suppressed) == {k: v for k, v in ref.suppressed.items() if k != "too_old" and v}


def test_small_memory_degrades_without_failing(org):
    # 1/512 of the default capacity: evictions happen, and agreement is measured, not assumed.
    cfg = raresketch.Config(capacity=1 << 12)
    eng, ref, got, want = run_both(org, cfg)
    health = eng.baseline.health()
    assert sum(h.get("evictions", 0) + h.get("dropped_keys", 0) for h in health.values()) > 0
    assert eng.baseline.nbytes < raresketch.Baseline().nbytes / 10
    precision, recall = precision_recall(got, want)
    print(f"\ncapacity 2^12: precision {precision:.3f}, recall {recall:.3f}")
    assert recall > 0.5
