"""One contract for every serialised structure (like river's ``check_*`` suite or DataSketches' serde tests):
CountMinSketch, HyperLogLog, BloomFilter, KeyedDistinct, AgentTable (``raresketch.sketches``), Baseline and the
Engine's state.

- ``to_bytes``/``from_bytes`` round trip: equal structure (same bytes again) and equal answers, also when empty;
- refusal with ``ValueError`` naming the problem: cut bytes, a flipped byte in every region of the container
  (magic, version, family, header length, header, arrays, CRC; layout in ``raresketch._format``), a blob of
  another family, random bytes, any single changed byte;
- ``merge`` of two structures built over disjoint halves of a stream equals the structure of the whole (answers;
  ``union`` and ``|=`` where they exist), and refuses itself and an incompatible configuration with a message
  naming the difference;
- pickling: the compiled structures pickle through ``to_bytes`` (``__reduce__`` is ``from_bytes(to_bytes())``);
  what Baseline and Engine do today is pinned below (Baseline: plain attribute pickling; Engine: refused).

Each structure's accuracy against exact answers stays in its own file (test_cms.py, test_hll.py, ...).
"""
from __future__ import annotations

import functools
import pickle
import struct
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given
from hypothesis import strategies as st

import raresketch as rs
from raresketch import sketches
from raresketch.simulate import Organisation
from support.helpers import FLIP_MESSAGE, container_regions

DAY = 20_000  # days since 1970-01-01

# ------------------------------------------------------------------------------------------- the cases


def _keys(part: int | None, n: int = 4000, seed: int = 7) -> np.ndarray:
    """Zipf keys; ``part`` 0 / 1 = the even / odd events of the stream (disjoint halves), None = all of it."""
    k = (np.random.default_rng(seed).zipf(1.3, n) % 1000).astype(np.uint64)
    return k if part is None else k[part::2]


def _pairs(part: int | None):
    """(key, member, day) events in day order for KeyedDistinct; ``part`` as in :func:`_keys`."""
    rng = np.random.default_rng(11)
    n = 6000
    keys = (rng.zipf(1.2, n) % 300).astype(np.uint64)
    members = rng.integers(0, 400, n).astype(np.uint64)
    days = np.sort(rng.integers(DAY, DAY + 40, n)).astype(np.uint16)
    sel = slice(None) if part is None else slice(part, None, 2)
    return keys[sel], members[sel], days[sel]


def _table(items) -> tuple:
    """An ``items()`` answer (parallel arrays, unordered) in key order, as lists."""
    order = np.argsort(items[0], kind="stable")
    return tuple(np.asarray(x)[order].tolist() for x in items)


def _cms_feed(c, part):
    k = _keys(part)
    c.update(k, counts=(k % 3).astype(np.uint32))    # weighted: 0, 1 or 2 per occurrence


def _kd_feed(kd, part):
    kd.update(*_pairs(part))


def _kd_answers(kd):
    keys, members, _ = _pairs(None)
    return (kd.count(np.arange(300, dtype=np.uint64)).tolist(), kd.last_seen(keys, members).tolist(), kd.today,
            _table(kd.items()))


def _agent_events(part):
    rng = np.random.default_rng(5)
    agents = rng.integers(0, 300, 5000).astype(np.uint64)
    days = np.sort(rng.integers(DAY, DAY + 40, 5000)).astype(np.uint16)
    sel = slice(None) if part is None else slice(part, None, 2)
    return agents[sel], days[sel]


def _agents_answers(t):
    return (_table(t.items()), t.active_agents(DAY + 41), t.first_day, t.today, t.dropped)


SMALL = rs.Config(capacity=4096, max_agents=1024, activation_days=5)


@functools.lru_cache(maxsize=None)
def _org_batches() -> tuple:
    """A small simulated organisation: (batches to learn, one later batch to probe the Engine with)."""
    table = pa.concat_tables(Organisation(agents=12, days=14, seed=2, events_per_agent_day=40).batches(2000))
    day = pc.floor_temporal(table["@timestamp"], unit="day")
    last = pc.max(day)
    learn = table.filter(pc.less(day, last))
    return tuple(learn.to_batches(max_chunksize=2000)), table.filter(pc.equal(day, last))


def _org_half(part):
    """Events of agents whose host.id sorts into half ``part`` (disjoint halves of the stream by agent)."""
    batches = _org_batches()[0]
    if part is None:
        return list(batches)
    hosts = sorted({h for b in batches for h in b.column("host.id").to_pylist() if h})
    mine = pa.array(hosts[part::2])
    return [b.filter(pc.is_in(b.column("host.id"), value_set=mine)) for b in batches]


def _baseline_feed(base, part):
    eng = rs.Engine(SMALL, baseline=base)
    for b in _org_half(part):
        eng.process(b)


