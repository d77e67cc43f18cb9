"""fast_keys and hash64 on dictionary arrays (each distinct value hashed once, rows gathered in one compiled
pass) equal the same on the dense values, for every index width, null indices, null dictionary values, slices,
chunks and mixes of dictionary and dense columns."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from raresketch._core import fast_keys, hash64


@pytest.fixture(scope="module")
def cols():
    rng = np.random.default_rng(0)
    vals = [None, "", "a", "bb", "x" * 40, "é"] + [f"v{i}" for i in range(300)]
    return [pa.array([vals[k] for k in rng.integers(0, len(vals), 20_000)], pa.string()) for _ in range(5)]


@pytest.mark.parametrize("index", [pa.int8(), pa.int16(), pa.int32(), pa.int64()])
def test_dictionary_equals_dense(cols, index):
    small = [c.slice(0, 120) for c in cols] if index == pa.int8() else cols
    enc = [pc.dictionary_encode(c) for c in small]
    enc = [pa.DictionaryArray.from_arrays(e.indices.cast(index), e.dictionary) for e in enc]
    for k in (1, 2, 5):
        want = fast_keys(small[:k])
        assert (fast_keys(enc[:k]) == want).all()
        assert (fast_keys([e if j % 2 else c for j, (e, c) in enumerate(zip(enc[:k], small))]) == want).all()
    assert (hash64(enc[2]) == hash64(small[2])).all()


def test_null_values_slices_chunks(cols):
    dn = pa.DictionaryArray.from_arrays(pa.array([0, 1, 2, None, 1] * 4000, pa.int32()), pa.array(["p", None, "q"]))
    dense = pa.array(["p", None, "q", None, None] * 4000)
    assert (fast_keys(dn) == fast_keys(dense)).all() and (hash64(dn) == hash64(dense)).all()
    assert (fast_keys([cols[0], dn]) == fast_keys([cols[0], dense])).all()
    e = pc.dictionary_encode(cols[1])
    assert (fast_keys([e.slice(17, 5000), cols[0].slice(17, 5000)]) ==
            fast_keys([cols[1].slice(17, 5000), cols[0].slice(17, 5000)])).all()
    ch = pa.chunked_array([e.slice(0, 9000), e.slice(9000)])
    assert (fast_keys([ch, cols[0]]) == fast_keys([cols[1], cols[0]])).all()


def test_errors(cols):
    with pytest.raises(ValueError, match="equal length"):
        fast_keys([pc.dictionary_encode(cols[0]), cols[1].slice(0, 10)])
    bad = pa.DictionaryArray.from_arrays(pa.array([0, 5], pa.int32()), pa.array(["a", "b"]), safe=False)
    with pytest.raises(ValueError, match="out of range"):
        fast_keys([cols[0].slice(0, 2), bad])
