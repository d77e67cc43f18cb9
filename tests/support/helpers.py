"""Deterministic workloads shared by the tests."""
from __future__ import annotations

import numpy as np


def zipf_keys(n: int, a: float = 1.2, seed: int = 0) -> np.ndarray:
    """n uint64 keys whose frequencies follow Zipf(a): a deterministic skewed stream."""
    rng = np.random.default_rng(seed)
    return rng.zipf(a, n).astype(np.uint64)
