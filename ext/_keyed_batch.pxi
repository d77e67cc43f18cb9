# KeyedDistinct's batch passes (included after _keyed.pxi; the methods call these): the plain batch behind
# observe / update / last_seen / count, and the masked, in-place pass over a batch's columns behind observe_into.


cdef object _kd_days(days, Py_ssize_t n):
    d = np.asarray(days)
    if d.dtype.kind not in "iu":
        raise TypeError(f"days must be integers (days since 1970-01-01), not {d.dtype}")
    if d.ndim == 0:
        d = np.full(n, int(d), dtype=np.int64)
    if d.shape != (n,):
        raise ValueError(f"days has shape {d.shape}, keys has {n} entries")
    if d.size and (d.min() < 1 or d.max() > 65535):
        raise ValueError("days must be in [1, 65535] (days since 1970-01-01)")
    return np.ascontiguousarray(d, dtype=np.uint16)


cdef object _kd_pair_arrays(keys, members):
    k = as_keys(keys)
    m = as_keys(members)
    if k.shape[0] != m.shape[0]:
        if m.shape[0] == 1:
            m = np.full(k.shape[0], m[0], dtype=np.uint64)
        elif k.shape[0] == 1:
            k = np.full(m.shape[0], k[0], dtype=np.uint64)
        else:
            raise ValueError(f"keys and members differ in length: {k.shape[0]} and {m.shape[0]}")
    return k, m


cdef object _kd_run(KeyedDistinct self, keys, members, days, bint learn, bint want, learn_mask=None):
    """Probe a block of ``KD_BLOCK`` events ahead (buckets prefetched), then observe them in order."""
    karr, marr = _kd_pair_arrays(keys, members)
    cdef Py_ssize_t i, n = karr.shape[0]
    cdef const uint64_t[::1] k = karr
    cdef const uint64_t[::1] m = marr
    cdef const uint16_t[::1] d
    cdef const uint8_t[::1] lm
    cdef bint masked = learn_mask is not None
    if learn:
        d = _kd_days(days, n)
    if masked:
        lmask = np.ascontiguousarray(learn_mask, dtype=np.bool_)
        if lmask.shape != (n,):
            raise ValueError(f"learn has shape {lmask.shape}, keys has {n} entries")
        lm = lmask.view(np.uint8)
    counts = np.empty(n if want else 0, dtype=np.uint32)
    last = np.empty(n if want else 0, dtype=np.uint16)
    cdef uint32_t[::1] co = counts
    cdef uint16_t[::1] lo = last
    cdef uint32_t c
    cdef uint16_t ld
    cdef KdProbe pr[KD_BLOCK]
    cdef Py_ssize_t j, b, i0 = 0
    cdef bint prefetch = self.nbytes >= (1 << 20)
    with nogil:
        while i0 < n:
            b = min(<Py_ssize_t>KD_BLOCK, n - i0)
            for j in range(b):
                self._probe(k[i0 + j], m[i0 + j], &pr[j], prefetch)
            for j in range(b):
                i = i0 + j
                self._observe(k[i], &pr[j], d[i] if learn else 0, learn and (not masked or lm[i]), &c, &ld)
                if want:
                    co[i] = c
                    lo[i] = ld
            i0 += b
    return (counts, last) if want else None


cdef object _kd_column(values, Py_ssize_t n, str name):
    """``values`` as a contiguous uint64 array of ``n`` keys."""
    a = as_keys(values)
    if a.shape[0] != n:
        raise ValueError(f"{name} has {a.shape[0]} entries, keys has {n}")
    return a


cdef object _kd_mask(values, Py_ssize_t n, str name):
    """``values`` as a contiguous bool array of ``n`` entries, viewed as bytes."""
    a = np.ascontiguousarray(values, dtype=np.bool_)
    if a.shape != (n,):
        raise ValueError(f"{name} has shape {a.shape}, keys has {n} entries")
    return a.view(np.uint8)