def _baseline_answers(base, skip=()):
    out = {"agents": _table(base.agents.items()), "today": base.today, "first_day": base.first_day}
    out.update({k: _table(v.items()) for k, v in base.structures.items() if k not in skip})
    return out


def _baseline_merge_answers(base):
    # new_rare / new_rare_agent learn only events that were a first rare contact, which depends on the prior
    # prevalence of the half that saw the event: they are not a function of the union of the events.
    return _baseline_answers(base, skip=("new_rare", "new_rare_agent"))


def _engine_feed(eng, part):
    for b in _org_batches()[0]:
        eng.process(b)


def _engine_answers(eng):
    """Alerts on the probe batch (learns it: call last), with the counters."""
    alerts = eng.process(_org_batches()[1])
    return ([(a.name, a.host_id, a.process_key, a.destination, a.timestamp) for a in alerts],
            dict(eng.stats), dict(eng.suppressed), eng.baseline.to_bytes())


@dataclass
class Case:
    name: str
    family: str                              # the container's family name (raresketch._format.FAMILIES)
    load: Callable[[bytes], Any]             # from_bytes
    empty: Callable[[], Any]
    feed: Callable[[Any, int | None], None]  # part 0 / 1: disjoint halves of one stream; None: all of it
    answers: Callable[[Any], Any]
    pickling: str                            # "to_bytes" | "attributes" | "refused"
    incompatible: tuple = ()                 # (factory, message) of configurations merge refuses; () = no merge
    merge_answers: Callable[[Any], Any] | None = None


CASES = [
    Case("CountMinSketch", "CountMinSketch", sketches.CountMinSketch.from_bytes,
         lambda: sketches.CountMinSketch(256, 3, conservative=False, seed=5), _cms_feed,
         lambda c: (c.query(np.arange(1000, dtype=np.uint64)).tolist(), c.total), "to_bytes",
         ((lambda: sketches.CountMinSketch(512, 3, conservative=False, seed=5), "width=512"),
          (lambda: sketches.CountMinSketch(256, 3, conservative=False, seed=1), "seed=1"))),
    Case("HyperLogLog", "HyperLogLog", sketches.HyperLogLog.from_bytes, lambda: sketches.HyperLogLog(10, seed=2),
         lambda h, part: h.update(_keys(part)), lambda h: (h.count(), h.registers.tolist()), "to_bytes",
         ((lambda: sketches.HyperLogLog(11, seed=2), "p=11"),)),
    Case("BloomFilter", "BloomFilter", sketches.BloomFilter.from_bytes,
         lambda: sketches.BloomFilter(2000, 0.01, seed=1), lambda f, part: f.add(_keys(part)),
         lambda f: f.contains(np.arange(2000, dtype=np.uint64)).tolist(), "to_bytes",
         ((lambda: sketches.BloomFilter(4000, 0.01, seed=1), "num_blocks"),)),
    Case("KeyedDistinct", "KeyedDistinct", sketches.KeyedDistinct.from_bytes,
         lambda: sketches.KeyedDistinct(1 << 13, window_days=30, exact_limit=1024), _kd_feed, _kd_answers,
         "to_bytes", ((lambda: sketches.KeyedDistinct(64, window_days=7, exact_limit=1024), "window_days=7"),
                      (lambda: sketches.KeyedDistinct(1 << 13, window_days=30, exact_limit=64), "exact_limit=64"))),
    Case("AgentTable", "AgentTable", sketches.AgentTable.from_bytes, lambda: sketches.AgentTable(1024),
         lambda t, part: t.observe(*_agent_events(part)), _agents_answers, "to_bytes",
         ((lambda: sketches.AgentTable(1024, window_days=7), "window_days=7"),)),
    Case("Baseline", "Baseline", rs.Baseline.from_bytes, lambda: rs.Baseline(SMALL), _baseline_feed,
         _baseline_answers, "attributes", ((lambda: rs.Baseline(SMALL.replace(capacity=8192)), "capacity"),
                                           (lambda: rs.Baseline(SMALL.replace(rare_min_agents=3)), "rare_min_agents")),
         _baseline_merge_answers),
    Case("Engine", "EngineState", rs.Engine.from_bytes, lambda: rs.Engine(SMALL), _engine_feed, _engine_answers,
         "refused"),
]
MERGEABLE = [c for c in CASES if c.incompatible]
ids = [c.name for c in CASES]


def _built(case: Case):
    obj = case.empty()
    case.feed(obj, None)
    return obj


@functools.lru_cache(maxsize=None)
def _blob(name: str) -> bytes:
    return _built(next(c for c in CASES if c.name == name)).to_bytes()



