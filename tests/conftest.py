"""Shared test configuration: hypothesis profiles (HYPOTHESIS_PROFILE=dev|ci) for every folder, ``tests/`` on
``sys.path`` so tests import the shared code as ``support.reference`` etc., and deterministic workloads.

The folders mirror the package (sketches/, events/, readers/, catalog/, detect/, alerts/, simulate/, cli/,
reliability/); they are not packages, so every test file has a unique basename."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

settings.register_profile("dev", settings(max_examples=25, deadline=None))
settings.register_profile("ci", settings(max_examples=100, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow]))
settings.load_profile(os.getenv("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
