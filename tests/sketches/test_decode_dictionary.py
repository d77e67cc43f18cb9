"""``decode_dictionary``: a dictionary array of strings as a plain string array, equal to Arrow's cast."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import raresketch as rs
from raresketch._core import decode_dictionary

INDEX_TYPES = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint32()]


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.text(max_size=12)), min_size=1, max_size=8),
       picks=st.lists(st.one_of(st.none(), st.integers(0, 7)), max_size=60),
       index_type=st.sampled_from(INDEX_TYPES), large=st.booleans(), cut=st.integers(0, 5))
def test_equals_arrow_cast(values, picks, index_type, large, cut):
    idx = pa.array([None if p is None else p % len(values) for p in picks], index_type)
    dic = pa.array(values, pa.large_string() if large else pa.string())
    arr = pa.DictionaryArray.from_arrays(idx, dic)
    for a in (arr, arr.slice(min(cut, len(arr)))):
        got = decode_dictionary(a)
        got.validate(full=True)
        assert got.type == pa.string()
        assert got.equals(a.cast(pa.string()))


def test_chunked_and_other_inputs():
    ch = pa.chunked_array([pa.array(["a", "b", "a"]).dictionary_encode(), pa.array(["c"]).dictionary_encode()])
    assert decode_dictionary(ch).to_pylist() == ["a", "b", "a", "c"]
    assert decode_dictionary(pa.array(["x", None])).to_pylist() == ["x", None]          # not a dictionary: cast
    assert decode_dictionary(pa.array([1, 2]).dictionary_encode()).to_pylist() == ["1", "2"]
    bad = pa.DictionaryArray.from_arrays(pa.array([0, 5], pa.int32()), pa.array(["a"]), safe=False)  # corrupt
    with pytest.raises(ValueError, match="out of range"):
        decode_dictionary(bad)


def test_parquet_reader_reads_text_dictionary_encoded_with_the_same_events(tmp_path):
    from raresketch.simulate import Organisation

    t = pa.concat_tables(list(Organisation(agents=20, days=3, seed=4).batches(20_000)))
    t = t.set_column(t.column_names.index("destination.ip"), "destination.ip",
                     pa.array(["::FFFF:10.1.2.3" if i % 7 == 0 else v
                               for i, v in enumerate(t.column("destination.ip").to_pylist())]))
    path = tmp_path / "ev.parquet"
    pq.write_table(t, path)
    got = pa.concat_tables(rs.read_events(str(path), format="parquet"))
    want = pa.concat_tables(rs.read_events(t, format="arrow"))
    assert got.num_rows == t.num_rows and got.equals(want)
    assert "10.1.2.3" in got.column("destination.ip").to_pylist()
    assert all(pa.types.is_string(f.type) for f in got.schema if f.name == "host.id")
