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
from .events import EVENT_SCHEMA

__version__ = "0.1.0"

__all__ = [
    "BloomFilter",
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
