"""``raresketch run`` on a Parquet file, end to end (read only the columns the Engine reads, text kept
dictionary-encoded, conform, score, learn, write alerts), in events/s of the whole command: the catalogue's
start-up included, in-process through click's test runner so that no interpreter start-up is counted.

Run: ``PYTHONPATH=src python -m pytest benches/bench_run.py --benchmark-enable --benchmark-columns=min,median``.
Events = RARESKETCH_BENCH_N (default 2M: the simulator's organisation of 200 agents over as many days as it
takes; CI's quick mode: 50k, each body once). Records ``events`` and ``events_per_s`` in ``extra_info``;
``test_read_parquet_*`` time the reading part alone (what ``run`` asks of the reader, and the default read).
"""
from __future__ import annotations

import functools
import os
import tempfile

import pyarrow.parquet as pq
from click.testing import CliRunner
from workloads import N

from raresketch._readers import ReadStats, read_events
from raresketch.cli import main
from raresketch.detect._prepare import INPUT_COLUMNS

_TMP = tempfile.mkdtemp(prefix="raresketch-bench-run-")


@functools.cache
def org_parquet(n: int = N) -> str:
    """A simulated organisation of about ``n`` events as Parquet (the simulator's own writer)."""
    days = max(2, min(60, n // 80_000 + 2))
    path = os.path.join(_TMP, f"org-{n}.parquet")
    r = CliRunner().invoke(main, ["simulate", "--agents", "200", "--days", str(days), "--out", path])
    assert r.exit_code == 0, r.output
    return path


def _events(path: str) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def _info(benchmark, n: int) -> None:
    benchmark.extra_info["events"] = n
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None and stats.stats.mean:
        benchmark.extra_info["events_per_s"] = n / stats.stats.mean


def test_run_parquet(benchmark):
    path = org_parquet()
    out = os.path.join(_TMP, "alerts.jsonl")

    def run():
        r = CliRunner().invoke(main, ["run", path, "--out", out])
        assert r.exit_code == 0, r.output

    rounds = 3 if benchmark.enabled else 1
    benchmark.pedantic(run, rounds=rounds, iterations=1)
    _info(benchmark, _events(path))


def _read(path: str, **options) -> int:
    return sum(t.num_rows for t in read_events(path, format="parquet", stats=ReadStats(), **options))


def test_read_parquet_for_run(benchmark):
    """What ``run`` reads: the Engine's columns, text dictionary-encoded."""
    path = org_parquet()
    n = benchmark(lambda: _read(path, columns=INPUT_COLUMNS, dictionary=True))
    _info(benchmark, n)


def test_read_parquet_default(benchmark):
    """``read_events``' default: every column, text expanded to ``string``."""
    path = org_parquet()
    n = benchmark(lambda: _read(path))
    _info(benchmark, n)
