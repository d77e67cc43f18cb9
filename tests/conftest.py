"""Shared test configuration: hypothesis profiles (HYPOTHESIS_PROFILE=dev|ci) and deterministic workloads."""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", settings(max_examples=25, deadline=None))
settings.register_profile("ci", settings(max_examples=100, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow]))
settings.load_profile(os.getenv("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
