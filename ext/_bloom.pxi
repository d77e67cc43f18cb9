# Blocked Bloom filter: each key sets k bits inside one 512-bit (cache-line) block.

cdef enum:
    BLOOM_BLOCK_BITS = 512
    BLOOM_BLOCK_WORDS = 8
    BLOOM_MAX_K = 16


_OCCUPANCY = None


def _occupancy(int balls):
    """Row t: distribution of the number of set bits in a 512-bit block after t uniform bit-sets."""
    global _OCCUPANCY
    if _OCCUPANCY is None or _OCCUPANCY.shape[0] <= balls:
        rows = max(balls + 1, 2048)
        occ = np.zeros((rows, 513))
        occ[0, 0] = 1.0
        x = np.arange(513, dtype=np.float64)
        for t in range(1, rows):
            prev = occ[t - 1]
            occ[t] = prev * (x / 512.0)
            occ[t, 1:] += prev[:-1] * ((512.0 - x[:-1]) / 512.0)
        _OCCUPANCY = occ
    return _OCCUPANCY


def _blocked_fpr(double n, double nblocks, int k):
    """Expected false-positive rate of a blocked filter holding n keys in ``nblocks`` 512-bit blocks.

    Exact for the layout: keys per block are Poisson(n / nblocks); a block holding j keys has received
    ``j k`` uniform bit-sets, whose number of distinct set bits X follows the occupancy distribution; a
    query's k independent positions are all set with probability ``E[(X/512)**k]``.
    """
    lam = n / nblocks
    if lam <= 0:
        return 0.0
    hi = int(lam + 12 * _math.sqrt(lam) + 30)
    j = np.arange(hi + 1)
    lgam = np.array([_math.lgamma(x + 1.0) for x in range(hi + 1)])
    pois = np.exp(-lam + j * _math.log(lam) - lgam)
    occ = _occupancy(hi * k)[j * k]                      # (hi+1, 513)
    p_all = occ @ ((np.arange(513) / 512.0) ** k)
    return float(np.sum(pois * p_all))


cdef inline bint _bloom_probe(uint64_t* bits, uint64_t nblocks, uint32_t k, uint64_t h,
                              bint insert) noexcept nogil:
    """Test (and with ``insert``, set) the key's k bits; return whether all were set before."""
    cdef uint64_t* base = bits + rs_reduce(h, nblocks) * BLOOM_BLOCK_WORDS
    cdef uint64_t seed2 = rs_fmix64(h ^ 0x5851F42D4C957F2DULL)
    cdef uint64_t h2 = seed2
    cdef uint32_t pos, i
    cdef uint64_t mask
    cdef bint present = 1
    for i in range(k):
        if i == 7 or i == 14:                 # 7 independent 9-bit positions per 64-bit word
            seed2 = rs_fmix64(seed2 ^ 0x14057B7EF767814FULL)
            h2 = seed2
        pos = h2 & 511
        h2 >>= 9
        mask = (<uint64_t>1) << (pos & 63)
        if not (base[pos >> 6] & mask):
            present = 0
            if insert:
                base[pos >> 6] |= mask
    return present


