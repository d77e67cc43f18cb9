"""`raresketch run` puts its inputs into one time order within a bounded window of events, streaming
in-order input without holding it (cli._batches)."""
from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raresketch import ReadStats
from raresketch.cli import _batches
from raresketch.simulate import Organisation


@pytest.fixture(scope="module")
def halves(tmp_path_factory):
    t = pa.concat_tables(list(itertools.islice(Organisation(agents=20, days=4, seed=1).batches(10_000), 4)))
    d = tmp_path_factory.mktemp("order")
    early, late = d / "early.parquet", d / "late.parquet"
    pq.write_table(t.slice(0, 5_000), early)
    pq.write_table(t.slice(5_000), late)
    return str(early), str(late), t.num_rows


def _ts(batches):
    return np.concatenate([b["@timestamp"].cast(pa.int64()).to_numpy() for b in batches])


def test_inputs_out_of_order_are_merged_within_the_window(halves):
    early, late, n = halves
    out = list(_batches((late, early), "parquet", ReadStats(), window=n))
    ts = _ts(out)
    assert ts.size == n and (np.diff(ts) >= 0).all()
    assert max(b.num_rows for b in out) <= 100_000


def test_beyond_the_window_inputs_keep_the_order_given(halves):
    early, late, n = halves
    ts = _ts(_batches((late, early), "parquet", ReadStats(), window=0))   # 0: as given, nothing held
    assert ts.size == n
    assert (np.diff(ts) < 0).sum() == 1          # one step back: where the early file starts (late events)


def test_in_order_input_streams_without_holding_it(halves):
    early, late, n = halves
    gen = _batches((early, late), "parquet", ReadStats(), window=1)
    first = next(gen)                              # yielded while the inputs are still being read
    assert first.num_rows == 5_000
    rest = list(gen)
    ts = _ts([first, *rest])
    assert ts.size == n and (np.diff(ts) >= 0).all()
