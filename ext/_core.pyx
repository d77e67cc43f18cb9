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

from raresketch import _format

cnp.import_array()

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
include "_agents.pxi"
include "_key_index.pxi"
include "_arrow.pxi"
