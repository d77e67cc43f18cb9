"""Reader options for the Engine's dictionary path (Parquet, Arrow/Feather): ``columns`` reads only those
columns (the others null), ``dictionary`` keeps text dictionary-encoded with the same values."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from raresketch._readers import ReadStats, read_events
from raresketch.detect._prepare import INPUT_COLUMNS, UNREAD_COLUMNS
from raresketch.events._schema import DICT_TEXT, is_conformed
from raresketch.simulate import Organisation


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    b = next(iter(Organisation(agents=20, days=5, seed=4).batches(20_000))).replace_schema_metadata(None)
    d = tmp_path_factory.mktemp("cols")
    pq.write_table(b, d / "e.parquet", row_group_size=7_000)
    feather.write_feather(b, str(d / "e.arrow"))
    enc = pa.Table.from_arrays([c.dictionary_encode() if pa.types.is_string(c.type) else c
                                for c in b.combine_chunks().columns], names=b.column_names)
    feather.write_feather(enc, str(d / "dict.arrow"))
    return {"parquet": str(d / "e.parquet"), "arrow": str(d / "e.arrow"), "arrow_dict": str(d / "dict.arrow")}


@pytest.mark.parametrize("kind", ["parquet", "arrow", "arrow_dict"])
def test_columns_and_dictionary_give_the_same_values(files, kind):
    fmt = "parquet" if kind == "parquet" else "arrow"
    s0, s1 = ReadStats(), ReadStats()
    dense = pa.concat_tables(read_events(files[kind], format=fmt, batch_size=5_000, stats=s0))
    parts = list(read_events(files[kind], format=fmt, batch_size=5_000, stats=s1, columns=INPUT_COLUMNS,
                             dictionary=True))
    assert all(is_conformed(t, dictionary=True) for t in parts)
    # Parquet stores text dictionary-encoded, and so does the second Arrow file; a dense Arrow file stays dense
    assert any(f.type == DICT_TEXT for f in parts[0].schema) == (kind != "arrow")
    assert (s0.read, s0.emitted) == (s1.read, s1.emitted)
    got = pa.concat_tables([t.cast(dense.schema) for t in parts])
    for c in dense.column_names:
        if c in UNREAD_COLUMNS:
            assert got.column(c).null_count == got.num_rows, c
        else:
            assert got.column(c).to_pylist() == dense.column(c).to_pylist(), c


def test_unknown_option_still_refused(files):
    with pytest.raises(TypeError, match="unknown reader option"):
        list(read_events(files["parquet"], format="parquet", colums=["host.id"]))