cdef class BloomFilter:
    """Blocked Bloom filter over 64-bit keys: membership with no false negatives.

    Parameters
    ----------
    capacity : int
        Number of distinct keys the filter is sized for.
    fp_rate : float
        Target false-positive rate at ``capacity`` keys, in (0, 0.5). The size is chosen so that the
        *blocked* layout's expected rate (Poisson block loads, see ``_blocked_fpr``) meets the target: a
        blocked filter needs somewhat more bits than the textbook ``-n ln p / ln(2)**2``.
    seed : int
        Filters merge only with equal seeds and sizes.

    Each key touches one 64-byte block (one cache miss): add, contains and add_if_absent are O(k) with
    k <= 16. Memory ``64 * num_blocks`` bytes. Batch calls release the GIL; not thread-safe for writers.
    """
    cdef readonly uint64_t num_blocks
    cdef readonly uint32_t k
    cdef readonly uint64_t seed
    cdef readonly uint64_t capacity
    cdef readonly double fp_rate
    cdef object _bits
    cdef uint64_t* _b

    def __init__(self, capacity=1_000_000, fp_rate=0.01, seed=0, *, _num_blocks=None, _k=None):
        capacity = int(capacity)
        if capacity < 1 or capacity > (1 << 40):
            raise ValueError(f"capacity must be in [1, 2**40], got {capacity}")
        if not 0 < fp_rate < 0.5:
            raise ValueError(f"fp_rate must be in (0, 0.5), got {fp_rate}")
        if not 0 <= int(seed) < (1 << 64):
            raise ValueError(f"seed must be an unsigned 64-bit integer, got {seed}")
        self.capacity = capacity
        self.fp_rate = float(fp_rate)
        self.seed = int(seed)
        if _num_blocks is None:
            _num_blocks, _k = BloomFilter.optimal_shape(capacity, fp_rate)
        self.num_blocks = int(_num_blocks)
        self.k = int(_k)
        self._set_bits(np.zeros(self.num_blocks * BLOOM_BLOCK_WORDS, dtype=np.uint64))

    cdef _set_bits(self, bits):
        cdef uint64_t[::1] v = bits
        self._bits = bits
        self._b = &v[0]

    @staticmethod
    def optimal_shape(capacity, fp_rate):
        """(num_blocks, k): the fewest 512-bit blocks, with the best k, whose expected rate <= fp_rate."""
        m0 = -capacity * _math.log(fp_rate) / (_math.log(2) ** 2)
        nb = max(1, int(_math.ceil(m0 / BLOOM_BLOCK_BITS)))
        while True:
            best = min((_blocked_fpr(capacity, nb, k), k) for k in range(1, BLOOM_MAX_K + 1))
            if best[0] <= fp_rate:
                return nb, best[1]
            nb = int(nb * 1.02) + 1

    cdef object _run(self, keys, bint insert):
        if isinstance(keys, (int, np.integer)) and not isinstance(keys, bool):
            k1 = int(keys)
            if not 0 <= k1 < (1 << 64):
                raise ValueError(f"a key is an unsigned 64-bit integer, got {keys}")
            return bool(_bloom_probe(self._b, self.num_blocks, self.k, rs_fmix64(<uint64_t>k1 ^ self.seed),
                                     insert))
        cdef const uint64_t[::1] k = as_keys(keys)
        cdef Py_ssize_t i, n = k.shape[0]
        out = np.empty(n, dtype=np.bool_)
        cdef uint8_t[::1] o = out.view(np.uint8)
        cdef uint64_t s = self.seed, nb = self.num_blocks
        cdef uint32_t kk = self.k
        with nogil:
            for i in range(n):
                o[i] = _bloom_probe(self._b, nb, kk, rs_fmix64(k[i] ^ s), insert)
        return out

    def add(self, keys):
        """Insert keys (a uint64 array, anything :func:`hash64` takes, or one int key)."""
        self._run(keys, True)

    def contains(self, keys):
        """Whether each key may have been added (bool array; a bool for one int key). No false negatives."""
        return self._run(keys, False)

    def add_if_absent(self, keys):
        """Test-and-set in one pass, in order: True where the key was absent (and is now added).

        The dedup path: ``if bf.add_if_absent(key): emit(...)``. A key repeated in the batch is absent only
        at its first occurrence. False positives make a new key look present with rate <= ``fp_rate``.
        """
        out = self._run(keys, True)
        return not out if isinstance(out, bool) else ~out

    def __contains__(self, key):
        return self.contains(int(key))

    @property
    def num_bits(self):
        return self.num_blocks * BLOOM_BLOCK_BITS

    @property
    def nbytes(self):
        return self._bits.nbytes

    def fill_ratio(self):
        """Fraction of bits set."""
        return float(np.unpackbits(self._bits.view(np.uint8)).mean()) if self.num_blocks else 0.0

    def approximate_count(self):
        """Estimated distinct keys added, ``-(m/k) ln(1 - X/m)`` (Swamidass and Baldi)."""
        x = self.fill_ratio()
        if x >= 1.0:
            return float("inf")
        return -self.num_bits / self.k * _math.log(1.0 - x)

    def expected_fp_rate(self, n=None):
        """Expected false-positive rate after ``n`` distinct keys (default: the approximate count so far)."""
        if n is None:
            n = self.approximate_count()
        return _blocked_fpr(n, self.num_blocks, self.k)

    def merge(self, BloomFilter other):
        """Bitwise OR: afterwards this filter holds both sets. Equal shape and seed required."""
        if other is self:
            raise ValueError("cannot merge a filter with itself")
        if (other.num_blocks, other.k, other.seed) != (self.num_blocks, self.k, self.seed):
            raise ValueError(
                f"cannot merge BloomFilter(num_blocks={other.num_blocks}, k={other.k}, seed={other.seed}) into "
                f"BloomFilter(num_blocks={self.num_blocks}, k={self.k}, seed={self.seed})")
        np.bitwise_or(self._bits, other._bits, out=self._bits)
        return self

    def __ior__(self, other):
        return self.merge(other)

    @classmethod
    def union(cls, *filters):
        if not filters:
            raise ValueError("union needs at least one filter")
        out = cls.from_bytes(filters[0].to_bytes())
        for f in filters[1:]:
            out.merge(f)
        return out

    def clear(self):
        self._bits[:] = 0

    def copy(self):
        return BloomFilter.from_bytes(self.to_bytes())

    def to_bytes(self):
        return _format.pack("BloomFilter",
                            {"capacity": int(self.capacity), "fp_rate": self.fp_rate, "seed": str(self.seed),
                             "num_blocks": int(self.num_blocks), "k": int(self.k)}, [self._bits])

    @staticmethod
    def from_bytes(data):
        """Rebuild from :meth:`to_bytes`; corrupted, truncated or foreign bytes raise ``ValueError``."""
        params, arrays = _format.unpack(data, "BloomFilter")
        try:
            capacity, fp_rate, seed = int(params["capacity"]), float(params["fp_rate"]), int(params["seed"])
            nb, k = int(params["num_blocks"]), int(params["k"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("corrupt raresketch BloomFilter: bad parameters") from None
        _format.expect(1 <= k <= BLOOM_MAX_K and nb >= 1 and 0 < fp_rate < 0.5 and capacity >= 1,
                       "BloomFilter", "parameters out of range")
        _format.expect(len(arrays) == 1 and arrays[0].shape == (nb * BLOOM_BLOCK_WORDS,)
                       and arrays[0].dtype == np.uint64, "BloomFilter", "bit array does not match num_blocks")
        out = BloomFilter(capacity, fp_rate, seed, _num_blocks=nb, _k=k)
        out._set_bits(np.ascontiguousarray(arrays[0]))
        return out

    def __reduce__(self):
        return (BloomFilter.from_bytes, (self.to_bytes(),))

    def __eq__(self, other):
        return isinstance(other, BloomFilter) and self.to_bytes() == other.to_bytes()

    def __repr__(self):
        return (f"BloomFilter(capacity={self.capacity}, fp_rate={self.fp_rate}, num_blocks={self.num_blocks}, "
                f"k={self.k})")
