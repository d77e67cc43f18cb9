"""KeyedDistinct.observe_into (the baseline's masked, in-place batch pass) against gathering the selected rows and
calling KeyedDistinct.observe: the same answers, the same learned state, byte for byte."""
from __future__ import annotations

import numpy as np
import pytest

import raresketch as rs

KD = rs.sketches.KeyedDistinct


def _batch(n: int, seed: int):
    rng = np.random.default_rng(seed)
    keys = rng.integers(1, 300, n).astype(np.uint64)            # few keys: counts grow past exact_limit
    members = rng.integers(1, 5_000, n).astype(np.uint64)
    days = np.sort(rng.integers(19_000, 19_045, n)).astype(np.int64)   # crosses the window: sweeps happen
    return rng, keys, members, days


@pytest.mark.parametrize("n", [0, 1, 17, 2_000, 5_000])
@pytest.mark.parametrize("density", [0.0, 0.3, 1.0])
def test_into_equals_gather_then_observe(n, density):
    rng, keys, members, days = _batch(n, n + int(density * 10))
    where = rng.random(n) < density
    learn = rng.random(n) < 0.8
    key_with = rng.integers(0, 3, n).astype(np.uint64)
    a, b = KD(256, 128, 30, 8, 1), KD(256, 128, 30, 8, 1)       # small: evictions and dropped keys happen too
    counts, last = np.full(n, -7, np.int64), np.full(n, -7, np.int64)
    a.observe_into(keys, members, days, where, counts=counts, last=last, learn=learn, key_with=key_with)
    i = np.flatnonzero(where)
    ref_c, ref_l = b.observe(rs.sketches.hash_pair(keys[i], key_with[i]), members[i], days[i], learn=learn[i])
    exp_c, exp_l = np.zeros(n, np.int64), np.zeros(n, np.int64)
    exp_c[i], exp_l[i] = ref_c, ref_l
    assert np.array_equal(counts, exp_c) and np.array_equal(last, exp_l)
    assert a.to_bytes() == b.to_bytes()


def test_member_with_and_second_key():
    rng, keys, members, days = _batch(3_000, 7)
    keys2 = rng.integers(1, 50, keys.size).astype(np.uint64)
    where = rng.random(keys.size) < 0.5
    a, b = KD(4096, 1024, 30, 16, 0), KD(4096, 1024, 30, 16, 0)
    c1, c2 = np.empty(keys.size, np.int64), np.empty(keys.size, np.int64)
    a.observe_into(keys, members, days, where, member_with=days.astype(np.uint64), keys2=keys2, counts=c1,
                   counts2=c2)
    i = np.flatnonzero(where)
    k2 = np.empty(2 * i.size, np.uint64)
    k2[0::2], k2[1::2] = keys[i], keys2[i]
    mem = np.repeat(rs.sketches.hash_pair(members[i], days[i].astype(np.uint64)), 2)
    both = b.observe(k2, mem, np.repeat(days[i], 2))[0]
    e1, e2 = np.zeros(keys.size, np.int64), np.zeros(keys.size, np.int64)
    e1[i], e2[i] = both[0::2], both[1::2]
    assert np.array_equal(c1, e1) and np.array_equal(c2, e2)
    assert a.to_bytes() == b.to_bytes()


def test_bad_input_changes_nothing():
    _, keys, members, days = _batch(100, 3)
    kd = KD(256, 128, 30, 8, 0)
    before = kd.to_bytes()
    bad = days.copy()
    bad[50] = 0
    with pytest.raises(ValueError, match="days must be in"):
        kd.observe_into(keys, members, bad)
    bad[50] = 70_000
    with pytest.raises(ValueError, match="days must be in"):
        kd.observe_into(keys, members, bad)
    where = np.ones(100, bool)
    where[50] = False                          # a bad day on a row not selected is never read
    kd2 = KD(256, 128, 30, 8, 0)
    kd2.observe_into(keys, members, bad, where)
    with pytest.raises(TypeError):
        kd.observe_into(keys, members, days.astype(float))
    with pytest.raises(ValueError, match="int64"):
        kd.observe_into(keys, members, days, counts=np.empty(100, np.int32))
    with pytest.raises(ValueError, match="int64"):
        kd.observe_into(keys, members, days, counts=np.empty(99, np.int64))
    with pytest.raises(ValueError, match="members"):
        kd.observe_into(keys, members[:-1], days)
    with pytest.raises(ValueError, match="where"):
        kd.observe_into(keys, members, days, np.ones(99, bool))
    with pytest.raises(ValueError, match="keys2"):
        kd.observe_into(keys, members, days, counts2=np.empty(100, np.int64))
    assert kd.to_bytes() == before
