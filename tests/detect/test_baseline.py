"""``raresketch.Baseline``: ``observe`` answers each event as the baseline was before it (then learns it), the
window forgets after ``training_days``, a merge of baselines built over disjoint halves answers as the baseline of
the whole, and memory is fixed by ``capacity``. Round trip and refusals: sketches/test_contract.py."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from support.scenarios import event_keys

import raresketch as rs
from raresketch.detect import STRUCTURES, structure_sizes

DAY = 20_100
SMALL = rs.Config(capacity=4096, max_agents=1024)


def cloud(agent, resource, day=DAY, process=2, kind=5) -> dict:
    """Fields of cloud events (arrays or scalars) for support.scenarios.event_keys."""
    return dict(agent=np.asarray(agent, np.uint64), resource=np.asarray(resource, np.uint64), day=day,
                process=np.asarray(process, np.uint64), kind=np.asarray(kind, np.uint64), is_cloud=True)


def test_observe_answers_before_learning_within_one_batch():
    b = rs.Baseline(SMALL)
    # three agents contact resource 7 in turn, the first twice
    pri = b.observe(event_keys(4, **cloud([1, 2, 1, 3], 7)))
    assert pri.prevalence.tolist() == [0, 1, 2, 2]           # distinct agents before each event
    assert pri.process_seen.tolist() == [0, DAY, DAY, DAY]   # last day the process met the resource (0 = never)
    assert pri.first_rare.tolist() == [True, False, False, False]
    assert pri.run_first.tolist() == [DAY] * 4 and pri.org_first_day.tolist() == [DAY] * 4
    # the next batch sees everything the first one learned
    pri = b.observe(event_keys(2, **cloud([4, 1], [7, 8], day=DAY + 1)))
    assert pri.prevalence.tolist() == [3, 0] and pri.first_rare.tolist() == [False, True]
    assert b.today == DAY + 1 and b.first_day == DAY


def test_active_agents_and_threshold_come_from_the_days_before():
    b = rs.Baseline(SMALL)
    b.observe(event_keys(3, agent=np.array([1, 2, 3], np.uint64)))
    pri = b.observe(event_keys(1, day=DAY + 1, agent=np.uint64(4)))
    assert pri.active_agents.tolist() == [3]
    assert pri.threshold.tolist() == SMALL.rare_threshold(pri.active_agents).tolist()


@pytest.mark.parametrize("training_days", [7, 30])
def test_the_window_forgets_after_training_days(training_days):
    b = rs.Baseline(SMALL.replace(training_days=training_days))
    b.observe(event_keys(**cloud(1, 7)))
    last_in = b.observe(event_keys(**cloud(2, 9, day=DAY + training_days - 1)))  # unrelated: advances the day
    assert last_in.prevalence.tolist() == [0]
    inside = rs.Baseline(SMALL.replace(training_days=training_days))
    inside.observe(event_keys(**cloud(1, 7)))
    assert inside.observe(event_keys(**cloud(3, 7, day=DAY + training_days - 1))).prevalence.tolist() == [1]
    outside = rs.Baseline(SMALL.replace(training_days=training_days))
    outside.observe(event_keys(**cloud(1, 7)))
    pri = outside.observe(event_keys(**cloud(3, 7, day=DAY + training_days)))
    assert pri.prevalence.tolist() == [0] and pri.process_seen.tolist() == [0] and pri.first_rare.tolist() == [True]


def _stream(n=6000, seed=1):
    rng = np.random.default_rng(seed)
    agents = rng.integers(0, 40, n).astype(np.uint64)
    days = np.sort(rng.integers(DAY, DAY + 20, n)).astype(np.uint16)
    fields = dict(days=days, agent=agents, process=rng.integers(0, 30, n).astype(np.uint64),
                  resource=(rng.zipf(1.4, n) % 500).astype(np.uint64), kind=rng.integers(1, 6, n).astype(np.uint64),
                  im=rng.integers(1, 4, n).astype(np.uint64), binary=rng.integers(0, 50, n).astype(np.uint64),
                  parent_engine=rng.integers(0, 5, n).astype(np.uint64),
                  cmdline=rng.integers(0, 9, n).astype(np.uint64))
    kind = rng.integers(0, 3, n)
    fields.update(is_cloud=kind == 0, is_im=kind == 1, is_script=rng.random(n) < 0.2)
    fields["has_cmdline"] = fields["is_script"] & (rng.random(n) < 0.5)
    return event_keys(n, **fields)


def test_merge_of_disjoint_halves_answers_as_the_whole():
    """Split by agent; after the merge, a later batch gets the same priors as from the baseline of the whole.
    new_rare / new_rare_agent are excluded: they learn only first rare contacts, which depend on the prior
    prevalence each half saw (not a function of the union of the events)."""
    ev = _stream()
    half = (ev.agent % 2 == 0)
    roomy = SMALL.replace(capacity=1 << 15)       # no eviction: a full table keeps what its own order dictates
    a, b, whole = rs.Baseline(roomy), rs.Baseline(roomy), rs.Baseline(roomy)
    a.observe(ev.take(np.flatnonzero(half)))
    b.observe(ev.take(np.flatnonzero(~half)))
    whole.observe(ev)
    probe = _stream(800, seed=2)
    probe.days[:] = DAY + 20
    want = dataclasses.asdict(whole.observe(probe))
    alone = rs.Baseline.from_bytes(a.to_bytes()).observe(probe)
    assert not np.array_equal(alone.prevalence, want["prevalence"])      # one half alone answers otherwise
    assert a.merge(b) is a
    got = dataclasses.asdict(a.observe(probe))
    for name in set(want) - {"new_rare", "new_rare_agent"}:
        assert np.array_equal(got[name], want[name]), name
    assert a.today == whole.today and a.first_day == whole.first_day


def test_memory_is_fixed_by_capacity():
    b = rs.Baseline(SMALL)
    before = b.nbytes
    assert before == sum(b.memory().values())
    assert set(b.memory()) == {"agents", *STRUCTURES}
    sizes = structure_sizes(SMALL.capacity)
    for name, s in b.structures.items():        # pair slots as sized; key slots at least as asked (rounded up)
        assert s.capacity == sizes[name][0] and sizes[name][1] <= s.key_capacity < 2 * sizes[name][1]
    flood = event_keys(50_000, **cloud(np.arange(50_000) % 900, np.arange(50_000)))
    b.observe(flood)
    assert b.nbytes == before
    health = b.health()
    assert health["prevalence"]["evictions"] + health["prevalence"]["dropped_keys"] > 0   # full, and says so
    bigger = rs.Baseline(SMALL.replace(capacity=4 * SMALL.capacity))
    assert bigger.nbytes > 2 * (before - b.memory()["agents"])