# ------------------------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("case", CASES, ids=ids)
@pytest.mark.parametrize("filled", [False, True], ids=["empty", "filled"])
def test_round_trip_gives_the_same_bytes_and_answers(case, filled):
    obj = _built(case) if filled else case.empty()
    blob = obj.to_bytes()
    back = case.load(blob)
    assert type(back) is type(obj)
    assert back.to_bytes() == blob
    if "__eq__" in type(obj).__dict__:
        assert back == obj
    assert case.answers(back) == case.answers(obj)


# ------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_cut_bytes_are_refused(case):
    blob = _blob(case.name)
    hlen = struct.unpack_from("<I", blob, 8)[0]
    for cut in (0, 3, 11, 12 + hlen // 2, len(blob) // 2, len(blob) - 4, len(blob) - 1):
        with pytest.raises(ValueError, match=f"raresketch {case.family}: "):
            case.load(blob[:cut])


@pytest.mark.parametrize("case", CASES, ids=ids)
@pytest.mark.parametrize("region", list(FLIP_MESSAGE))
def test_a_flipped_byte_in_every_region_is_refused_naming_the_problem(case, region):
    blob = _blob(case.name)
    pos = container_regions(blob)[region]
    with pytest.raises(ValueError, match=FLIP_MESSAGE[region]):
        case.load(blob[:pos] + bytes([blob[pos] ^ 0xFF]) + blob[pos + 1:])


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_a_blob_of_another_family_is_refused(case):
    other = CASES[(CASES.index(case) + 1) % len(CASES)]
    with pytest.raises(ValueError, match=f"holds a {other.family}, not a {case.family}"):
        case.load(other.empty().to_bytes())


@pytest.mark.parametrize("case", CASES, ids=ids)
@given(data=st.binary(max_size=300))
def test_random_bytes_are_refused(case, data):
    with pytest.raises(ValueError):
        case.load(data)


@pytest.mark.parametrize("case", CASES, ids=ids)
@given(pos=st.integers(0, 2**31), value=st.integers(0, 255))
def test_any_single_changed_byte_is_refused(case, pos, value):
    blob = _blob(case.name)
    pos %= len(blob)
    if blob[pos] != value:
        with pytest.raises(ValueError):
            case.load(blob[:pos] + bytes([value]) + blob[pos + 1:])


# ------------------------------------------------------------------------------------------- merge


@pytest.mark.parametrize("case", MERGEABLE, ids=[c.name for c in MERGEABLE])
def test_merge_of_disjoint_halves_equals_the_whole(case):
    answers = case.merge_answers or case.answers
    a, b, whole = case.empty(), case.empty(), case.empty()
    case.feed(a, 0)
    case.feed(b, 1)
    case.feed(whole, None)
    assert answers(a) != answers(whole)          # the halves alone differ: the merge has something to do
    a.merge(b)                                    # in place
    assert answers(a) == answers(whole)


@pytest.mark.parametrize("case", [c for c in MERGEABLE if hasattr(getattr(sketches, c.name, None), "union")],
                         ids=lambda c: c.name)
def test_union_and_in_place_or_are_merge(case):
    a, b, whole = case.empty(), case.empty(), case.empty()
    case.feed(a, 0)
    case.feed(b, 1)
    case.feed(whole, None)
    u = type(a).union(a, b)
    assert u == whole and u is not a and case.answers(a) != case.answers(whole)  # union leaves its inputs
    a |= b
    assert a == whole


@pytest.mark.parametrize("case", MERGEABLE, ids=[c.name for c in MERGEABLE])
def test_merge_refuses_itself_and_an_incompatible_configuration(case):
    a = case.empty()
    before = a.to_bytes()
    with pytest.raises(ValueError, match="itself"):
        a.merge(a)
    for other, message in case.incompatible:
        with pytest.raises(ValueError, match=message):
            a.merge(other())
    assert a.to_bytes() == before


# ------------------------------------------------------------------------------------------- pickling


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_pickling(case):
    obj = _built(case)
    if case.pickling == "to_bytes":
        fn, args = obj.__reduce__()
        assert fn == type(obj).from_bytes and args == (obj.to_bytes(),)
        back = pickle.loads(pickle.dumps(obj))
        assert back == obj and back.to_bytes() == obj.to_bytes()
    elif case.pickling == "attributes":
        # Baseline has no __reduce__: pickle copies its attributes (each structure through its own to_bytes).
        assert "__reduce__" not in type(obj).__dict__
        assert pickle.loads(pickle.dumps(obj)).to_bytes() == obj.to_bytes()
    else:
        # Engine holds the catalogue's per-instance caches, which pickle refuses: save with to_bytes / save.
        with pytest.raises((pickle.PicklingError, TypeError)):
            pickle.dumps(obj)
