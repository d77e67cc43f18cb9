"""Benchmarks run as tests in CI's quick mode (``--benchmark-disable``: each body once, on small inputs)."""
from __future__ import annotations

import os


def pytest_configure(config):
    quick = config.getoption("benchmark_disable", default=False) and not config.getoption(
        "benchmark_enable", default=False)
    if quick and "RARESKETCH_BENCH_N" not in os.environ:
        os.environ["RARESKETCH_BENCH_N"] = "50000"
