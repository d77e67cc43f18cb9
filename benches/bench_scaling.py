"""Smoke test of benches/reports/memory.py and benches/reports/scaling.py in ``--quick`` mode (tiny sizes, seconds): both run
end to end, print their Markdown, and the figures mean something (exact at the default capacity, lossy when
starved, one row per scaling point, positive bytes, the plot written)."""
from __future__ import annotations

import importlib.util

import memory
import scaling


def test_memory_quick(capsys):
    res = memory.main(["--quick"])
    out = capsys.readouterr().out
    assert "### What the baseline holds" in out and "### Accuracy against exact answers" in out
    assert "### End-to-end alerts" in out
    (cell,) = res["cells"]
    runs = {r["capacity"]: r for r in cell["runs"]}
    d = runs[memory.DEFAULT_CAPACITY]
    assert d["bytes"] == memory.baseline_nbytes(memory.DEFAULT_CAPACITY) > 100 * 2**20
    # at the default capacity the tiny workload is answered exactly, event by event
    assert d["lost"] == 0 and d["first_rare_exact"] > 0
    assert d["prev_exact"] == 1.0 and d["rare_agree"] == 1.0 and d["end_exact"] == 1.0
    assert d["first_rare_extra"] == 0 and d["first_rare_missed"] == 0
    # starved (2^11): evictions make resources look rarer -> extra first-rare decisions, none missed
    s = runs[1 << 11]
    assert s["lost"] > 0 and s["bytes"] < d["bytes"] and s["first_rare_extra"] > 0 and s["prev_exact"] < 1.0
    # the smallest clean capacity was run and is clean; the grid step below it was run and loses something
    c = cell["smallest_clean"]
    assert cell["verified"] and runs[c]["lost"] == 0 and runs[memory.grid_prev(c)]["lost"] > 0
    assert cell["exact_decisions_from"] is not None and cell["exact_decisions_from"] <= c
    # end to end, the default engine raises exactly the reference's alerts
    e2e = res["e2e"]
    top = e2e["rows"][0]
    assert e2e["reference_alerts"] > 0 and top["capacity"] == memory.DEFAULT_CAPACITY
    assert top["precision"] == 1.0 and top["recall"] == 1.0


def test_scaling_quick(tmp_path, capsys):
    png = tmp_path / "scaling.png"
    has_mpl = importlib.util.find_spec("matplotlib") is not None
    res = scaling.main(["--quick", "--plot", str(png)] + ([] if has_mpl else ["--no-plot"]))
    out = capsys.readouterr().out
    rows = res["rows"]
    assert out.count("\n| ") == len(rows) + 1                    # header + one line per point
    by_axis: dict[str, list[dict]] = {}
    for r in rows:
        by_axis.setdefault(r["axis"], []).append(r)
    assert set(by_axis) == {"events", "agents", "destinations", "training_days"}
    assert all(len(v) >= 2 for v in by_axis.values())
    for r in rows:
        assert r["events"] > 0 and r["seconds"] > 0 and r["events_per_s"] > 0 and r["baseline_bytes"] > 0
        # the saved engine state holds the whole saved baseline (plus counters, guard and names)
        assert r["state_bytes"] is None or r["state_bytes"] > r["baseline_state_bytes"]
    assert any(r["state_bytes"] for r in rows)
    ev = by_axis["events"]
    assert ev[0]["events"] < ev[-1]["events"]
    # the synthetic destination workload puts exactly D distinct cloud resources in the baseline
    assert all(r["cloud_resources"] == r["value"] for r in by_axis["destinations"])
    # the window sweep replays the same events
    assert len({r["events"] for r in by_axis["training_days"]}) == 1
    assert all(0.9 * r["value"] <= r["agents_seen"] <= r["value"] for r in by_axis["agents"])
    if has_mpl:
        assert res["png"] == png and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
