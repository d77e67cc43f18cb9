"""BloomFilter: no false negatives, measured false-positive rate against the target.
Round trip, refusals, merge and pickling: test_contract.py."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import raresketch as rs


@pytest.mark.parametrize("capacity,fp_rate", [(1_000, 0.05), (100_000, 0.01), (100_000, 0.001), (300_000, 1e-4)])
def test_no_false_negatives_and_fp_rate_within_1_5x(capacity, fp_rate):
    bf = rs.sketches.BloomFilter(capacity, fp_rate, seed=capacity)
    members = np.arange(capacity, dtype=np.uint64) * np.uint64(2654435761)
    bf.add(members)
    assert bf.contains(members).all()
    probes = np.arange(10**9, 10**9 + max(200_000, int(50 / fp_rate)), dtype=np.uint64)
    measured = bf.contains(probes).mean()
    assert measured <= 1.5 * fp_rate
    # The sizing model predicts the measured rate (it is what makes the blocked layout meet the target).
    assert bf.expected_fp_rate(capacity) <= fp_rate
    assert abs(bf.approximate_count() - capacity) < 0.05 * capacity


def test_add_if_absent_is_sequential_test_and_set():
    bf = rs.sketches.BloomFilter(1000, 0.001)
    got = bf.add_if_absent(np.array([5, 6, 5, 7, 6], dtype=np.uint64))
    assert got.tolist() == [True, True, False, True, False]
    assert bf.add_if_absent(5) is False and bf.add_if_absent(8) is True
    assert 8 in bf and bf.contains(9) is False


def test_strings_and_validation():
    bf = rs.sketches.BloomFilter(5000, 0.01)
    bf.add(["a", "b"])
    assert bf.contains(["a", "b"]).tolist() == [True, True]
    with pytest.raises(ValueError, match="fp_rate"):
        rs.sketches.BloomFilter(10, 0.7)
    with pytest.raises(ValueError, match="unsigned 64-bit"):
        bf.add(-1)


@given(st.sets(st.integers(0, 2**64 - 1), max_size=200))
def test_property_no_false_negatives(keys):
    bf = rs.sketches.BloomFilter(max(1, len(keys)), 0.01)
    arr = np.array(sorted(keys), dtype=np.uint64)
    bf.add(arr)
    assert bf.contains(arr).all()
