# KeyIndex: dense ids for 64-bit keys, so per-value work (catalogue resolution) runs once per distinct value
# of a stream instead of once per batch.

cdef class KeyIndex:
    """Stable dense ids for 64-bit keys: each distinct key gets the next id (0, 1, 2, ... in order of first
    appearance) and keeps it until :meth:`clear`.

    ``ids(keys)`` returns the id of every key and the positions (in ``keys``) of the keys that were new, in id
    order, so a caller can compute attributes for the new keys only and gather every row's attributes with one
    numpy take. Open addressing (linear probing, load <= 1/2) over ``2 * capacity`` rounded up to a power of two
    slots of 12 bytes; key 0 is kept beside the table. ``ids`` is O(len(keys)) and releases the GIL. A batch
    that would hold more than ``capacity`` keys clears the index and raises ``OverflowError`` (it is a cache:
    callers retry on the emptied index, or build a bigger one). Not thread-safe.
    """
    cdef readonly uint64_t capacity
    cdef readonly uint64_t size
    cdef object _keys, _vals
    cdef uint64_t* _k
    cdef int32_t* _v
    cdef uint64_t _mask
    cdef int32_t _zero_id               # id of key 0, -1 while unseen

    def __init__(self, capacity=1 << 18):
        capacity = int(capacity)
        if not 1 <= capacity <= (1 << 30):
            raise ValueError(f"capacity must be in [1, 2**30], got {capacity}")
        self.capacity = capacity
        cdef uint64_t slots = 16
        while slots < 2 * <uint64_t>capacity:
            slots <<= 1
        self._keys = np.zeros(slots, dtype=np.uint64)
        self._vals = np.zeros(slots, dtype=np.int32)
        cdef uint64_t[::1] kv = self._keys
        cdef int32_t[::1] vv = self._vals
        self._k = &kv[0]
        self._v = &vv[0]
        self._mask = slots - 1
        self.size = 0
        self._zero_id = -1

    def clear(self):
        """Forget every key (ids restart at 0). O(capacity)."""
        self._keys[:] = 0
        self.size = 0
        self._zero_id = -1

    @property
    def nbytes(self):
        return self._keys.nbytes + self._vals.nbytes

    def __len__(self):
        return self.size

    def ids(self, keys):
        """``(ids, new)``: int32 id per key, and int64 positions of the first occurrence of each new key (their
        ids are ``size_before, size_before + 1, ...``)."""
        cdef cnp.ndarray[cnp.uint64_t, ndim=1, mode="c"] ka = np.ascontiguousarray(keys, dtype=np.uint64)
        cdef Py_ssize_t n = ka.shape[0], i, nf = 0
        out = np.empty(n, dtype=np.int32)
        first = np.empty(n, dtype=np.int64)
        if n == 0:
            return out, first[:0]
        cdef uint64_t[::1] kk = ka
        cdef int32_t[::1] ov = out
        cdef int64_t[::1] fv = first
        cdef uint64_t k, j, size = self.size, cap = self.capacity
        cdef int32_t zero_id = self._zero_id
        cdef bint overflow = False
        with nogil:
            for i in range(n):
                k = kk[i]
                if overflow:
                    break
                if k == 0:
                    if zero_id < 0:
                        if size >= cap:
                            overflow = True
                            break
                        zero_id = <int32_t>size
                        size += 1
                        fv[nf] = i
                        nf += 1
                    ov[i] = zero_id
                    continue
                j = rs_fmix64(k) & self._mask
                while True:
                    if self._k[j] == k:
                        ov[i] = self._v[j]
                        break
                    if self._k[j] == 0:
                        if size >= cap:
                            overflow = True
                            break
                        self._k[j] = k
                        self._v[j] = <int32_t>size
                        ov[i] = <int32_t>size
                        size += 1
                        fv[nf] = i
                        nf += 1
                        break
                    j = (j + 1) & self._mask
        self.size = size
        self._zero_id = zero_id
        if overflow:
            self.clear()
            raise OverflowError(f"KeyIndex is full ({cap} keys); it was cleared")
        return out, first[:nf]
