"""The sparse forms that carry partial baselines between Spark tasks (KeyedDistinctSparse, AgentTableSparse,
Baseline.to_sparse_bytes), held to the contract of every serialised structure (tests/sketches/test_contract.py):
round trip, refusal of cut, flipped, foreign, random and inconsistent bytes with ValueError, and merge equal to
the dense merge byte for byte."""
from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import raresketch as rs
from raresketch import _format
from raresketch._core import KEY_DTYPE, PAIR_DTYPE, AgentTable, AgentTableSparse, KeyedDistinct, KeyedDistinctSparse
from raresketch.simulate import Organisation
from support.helpers import FLIP_MESSAGE, container_regions

DAY = 20_000
SMALL = rs.Config(capacity=4096, max_agents=1024, activation_days=5)


def _kd(seed: int, n: int = 6000, window: int = 30, limit: int = 64) -> KeyedDistinct:
    r = np.random.default_rng(seed)
    kd = KeyedDistinct(1 << 10, window_days=window, exact_limit=limit)
    kd.observe(r.zipf(1.3, n).astype(np.uint64) % 700, r.integers(0, 300, n).astype(np.uint64),
               np.sort(r.integers(DAY, DAY + 45, n)))
    return kd


def _agents(seed: int) -> AgentTable:
    r = np.random.default_rng(seed)
    t = AgentTable(1024, window_days=30)
    t.observe(r.integers(1, 1 << 62, 300).astype(np.uint64), np.sort(r.integers(DAY, DAY + 40, 300)))
    return t


def _baseline(seed: int) -> rs.Baseline:
    org = Organisation(agents=12, days=8, seed=seed, events_per_agent_day=40)
    eng = rs.Engine(SMALL)
    eng.process(pa.concat_tables(list(org.batches())))
    return eng.baseline


def _answers(kd: KeyedDistinct) -> tuple:
    k = np.arange(700, dtype=np.uint64)
    return kd.count(k).tolist(), kd.last_seen(np.repeat(k, 3), np.tile(np.arange(3, dtype=np.uint64), 700)).tolist(), \
        kd.today, kd.stats


CASES = {
    "KeyedDistinctSparse": (lambda: KeyedDistinctSparse.of(_kd(1)).to_bytes(), KeyedDistinctSparse.from_bytes),
    "AgentTableSparse": (lambda: AgentTableSparse.of(_agents(1)).to_bytes(), AgentTableSparse.from_bytes),
    "BaselineSparse": (lambda: _baseline(1).to_sparse_bytes(), rs.Baseline.from_sparse_bytes),
}
_BLOBS: dict[str, bytes] = {}


def _blob(name: str) -> bytes:
    if name not in _BLOBS:
        _BLOBS[name] = CASES[name][0]()
    return _BLOBS[name]


# ---- round trip and equivalence with the dense structures ---------------------------------------------
def test_keyed_sparse_round_trip_answers_as_the_dense_structure():
    kd = _kd(1)
    assert kd.stats["evictions"] > 0 and kd.stats["unsampled"] > 0     # full and sampled: nothing trivial
    sp = KeyedDistinctSparse.from_bytes(KeyedDistinctSparse.of(kd).to_bytes())
    assert sp.num_pairs == kd.num_pairs and sp.num_keys == kd.num_keys
    dense = sp.to_dense()
    assert _answers(dense) == _answers(kd)
    assert KeyedDistinctSparse.of(dense).to_bytes() == KeyedDistinctSparse.of(kd).to_bytes()
    # the sparse bytes are much smaller than the dense ones for a lightly filled table
    big = KeyedDistinct(1 << 16, window_days=30)
    big.observe(np.arange(50, dtype=np.uint64), np.arange(50, dtype=np.uint64), DAY)
    assert len(KeyedDistinctSparse.of(big).to_bytes()) < len(big.to_bytes()) / 100


def test_empty_structures_round_trip():
    kd = KeyedDistinct(64)
    assert _answers(KeyedDistinctSparse.from_bytes(KeyedDistinctSparse.of(kd).to_bytes()).to_dense()) == _answers(kd)
    t = AgentTable(64)
    assert AgentTableSparse.from_bytes(AgentTableSparse.of(t).to_bytes()).to_dense() == t
    b = rs.Baseline(SMALL)
    assert rs.Baseline.from_sparse_bytes(b.to_sparse_bytes()).to_bytes() == b.to_bytes()


def test_agent_table_sparse_round_trip_is_exact():
    t = _agents(2)
    back = AgentTableSparse.from_bytes(AgentTableSparse.of(t).to_bytes()).to_dense()
    assert back == t and back.active_agents(DAY + 41) == t.active_agents(DAY + 41)


def test_sparse_merge_equals_dense_merge_byte_for_byte():
    a, b = _kd(1), _kd(2)
    x, y = KeyedDistinct.from_bytes(b.to_bytes()), KeyedDistinct.from_bytes(b.to_bytes())
    x.merge(a)
    KeyedDistinctSparse.from_bytes(KeyedDistinctSparse.of(a).to_bytes()).merge_into(y)
    assert x.to_bytes() == y.to_bytes()
    with pytest.raises(ValueError, match="window_days=7"):
        KeyedDistinctSparse.of(_kd(3, window=7)).merge_into(y)


