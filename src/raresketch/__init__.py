"""raresketch: find command-and-control traffic hiding in ordinary endpoint network events.

Public API, re-exported from the private modules that implement it.
"""
from __future__ import annotations

from .events import EVENT_SCHEMA

__version__ = "0.1.0"

__all__ = ["EVENT_SCHEMA", "__version__"]
