"""Crash safety: a process SIGKILLed at random moments while saving its Engine leaves the old or the new state,
never a broken one, and killed writers' temporary files do not pile up (docs/RELIABILITY.md).

Trials: RARESKETCH_CRASH_TRIALS (default 12 in CI, about 1 s each); the figure in docs/RELIABILITY.md comes from
``RARESKETCH_CRASH_TRIALS=200 pytest tests/reliability/test_crash.py -s``.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import raresketch as rs
from raresketch._state import atomic_write_bytes, remove_stale_temps

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and flock are POSIX")

SRC = str(Path(rs.__file__).resolve().parents[1])

# Saves generation g+1, g+2, ... forever, printing each after Engine.save returns.
CHILD = textwrap.dedent("""
    import sys
    import raresketch as rs
    path, cap, gen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    eng = rs.Engine(rs.Config(capacity=cap))
    print("ready", flush=True)
    while True:
        gen += 1
        eng.stats["generation"] = gen
        eng.save(path)
        print("saved", gen, flush=True)
""")


def _temps(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}.") and p.name.endswith(".tmp"))


def test_sigkill_during_save_leaves_old_or_new_state(tmp_path):
    trials = int(os.environ.get("RARESKETCH_CRASH_TRIALS", "12"))
    cap = 1 << 18                                     # a 30 MiB state: one save takes ~0.15-0.3 s here
    state = tmp_path / "engine.state"
    script = tmp_path / "saver.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    rng = random.Random(7)
    gen = 0
    lost, during_write, max_temps = 0, 0, 0
    t_start = time.monotonic()
    for trial in range(trials):
        child = subprocess.Popen([sys.executable, str(script), str(state), str(cap), str(gen)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        if trial % 2:                                 # anywhere: ~0-4 saves, killed inside one
            time.sleep(rng.uniform(0.0, 0.8))
        else:                                         # aimed at the write: once its temporary file appears
            deadline = time.monotonic() + 5
            while not _temps(tmp_path, state.name) and time.monotonic() < deadline:
                time.sleep(0.0005)
            time.sleep(rng.uniform(0.0, 0.03))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate()
        assert child.returncode == -signal.SIGKILL
        saved = [int(line.split()[1]) for line in out.splitlines() if line.startswith("saved")]
        last = saved[-1] if saved else gen
        temps = _temps(tmp_path, state.name)
        max_temps = max(max_temps, len(temps))
        during_write += bool(temps)               # killed between creating the temporary file and the rename
        if not state.exists():
            assert gen == 0 and not saved             # killed before the very first save finished
            continue
        try:
            loaded = int(rs.Engine.load(state).stats["generation"])
        except ValueError:
            lost += 1
            continue
        # old (the last save reported) or new (renamed in place, killed before it could print)
        assert loaded in (last, last + 1), (trial, loaded, last)
        gen = loaded
    elapsed = time.monotonic() - t_start
    print(f"\ncrash safety: {trials} SIGKILL trials in {elapsed:.1f} s, {during_write} killed mid-write "
          f"(left a temporary file), states lost {lost}, at most {max_temps} temporary file(s) at once")
    assert lost == 0
    # Leftovers are removed by the next save once their writers are dead: they never accumulate.
    assert max_temps <= 1
    rs.Engine(rs.Config(capacity=64)).save(state)
    assert _temps(tmp_path, state.name) == []


def test_stale_temps_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    target = tmp_path / "x.state"
    atomic_write_bytes(target, b"one")
    # A dead writer's leftover (pid that cannot exist), a live one (ours), and look-alikes of other files.
    dead = tmp_path / f".x.state.{2**22 + 12345}.abc_12.tmp"
    mine = tmp_path / f".x.state.{os.getpid()}.zz.tmp"
    other = tmp_path / f".x.state.5.{2**22 + 1}.q.tmp"          # belongs to a file named "x.state.5"
    for p in (dead, mine, other):
        p.write_bytes(b"partial")
    assert remove_stale_temps(target) == [dead.name]
    assert mine.exists() and other.exists() and target.read_bytes() == b"one"


def test_atomic_write_keeps_permissions_and_follows_symlink(tmp_path):
    real = tmp_path / "real.state"
    atomic_write_bytes(real, b"a")
    assert (real.stat().st_mode & 0o777) == 0o600       # new state files are private
    os.chmod(real, 0o640)
    link = tmp_path / "link.state"
    link.symlink_to(real)
    atomic_write_bytes(link, b"b")
    assert link.is_symlink() and real.read_bytes() == b"b"
    assert (real.stat().st_mode & 0o777) == 0o640


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "s.state"
    atomic_write_bytes(target, b"old")

    def boom(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new" * 1000)
    assert target.read_bytes() == b"old" and _temps(tmp_path, target.name) == []
