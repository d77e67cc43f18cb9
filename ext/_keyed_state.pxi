# KeyedDistinct's merge and saved state (included after _keyed.pxi; the methods call these).


cdef object _kd_merge(KeyedDistinct self, KeyedDistinct other):
    """The body of :meth:`KeyedDistinct.merge`."""
    if other is self:
        raise ValueError("cannot merge a KeyedDistinct with itself")
    if (other.window_days, other.exact_limit, other.seed) != (self.window_days, self.exact_limit, self.seed):
        raise ValueError(
            f"cannot merge KeyedDistinct(window_days={other.window_days}, exact_limit={other.exact_limit}, "
            f"seed={other.seed}) into KeyedDistinct(window_days={self.window_days}, "
            f"exact_limit={self.exact_limit}, seed={self.seed})")
    cdef uint32_t t = max(self.today, other.today)
    self._sweep(t)
    cdef uint64_t j, w, s
    cdef PairSlot* op
    cdef PairSlot* ps
    cdef KeySlot* ks
    cdef int64_t ki
    cdef uint64_t key
    cdef uint32_t cutoff = t - self.window_days if t > self.window_days else 0
    with nogil:
        for j in range(other._nbp * KD_BUCKET):
            op = &other._p[j]
            if op.day == 0 or op.day <= cutoff:
                continue
            key = other._k[op.ki].key
            ki = self._find_key(key, False)
            if ki >= 0:
                ps = self._find_pair(key, <uint32_t>ki, op.mfp, False)
                if ps != NULL:
                    if op.day > ps.day:
                        self._set_day(ps, op.day)
                    continue
            else:
                ki = self._find_key(key, True)
                if ki < 0:
                    self.dropped_keys += 1
                    continue
            ps = self._find_pair(key, <uint32_t>ki, op.mfp, True)
            ps.ki = <uint32_t>ki
            ps.mfp = op.mfp
            self._set_day(ps, op.day)
            ps.level = op.level
            ks = &self._k[ki]
            w = (<uint64_t>1) << op.level
            s = <uint64_t>ks.wsum + w
            ks.wsum = <uint32_t>(s if s < 0xFFFFFFFFU else 0xFFFFFFFFU)
            ks.wvar += <float>(w * (w - 1))
    self.evictions += other.evictions
    self.dropped_keys += other.dropped_keys
    self.too_old += other.too_old
    self.unsampled += other.unsampled
    return self


cdef object _kd_params(KeyedDistinct self):
    """The parameters :meth:`KeyedDistinct.to_bytes` saves."""
    return {"capacity": int(self.capacity), "key_capacity": int(self.key_capacity),
            "window_days": int(self.window_days), "exact_limit": int(self.exact_limit),
            "seed": str(self.seed), "today": int(self.today),
            "stats": [str(self.evictions), str(self.dropped_keys), str(self.too_old),
                      str(self.unsampled), str(self.sweeps)], "backoff": int(self._backoff)}


cdef object _kd_from_bytes(data):
    """The body of :meth:`KeyedDistinct.from_bytes`."""
    params, arrays = _format.unpack(data, "KeyedDistinct")
    F = "KeyedDistinct"
    try:
        cap, kcap = int(params["capacity"]), int(params["key_capacity"])
        window, limit, seed = int(params["window_days"]), int(params["exact_limit"]), int(params["seed"])
        today = int(params["today"])
        stats = [int(x) for x in params["stats"]]
        backoff = int(params.get("backoff", 0))        # absent in files written before displacement
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ValueError("corrupt raresketch KeyedDistinct: bad parameters") from None
    _format.expect(0 <= backoff <= KD_BACKOFF, F, "bad displacement back-off")
    _format.expect(len(stats) == 5 and all(0 <= x < (1 << 64) for x in stats), F, "bad statistics")
    _format.expect(0 <= today <= 65535 and cap % KD_BUCKET == 0 and kcap % KD_BUCKET == 0, F,
                   "parameters out of range")
    _format.expect(len(arrays) == 2 and arrays[0].shape == (cap, PAIR_DTYPE.itemsize)
                   and arrays[1].shape == (kcap, KEY_DTYPE.itemsize), F, "table sizes do not match capacities")
    try:
        out = KeyedDistinct(cap, kcap, window, limit, seed)
    except ValueError as e:
        raise ValueError(f"corrupt raresketch KeyedDistinct: {e}") from None
    pairs = np.ascontiguousarray(arrays[0]).reshape(-1).view(PAIR_DTYPE)
    keys = np.ascontiguousarray(arrays[1]).reshape(-1).view(KEY_DTYPE)
    live = pairs["day"] > 0
    ki = pairs["ki"][live].astype(np.int64)
    _format.expect(bool(np.all(ki < kcap)), F, "a pair points outside the key table")
    _format.expect(bool(np.all(pairs["level"][live] <= KD_MAX_LEVEL)), F, "pair level out of range")
    cutoff = today - window
    _format.expect(bool(np.all((pairs["day"][live] <= today) & (pairs["day"][live].astype(np.int64) > cutoff))),
                   F, "a pair's day lies outside the window")
    weights = np.bincount(ki, weights=np.ldexp(1.0, pairs["level"][live].astype(np.int32)), minlength=kcap)
    wsum = keys["wsum"].astype(np.float64)
    sat = keys["wsum"] == 0xFFFFFFFFU
    _format.expect(bool(np.all((weights == wsum) | (sat & (weights >= wsum)))), F,
                   "key counts are not the sums of their pairs' weights")
    _format.expect(bool(np.all(np.isfinite(keys["wvar"]) & (keys["wvar"] >= 0))), F, "bad variance")
    out._set_tables(pairs, keys)
    out.today = today
    out.evictions, out.dropped_keys, out.too_old, out.unsampled, out.sweeps = stats
    out._backoff = backoff
    return out
