"""The event model: one columnar (Arrow) schema for a batch of endpoint network events.

Column names are ECS field names written flat with dots (``process.name``), so a batch converts to and from
ECS JSON without renaming. Every column but ``@timestamp`` and ``host.id`` may be null: the detectors treat a
null as *unknown*, never as a negative signal (no signer is "signature unknown", not "unsigned").

Python + pyarrow, with two compiled Arrow kernels of :mod:`raresketch._core` (dictionary decoding and the
canonical-IPv4 check); no import of the readers (they import this package):

- :func:`empty_batch` -- a zero-row table with :data:`EVENT_SCHEMA` (``_schema``).
- :func:`conform` -- any table with (a subset of) the ECS column names -> a table with exactly
  :data:`EVENT_SCHEMA`, in schema order, with normalised domains and IP strings (``_conform``).
- :func:`normalize_domain`, :func:`normalize_ip`, :func:`basename` -- the scalar normalisations, and their
  column-wise forms (``_normalise``).
- value parsing for the readers: booleans, integers, strings, the one timestamp parser (``_values``).

The readers (``raresketch.read_events``) live in :mod:`raresketch._readers`.
"""
from __future__ import annotations

from ._conform import conform
from ._normalise import (MAYBE_IP, as_string_array, basename, is_internal_ip, basename_values, dictionary_encode, maybe_ip, normalize_domain,
                         normalize_domain_array, normalize_domain_values, normalize_ip, normalize_ip_array,
                         normalize_ip_values)
from ._schema import DOMAIN_SOURCES, EVENT_SCHEMA, REQUIRED_COLUMNS, empty_batch, is_conformed, mark_conformed

__all__ = [
    "EVENT_SCHEMA",
    "MAYBE_IP",
    "is_internal_ip",
    "as_string_array",
    "REQUIRED_COLUMNS",
    "DOMAIN_SOURCES",
    "empty_batch",
    "conform",
    "is_conformed",
    "mark_conformed",
    "normalize_domain",
    "normalize_ip",
    "basename",
    "normalize_domain_array",
    "normalize_domain_values",
    "normalize_ip_array",
    "normalize_ip_values",
    "basename_values",
    "maybe_ip",
    "dictionary_encode",
]
