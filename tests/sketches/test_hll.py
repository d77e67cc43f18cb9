"""HyperLogLog accuracy against exact distinct counts, and agreement with datasketch's HLL++.
Round trip, refusals, merge and pickling: test_contract.py."""
from __future__ import annotations

import datasketch
import numpy as np
import pytest
from test_hash import fmix64

import raresketch as rs


@pytest.mark.parametrize("n", [10, 1_000, 1_000_000])
@pytest.mark.parametrize("p", [10, 12, 14])
def test_within_three_standard_errors(n, p):
    h = rs.sketches.HyperLogLog(p, seed=n)
    h.update(np.arange(n, dtype=np.uint64))
    h.update(np.arange(n, dtype=np.uint64))  # duplicates change nothing
    assert abs(h.count() - n) <= 3 * h.relative_standard_error * n + 0.5
    assert h.lower_bound(3) <= n <= h.upper_bound(3) + 0.5


def test_registers_and_estimate_agree_with_datasketch():
    keys = [int(k) for k in rs.sketches.hash64([f"host-{i}" for i in range(30_000)])]
    ours = rs.sketches.HyperLogLog(12, seed=3)
    ours.update(np.array(keys, dtype=np.uint64))
    theirs = datasketch.HyperLogLogPlusPlus(p=12, hashfunc=lambda k: fmix64(k ^ 3))
    for k in keys:
        theirs.update(k)
    assert np.array_equal(ours.registers, theirs.reg.astype(np.uint8))
    assert ours.count() == pytest.approx(theirs.count(), rel=1e-12)


@pytest.mark.parametrize("n", [5, 200, 3_000, 50_000])
def test_to_and_from_datasketch(n):
    h = rs.sketches.HyperLogLog(11)
    h.update(np.arange(n, dtype=np.uint64))
    d = h.to_datasketch()
    assert isinstance(d, datasketch.HyperLogLog)
    assert d.count() == pytest.approx(h.count(), rel=1e-12)
    d.update(10**12)  # continues with the same key mix
    h.add(10**12)
    back = rs.sketches.HyperLogLog.from_datasketch(d)
    assert back == h
    with pytest.raises(TypeError, match="HyperLogLogPlusPlus"):
        rs.sketches.HyperLogLog.from_datasketch(datasketch.HyperLogLog(p=8))
    with pytest.raises(ValueError, match="p <= 16"):
        rs.sketches.HyperLogLog(17).to_datasketch()


def test_scalar_path_strings_and_empty():
    h = rs.sketches.HyperLogLog(8)
    assert h.is_empty() and h.count() == 0.0
    h.update(["a", "b", "a"])
    h.add(rs.sketches.hash64("c"))
    assert round(h.count()) == 3 and len(h) == 3
    with pytest.raises(ValueError, match="p must be"):
        rs.sketches.HyperLogLog(3)


def test_register_value_out_of_range_is_refused_even_with_a_valid_checksum():
    """No 64-bit hash can produce a register value above 64 - p + 1; a resealed blob holding one is refused."""
    from raresketch import _format

    h = rs.sketches.HyperLogLog(10, seed=2)
    h.update(np.arange(5000, dtype=np.uint64))
    params, arrays = _format.unpack(h.to_bytes(), "HyperLogLog")
    arrays[0][0] = 99
    with pytest.raises(ValueError, match="register value out of range"):
        rs.sketches.HyperLogLog.from_bytes(_format.pack("HyperLogLog", params, arrays))
