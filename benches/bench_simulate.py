"""Generation speed of the organisation simulator (events/s), with pytest-benchmark.

Run:  PYTHONPATH=src python -m pytest benches/bench_simulate.py --benchmark-enable -s
Frozen, deterministic workloads: the same seed and sizes every run.  Each benchmark records
``events`` and ``events_per_s`` in ``extra_info`` and prints them.  In CI's quick mode
(``--benchmark-disable``, which sets ``RARESKETCH_BENCH_N``) each body runs once on about that many events.
"""
from __future__ import annotations

import os
import time

import pytest

from raresketch.simulate import Organisation

WORKLOADS = {
    # name: (agents, days, events per agent-day)  -> about 1M, 1.1M and 5M events
    "office-200x10": (200, 10, 500),
    "large-2000x1": (2000, 1, 500),
    "volume-1000x5": (1000, 5, 1000),
}




def _quick_n(config) -> int | None:
    """Events per body in CI's quick mode (benchmarks disabled and not re-enabled), else None."""
    quick = config.getoption("benchmark_disable", default=False) and not config.getoption("benchmark_enable", default=False)
    return int(os.environ.get("RARESKETCH_BENCH_N", "50000")) if quick else None


def _consume(org: Organisation, batch_size: int = 100_000) -> int:
    return sum(t.num_rows for t in org.batches(batch_size=batch_size))


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_generate_events(benchmark, request, name: str) -> None:
    quick = _quick_n(request.config)
    agents, days, epad = WORKLOADS[name] if quick is None else (50, 1, max(1, quick // 50))
    org = Organisation(agents=agents, days=days, seed=0, events_per_agent_day=epad)
    result = {}

    def run() -> int:
        t = time.perf_counter()
        n = _consume(org)
        result["s"] = time.perf_counter() - t
        return n

    n = benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    benchmark.extra_info["events"] = n
    benchmark.extra_info["events_per_s"] = n / result["s"]
    print(f"\n{name}: {n:,} events in {result['s']:.2f} s = {n / result['s'] / 1e6:.2f} M events/s")


def test_build_organisation(benchmark, request) -> None:
    """Set-up cost (agents, installs, destination catalogue), 2000 agents."""
    agents = 50 if _quick_n(request.config) else 2000
    benchmark.pedantic(lambda: Organisation(agents=agents, days=45, seed=0), rounds=1, iterations=1)
