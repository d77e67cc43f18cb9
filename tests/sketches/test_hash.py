"""hash64 / hash_pair / mix64 against mmh3, golden values and every accepted input form."""
from __future__ import annotations

import struct

import mmh3
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import raresketch as rs

# Unicode without lone surrogates (not encodable as UTF-8, and mmh3 refuses them).
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)


def ref(v, seed=0):
    return mmh3.hash64(v, seed, signed=False)[0]


def test_golden_values_are_pinned():
    # A baseline saved today must score identically tomorrow: these values never change.
    assert rs.sketches.hash64("foo") == 16316970633193145697
    assert rs.sketches.hash64("") == ref("")
    assert rs.sketches.hash64("powershell.exe", 42) == ref("powershell.exe", 42)
    assert rs.sketches.NULL_KEY == 0


@given(st.lists(texts, max_size=50), st.integers(0, 2**32 - 1))
def test_matches_mmh3_on_random_unicode(values, seed):
    got = rs.sketches.hash64(values, seed)
    assert got.dtype == np.uint64
    assert got.tolist() == [ref(v, seed) for v in values]


@pytest.mark.parametrize("n", [0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 1000, 100_000])
def test_every_tail_length_and_long_strings(n):
    s = "".join(chr(97 + i % 26) for i in range(n))
    assert rs.sketches.hash64(s) == ref(s)
    assert rs.sketches.hash64(s.encode()) == ref(s.encode())


def test_bytes_and_mixed_sequences_and_none():
    vals = [b"\x00\xff", "é", None, bytearray(b"ab")]
    got = rs.sketches.hash64(vals)
    assert got.tolist() == [ref(b"\x00\xff"), ref("é"), 0, ref(b"ab")]
    assert rs.sketches.hash64(tuple(vals)).tolist() == got.tolist()


@pytest.mark.parametrize("typ", [pa.string(), pa.large_string(), pa.binary(), pa.large_binary()])
def test_arrow_arrays_with_nulls_and_offsets(typ):
    py = ["alpha", None, "", "grüße", "x" * 300, None, "z"] * 5
    if typ in (pa.binary(), pa.large_binary()):
        py = [None if v is None else v.encode() for v in py]
    arr = pa.array(py, type=typ)
    for sl in (arr, arr.slice(3), arr.slice(1, 9), arr.slice(len(arr))):
        expect = [0 if v is None else ref(v) for v in sl.to_pylist()]
        assert rs.sketches.hash64(sl).tolist() == expect


def test_arrow_without_nulls_has_no_validity_and_empty_data_buffer():
    assert rs.sketches.hash64(pa.array(["", "", ""])).tolist() == [ref("")] * 3
    assert rs.sketches.hash64(pa.array([], type=pa.string())).shape == (0,)
    assert rs.sketches.hash64(pa.nulls(3)).tolist() == [0, 0, 0]


def test_arrow_chunked_dictionary_and_view():
    chunked = pa.chunked_array([["a", "b"], [None, "c"], []])
    assert rs.sketches.hash64(chunked).tolist() == [ref("a"), ref("b"), 0, ref("c")]
    dic = pa.array(["x", "y", None, "x", "y"]).dictionary_encode()
    assert rs.sketches.hash64(dic).tolist() == [ref("x"), ref("y"), 0, ref("x"), ref("y")]
    assert rs.sketches.hash64(dic.slice(2)).tolist() == [0, ref("x"), ref("y")]
    if hasattr(pa, "string_view"):
        view = pa.array(["short", "a much longer string value", None], type=pa.string_view())
        assert rs.sketches.hash64(view).tolist() == [ref("short"), ref("a much longer string value"), 0]


