"""What an operator sees of a run: this run's warnings and suppressions (not those of earlier runs on the same
state), warnings as they happen, and progress counted in the inputs' stored bytes (docs/RELIABILITY.md)."""
from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from raresketch._readers import ReadStats, read_events
from raresketch._run import input_bytes as _input_bytes
from raresketch.cli import main
from raresketch.simulate import Organisation

CFG = "[raresketch]\ncapacity = 4096\nmax_agents = 256\nactivation_days = 2\nmax_alerts_per_day = 1\n"


def run(*args):
    return CliRunner().invoke(main, ["run", *map(str, args)])


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    """Five days of 12 agents, and 30 events of day 7 of the same organisation."""
    d = tmp_path_factory.mktemp("sum")
    Organisation(agents=12, days=5, seed=1, events_per_agent_day=20).write_ecs_jsonl(str(d / "d5.jsonl"))
    Organisation(agents=12, days=7, seed=1, events_per_agent_day=20).write_ecs_jsonl(str(d / "d7.jsonl"))
    late = [ln for ln in (d / "d7.jsonl").read_text().splitlines()
            if json.loads(ln)["@timestamp"] >= "2026-01-06T12"]
    (d / "later.jsonl").write_text("\n".join(late[:30]) + "\n")
    (d / "c.toml").write_text(CFG)
    return d


def test_summary_gives_this_runs_warnings_and_suppressions_only(days, tmp_path):
    state = tmp_path / "s.state"
    r1 = run(days / "d5.jsonl", "--config", days / "c.toml", "--state", state, "--out", tmp_path / "a1")
    assert r1.exit_code == 0, r1.output
    paused = [ln for ln in r1.output.splitlines() if "paused until the next day" in ln]
    assert any(ln.startswith("  warning: ") for ln in paused)          # in the summary
    assert any(ln.startswith("raresketch: warning: ") for ln in paused)  # and when it happened
    assert "suppressed: " in r1.output and "volume_guard" in r1.output
    r2 = run(days / "later.jsonl", "--config", days / "c.toml", "--state", state, "--out", tmp_path / "a2")
    assert r2.exit_code == 0, r2.output
    # the first run's pauses are not this run's: they are not repeated
    assert "2026-01-03" not in r2.output and "paused" not in r2.output, r2.output
    assert all("volume_guard" not in ln for ln in r2.output.splitlines() if ln.startswith("  suppressed"))


def test_reading_counts_stored_bytes_for_progress(days, tmp_path):
    Organisation(agents=6, days=3, seed=2, events_per_agent_day=50).write_parquet(str(tmp_path / "p.parquet"),
                                                                                  batch_size=100)
    for p in (days / "d7.jsonl", tmp_path / "p.parquet"):
        st, seen = ReadStats(), []
        for _ in read_events(str(p), stats=st, batch_size=200):
            seen.append(st.bytes_read)
        size = os.path.getsize(p)
        assert len(seen) > 2 and seen == sorted(seen) and 0 < seen[0] <= size
        assert st.bytes_read == size
    st = ReadStats()
    for _ in read_events(str(days), stats=st):   # a folder: every file read counts whole at its end
        pass
    assert st.bytes_read == sum(os.path.getsize(days / f) for f in ("d5.jsonl", "d7.jsonl", "later.jsonl"))


def test_progress_total_is_the_inputs_stored_size(days, tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "x.jsonl").write_bytes(b"12345")
    assert _input_bytes((str(days / "d5.jsonl"), str(tmp_path))) == os.path.getsize(days / "d5.jsonl") + 5
    assert _input_bytes((str(days / "d5.jsonl"), "-")) is None
