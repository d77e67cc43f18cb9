"""State files: corrupted, truncated, wrong-version, foreign and hostile files are refused with a one-line error
naming the problem (``Engine.load``, ``raresketch inspect``, ``raresketch run --state``); the file on disk is left
as it was; loading never executes code from the file."""
from __future__ import annotations

import builtins
import gzip
import hashlib
import io
import json
import os
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import raresketch as rs
from raresketch import _format
from raresketch.cli import main
from raresketch.simulate import Organisation

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def reseal(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


class Hostile:
    """Unpickling this creates a marker file: the proof that a loader executed code from the file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


@pytest.fixture(scope="module")
def good_state(tmp_path_factory) -> bytes:
    """A real, small engine state (a simulated org's events learned)."""
    eng = rs.Engine(rs.Config(capacity=1 << 12, max_agents=64, activation_days=2))
    org = Organisation(agents=8, days=4, seed=3, events_per_agent_day=40, attacks=False)
    for b in org.batches(10_000):
        eng.process(b)
    return eng.to_bytes()


def _repack(blob: bytes, family: str, edit) -> bytes:
    params, arrays = _format.unpack(blob, family)
    params, arrays = edit(params, arrays)
    return _format.pack(family, params, arrays)


def _bad_files(tmp: Path, good: bytes) -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, words the one-line error must contain)."""
    body = good[:-4]
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x40
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("engine.state", good)
    cms = rs.sketches.CountMinSketch(64, 2).to_bytes()
    bad_cfg = _repack(good, "EngineState", lambda p, a: ({**p, "config": {**p["config"], "bogus": 1}}, a))
    return {
        "empty": (b"", "shorter than the smallest valid blob"),
        "truncated_half": (good[: len(good) // 2], "checksum mismatch"),
        "truncated_tail": (good[:-1], "checksum mismatch"),
        "one_bit_flipped": (bytes(flipped), "checksum mismatch"),
        "wrong_version": (reseal(body[:4] + struct.pack("<H", 2) + body[6:]), "format version 2"),
        "wrong_family": (cms, "holds a CountMinSketch, not a EngineState"),
        "unknown_family": (reseal(body[:6] + struct.pack("<H", 999) + body[8:]), "unknown family 999"),
        "zip": (zbuf.getvalue(), "bad magic"),
        "gzip_of_state": (gzip.compress(good[:4096]), "bad magic"),
        "pickle": (pickle.dumps(Hostile(str(tmp / "PWNED"))), "bad magic"),
        "pickle_with_our_magic": (b"RSKT" + pickle.dumps(Hostile(str(tmp / "PWNED"))), "format version"),
        "json": (json.dumps({"config": {}, "stats": {}}).encode(), "bad magic"),
        "text": (b"hello world, this is not a baseline\n" * 10, "bad magic"),
        "npy": (b"\x93NUMPY" + b"\0" * 200, "bad magic"),
        "resealed_unknown_config_key": (bad_cfg, "unknown key(s) bogus"),
    }


def _cases(tmp_path, good_state):
    return sorted(_bad_files(tmp_path, good_state).items())


def test_good_state_round_trips(tmp_path, good_state):
    p = tmp_path / "ok.state"
    p.write_bytes(good_state)
    eng = rs.Engine.load(p)
    assert eng.to_bytes() == good_state


def test_engine_load_refuses_each_bad_file_naming_the_problem(tmp_path, good_state):
    for name, (data, words) in _cases(tmp_path, good_state):
        p = tmp_path / f"{name}.state"
        p.write_bytes(data)
        before = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        with pytest.raises(ValueError) as exc:
            rs.Engine.load(p)
        msg = str(exc.value)
        assert words in msg, (name, msg)
        assert "\n" not in msg, name
        assert (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) == before, name
    assert not (tmp_path / "PWNED").exists()


def test_cli_inspect_and_run_refuse_bad_state_with_one_line(tmp_path, good_state):
    events = tmp_path / "ev.jsonl"
    Organisation(agents=3, days=2, seed=1, events_per_agent_day=20, attacks=False).write_ecs_jsonl(events)
    runner = CliRunner()
    for name, (data, words) in _cases(tmp_path, good_state):
        p = tmp_path / f"{name}.state"
        p.write_bytes(data)
        before = (hashlib.sha256(data).hexdigest(), p.stat().st_mtime_ns)
        for args in (["inspect", str(p)], ["run", str(events), "--state", str(p), "--out", str(tmp_path / "a")]):
            res = runner.invoke(main, args)
            assert res.exit_code == 1, (name, args[0], res.output)
            lines = [ln for ln in res.output.splitlines() if ln.strip()]
            assert len(lines) == 1 and lines[0].startswith(f"raresketch: error: cannot load state {p}"), \
                (name, res.output)
            assert words in lines[0], (name, lines[0])
            assert res.exception is None or isinstance(res.exception, SystemExit), (name, res.exception)
        assert (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) == before, name
    assert not (tmp_path / "PWNED").exists()


def test_load_never_unpickles(tmp_path, monkeypatch):
    """Neither the state loader nor anything it calls reaches pickle, whatever the file holds."""
    called = []
    for name in ("loads", "load", "Unpickler"):
        monkeypatch.setattr(pickle, name, lambda *a, **k: called.append(1))
    marker = tmp_path / "PWNED"
    for data in (pickle.dumps(Hostile(str(marker))), np.array([Hostile(str(marker))], dtype=object).tobytes()):
        p = tmp_path / "h.state"
        p.write_bytes(data)
        with pytest.raises(ValueError):
            rs.Engine.load(p)
        with pytest.raises(ValueError):
            rs.Baseline.load(p)
    buf = io.BytesIO()
    np.save(buf, np.array([Hostile(str(marker))], dtype=object), allow_pickle=True)
    (tmp_path / "h.state").write_bytes(buf.getvalue())
    with pytest.raises(ValueError):
        rs.Engine.load(tmp_path / "h.state")
    assert not called and not marker.exists()


def test_not_a_regular_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not a regular file"):
        rs.Engine.load("/dev/zero")                  # was: read without end (getsize is 0 for a device)
    with pytest.raises((ValueError, OSError)):
        rs.Engine.load(tmp_path)                      # a directory
    res = CliRunner().invoke(main, ["run", os.devnull, "--state", str(tmp_path / "missing" / "x.state")])
    assert res.exit_code == 1 and "does not exist" in res.output   # unwritable path: one line, before reading


def test_oversized_state_refused_before_reading(tmp_path, monkeypatch):
    from raresketch import _state

    p = tmp_path / "big.state"
    p.write_bytes(b"RSKT" + b"\0" * 100)
    monkeypatch.setattr(_state, "MAX_STATE_BYTES", 50)
    with pytest.raises(ValueError, match="larger than any raresketch state"):
        rs.Engine.load(p)


@pytest.mark.parametrize("form", ["Baseline", "BaselineSparse"])
def test_header_claiming_huge_capacity_is_refused_without_allocating(good_state, form):
    """Regression (found here, fixed in ext/_agents.pxi): a resealed state whose AgentTable header claimed
    capacity 2**32 made from_bytes allocate 128 GiB (MemoryError, a CLI traceback) before checking the arrays.
    A state holds its baseline dense or sparse (only the occupied entries): both forms are checked."""
    inner = "AgentTable" if form == "Baseline" else "AgentTableSparse"

    def edit_engine(p, a):
        def edit_base(bp, ba):
            ba = list(ba)
            ba[0] = np.frombuffer(_repack(ba[0].tobytes(), inner,
                                          lambda q, x: ({**q, "capacity": 1 << 32}, x)), np.uint8)
            return bp, ba
        a = list(a)
        base = rs.Engine.from_bytes(good_state).baseline
        blob = base.to_bytes() if form == "Baseline" else base.to_sparse_bytes()
        a[0] = np.frombuffer(_repack(blob, form, edit_base), np.uint8)
        return p, a
    hostile = _repack(good_state, "EngineState", edit_engine)
    with pytest.raises(ValueError):
        rs.Engine.from_bytes(hostile)


def test_resealed_state_with_wrong_metadata_types_is_refused(good_state):
    """Regression (found here, fixed in engine.py): a resealed state whose 'stats' is a list raised
    AttributeError ('list' object has no attribute 'items'), a CLI traceback."""
    hostile = _repack(good_state, "EngineState", lambda p, a: ({**p, "stats": ["not", "a", "dict"]}, a))
    with pytest.raises(ValueError, match="corrupt raresketch EngineState"):
        rs.Engine.from_bytes(hostile)


def test_sparse_state_sized_to_what_it_holds_and_loading_the_same(good_state, tmp_path):
    """A small organisation's state holds its baseline sparse (only the occupied entries): a fraction of the
    fixed tables, loading to the same baseline byte for byte; a full baseline is saved dense."""
    eng = rs.Engine.from_bytes(good_state)
    assert len(good_state) < eng.baseline.nbytes / 10
    params, arrays = _format.unpack(good_state, "EngineState")
    assert _format.family_of(arrays[0].tobytes()) == "BaselineSparse"
    again = rs.Engine.from_bytes(eng.to_bytes())
    assert again.baseline.to_bytes() == eng.baseline.to_bytes() and again.to_bytes() == eng.to_bytes()
    # a state written with the dense form (every earlier version) loads to the same engine
    dense = _format.pack("EngineState", params, [np.frombuffer(eng.baseline.to_bytes(), np.uint8), *arrays[1:]])
    assert rs.Engine.from_bytes(dense).to_bytes() == eng.to_bytes()


def test_sparse_state_claiming_a_huge_config_is_one_clear_error(good_state):
    """The sizes of a sparse baseline are not backed by bytes: a resealed one whose config claims the largest
    tables must give a ValueError (sizes checked against the config; memory exhaustion reported), never a
    MemoryError traceback."""
    def edit_engine(p, a):
        def edit_base(bp, ba):
            return {**bp, "config": {**bp["config"], "capacity": 1 << 28, "max_agents": 1 << 28}}, ba
        a = list(a)
        a[0] = np.frombuffer(_repack(a[0].tobytes(), "BaselineSparse", edit_base), np.uint8)
        return p, a
    hostile = _repack(good_state, "EngineState", edit_engine)
    with pytest.raises(ValueError):
        rs.Engine.from_bytes(hostile)
