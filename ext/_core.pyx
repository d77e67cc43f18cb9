# cython: language_level=3
"""Compiled core of raresketch: hashing and the mergeable sketches (internal; use the ``raresketch`` API).

Every kernel is written once: the hash kernels in ``rs_hash.h``, each structure's loops in its ``.pxi``.
Batch loops take pre-checked, contiguous numpy arrays and run without the GIL. Structures are not
thread-safe: one writer at a time (see the README's concurrency notes).
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t
from libc.string cimport memcpy, memset
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
cimport numpy as cnp

import numpy as np
import pyarrow as pa

cnp.import_array()

# What the core needs from the Python side, handed over once by raresketch/__init__.py through _configure,
# so that the compiled core imports no module of the package: the container format (the module
# raresketch._format: pack, unpack, expect) and a loader of the HyperLogLog++ tables.
cdef object _format = None
cdef object _hllpp_loader = None


def _configure(container, hllpp_tables):
    """Hand the core its Python collaborators: ``container`` (``pack``, ``unpack``, ``expect`` as in
    :mod:`raresketch._format`) for ``to_bytes``/``from_bytes``, and ``hllpp_tables()`` returning the
    HyperLogLog++ ``(thresholds, raw estimates, biases)`` (called once, at the first estimate that needs it)."""
    global _format, _hllpp_loader
    _format = container
    _hllpp_loader = hllpp_tables

cdef extern from "rs_hash.h" nogil:
    uint64_t rs_fmix64(uint64_t k)
    uint64_t rs_murmur3_64(const uint8_t *data, int64_t length, uint32_t seed)
    uint64_t rs_xxh3(const uint8_t *data, int64_t length)
    uint64_t rs_hash_pair(uint64_t a, uint64_t b, uint32_t seed)
    uint64_t rs_reduce(uint64_t h, uint64_t n)
    int rs_clz64(uint64_t x)
    void RS_PREFETCH(const void *p)

include "_hash.pxi"
include "_cms.pxi"
include "_hll.pxi"
include "_bloom.pxi"
include "_keyed.pxi"
include "_keyed_batch.pxi"
include "_keyed_state.pxi"
include "_agents.pxi"
include "_sparse.pxi"
include "_key_index.pxi"
include "_arrow.pxi"
