"""Benchmarks run as tests in CI's quick mode (``--benchmark-disable``: each body once, on small inputs).

``benches/reports/`` (the side-by-side scripts, some of which the benchmarks reuse) and ``tests/`` (for
``support.reference``) are put on ``sys.path``."""
from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(_HERE, "reports"), os.path.join(_HERE, "..", "tests")]


def pytest_configure(config):
    quick = config.getoption("benchmark_disable", default=False) and not config.getoption(
        "benchmark_enable", default=False)
    if quick and "RARESKETCH_BENCH_N" not in os.environ:
        os.environ["RARESKETCH_BENCH_N"] = "50000"
