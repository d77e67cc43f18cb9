"""CountMinSketch against exact counts (collections.Counter), with its documented error bound.
Round trip, refusals, merge and pickling: test_contract.py."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from support.helpers import zipf_keys
from hypothesis import given
from hypothesis import strategies as st

import raresketch as rs


@pytest.mark.parametrize("conservative", [False, True])
@pytest.mark.parametrize("width", [1 << 10, 1 << 14])
def test_never_underestimates_and_error_within_bound(conservative, width):
    keys = zipf_keys(200_000, seed=width)
    exact = Counter(keys.tolist())
    cms = rs.sketches.CountMinSketch(width, 4, conservative=conservative)
    cms.update(keys)
    uniq = np.fromiter(exact.keys(), dtype=np.uint64)
    true = np.fromiter(exact.values(), dtype=np.int64)
    est = cms.query(uniq).astype(np.int64)
    assert np.all(est >= true)
    # c <= est <= c + e/width * N for at least 1 - exp(-depth) of the keys.
    within = (est - true) <= math.e / width * cms.total
    assert within.mean() >= cms.confidence
    assert cms.error_bound() == pytest.approx(math.e * len(keys) / width)


def test_conservative_update_is_never_worse():
    keys = zipf_keys(100_000, seed=3)
    std = rs.sketches.CountMinSketch(4096, 4, conservative=False)
    cu = rs.sketches.CountMinSketch(4096, 4, conservative=True)
    std.update(keys)
    cu.update(keys)
    uniq = np.unique(keys)
    assert np.all(cu.query(uniq) <= std.query(uniq))
    assert cu.query(uniq).sum() < std.query(uniq).sum()


def test_update_and_query_is_sequential_and_matches_scalar_path():
    keys = zipf_keys(5_000, seed=4)
    batch = rs.sketches.CountMinSketch(512, 3)
    scalar = rs.sketches.CountMinSketch(512, 3)
    after = batch.update_and_query(keys)
    assert after.tolist() == [scalar.add(int(k)) for k in keys]
    assert np.array_equal(batch.table, scalar.table)
    assert batch.query(keys).tolist() == [scalar.estimate(int(k)) for k in keys]
    # A repeated key sees its earlier occurrences; prior estimate = after - count.
    fresh = rs.sketches.CountMinSketch(1 << 16, 4)
    assert fresh.update_and_query(np.array([7, 7, 7, 8], dtype=np.uint64)).tolist() == [1, 2, 3, 1]


def test_counts_strings_and_saturation():
    cms = rs.sketches.CountMinSketch(64, 2)
    cms.update(["a", "b", "a"], counts=[2, 5, 1])
    assert cms.query(["a", "b", "c"]).tolist()[:2] == [3, 5]
    cms.update(np.array([1], np.uint64), counts=2**32 - 1)
    cms.update(np.array([1], np.uint64), counts=10)
    assert cms.estimate(1) == 2**32 - 1
    with pytest.raises(ValueError, match="counts"):
        cms.update([1], counts=-1)
    with pytest.raises(ValueError, match="shape"):
        cms.update(np.array([1, 2], np.uint64), counts=[1, 2, 3])


def test_sizing_helpers():
    assert rs.sketches.CountMinSketch.suggest_width(0.01) == math.ceil(math.e / 0.01)
    assert rs.sketches.CountMinSketch.suggest_depth(0.01) == 5
    s = rs.sketches.CountMinSketch.from_error(0.001, 0.05)
    assert (s.width, s.depth) == (2719, 3)
    s.update(np.arange(1000, dtype=np.uint64))
    assert s.error_bound(0.05) == pytest.approx(1000 * 0.05 ** (-1 / 3) / 2719)
    with pytest.raises(ValueError):
        rs.sketches.CountMinSketch(0, 4)
    with pytest.raises(ValueError):
        rs.sketches.CountMinSketch(16, 33)


@given(st.lists(st.integers(0, 50), max_size=300))
def test_property_upper_bound_and_total(values):
    cms = rs.sketches.CountMinSketch(16, 2)
    keys = np.array(values, dtype=np.uint64)
    cms.update(keys)
    exact = Counter(values)
    assert cms.total == len(values)
    for k, c in exact.items():
        assert cms.estimate(k) >= c
