# Count-min sketch with optional conservative update; 32-bit saturating counters.

import math as _math

cdef extern from "rs_cms.h" nogil:
    enum: RS_CMS_MAX_DEPTH
    void rs_cms_rows(uint64_t key, uint64_t seed, uint32_t depth, uint64_t width, uint64_t* idx)
    uint32_t rs_cms_add(uint32_t* t, const uint64_t* idx, uint32_t depth, uint32_t c, int conservative)
    uint32_t rs_cms_get(const uint32_t* t, const uint64_t* idx, uint32_t depth)
    uint64_t rs_cms_batch(uint32_t* t, uint64_t width, uint32_t depth, uint64_t seed, int conservative,
                          int write, const uint64_t* keys, const uint32_t* counts, int64_t n, uint32_t* out)


cdef class CountMinSketch:
    """Count-min sketch over 64-bit keys: point frequency estimates that never under-estimate.

    Parameters
    ----------
    width : int
        Counters per row (any value >= 1; need not be a power of two).
    depth : int
        Rows (1..32). Row r's cell comes from one ``fmix64(key ^ seed')`` by double hashing.
    conservative : bool
        Conservative update (raise only the minimal cells): never worse than the standard update and far more
        exact for rare keys; merging conservative sketches still gives an upper bound, but not the sketch of
        the union.
    seed : int
        Sketches merge only with equal seeds.

    Guarantee (Cormode & Muthukrishnan): with N = :attr:`total`, ``c <= estimate <= c + e/width * N`` for
    each key with probability at least ``1 - exp(-depth)``; more generally ``error_bound(delta)``.
    Counters are 32-bit and saturate at 2**32-1. Memory ``4 * width * depth`` bytes. Update and query are
    O(depth) per key; batch calls release the GIL. Not thread-safe for concurrent writers.
    """
    cdef readonly uint64_t width
    cdef readonly uint32_t depth
    cdef readonly bint conservative
    cdef readonly uint64_t seed
    cdef readonly uint64_t total
    cdef object _table
    cdef uint32_t* _t
    cdef uint64_t _hseed

    def __init__(self, width=65536, depth=4, conservative=True, seed=0):
        width = int(width)
        depth = int(depth)
        if width < 1 or width > (1 << 31):
            raise ValueError(f"width must be in [1, 2**31], got {width}")
        if depth < 1 or depth > RS_CMS_MAX_DEPTH:
            raise ValueError(f"depth must be in [1, {RS_CMS_MAX_DEPTH}], got {depth}")
        if not 0 <= int(seed) < (1 << 64):
            raise ValueError(f"seed must be an unsigned 64-bit integer, got {seed}")
        self.width = width
        self.depth = depth
        self.conservative = bool(conservative)
        self.seed = int(seed)
        self.total = 0
        self._set_table(np.zeros((depth, width), dtype=np.uint32))
        self._hseed = rs_fmix64(self.seed ^ 0x9E3779B97F4A7C15ULL)

    cdef _set_table(self, table):
        cdef uint32_t[:, ::1] v = table
        self._table = table
        self._t = &v[0, 0]

    # ---- sizing -------------------------------------------------------------------------------------
    @staticmethod
    def suggest_width(relative_error):
        """Width for an additive error of ``relative_error * total``: ``ceil(e / relative_error)``."""
        if not 0 < relative_error < 1:
            raise ValueError(f"relative_error must be in (0, 1), got {relative_error}")
        return int(_math.ceil(_math.e / relative_error))

    @staticmethod
    def suggest_depth(delta):
        """Depth for the error bound to hold with probability ``1 - delta``: ``ceil(ln(1/delta))``."""
        if not 0 < delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {delta}")
        return max(1, int(_math.ceil(_math.log(1.0 / delta))))

    @classmethod
    def from_error(cls, relative_error, delta, conservative=True, seed=0):
        """A sketch whose estimates are within ``relative_error * total`` with probability ``1 - delta``."""
        return cls(cls.suggest_width(relative_error), cls.suggest_depth(delta), conservative, seed)

    # ---- batch path ---------------------------------------------------------------------------------
    cdef object _counts(self, keys, counts):
        n = keys.shape[0]
        if counts is None:
            return None
        c = np.asarray(counts)
        if c.ndim == 0:
            if c < 0 or c > 0xFFFFFFFFU:
                raise ValueError(f"counts must be in [0, 2**32-1], got {counts}")
            return np.full(n, int(c), dtype=np.uint32)
        if c.shape != (n,):
            raise ValueError(f"counts has shape {c.shape}, keys has {n} entries")
        if c.dtype.kind not in "iu":
            raise TypeError(f"counts must be integers, not {c.dtype}")
        if c.size and (c.min() < 0 or c.max() > 0xFFFFFFFFU):
            raise ValueError("counts must be in [0, 2**32-1]")
        return np.ascontiguousarray(c, dtype=np.uint32)

    cdef object _run(self, keys, counts, bint write, bint want):
        cdef const uint64_t[::1] k = as_keys(keys)
        cdef int64_t n = k.shape[0]
        cobj = self._counts(k, counts) if write else None
        cdef const uint32_t[::1] c
        cdef const uint32_t* cp = NULL
        if cobj is not None and n:
            c = cobj
            cp = &c[0]
        out = np.empty(n if want else 0, dtype=np.uint32)
        cdef uint32_t[::1] o = out
        cdef uint32_t* op = &o[0] if want and n else NULL
        cdef uint64_t added = 0
        if n:
            with nogil:
                added = rs_cms_batch(self._t, self.width, self.depth, self._hseed, self.conservative, write,
                                     &k[0], cp, n, op)
        self.total += added
        return out if want else None

    def update(self, keys, counts=None):
        """Add ``counts`` (default 1 each; a scalar or an array) for each key. O(n * depth)."""
        self._run(keys, counts, True, False)

    def query(self, keys):
        """Estimated count of each key (uint32 array); never below the true count."""
        return self._run(keys, None, False, True)

    def update_and_query(self, keys, counts=None):
        """Update each key in order and return its estimate just after its own update (uint32 array).

        The streaming hot path: one pass, sequential semantics (a key repeated in the batch sees its earlier
        occurrences). The estimate before the update is the returned value minus the count (exact, both for
        standard and conservative update, unless a counter saturated).
        """
        return self._run(keys, counts, True, True)

    # ---- scalar path --------------------------------------------------------------------------------
    def add(self, uint64_t key, uint32_t count=1):
        """Add ``count`` to one key; return its estimate after the update. The per-event path."""
        cdef uint64_t idx[RS_CMS_MAX_DEPTH]
        rs_cms_rows(key, self._hseed, self.depth, self.width, idx)
        self.total += count
        return rs_cms_add(self._t, idx, self.depth, count, self.conservative)

    def estimate(self, uint64_t key):
        """Estimated count of one key."""
        cdef uint64_t idx[RS_CMS_MAX_DEPTH]
        rs_cms_rows(key, self._hseed, self.depth, self.width, idx)
        return rs_cms_get(self._t, idx, self.depth)

    # ---- error --------------------------------------------------------------------------------------
    @property
    def relative_error(self):
        """``e / width``: the additive error per unit of :attr:`total` at confidence ``1 - exp(-depth)``."""
        return _math.e / self.width

    @property
    def confidence(self):
        """``1 - exp(-depth)``."""
        return 1.0 - _math.exp(-float(self.depth))

    def error_bound(self, delta=None):
        """Additive over-estimate that a key's estimate exceeds with probability at most ``delta``.

        By Markov's inequality on each of the ``depth`` independent rows,
        ``P(error > k * total / width) <= k**-depth``; so the bound is ``total * delta**(-1/depth) / width``.
        With ``delta = exp(-depth)`` (the default) this is the classic ``e * total / width``.
        """
        if delta is None:
            delta = _math.exp(-float(self.depth))
        if not 0 < delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {delta}")
        return self.total * delta ** (-1.0 / float(self.depth)) / self.width

    # ---- merge / state ------------------------------------------------------------------------------
    def _check_mergeable(self, CountMinSketch other):
        if other is self:
            raise ValueError("cannot merge a sketch with itself")
        if (other.width, other.depth, other.seed) != (self.width, self.depth, self.seed):
            raise ValueError(
                f"cannot merge CountMinSketch(width={other.width}, depth={other.depth}, seed={other.seed}) "
                f"into CountMinSketch(width={self.width}, depth={self.depth}, seed={self.seed})")

    def merge(self, CountMinSketch other):
        """Add ``other``'s counters into this sketch (in place, saturating). Equal width, depth and seed.

        For standard-update sketches the result equals the sketch of the union of both streams.
        """
        self._check_mergeable(other)
        s = self._table.astype(np.uint64)
        s += other._table
        np.minimum(s, 0xFFFFFFFFU, out=s)
        self._table[...] = s
        self.total += other.total
        return self

    def __ior__(self, other):
        return self.merge(other)

    @classmethod
    def union(cls, *sketches):
        """A new sketch holding the merge of all ``sketches``."""
        if not sketches:
            raise ValueError("union needs at least one sketch")
        out = cls.from_bytes(sketches[0].to_bytes())
        for s in sketches[1:]:
            out.merge(s)
        return out

    @property
    def table(self):
        """The counters, a read-only ``(depth, width)`` uint32 view."""
        v = self._table.view()
        v.flags.writeable = False
        return v

    @property
    def nbytes(self):
        """Bytes held by the counters."""
        return self._table.nbytes

    def copy(self):
        return CountMinSketch.from_bytes(self.to_bytes())

    def to_bytes(self):
        """Versioned, checksummed bytes (see ``raresketch._format``); :meth:`from_bytes` reverses it."""
        return _format.pack("CountMinSketch",
                            {"width": int(self.width), "depth": int(self.depth), "seed": str(self.seed),
                             "conservative": bool(self.conservative), "total": str(self.total)},
                            [self._table])

    @staticmethod
    def from_bytes(data):
        """Rebuild a sketch from :meth:`to_bytes`; corrupted, truncated or foreign bytes raise ``ValueError``."""
        params, arrays = _format.unpack(data, "CountMinSketch")
        try:
            width, depth = int(params["width"]), int(params["depth"])
            seed, total = int(params["seed"]), int(params["total"])
            conservative = bool(params["conservative"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("corrupt raresketch CountMinSketch: bad parameters") from None
        _format.expect(len(arrays) == 1 and arrays[0].shape == (depth, width) and arrays[0].dtype == np.uint32,
                       "CountMinSketch", "table shape does not match width and depth")
        _format.expect(0 <= total < (1 << 64), "CountMinSketch", "bad total")
        sk = CountMinSketch(width, depth, conservative, seed)
        sk._set_table(np.ascontiguousarray(arrays[0]))
        sk.total = total
        return sk

    def __reduce__(self):
        return (CountMinSketch.from_bytes, (self.to_bytes(),))

    def __eq__(self, other):
        return isinstance(other, CountMinSketch) and self.to_bytes() == other.to_bytes()

    def __repr__(self):
        return (f"CountMinSketch(width={self.width}, depth={self.depth}, conservative={self.conservative}, "
                f"total={self.total})")
