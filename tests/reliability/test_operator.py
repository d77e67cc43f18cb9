"""Nothing an operator does loses data: the output, the state lock, checks before reading, a full disk,
symbolic links, states that always load, catalogue additions kept in the state, thread-safe saves, and the
configuration checks (docs/RELIABILITY.md, "Operating it")."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

import raresketch as rs
from raresketch import _format
from raresketch._state import StateLock
from raresketch.cli import main
from raresketch.simulate import Organisation

SMALL = "[raresketch]\ncapacity = 4096\nmax_agents = 256\nactivation_days = 2\n"


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    d = tmp_path_factory.mktemp("ev")
    p = d / "ev.jsonl"
    Organisation(agents=12, days=5, seed=1, events_per_agent_day=20).write_ecs_jsonl(str(p))
    return p


def run(*args):
    return CliRunner().invoke(main, ["run", *map(str, args)])


def test_out_equal_to_input_is_refused_and_input_kept(events, tmp_path):
    data = events.read_bytes()
    r = run(events, "--out", events, "--force")
    assert r.exit_code == 1 and "is the input" in r.output
    assert events.read_bytes() == data


def test_out_inside_an_input_folder_is_refused(events, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_bytes(events.read_bytes())
    r = run(tmp_path / "in", "--out", tmp_path / "in" / "alerts.jsonl")
    assert r.exit_code == 1 and "inside the input folder" in r.output


def test_existing_out_needs_append_or_force(events, tmp_path):
    out = tmp_path / "alerts.jsonl"
    out.write_text("yesterday\n")
    r = run(events, "--out", out)
    assert r.exit_code == 1 and "--append" in r.output and out.read_text() == "yesterday\n"
    assert run(events, "--out", out, "--append", "--config", _cfg(tmp_path)).exit_code == 0
    assert out.read_text().startswith("yesterday\n")
    assert run(events, "--out", out, "--force").exit_code == 0
    assert not out.read_text().startswith("yesterday")


def _cfg(tmp_path, text=SMALL):
    p = tmp_path / "cfg.toml"
    p.write_text(text)
    return p


def test_second_run_on_a_locked_state_refuses_or_waits(events, tmp_path):
    state = tmp_path / "s.state"
    lock = StateLock(state).acquire()
    try:
        r = run(events, "--state", state, "--config", _cfg(tmp_path))
        assert r.exit_code == 1 and "in use by another raresketch run" in r.output and "--wait" in r.output
        assert not state.exists()
        threading.Timer(0.5, lock.release).start()
        t = time.monotonic()
        r = run(events, "--state", state, "--wait", "--config", _cfg(tmp_path))
        assert r.exit_code == 0, r.output
        assert time.monotonic() - t >= 0.4 and state.exists()
    finally:
        lock.release()


def test_every_path_is_checked_before_reading(events, tmp_path):
    out = tmp_path / "alerts.jsonl"
    os.mkfifo(tmp_path / "fifo.state")
    for args, msg in [((events, tmp_path / "missing.jsonl"), "no such file"),
                      ((events, "--state", tmp_path / "nodir" / "s.state"), "does not exist"),
                      ((events, "--state", tmp_path / "fifo.state"), "not a regular file")]:
        r = run(*args, "--out", out)
        assert r.exit_code == 1 and msg in r.output, r.output
        assert not out.exists()                       # nothing was written: found before reading anything


def test_full_disk_is_one_line_and_the_state_is_not_ahead(events, tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    state = tmp_path / "s.state"
    cfg = _cfg(tmp_path, SMALL.replace("activation_days = 2", "activation_days = 0"))
    r = run(events, "--out", "/dev/full", "--state", state, "--config", cfg)
    assert r.exit_code == 1 and "No space left on device" in r.output and "state not saved" in r.output
    assert "Traceback" not in r.output and not state.exists()


def test_symlinked_state_is_refused(events, tmp_path):
    link = tmp_path / "s.state"
    link.symlink_to(tmp_path / "elsewhere.state")       # dangling: a run must not create its target
    r = run(events, "--state", link)
    assert r.exit_code == 1 and "symbolic link" in r.output
    assert not (tmp_path / "elsewhere.state").exists()
    # the library refuses to write through a dangling link too (a link to an existing file is followed)
    with pytest.raises(OSError):
        rs.Engine(rs.Config(capacity=64, max_agents=8)).save(link)
    assert not (tmp_path / "elsewhere.state").exists()


def test_state_with_a_large_dedup_table_loads(tmp_path):
    eng = rs.Engine(rs.Config(capacity=64, max_agents=8))
    eng.guard.last = {k: [1, 29_000_000] for k in range(1, 150_001)}   # a flood day's dedup keys
    eng.guard.volume = {("rare_cloud", 20000, f"host-{i}"): 3 for i in range(20_000)}
    data = eng.to_bytes()
    again = rs.Engine.from_bytes(data)
    assert again.guard.last == eng.guard.last and again.guard.volume == eng.guard.volume
    # the header stays small: tables travel as arrays
    assert int.from_bytes(data[8:12], "little") < 64 << 10
    # and a state of the earlier layout, whose header held them (3 MiB), still loads
    meta, arrays = _format.unpack(data, "EngineState")
    meta.pop("layout"), meta.pop("catalog_name")
    meta.update(eng.guard.to_state())
    old = _format.pack("EngineState", meta, [arrays[0], arrays[1]])
    assert int.from_bytes(old[8:12], "little") > 1 << 20
    assert rs.Engine.from_bytes(old).guard.last == eng.guard.last


def test_loading_a_state_does_not_reserve_its_maximum_size(tmp_path):
    """Under an address-space limit of 1 GiB, reading a small state works (it reserved 8 GiB up front)."""
    p = tmp_path / "small.state"
    p.write_bytes(b"RSKT" + b"\0" * 1000)
    src = os.path.join(os.path.dirname(rs.__file__), "_state.py")
    code = ("import importlib.util, resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
            f"spec = importlib.util.spec_from_file_location('st', {src!r}); m = importlib.util.module_from_spec(spec)\n"
            "spec.loader.exec_module(m)\n"
            f"print(len(m.read_state_bytes({str(p)!r})))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "1004", r.stderr[-500:]


def test_catalogue_additions_are_stored_in_the_state(tmp_path):
    toml = tmp_path / "extra.toml"
    toml.write_text('[allow]\ndestinations = ["blessed.example.org"]\n')
    eng = rs.Engine(rs.Config(capacity=64, max_agents=8, catalog_file=str(toml)))
    assert eng.catalog.explain("blessed.example.org")["allowlisted"]
    state = tmp_path / "s.state"
    eng.save(state)
    toml.unlink()
    os.mkfifo(toml)                                     # a FIFO where the file was: must not be opened
    again = rs.Engine.load(state)
    assert again.catalog.explain("blessed.example.org")["allowlisted"]
    assert again.to_bytes() == eng.to_bytes()


def test_engine_refuses_a_baseline_built_with_another_window():
    with pytest.raises(ValueError, match="training_days"):
        rs.Engine(rs.Config(training_days=7, capacity=64, max_agents=8),
                  baseline=rs.Baseline(rs.Config(capacity=64, max_agents=8)))


def test_baseline_save_while_another_thread_processes(tmp_path):
    batches = list(Organisation(agents=20, days=6, seed=2, events_per_agent_day=30).batches(300))
    eng = rs.Engine(rs.Config(capacity=1 << 12, max_agents=64, activation_days=2))
    path = tmp_path / "b.state"
    stop, errors, n = threading.Event(), [], [0]

    def saver():
        while not stop.is_set():
            try:
                eng.baseline.save(path)
                rs.Baseline.load(path)
                n[0] += 1
            except BaseException as e:  # pragma: no cover - the failure being tested
                errors.append(e)
    t = threading.Thread(target=saver)
    t.start()
    try:
        for b in batches:
            eng.process(b)
    finally:
        stop.set()
        t.join()
    assert n[0] > 0 and not errors, errors[:1]


# ---- configuration ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,msg", [
    ('activation_days = "0"', "activation_days must be a whole number"),
    ("activation_days = 0.5", "activation_days must be a whole number"),
    ('allowlist_learn = "yes"', "allowlist_learn must be true or false"),
    ("[rarescketch]\nactivation_days = 3", "unknown table(s) [rarescketch]"),
    ("[raresketch]\nactivation_days = 3\n[alow]\ndestinations = []", "unknown table(s) [alow]"),
    ("capacity = 4294967296", "capacity"),
])
def test_config_types_and_tables_are_checked(tmp_path, text, msg):
    p = tmp_path / "c.toml"
    p.write_text(text + "\n")
    with pytest.raises(ValueError) as e:
        rs.Config.from_toml(p)
    assert msg in str(e.value)
    r = run(os.devnull, "--config", p)
    assert r.exit_code == 1 and msg in r.output and "Traceback" not in r.output


def test_config_with_an_existing_state_applies_what_can_change(events, tmp_path):
    state = tmp_path / "s.state"
    assert run(events, "--state", state, "--config", _cfg(tmp_path), "--out", tmp_path / "a1").exit_code == 0
    new = _cfg(tmp_path, SMALL + 'max_alerts_per_day = 7\n[allow]\ndestinations = ["x.example.net"]\n')
    r = run(events, "--state", state, "--config", new, "--out", tmp_path / "a2")
    assert r.exit_code == 0, r.output
    eng = rs.Engine.load(state)
    assert eng.config.max_alerts_per_day == 7 and eng.catalog.explain("x.example.net")["allowlisted"]
    bad = _cfg(tmp_path, SMALL.replace("capacity = 4096", "capacity = 8192"))
    r = run(events, "--state", state, "--config", bad, "--out", tmp_path / "a3")
    assert r.exit_code == 1 and "capacity = 4096" in r.output and "cannot change" in r.output
    assert not (tmp_path / "a3").exists()


def test_inspect_shows_the_training_window(tmp_path):
    state = tmp_path / "s.state"
    eng = rs.Engine(rs.Config(capacity=1 << 12, max_agents=64, training_days=10, max_future_days=None))
    for b in Organisation(agents=10, days=25, seed=1, events_per_agent_day=10).batches(5000):
        eng.process(b)
    eng.save(state)
    r = CliRunner().invoke(main, ["inspect", str(state)])
    assert r.exit_code == 0, r.output
    # 25 days from 2026-01-01: the window is the last 10 days, not first day .. today
    assert "window: 2026-01-16 .. 2026-01-25 (the last 10 days" in r.output
    j = json.loads(CliRunner().invoke(main, ["inspect", str(state), "--json"]).output)
    assert j["window_first_day"] == j["today"] - 9


def test_inspect_drops_what_left_the_window(tmp_path):
    """A resource last reached before the window is not listed, and the counts are the window's agents."""
    import datetime as dt

    import pyarrow as pa

    def ev(day, host, dom):
        return {"@timestamp": dt.datetime(2026, 1, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(days=day),
                "host.id": host, "destination.domain": dom, "destination.ip": "52.1.2.3",
                "process.executable": "C:\\x\\a.exe"}
    rows = [ev(d, f"h{i}", "old-bucket.s3.amazonaws.com") for d in range(3) for i in range(5)]
    rows += [ev(d, f"h{i}", "new-bucket.s3.amazonaws.com") for d in range(8, 14) for i in range(3)]
    eng = rs.Engine(rs.Config(capacity=1 << 12, max_agents=64, training_days=5, max_future_days=None))
    eng.process(pa.Table.from_pylist(rows))
    eng.save(tmp_path / "s.state")
    j = json.loads(CliRunner().invoke(main, ["inspect", str(tmp_path / "s.state"), "--json"]).output)
    assert j["top_resources"] == [["aws/s3/new-bucket", 3]]
    assert j["active_agents"] == 3 and j["agents_tracked"] == 5
    text = CliRunner().invoke(main, ["inspect", str(tmp_path / "s.state")]).output
    assert "old-bucket" not in text and "2026-01-10 .. 2026-01-14" in text


def test_files_given_newest_first_are_read_oldest_first(tmp_path):
    lines = []
    p = tmp_path / "all.jsonl"
    Organisation(agents=10, days=8, seed=2, events_per_agent_day=20).write_ecs_jsonl(str(p))
    lines = p.read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    (tmp_path / "day1.jsonl").write_bytes(b"".join(lines[:half]))
    (tmp_path / "day2.jsonl").write_bytes(b"".join(lines[half:]))
    cfg = _cfg(tmp_path)
    a, b = tmp_path / "a.out", tmp_path / "b.out"
    assert run(p, "--config", cfg, "--out", a, "--sort-buffer", 0).exit_code == 0
    r = run(tmp_path / "day2.jsonl", tmp_path / "day1.jsonl", "--config", cfg, "--out", b, "--sort-buffer", 0)
    assert r.exit_code == 0, r.output
    assert a.read_text() == b.read_text() and a.read_text()


def test_parquet_on_stdin_is_one_clear_line():
    r = CliRunner().invoke(main, ["run", "-", "--format", "parquet"], input=b"PAR1")
    assert r.exit_code == 1 and "cannot be read from stdin" in r.output


def test_simulate_ground_truth_in_a_missing_folder_names_it_and_writes_nothing(tmp_path):
    out = tmp_path / "org.jsonl"
    r = CliRunner().invoke(main, ["simulate", "--agents", "3", "--days", "2", "--out", str(out),
                                  "--ground-truth", str(tmp_path / "nodir" / "gt.jsonl")])
    assert r.exit_code == 1 and "--ground-truth" in r.output and "nodir" in r.output
    assert not out.exists()
