"""The HyperLogLog++ empirical tables (data/hllpp_bias.json: per precision, thresholds for linear counting,
raw estimates and their biases), loaded for the compiled core, which is handed this loader at import."""
from __future__ import annotations

import json
from importlib import resources

import numpy as np


def tables() -> tuple[list, list[np.ndarray], list[np.ndarray]]:
    """``(thresholds, raw estimates, biases)``, one entry per precision p = 4..18. Reads ~66 KB of JSON."""
    raw = json.loads(resources.files("raresketch").joinpath("data/hllpp_bias.json").read_text())
    return raw["thresholds"], [np.asarray(a) for a in raw["raw_estimate"]], [np.asarray(b) for b in raw["bias"]]
