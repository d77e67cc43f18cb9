"""KeyedDistinct against an exact windowed reference (dicts of last-seen days).
Round trip, refusals, merge refusals and pickling: test_contract.py."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import raresketch as rs
from raresketch import _format


class ExactKeyed:
    """The semantics of KeyedDistinct, exactly: key -> {member: last day}, window of the newest day."""

    def __init__(self, window):
        self.window, self.today, self.pairs = window, 0, {}

    def _live(self, day):
        return day > self.today - self.window

    def observe(self, key, member, day):
        self.today = max(self.today, day)
        members = self.pairs.get(key, {})
        live = {m: d for m, d in members.items() if self._live(d)}
        prior_count, prior_day = len(live), live.get(member, 0)
        if self._live(day):
            live[member] = max(prior_day, day)
        self.pairs[key] = live
        return prior_count, prior_day

    def count(self, key):
        return sum(1 for d in self.pairs.get(key, {}).values() if self._live(d))


def skewed_events(n, n_keys, n_members, days, seed):
    rng = np.random.default_rng(seed)
    keys = rng.zipf(1.3, n) % n_keys
    members = rng.zipf(1.5, n) % n_members
    day = np.sort(rng.integers(0, days, n)) + 20_000
    return keys.astype(np.uint64), members.astype(np.uint64), day


def test_exact_below_limit_with_window_against_reference():
    keys, members, days = skewed_events(60_000, 3_000, 400, 75, seed=1)
    kd = rs.sketches.KeyedDistinct(1 << 16, window_days=30, exact_limit=512)
    ref = ExactKeyed(30)
    counts, last = kd.observe(keys, members, days)
    expect = [ref.observe(int(k), int(m), int(d)) for k, m, d in zip(keys, members, days)]
    assert counts.tolist() == [c for c, _ in expect]
    assert last.tolist() == [d for _, d in expect]
    uniq = np.unique(keys)
    assert kd.count(uniq).tolist() == [ref.count(int(k)) for k in uniq]
    assert kd.stats["evictions"] == 0 and kd.stats["sweeps"] > 0
    # Really forgets: 30 days after the last event nothing is left.
    kd.advance(int(days.max()) + 30)
    assert kd.num_keys == 0 and kd.num_pairs == 0 and kd.count(uniq).sum() == 0


def test_late_events_within_window_and_too_old():
    kd = rs.sketches.KeyedDistinct(64, window_days=10)
    assert kd.observe_one(1, 1, 100) == (0, 0)
    assert kd.observe_one(1, 2, 95) == (1, 0)    # late but inside the window: learned
    assert kd.observe_one(1, 2, 100) == (2, 95)
    assert kd.observe_one(1, 3, 90) == (2, 0)    # 10 days old: outside, counted, not learned
    assert kd.stats["too_old"] == 1 and kd.count_one(1) == 2
    assert kd.last_seen([1, 1, 1], [1, 2, 3]).tolist() == [100, 100, 0]
    kd.advance(105)                               # member 2 last seen on day 100 is still in
    assert kd.count_one(1) == 2
    kd.advance(110)
    assert kd.count_one(1) == 0


@pytest.mark.parametrize("n_members", [1_000, 20_000, 200_000])
def test_sampled_estimates_beyond_limit(n_members):
    limit = 128
    kd = rs.sketches.KeyedDistinct(1 << 20, window_days=30, exact_limit=limit, seed=n_members)
    n_keys = 40
    keys = np.repeat(np.arange(n_keys, dtype=np.uint64), n_members)
    members = np.tile(np.arange(n_members, dtype=np.uint64), n_keys) + keys * np.uint64(10**9)
    order = np.random.default_rng(0).permutation(len(keys))
    kd.update(keys[order], members[order], 20_000)
    est = kd.count(np.arange(n_keys, dtype=np.uint64)).astype(float)
    rel = est / n_members - 1
    # Documented relative standard error about sqrt(2 / exact_limit) = 12.5 % here.
    assert abs(rel.mean()) < 0.06                  # unbiased: the mean over 40 keys is tight
    assert np.sqrt((rel**2).mean()) < 1.3 * np.sqrt(2 / limit)
    lo, hi = kd.count_interval(np.arange(n_keys, dtype=np.uint64), 3)
    assert ((lo <= n_members) & (n_members <= hi)).mean() >= 0.9
    # Bounded pairs per key: about limit * (1 + log2(n / limit) / 2).
    assert kd.num_pairs / n_keys < limit * (1 + np.log2(n_members / limit) / 2) * 1.5


def test_merge_of_disjoint_streams_of_different_capacities_equals_one_structure():
    keys, members, days = skewed_events(40_000, 2_000, 300, 40, seed=2)
    half = np.random.default_rng(3).random(len(keys)) < 0.5
    a = rs.sketches.KeyedDistinct(1 << 15, window_days=30, exact_limit=1024)
    b = rs.sketches.KeyedDistinct(1 << 14, window_days=30, exact_limit=1024)
    one = rs.sketches.KeyedDistinct(1 << 15, window_days=30, exact_limit=1024)
    a.update(keys[half], members[half], days[half])
    b.update(keys[~half], members[~half], days[~half])
    one.update(keys, members, days)
    a.merge(b)
    uniq = np.unique(keys)
    assert a.count(uniq).tolist() == one.count(uniq).tolist()
    assert a.last_seen(keys, members).tolist() == one.last_seen(keys, members).tolist()
    assert a.today == one.today


def test_merge_beyond_limit_stays_an_estimate():
    keys = np.repeat(np.arange(20, dtype=np.uint64), 5000)
    members = np.tile(np.arange(5000, dtype=np.uint64), 20)
    half = np.arange(len(keys)) % 2 == 0
    a, b = rs.sketches.KeyedDistinct(1 << 18, exact_limit=128), rs.sketches.KeyedDistinct(1 << 18, exact_limit=128)
    a.update(keys[half], members[half], 20_000)
    b.update(keys[~half], members[~half], 20_000)
    a.merge(b)
    rel = a.count(np.arange(20, dtype=np.uint64)) / 5000 - 1
    assert abs(rel.mean()) < 0.1 and np.abs(rel).max() < 0.5


def test_bounded_memory_under_a_flood_evicts_oldest_and_counts_it():
    kd = rs.sketches.KeyedDistinct(4096, window_days=30)
    before = kd.nbytes
    normal_keys = np.arange(100, dtype=np.uint64)
    kd.update(normal_keys, np.uint64(1), 20_000)
    flood = np.arange(10**6, 10**6 + 200_000, dtype=np.uint64)
    kd.update(flood, np.uint64(7), 20_001)
    assert kd.nbytes == before
    assert kd.num_pairs <= kd.capacity and kd.num_keys <= kd.key_capacity
    st_ = kd.stats
    assert st_["evictions"] + st_["dropped_keys"] > 0
    # Evictions never over-count: every count stays within what was really seen.
    assert (kd.count(normal_keys) <= 1).all()
    assert kd.count(flood).max() <= 1
    kd2 = rs.sketches.KeyedDistinct.from_bytes(kd.to_bytes())  # state stays self-consistent
    assert kd2 == kd


def test_resealed_inconsistent_state_is_refused():
    kd = rs.sketches.KeyedDistinct(256, window_days=30)
    kd.update(np.array([1, 1, 2], np.uint64), np.array([1, 2, 1], np.uint64), 20_000)
    blob = kd.to_bytes()
    params, arrays = _format.unpack(blob, "KeyedDistinct")
    keys = arrays[1].reshape(-1).view(rs._core.KEY_DTYPE)
    keys["wsum"][keys["wsum"] > 0] += 1            # counts no longer the sum of their pairs
    with pytest.raises(ValueError, match="sums of their pairs"):
        rs.sketches.KeyedDistinct.from_bytes(_format.pack("KeyedDistinct", params, arrays))
    params, arrays = _format.unpack(blob, "KeyedDistinct")
    params["today"] = 30_000                         # every pair now outside the window
    with pytest.raises(ValueError, match="outside the window"):
        rs.sketches.KeyedDistinct.from_bytes(_format.pack("KeyedDistinct", params, arrays))


def test_input_validation():
    kd = rs.sketches.KeyedDistinct(64)
    with pytest.raises(ValueError, match="days must be in"):
        kd.update([1], [1], 0)
    with pytest.raises(TypeError, match="days must be integers"):
        kd.update([1], [1], 1.5)
    with pytest.raises(ValueError, match="differ in length"):
        kd.update(np.zeros(2, np.uint64), np.zeros(3, np.uint64), 5)
    with pytest.raises(ValueError, match="capacity"):
        rs.sketches.KeyedDistinct(4)


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 6), st.integers(1, 40)), max_size=120),
       st.integers(1, 12))
def test_property_matches_reference(events, window):
    events = sorted(events, key=lambda e: e[2]) if len(events) % 2 else events  # in order and shuffled
    kd = rs.sketches.KeyedDistinct(256, window_days=window, exact_limit=64)
    ref = ExactKeyed(window)
    for k, m, d in events:
        assert kd.observe_one(k, m, d) == ref.observe(k, m, d)
    for k in range(6):
        assert kd.count_one(k) == ref.count(k)


def test_learn_mask_answers_in_sequence_but_learns_only_selected():
    kd = rs.sketches.KeyedDistinct(256, window_days=10)
    keys = np.array([1, 1, 1, 1], np.uint64)
    members = np.array([5, 6, 7, 6], np.uint64)
    counts, last = kd.observe(keys, members, np.array([20, 20, 31, 31]), learn=np.array([True, False, True, True]))
    # member 6 is answered (count 1) but not learned; day 31 moves the window: day 20 is forgotten before event 3
    assert counts.tolist() == [0, 1, 0, 1] and last.tolist() == [0, 0, 0, 0]
    assert kd.count_one(1) == 2 and kd.last_seen([1, 1, 1], [5, 6, 7]).tolist() == [0, 31, 31]
    with pytest.raises(ValueError, match="learn has shape"):
        kd.observe(keys, members, 20, learn=np.array([True]))


def test_pair_table_fills_to_90_percent_without_evicting():
    """One level of cuckoo displacement: a pair whose two buckets are full moves a resident to its other
    bucket, so the pair table holds ~90 % of its slots exactly (plain two choices start evicting near 50 %)."""
    kd = rs.sketches.KeyedDistinct(1 << 14, key_capacity=1 << 14, window_days=30)
    n_keys, per_key = 3_686, 4                       # 14,744 pairs = 90 % of 16,384 slots
    keys = np.repeat(np.arange(1, n_keys + 1, dtype=np.uint64) * 0x9E3779B97F4A7C15, per_key)
    members = np.tile(np.arange(1, per_key + 1, dtype=np.uint64), n_keys)
    kd.update(keys, members, 20_000)
    assert kd.stats["evictions"] == 0 and kd.stats["dropped_keys"] == 0
    assert kd.num_pairs == n_keys * per_key
    assert (kd.count(keys) == per_key).all()
    # every moved pair is still where lookups look: seen on its day, and a reloaded copy agrees
    _, day = kd.observe(keys, members, np.full(keys.size, 20_000), learn=np.zeros(keys.size, bool))
    assert (day == 20_000).all()
    kd2 = rs.sketches.KeyedDistinct.from_bytes(kd.to_bytes())
    assert kd2 == kd
    # beyond full it evicts (and counts it) instead of failing
    kd.update(np.arange(10**7, 10**7 + 4_000, dtype=np.uint64), np.uint64(1), 20_001)
    assert kd.stats["evictions"] > 0


def test_state_without_displacement_backoff_still_loads():
    """Files written before displacement have no ``backoff`` parameter: they load, with no back-off."""
    kd = rs.sketches.KeyedDistinct(256, window_days=30)
    kd.update(np.arange(1, 400, dtype=np.uint64), np.uint64(3), 20_000)   # overflows: back-off is set
    params, arrays = _format.unpack(kd.to_bytes(), "KeyedDistinct")
    assert 0 < params.pop("backoff") <= 64
    old = rs.sketches.KeyedDistinct.from_bytes(_format.pack("KeyedDistinct", params, arrays))
    assert (old.count(np.arange(1, 400, dtype=np.uint64)) == kd.count(np.arange(1, 400, dtype=np.uint64))).all()
    params["backoff"] = 10**6
    with pytest.raises(ValueError, match="back-off"):
        rs.sketches.KeyedDistinct.from_bytes(_format.pack("KeyedDistinct", params, arrays))


def test_sweep_scans_only_on_days_that_drop_pairs_and_survives_merge_and_load():
    """The day sweep is skipped while nothing leaves the window (the live-pairs-per-day ring), and the ring is
    rebuilt by from_bytes and kept by merge: afterwards every pair still leaves exactly on its day."""
    kd = rs.sketches.KeyedDistinct(1 << 12, window_days=7)
    kd.update(np.arange(50, dtype=np.uint64), np.ones(50, dtype=np.uint64), 20_000 + np.arange(50) % 7)
    assert kd.stats["sweeps"] == 0                       # 7 days inside a 7-day window: nothing to drop
    other = rs.sketches.KeyedDistinct(1 << 12, window_days=7)
    other.update(np.arange(50, 60, dtype=np.uint64), np.ones(10, dtype=np.uint64), 20_006)
    kd = rs.sketches.KeyedDistinct.from_bytes(kd.to_bytes())
    kd.merge(other)
    assert kd.num_pairs == 60
    for day in range(20_007, 20_013):                    # each day drops the pairs last seen 7 days before
        kd.advance(day)
        dropped = day - 20_006
        assert kd.num_pairs == 60 - sum(1 for i in range(50) if i % 7 < dropped)
        assert int(kd.count(np.arange(50, dtype=np.uint64)).sum()) == kd.num_pairs - 10
    sweeps = kd.stats["sweeps"]
    kd.advance(20_013)                                   # the merged pairs (day 20,006) leave last
    assert kd.num_pairs == 0 and kd.stats["sweeps"] == sweeps + 1
    kd.advance(20_100)                                   # nothing left: no scan
    assert kd.stats["sweeps"] == sweeps + 1