def test_baseline_sparse_round_trip_and_merge():
    a, b = _baseline(1), _baseline(2)
    back = rs.Baseline.from_sparse_bytes(a.to_sparse_bytes())
    assert back.config == a.config and back.location_since == a.location_since
    assert back.to_sparse_bytes() == a.to_sparse_bytes()
    assert back.info() == a.info()
    dense = rs.Baseline.from_bytes(b.to_bytes()).merge(rs.Baseline.from_bytes(a.to_bytes()))
    sparse = rs.Baseline.from_bytes(b.to_bytes()).merge_sparse(a.to_sparse_bytes())
    assert sparse.to_bytes() == dense.to_bytes()
    with pytest.raises(ValueError, match="capacity"):
        rs.Baseline(SMALL.replace(capacity=8192)).merge_sparse(a.to_sparse_bytes())


def test_a_corrupt_blob_leaves_the_target_unchanged():
    target = _baseline(2)
    before = target.to_bytes()
    bad = bytearray(_blob("BaselineSparse"))
    bad[len(bad) // 2] ^= 0x40
    with pytest.raises(ValueError):
        target.merge_sparse(bytes(bad))
    assert target.to_bytes() == before


# ---- refusals (the contract suite's) ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_cut_bytes_are_refused(name):
    blob, load = _blob(name), CASES[name][1]
    hlen = struct.unpack_from("<I", blob, 8)[0]
    for cut in (0, 3, 11, 12 + hlen // 2, len(blob) // 2, len(blob) - 4, len(blob) - 1):
        with pytest.raises(ValueError, match=f"raresketch {name}: "):
            load(blob[:cut])


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("region", list(FLIP_MESSAGE))
def test_a_flipped_byte_in_every_region_is_refused(name, region):
    blob, load = _blob(name), CASES[name][1]
    pos = container_regions(blob)[region]
    with pytest.raises(ValueError, match=FLIP_MESSAGE[region]):
        load(blob[:pos] + bytes([blob[pos] ^ 0xFF]) + blob[pos + 1:])


@pytest.mark.parametrize("name", list(CASES))
def test_a_dense_blob_is_refused_by_name(name):
    dense = {"KeyedDistinctSparse": _kd(1), "AgentTableSparse": _agents(1), "BaselineSparse": _baseline(1)}[name]
    with pytest.raises(ValueError, match=f"not a {name}"):
        CASES[name][1](dense.to_bytes())


@pytest.mark.parametrize("name", list(CASES))
@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=300))
def test_random_bytes_are_refused(name, data):
    with pytest.raises(ValueError):
        CASES[name][1](data)


@pytest.mark.parametrize("name", ["KeyedDistinctSparse", "AgentTableSparse"])
@settings(max_examples=60, deadline=None)
@given(pos=st.integers(0, 2**31), value=st.integers(0, 255))
def test_any_single_changed_byte_is_refused(name, pos, value):
    blob = _blob(name)
    pos %= len(blob)
    if blob[pos] != value:
        with pytest.raises(ValueError):
            CASES[name][1](blob[:pos] + bytes([value]) + blob[pos + 1:])


def _repacked(blob: bytes, family: str, edit) -> bytes:
    """A blob whose contents were changed and re-checksummed: what validation beyond the CRC must catch."""
    params, arrays = _format.unpack(blob, family)
    edit(params, arrays)
    return _format.pack(family, params, arrays)


def _pairs(arrays):
    return arrays[1].reshape(-1).view(PAIR_DTYPE)


def _set_pair(field, value):
    def edit(params, arrays):
        p = _pairs(arrays)
        p[field][0] = value
    return edit


def _swap_positions(params, arrays):
    arrays[0][[0, 1]] = arrays[0][[1, 0]]


def _drop_key(params, arrays):
    arrays[2], arrays[3] = arrays[2][1:], arrays[3][1:]


def _bad_count(params, arrays):
    k = arrays[3].reshape(-1).view(KEY_DTYPE)
    k["wsum"][0] += 1


@pytest.mark.parametrize("edit, message", [
    (_set_pair("day", DAY - 100), "outside the window"),
    (_set_pair("level", 40), "level out of range"),
    (_set_pair("ki", 1 << 31), "empty key slot"),
    (_swap_positions, "not increasing"),
    (_drop_key, "empty key slot"),
    (_bad_count, "sums of their pairs"),
    (lambda p, a: p.update(capacity=12), "out of range"),
    (lambda p, a: p.pop("today"), "bad parameters"),
])
def test_inconsistent_keyed_contents_are_refused(edit, message):
    blob = _repacked(_blob("KeyedDistinctSparse"), "KeyedDistinctSparse", edit)
    with pytest.raises(ValueError, match=message):
        KeyedDistinctSparse.from_bytes(blob)


@pytest.mark.parametrize("edit, message", [
    (lambda p, a: a.__setitem__(0, a[0][::-1].copy()), "not increasing"),
    (lambda p, a: a[0].__setitem__(0, (a[0][0] + 1) % 1024 if a[0][1] != a[0][0] + 1 else a[0][0] - 1),
     "where their keys hash|not increasing"),
    (lambda p, a: p.update(today=1), "days out of range|out of order"),
])
def test_inconsistent_agent_contents_are_refused(edit, message):
    blob = _repacked(_blob("AgentTableSparse"), "AgentTableSparse", edit)
    with pytest.raises(ValueError, match=message):
        AgentTableSparse.from_bytes(blob)


def test_baseline_sparse_refuses_a_structure_that_does_not_match_its_config():
    a = _baseline(1)
    params, arrays = _format.unpack(a.to_sparse_bytes(), "BaselineSparse")
    params["config"]["training_days"] = 7
    with pytest.raises(ValueError, match="does not match the config"):
        rs.Baseline.from_sparse_bytes(_format.pack("BaselineSparse", params, arrays))
    params["structures"] = params["structures"][:-1]
    with pytest.raises(ValueError, match="unexpected structures"):
        rs.Baseline.from_sparse_bytes(_format.pack("BaselineSparse", params, arrays))