cdef object _kd_out(values, Py_ssize_t n, str name):
    """``values``, checked to be a writable contiguous int64 array of ``n`` entries (an output)."""
    if not (isinstance(values, np.ndarray) and values.dtype == np.int64 and values.shape == (n,)
            and values.flags.c_contiguous and values.flags.writeable):
        raise ValueError(f"{name} must be a writable contiguous int64 array of {n} entries")
    return values


cdef object _kd_observe_into(KeyedDistinct self, keys, members, days, where, counts, last, learn,
                             key_with, member_with, keys2, counts2):
    """The body of :meth:`KeyedDistinct.observe_into`: one pass over the rows; selected rows are probed a block
    ahead (buckets prefetched, as :func:`_kd_run`), then observed in row order."""
    karr = as_keys(keys)
    cdef Py_ssize_t n = karr.shape[0]
    marr = _kd_column(members, n, "members")
    darr = np.asarray(days)
    if darr.dtype.kind not in "iu":
        raise TypeError(f"days must be integers (days since 1970-01-01), not {darr.dtype}")
    if darr.shape != (n,):
        raise ValueError(f"days has shape {darr.shape}, keys has {n} entries")
    cols = {"where": None if where is None else _kd_mask(where, n, "where"),
            "learn": None if learn is None else _kd_mask(learn, n, "learn"),
            "key_with": None if key_with is None else _kd_column(key_with, n, "key_with"),
            "member_with": None if member_with is None else _kd_column(member_with, n, "member_with"),
            "keys2": None if keys2 is None else _kd_column(keys2, n, "keys2"),
            "counts": None if counts is None else _kd_out(counts, n, "counts"),
            "last": None if last is None else _kd_out(last, n, "last"),
            "counts2": None if counts2 is None else _kd_out(counts2, n, "counts2")}
    if counts2 is not None and keys2 is None:
        raise ValueError("counts2 needs keys2")
    if darr.dtype != np.uint16:         # checked here at the selected rows; the others may wrap: never read
        picked = darr if where is None else darr[cols["where"].view(np.bool_)]
        if picked.size and (picked.min() < 1 or picked.max() > 65535):
            raise ValueError("days must be in [1, 65535] (days since 1970-01-01)")
        darr = darr.astype(np.uint16)
    darr = np.ascontiguousarray(darr)
    if n == 0:
        return None
    cdef const uint64_t[::1] kv = karr
    cdef const uint64_t[::1] mv = marr
    cdef const uint16_t[::1] dv = darr
    cdef const uint64_t* kp = &kv[0]
    cdef const uint64_t* mp = &mv[0]
    cdef const uint16_t* dp = &dv[0]
    cdef const uint8_t* wp = NULL
    cdef const uint8_t* lnp = NULL
    cdef const uint64_t* kwp = NULL
    cdef const uint64_t* mwp = NULL
    cdef const uint64_t* k2p = NULL
    cdef int64_t* cp = NULL
    cdef int64_t* lp = NULL
    cdef int64_t* c2p = NULL
    cdef const uint8_t[::1] u8
    cdef const uint64_t[::1] u64
    cdef int64_t[::1] o64
    if cols["where"] is not None:
        u8 = cols["where"]
        wp = &u8[0]
    if cols["learn"] is not None:
        u8 = cols["learn"]
        lnp = &u8[0]
    if cols["key_with"] is not None:
        u64 = cols["key_with"]
        kwp = &u64[0]
    if cols["member_with"] is not None:
        u64 = cols["member_with"]
        mwp = &u64[0]
    if cols["keys2"] is not None:
        u64 = cols["keys2"]
        k2p = &u64[0]
    if counts is not None:
        o64 = counts
        cp = &o64[0]
    if last is not None:
        o64 = last
        lp = &o64[0]
    if counts2 is not None:
        o64 = counts2
        c2p = &o64[0]
    cdef Py_ssize_t i, j, r, nb
    cdef uint8_t bad = 0
    with nogil:                 # validate first (branch-free): a bad day changes nothing
        if wp == NULL:
            for i in range(n):
                bad |= dp[i] == 0
        else:
            for i in range(n):
                bad |= wp[i] & (dp[i] == 0)
    if bad:
        raise ValueError("days must be in [1, 65535] (days since 1970-01-01)")
    cdef KdProbe pr[KD_BLOCK]
    cdef Py_ssize_t gr[KD_CHUNK]
    cdef uint64_t gk[KD_CHUNK]
    cdef uint64_t gm[KD_CHUNK]
    cdef uint32_t gd[KD_CHUNK]
    cdef uint8_t gl[KD_CHUNK]
    cdef uint32_t gc[KD_CHUNK]
    cdef uint16_t gld[KD_CHUNK]
    cdef uint32_t c
    cdef uint16_t ld
    cdef bint prefetch = self.nbytes >= (1 << 20)
    cdef Py_ssize_t m, b, i0, i1, u, per = 2 if k2p != NULL else 1
    with nogil:
        i1 = 0
        while i1 < n:
            # 1. the selected rows of the next KD_CHUNK / per rows, compacted without branches
            i0 = i1
            i1 = min(n, i0 + KD_CHUNK // per)
            m = 0
            if wp != NULL:              # rows not selected answer 0 (zeroed a chunk at a time: cache-hot)
                if cp != NULL:
                    memset(&cp[i0], 0, (i1 - i0) * sizeof(int64_t))
                if lp != NULL:
                    memset(&lp[i0], 0, (i1 - i0) * sizeof(int64_t))
                if c2p != NULL:
                    memset(&c2p[i0], 0, (i1 - i0) * sizeof(int64_t))
            if wp == NULL:
                for i in range(i0, i1):
                    gr[m] = i
                    m += 1
            else:
                for i in range(i0, i1):
                    gr[m] = i
                    m += wp[i]
            # 2. gather their (key, member, day, learn): independent loads, as numpy's take
            for u in range(m):
                gk[u] = kp[gr[u]]
                gm[u] = mp[gr[u]]
                gd[u] = dp[gr[u]]
            if kwp != NULL:
                for u in range(m):
                    gk[u] = rs_hash_pair(gk[u], kwp[gr[u]], 0)
            if mwp != NULL:
                for u in range(m):
                    gm[u] = rs_hash_pair(gm[u], mwp[gr[u]], 0)
            if lnp != NULL:
                for u in range(m):
                    gl[u] = lnp[gr[u]]
            else:
                memset(gl, 1, m)
            if k2p != NULL:             # a second key per row, observed right after the first
                for u in range(m - 1, -1, -1):
                    gr[2 * u + 1] = gr[2 * u] = gr[u]
                    gk[2 * u + 1], gk[2 * u] = k2p[gr[u]], gk[u]
                    gm[2 * u + 1] = gm[2 * u] = gm[u]
                    gd[2 * u + 1] = gd[2 * u] = gd[u]
                    gl[2 * u + 1] = gl[2 * u] = gl[u]
                m *= 2
            # 3. the structure's pass, as _kd_run: a block probed (buckets prefetched) ahead, then observed
            u = 0
            while u < m:
                b = min(<Py_ssize_t>KD_BLOCK, m - u)
                for j in range(b):
                    self._probe(gk[u + j], gm[u + j], &pr[j], prefetch)
                for j in range(b):
                    self._observe(gk[u + j], &pr[j], gd[u + j], gl[u + j], &gc[u + j], &gld[u + j])
                u += b
            # 4. scatter the answers
            if per == 2:
                for u in range(0, m, 2):
                    if cp != NULL:
                        cp[gr[u]] = gc[u]
                    if c2p != NULL:
                        c2p[gr[u]] = gc[u + 1]
            else:
                if cp != NULL:
                    for u in range(m):
                        cp[gr[u]] = gc[u]
                if lp != NULL:
                    for u in range(m):
                        lp[gr[u]] = gld[u]
    return None
