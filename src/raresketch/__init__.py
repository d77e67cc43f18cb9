"""raresketch: find command-and-control traffic hiding in ordinary endpoint network events.

Public API, re-exported from the private modules that implement it.
"""
from __future__ import annotations

from ._core import (
    NULL_KEY,
    AgentTable,
    BloomFilter,
    CountMinSketch,
    HyperLogLog,
    KeyedDistinct,
    hash64,
    hash_pair,
    mix64,
)
from . import _core, _format, _hllpp

_core._configure(_format, _hllpp.tables)  # the compiled core imports no module of the package: it is handed them
from ._readers import FORMATS, SKIP_REASONS, ReadStats, read_events
from .alerts import ALERT_NAMES, Alert, alerts_to_table, to_ecs, to_ocsf, write_alerts
from .baseline import Baseline
from .catalog import RESOLVED_SCHEMA, Catalog, default_catalog
from .config import Config
from .engine import Engine
from .events import EVENT_SCHEMA, conform, empty_batch

__version__ = "0.1.0"

__all__ = [
    "ALERT_NAMES",
    "AgentTable",
    "Alert",
    "Baseline",
    "Config",
    "Engine",
    "alerts_to_table",
    "to_ecs",
    "to_ocsf",
    "write_alerts",
    "FORMATS",
    "RESOLVED_SCHEMA",
    "SKIP_REASONS",
    "BloomFilter",
    "Catalog",
    "ReadStats",
    "conform",
    "default_catalog",
    "empty_batch",
    "read_events",
    "CountMinSketch",
    "EVENT_SCHEMA",
    "HyperLogLog",
    "KeyedDistinct",
    "NULL_KEY",
    "__version__",
    "hash64",
    "hash_pair",
    "mix64",
]
