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


cdef inline object _u8(a):
    return np.ascontiguousarray(a, dtype=np.bool_).view(np.uint8)


def gather_keys(d, dom, i, ip, p, proc):
    """The key resolver's per-row pass (raresketch.catalog._resolver.CatalogResolver.lookup): from the ids of each
    row's destination name ``d``, address ``i`` and process tuple ``p`` (int32 arrays from :class:`KeyIndex`) and the
    attribute columns of those ids (dicts of numpy arrays indexed by id: ``dom`` has has_name, is_lit, R, K, S,
    allow and lit_R, lit_K, lit_S, lit_allow; ``ip`` has R, K, S, allow, valid; ``proc`` has P, script, writable,
    renamed, allow; ``dom``/``ip`` None when the batch has no such column), per row:

    - resource R and kind K: the name's when it has one, else the event's address's when valid, else the name's own
      IP literal's; IM service S: the name's, else (no valid address) its literal's, else the address's;
    - allow: the name's, the literal's where it is used, the valid address's, or the process's;
    - the process key P and its script / writable / renamed flags;
    - which source won, as uint8 codes (0 none, 1 the event's name, 2 the event's address, 3 the name's own IP
      literal): ``source`` for R and K, ``im_source`` for S, ``address`` for the address (2, else 3, else 0).

    Returns ``(resource, kind, im, allow, process, script, writable, renamed, source, im_source, address)``. One
    pass, O(n), GIL released. This is the one place where the precedence is written.
    """
    cdef Py_ssize_t r, n = len(p)
    cdef bint has_dom = dom is not None, has_ip = ip is not None
    z64, z8, z32 = np.zeros(1, np.uint64), np.zeros(1, np.uint8), np.zeros(max(n, 1), np.int32)
    cdef const int32_t[::1] dv = np.ascontiguousarray(d, dtype=np.int32) if has_dom else z32
    cdef const int32_t[::1] iv = np.ascontiguousarray(i, dtype=np.int32) if has_ip else z32
    cdef const int32_t[::1] pv = np.ascontiguousarray(p, dtype=np.int32)
    cdef const uint8_t[::1] d_name = _u8(dom["has_name"]) if has_dom else z8
    cdef const uint8_t[::1] d_lit = _u8(dom["is_lit"]) if has_dom else z8
    cdef const uint8_t[::1] d_allow = _u8(dom["allow"]) if has_dom else z8
    cdef const uint8_t[::1] d_lallow = _u8(dom["lit_allow"]) if has_dom else z8
    cdef const uint64_t[::1] d_r = dom["R"] if has_dom else z64
    cdef const uint64_t[::1] d_k = dom["K"] if has_dom else z64
    cdef const uint64_t[::1] d_s = dom["S"] if has_dom else z64
    cdef const uint64_t[::1] d_lr = dom["lit_R"] if has_dom else z64
    cdef const uint64_t[::1] d_lk = dom["lit_K"] if has_dom else z64
    cdef const uint64_t[::1] d_ls = dom["lit_S"] if has_dom else z64
    cdef const uint8_t[::1] i_valid = _u8(ip["valid"]) if has_ip else z8
    cdef const uint8_t[::1] i_allow = _u8(ip["allow"]) if has_ip else z8
    cdef const uint64_t[::1] i_r = ip["R"] if has_ip else z64
    cdef const uint64_t[::1] i_k = ip["K"] if has_ip else z64
    cdef const uint64_t[::1] i_s = ip["S"] if has_ip else z64
    cdef const uint64_t[::1] p_p = proc["P"]
    cdef const uint8_t[::1] p_script = _u8(proc["script"])
    cdef const uint8_t[::1] p_writable = _u8(proc["writable"])
    cdef const uint8_t[::1] p_renamed = _u8(proc["renamed"])
    cdef const uint8_t[::1] p_allow = _u8(proc["allow"])
    resource, kind, im, process = (np.empty(n, np.uint64) for _ in range(4))
    allow, script, writable, renamed = (np.empty(n, np.bool_) for _ in range(4))
    cdef uint64_t[::1] o_r = resource
    cdef uint64_t[::1] o_k = kind
    cdef uint64_t[::1] o_s = im
    cdef uint64_t[::1] o_p = process
    cdef uint8_t[::1] o_allow = allow.view(np.uint8)
    cdef uint8_t[::1] o_script = script.view(np.uint8)
    cdef uint8_t[::1] o_writable = writable.view(np.uint8)
    cdef uint8_t[::1] o_renamed = renamed.view(np.uint8)
    source, im_source, address = (np.empty(n, np.uint8) for _ in range(3))
    cdef uint8_t[::1] o_src = source
    cdef uint8_t[::1] o_imsrc = im_source
    cdef uint8_t[::1] o_addr = address
    cdef int32_t a, b, c
    cdef bint name, lit, valid
    cdef uint64_t s
    cdef uint8_t al
    with nogil:
        for r in range(n):
            a = dv[r] if has_dom else 0
            b = iv[r] if has_ip else 0
            c = pv[r]
            name = has_dom and d_name[a]
            lit = has_dom and d_lit[a]
            valid = has_ip and i_valid[b]
            al = p_allow[c]
            if name:
                o_r[r] = d_r[a]
                o_k[r] = d_k[a]
                o_src[r] = 1
            elif valid:
                o_r[r] = i_r[b]
                o_k[r] = i_k[b]
                o_src[r] = 2
            elif lit:
                o_r[r] = d_lr[a]
                o_k[r] = d_lk[a]
                al |= d_lallow[a]
                o_src[r] = 3
            else:
                o_r[r] = 0
                o_k[r] = 0
                o_src[r] = 0
            o_addr[r] = 2 if valid else (3 if lit else 0)
            s = d_s[a] if has_dom else 0
            o_imsrc[r] = 1 if s != 0 else 0
            if s == 0 and has_dom and not valid:
                s = d_ls[a]
                if s != 0:
                    o_imsrc[r] = 3
            if s == 0 and valid:
                s = i_s[b]
                if s != 0:
                    o_imsrc[r] = 2
            o_s[r] = s
            if has_dom:
                al |= d_allow[a]
            if valid:
                al |= i_allow[b]
            o_allow[r] = al
            o_p[r] = p_p[c]
            o_script[r] = p_script[c]
            o_writable[r] = p_writable[c]
            o_renamed[r] = p_renamed[c]
    return resource, kind, im, allow, process, script, writable, renamed, source, im_source, address
