"""raresketch.Engine and its peers (benches/reports/_peers.py: the exact reference, Apache DataSketches, datasketch,
pandas, polars and DuckDB group-by) on the same small simulated organisation, plus the test that keeps the peers
honest: each one's alerts agree with the exact reference's.

Run: ``pytest benches/bench_peers.py --benchmark-enable --benchmark-columns=min,median`` (events per run in
each benchmark's extra_info). Side-by-side rates on a bigger organisation: ``python benches/reports/compare_peers.py``.
"""
from __future__ import annotations

import functools

import _peers as peers
import pytest

import raresketch as rs
from raresketch.simulate import Organisation

# 20 agents, 9 days, activation after 4: about 10k events in 3 batches, ~200 alerts of both detectors.
CONFIG = rs.Config(activation_days=4)


@functools.cache
def batches():
    return tuple(Organisation(agents=20, days=9, seed=3, events_per_agent_day=80).batches(4_000))


def _run(factory):
    eng = factory(CONFIG, rs.default_catalog())
    alerts = []
    for b in batches():
        alerts += eng.process(b)
    return eng, alerts


def _key(a):
    if isinstance(a, dict):
        return (a["name"], a["host.id"], a["process.key"], a["destination"], a["timestamp"])
    return (a.name, a.host_id, a.process_key, a.destination, a.timestamp)


#: name -> (suppressed counts, alert keys) of the last run: the agreement tests check the benchmarked runs'
#: alerts (in quick mode each body runs once), and run the peer themselves when the benchmark did not run.
_RUNS: dict[str, tuple[dict, set]] = {}


def _outcome(name, eng, alerts) -> tuple[dict, set]:
    _RUNS[name] = {k: v for k, v in eng.suppressed.items() if v}, {_key(a) for a in alerts}
    return _RUNS[name]


def outcome(name) -> tuple[dict, set]:
    if name not in _RUNS:
        _outcome(name, *_run(_factory(name)))
    return _RUNS[name]


#: name -> (contender, library it needs: polars and duckdb are not in the ``test`` extra)
PEERS = {
    "engine": (rs.Engine, None),
    "reference": (peers.ReferenceEngine, None),
    "datasketches": (peers.DataSketchesPeer, "datasketches"),
    "datasketch": (peers.DatasketchPeer, "datasketch"),
    "pandas": (peers.PandasPeer, "pandas"),
    "polars": (peers.PolarsPeer, "polars"),
    "duckdb": (peers.DuckDbPeer, "duckdb"),
}


def _factory(name):
    cls, lib = PEERS[name]
    if lib is not None:
        pytest.importorskip(lib)
    return cls


@pytest.mark.parametrize("name", list(PEERS))
def test_peer_throughput(benchmark, name):
    factory = _factory(name)
    benchmark.extra_info["events"] = sum(b.num_rows for b in batches())
    eng, alerts = benchmark(_run, factory)
    assert alerts
    if name != "engine":
        _outcome(name, eng, alerts)


#: how close each peer must be to the exact reference (precision, recall); the group-by peers and the
#: DataSketches one are exact on this input; datasketch's HLL (p=12) may undercount a register collision.
AGREEMENT = {"datasketches": 0.99, "datasketch": 0.95, "pandas": 1.0, "polars": 1.0, "duckdb": 1.0}


@pytest.mark.parametrize("name", list(AGREEMENT))
def test_peer_agrees_with_reference(name):
    want_suppressed, want = outcome("reference")
    assert len(want) > 100 and len({k[0] for k in want}) >= 4  # both detectors, several variations
    suppressed, got = outcome(name)
    tp = len(got & want)
    precision, recall = tp / max(1, len(got)), tp / max(1, len(want))
    assert precision >= AGREEMENT[name] and recall >= AGREEMENT[name], (name, precision, recall)
    if AGREEMENT[name] == 1.0:
        assert got == want
        assert suppressed == want_suppressed
