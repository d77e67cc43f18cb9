"""AgentTable.observe's org_first output: the start day of the org's run of presence at each event, against the
rule written out with numpy (a run starts at the first event, and again at an event ``window_days`` or more after
the newest day before it), across batches, gaps longer than the window, and a state saved and loaded between."""
from __future__ import annotations

import numpy as np
import pytest

import raresketch as rs


def _reference(days: np.ndarray, prior_first: int, prior_today: int, window: int) -> np.ndarray:
    d = days.astype(np.int64)
    newest_before = np.maximum(prior_today, np.concatenate([[prior_today], np.maximum.accumulate(d)[:-1]]))
    start = (newest_before == 0) | (d >= newest_before + window)
    start[0] |= prior_first == 0
    idx = np.where(start, np.arange(d.size), -1)
    np.maximum.accumulate(idx, out=idx)
    return np.where(idx >= 0, d[np.maximum(idx, 0)], prior_first)


@pytest.mark.parametrize("seed", range(5))
def test_org_first_matches_the_rule(seed):
    rng = np.random.default_rng(seed)
    window = int(rng.integers(2, 10))
    at = rs.sketches.AgentTable(1024, window, seed)
    day = 19_000
    for batch in range(12):
        n = int(rng.integers(1, 300))
        steps = rng.choice([0, 0, 0, 1, 2, window, window + 3], n)     # gaps at and past the window
        days = day + np.cumsum(steps)
        days[rng.random(n) < 0.05] -= 1                                 # a few late events
        day = int(days.max())
        prior_first, prior_today = int(at.first_day), int(at.today)
        out = np.full(n, -1, np.int64)
        at.observe(rng.integers(1, 50, n).astype(np.uint64), days, out)
        assert np.array_equal(out, _reference(days, prior_first, prior_today, window))
        assert out[-1] == at.first_day
        if batch == 5:
            at = rs.sketches.AgentTable.from_bytes(at.to_bytes())


def test_org_first_must_be_an_int64_output():
    at = rs.sketches.AgentTable(64, 30, 0)
    with pytest.raises(ValueError, match="int64"):
        at.observe(np.arange(1, 4, dtype=np.uint64), np.full(3, 19_000), np.empty(3, np.int32))
    with pytest.raises(ValueError, match="int64"):
        at.observe(np.arange(1, 4, dtype=np.uint64), np.full(3, 19_000), np.empty(2, np.int64))
    assert len(at) == 0
