"""raresketch: find command-and-control traffic hiding in ordinary endpoint network events.

Public API, re-exported from the private modules that implement it.
"""
from __future__ import annotations

from ._core import (
    NULL_KEY,
    BloomFilter,
    CountMinSketch,
    HyperLogLog,
    KeyedDistinct,
    hash64,
    hash_pair,
    mix64,
)
from ._readers import FORMATS, SKIP_REASONS, ReadStats, read_events
from .catalog import RESOLVED_SCHEMA, Catalog, default_catalog
from .events import EVENT_SCHEMA, conform, empty_batch

__version__ = "0.1.0"

__all__ = [
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
