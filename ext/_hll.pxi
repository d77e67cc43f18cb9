# HyperLogLog with the HyperLogLog++ estimator (linear counting at small range, empirical bias correction).

_HLLPP = None


def _hllpp_tables():
    """The HyperLogLog++ tables ``(thresholds, raw estimates, biases)``, loaded once by the loader the Python
    side handed to :func:`_configure`."""
    global _HLLPP
    if _HLLPP is None:
        if _hllpp_loader is None:
            raise RuntimeError("raresketch._core is not configured: import raresketch first")
        _HLLPP = _hllpp_loader()
    return _HLLPP


cdef inline void _hll_add(uint8_t* reg, uint64_t h, uint32_t p) noexcept nogil:
    cdef uint64_t w = h >> p
    cdef uint8_t rank = <uint8_t>(rs_clz64(w) - p + 1) if w else <uint8_t>(64 - p + 1)
    cdef uint64_t j = h & ((<uint64_t>1 << p) - 1)
    if reg[j] < rank:
        reg[j] = rank


cdef class HyperLogLog:
    """HyperLogLog distinct counter over 64-bit keys, with the HyperLogLog++ estimator.

    Parameters
    ----------
    p : int
        Precision 4..18: ``m = 2**p`` one-byte registers. Relative standard error ``1.04 / sqrt(m)``
        (1.6 % at p=12). Memory ``m`` bytes.
    seed : int
        Keys are mixed as ``fmix64(key ^ seed)`` before use (so raw integer ids work); merge needs equal seeds.

    Register layout matches ``datasketch.HyperLogLogPlusPlus`` (index = low ``p`` bits of the mixed key,
    rank from the remaining ``64 - p`` bits), and :meth:`count` uses the same HLL++ rule: linear counting
    while it is below the empirical threshold, then the raw estimate minus the empirical bias (6 nearest
    neighbours) up to ``5 m``. Update O(1) per key; count O(m); merge is the register-wise max. Batch updates
    release the GIL; not thread-safe for concurrent writers (one writer at a time).
    """
    cdef readonly uint32_t p
    cdef readonly uint64_t seed
    cdef object _reg
    cdef uint8_t* _r

    def __init__(self, p=12, seed=0):
        p = int(p)
        if not 4 <= p <= 18:
            raise ValueError(f"p must be in [4, 18], got {p}")
        if not 0 <= int(seed) < (1 << 64):
            raise ValueError(f"seed must be an unsigned 64-bit integer, got {seed}")
        self.p = p
        self.seed = int(seed)
        self._set_registers(np.zeros(1 << p, dtype=np.uint8))

    cdef _set_registers(self, reg):
        cdef uint8_t[::1] v = reg
        self._reg = reg
        self._r = &v[0]

    @property
    def m(self):
        """Number of registers, ``2**p``."""
        return 1 << self.p

    def update(self, keys):
        """Add keys (uint64 array, or anything :func:`hash64` takes). O(n), GIL released."""
        cdef const uint64_t[::1] k = as_keys(keys)
        cdef Py_ssize_t i
        cdef uint64_t s = self.seed
        cdef uint32_t p = self.p
        with nogil:
            for i in range(k.shape[0]):
                _hll_add(self._r, rs_fmix64(k[i] ^ s), p)

    def add(self, uint64_t key):
        """Add one key: the per-event path."""
        _hll_add(self._r, rs_fmix64(key ^ self.seed), self.p)

    def count(self):
        """Estimated number of distinct keys added (HyperLogLog++ estimator), a float."""
        thresholds, raw_estimates, biases = _hllpp_tables()
        reg = self._reg
        m = float(self.m)
        num_zero = int(self.m - np.count_nonzero(reg))
        if num_zero > 0:
            lc = m * np.log(m / float(num_zero))
            if lc <= thresholds[self.p - 4]:
                return float(lc)
        if self.p == 4:
            alpha = 0.673
        elif self.p == 5:
            alpha = 0.697
        elif self.p == 6:
            alpha = 0.709
        else:
            alpha = 0.7213 / (1.0 + 1.079 / m)
        e = alpha * m * m / np.sum(2.0 ** (-reg.astype(np.float64)))
        if e <= 5 * m:
            nearest = np.argsort((e - raw_estimates[self.p - 4]) ** 2)[:6]
            return float(e - np.mean(biases[self.p - 4][nearest]))
        return float(e)

    @property
    def relative_standard_error(self):
        """``1.04 / sqrt(m)``."""
        return 1.04 / (self.m ** 0.5)

    def lower_bound(self, num_std_dev=2):
        """``count() * (1 - k * rse)`` clipped at 0: a bound holding with the Gaussian coverage of ``k``."""
        return max(0.0, self.count() * (1.0 - num_std_dev * self.relative_standard_error))

    def upper_bound(self, num_std_dev=2):
        """``count() * (1 + k * rse)``."""
        return self.count() * (1.0 + num_std_dev * self.relative_standard_error)

    def is_empty(self):
        return not np.any(self._reg)

    def merge(self, HyperLogLog other):
        """Register-wise max: afterwards this sketch is the sketch of the union. Equal p and seed."""
        if other is self:
            raise ValueError("cannot merge a sketch with itself")
        if (other.p, other.seed) != (self.p, self.seed):
            raise ValueError(f"cannot merge HyperLogLog(p={other.p}, seed={other.seed}) into "
                             f"HyperLogLog(p={self.p}, seed={self.seed})")
        np.maximum(self._reg, other._reg, out=self._reg)
        return self

    def __ior__(self, other):
        return self.merge(other)

    @classmethod
    def union(cls, *sketches):
        if not sketches:
            raise ValueError("union needs at least one sketch")
        out = cls.from_bytes(sketches[0].to_bytes())
        for s in sketches[1:]:
            out.merge(s)
        return out

    @property
    def registers(self):
        """The registers, a read-only uint8 view of length ``m``."""
        v = self._reg.view()
        v.flags.writeable = False
        return v

    @property
    def nbytes(self):
        return self._reg.nbytes

    def copy(self):
        return HyperLogLog.from_bytes(self.to_bytes())

    def to_datasketch(self):
        """A ``datasketch.HyperLogLogPlusPlus`` with these registers: its ``count()`` equals ours.

        Its ``hashfunc`` is set to this sketch's key mix, so ``update(key)`` with a 64-bit key continues it.
        datasketch supports p <= 16.
        """
        import datasketch
        if self.p > 16:
            raise ValueError(f"datasketch supports p <= 16, this sketch has p={self.p}")
        seed = self.seed
        return datasketch.HyperLogLogPlusPlus(
            p=self.p, reg=self._reg.astype(np.int8), hashfunc=lambda k: int(mix64(np.uint64(k), seed)[0]))

    @staticmethod
    def from_datasketch(sketch, seed=0):
        """A HyperLogLog from a ``datasketch.HyperLogLogPlusPlus``'s registers (64-bit hash layout)."""
        import datasketch
        if not isinstance(sketch, datasketch.HyperLogLogPlusPlus):
            raise TypeError("from_datasketch takes a datasketch.HyperLogLogPlusPlus (64-bit registers); "
                            f"got {type(sketch).__name__}")
        reg = np.asarray(sketch.reg)
        if reg.min(initial=0) < 0 or reg.max(initial=0) > 64 - sketch.p + 1:
            raise ValueError("register values out of range for a 64-bit HyperLogLog")
        out = HyperLogLog(sketch.p, seed)
        out._set_registers(np.ascontiguousarray(reg, dtype=np.uint8))
        return out

    def to_bytes(self):
        return _format.pack("HyperLogLog", {"p": int(self.p), "seed": str(self.seed)}, [self._reg])

    @staticmethod
    def from_bytes(data):
        """Rebuild from :meth:`to_bytes`; corrupted, truncated or foreign bytes raise ``ValueError``."""
        params, arrays = _format.unpack(data, "HyperLogLog")
        try:
            p, seed = int(params["p"]), int(params["seed"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("corrupt raresketch HyperLogLog: bad parameters") from None
        _format.expect(4 <= p <= 18, "HyperLogLog", f"precision {p} out of range")
        _format.expect(len(arrays) == 1 and arrays[0].shape == (1 << p,) and arrays[0].dtype == np.uint8,
                       "HyperLogLog", "register count does not match p")
        _format.expect(int(arrays[0].max(initial=0)) <= 64 - p + 1, "HyperLogLog", "register value out of range")
        out = HyperLogLog(p, seed)
        out._set_registers(np.ascontiguousarray(arrays[0]))
        return out

    def __reduce__(self):
        return (HyperLogLog.from_bytes, (self.to_bytes(),))

    def __eq__(self, other):
        return isinstance(other, HyperLogLog) and self.to_bytes() == other.to_bytes()

    def __len__(self):
        return int(round(self.count()))

    def __repr__(self):
        return f"HyperLogLog(p={self.p}, estimate={self.count():.1f})"