def test_numpy_str_and_object_arrays():
    u = np.array(["a", "bé", ""])
    assert rs.sketches.hash64(u).tolist() == [ref("a"), ref("bé"), ref("")]
    o = np.array(["a", None, b"q"], dtype=object)
    assert rs.sketches.hash64(o).tolist() == [ref("a"), 0, ref(b"q")]


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(TypeError, match="str, bytes or None"):
        rs.sketches.hash64(["a", 3])
    with pytest.raises(TypeError, match="integer keys are already keys"):
        rs.sketches.hash64(np.arange(3))
    with pytest.raises(ValueError, match="one-dimensional"):
        rs.sketches.hash64(np.array([["a"]]))
    with pytest.raises(TypeError, match="Arrow string or binary"):
        rs.sketches.hash64(pa.array([1, 2]))
    with pytest.raises(TypeError):
        rs.sketches.hash64(3.5)


def test_surrogates_get_a_defined_key():
    s = "a\udc80b"
    assert rs.sketches.hash64([s])[0] == ref(s.encode("utf-8", "surrogatepass"))


@given(st.lists(st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)), max_size=30),
       st.integers(0, 2**32 - 1))
def test_hash_pair_matches_mmh3_of_packed_pair(pairs, seed):
    a = np.array([p[0] for p in pairs], dtype=np.uint64)
    b = np.array([p[1] for p in pairs], dtype=np.uint64)
    assert rs.sketches.hash_pair(a, b, seed).tolist() == [ref(struct.pack("<QQ", x, y), seed) for x, y in pairs]


def test_hash_pair_strings_broadcast_and_order():
    procs = pa.array(["powershell.exe", "chrome.exe"])
    k = rs.sketches.hash_pair(procs, "evil.s3.amazonaws.com")
    assert k.tolist() == [ref(struct.pack("<QQ", rs.sketches.hash64(p), rs.sketches.hash64("evil.s3.amazonaws.com")))
                          for p in ["powershell.exe", "chrome.exe"]]
    assert rs.sketches.hash_pair(1, 2)[0] != rs.sketches.hash_pair(2, 1)[0]
    with pytest.raises(ValueError, match="equal lengths"):
        rs.sketches.hash_pair(np.zeros(2, np.uint64), np.zeros(3, np.uint64))


def fmix64(k: int) -> int:
    m = (1 << 64) - 1
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & m
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & m
    return k ^ (k >> 33)


def test_mix64_is_murmur_finaliser():
    keys = [0, 1, 2**63, 2**64 - 1, 123456789]
    assert rs.sketches.mix64(np.array(keys, dtype=np.uint64), 7).tolist() == [fmix64(k ^ 7) for k in keys]


def test_fast_keys_equal_rows_equal_keys_in_every_arrow_layout():
    """fast_keys (in-memory index keys, XXH3): equal rows get equal keys whatever the layout, different rows
    differ, nulls are a value of their own, and column order matters."""
    import random

    from raresketch._core import fast_keys

    r = random.Random(3)
    vals = ["", "a", "b", "ab", "powershell.exe", "é", "x" * 300, None]
    rows = [(r.choice(vals), r.choice(vals)) for _ in range(2000)]
    a, b = pa.array([x for x, _ in rows]), pa.array([y for _, y in rows])
    k = fast_keys([a, b])
    by_row: dict = {}
    for row, key in zip(rows, k.tolist()):
        assert by_row.setdefault(row, key) == key
    assert len(set(by_row.values())) == len(by_row)                    # distinct rows, distinct keys
    for aa, bb in ((a.dictionary_encode(), b), (a.cast(pa.large_string()), b.cast(pa.large_binary())),
                   (pa.chunked_array([a[:700], a[700:]]), b)):
        assert fast_keys([aa, bb]).tolist() == k.tolist()
    assert fast_keys([b, a]).tolist() != k.tolist()
    single = fast_keys(a)
    null_keys = {single[i] for i, (x, _) in enumerate(rows) if x is None}
    assert len(null_keys) == 1 and null_keys.isdisjoint(single[[x is not None for x, _ in rows]])
    assert set(fast_keys(pa.nulls(3)).tolist()) == null_keys
    with pytest.raises(ValueError):
        fast_keys([a, b[:10]])
