"""The command line as a user runs it: demo, run (files, folders, stdin, state), inspect, simulate, errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from raresketch.cli import main

DATA = Path(__file__).parents[1] / "data"
OTRF = DATA / "otrf" / "sysmon_net_subset"


@pytest.fixture
def runner():
    return CliRunner()


def test_demo_reports_alerts_and_ground_truth(runner):
    res = runner.invoke(main, ["demo", "--agents", "40", "--days", "24", "--show", "5"])
    assert res.exit_code == 0, res.output
    assert "Alerts (" in res.output and "Detection against the injected ground truth" in res.output
    caught = [line for line in res.output.splitlines() if line.startswith("Injected attacks caught")]
    found, total = caught[0].split(":")[1].split(".")[0].strip().split("/")
    assert int(total) > 0 and int(found) == int(total)


def test_run_on_real_sysmon_folder_with_state_and_inspect(runner, tmp_path):
    out, state = tmp_path / "alerts.jsonl", tmp_path / "base.state"
    res = runner.invoke(main, ["run", str(OTRF), "--activation-days", "0", "--out", str(out), "--state", str(state)])
    assert res.exit_code == 0, res.output
    assert "7,183 network events" in res.output
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    assert alerts and all(a["event"]["kind"] == "alert" for a in alerts)
    # The lab's known positive: a scripting engine / LOLBin fetching from raw.githubusercontent.com.
    assert any(a["destination"].get("domain") == "raw.githubusercontent.com"
               and a["process"]["name"].lower() in ("powershell.exe", "wmic.exe") for a in alerts)
    assert state.exists()
    res = runner.invoke(main, ["inspect", str(state)])
    assert res.exit_code == 0 and "top cloud resources by prevalence" in res.output
    res = runner.invoke(main, ["inspect", str(state), "--json"])
    info = json.loads(res.output)
    assert info["agents_tracked"] > 5 and info["stats"]["events"] == 7183
    # Running again continues from the saved state: every event is now old news for the same processes.
    res = runner.invoke(main, ["run", str(OTRF), "--out", str(tmp_path / "again.jsonl"), "--state", str(state)])
    assert res.exit_code == 0, res.output


def test_run_ocsf_output_and_stdin(runner, tmp_path):
    res = runner.invoke(main, ["run", str(OTRF), "--activation-days", "0", "--output-format", "ocsf"])
    assert res.exit_code == 0
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert lines and all(x["class_uid"] == 2004 and x["finding_info"]["attacks"] for x in lines)
    f = sorted(OTRF.glob("*.jsonl.gz"))[0]
    res = runner.invoke(main, ["run", "-", "--format", "sysmon"], input=f.read_bytes())
    assert res.exit_code == 0, res.output
    assert "network events" in res.stderr


def test_simulate_then_run(runner, tmp_path):
    out, gt = tmp_path / "org.parquet", tmp_path / "gt.jsonl"
    res = runner.invoke(main, ["simulate", "--agents", "10", "--days", "3", "--out", str(out),
                               "--ground-truth", str(gt)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["run", str(out), "--out", str(tmp_path / "a.jsonl")])
    assert res.exit_code == 0 and "network events" in res.output


def test_errors_are_one_line_without_traceback(runner, tmp_path):
    bad = tmp_path / "bad.state"
    bad.write_bytes(b"RSKT" + b"\0" * 40)
    res = runner.invoke(main, ["inspect", str(bad)])
    assert res.exit_code == 1 and "cannot load state" in res.output and "Traceback" not in res.output
    res = runner.invoke(main, ["run", str(tmp_path / "missing.json")])
    assert res.exit_code == 1 and "no such file" in res.output
    cfg = tmp_path / "c.toml"
    cfg.write_text("[raresketch]\ntraining_days = 0\n")
    res = runner.invoke(main, ["run", str(OTRF), "--config", str(cfg)])
    assert res.exit_code == 1 and "training_days" in res.output
    res = runner.invoke(main, ["run", str(OTRF), "--state", str(bad)])
    assert res.exit_code == 1 and "cannot load state" in res.output and "format version 0" in res.output
    assert bad.read_bytes() == b"RSKT" + b"\0" * 40          # a refused state file is left as it was
    res = runner.invoke(main, ["run"])
    assert res.exit_code == 2

