# Sparse forms of KeyedDistinct and AgentTable: only the occupied slots, with their positions, for shipping
# partial baselines between tasks (raresketch.spark). Same container as every saved structure (versioned,
# CRC-checked, validated on load, never pickled), families "KeyedDistinctSparse" and "AgentTableSparse".


cdef object _kd_sparse_params(dict params, str F):
    """The parameters of a KeyedDistinct (sparse) header, checked: (cap, kcap, window, limit, seed, today,
    stats, backoff)."""
    try:
        cap, kcap = int(params["capacity"]), int(params["key_capacity"])
        window, limit, seed = int(params["window_days"]), int(params["exact_limit"]), int(params["seed"])
        today = int(params["today"])
        stats = [int(x) for x in params["stats"]]
        backoff = int(params["backoff"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ValueError(f"corrupt raresketch {F}: bad parameters") from None
    _format.expect(0 <= backoff <= KD_BACKOFF, F, "bad displacement back-off")
    _format.expect(len(stats) == 5 and all(0 <= x < (1 << 64) for x in stats), F, "bad statistics")
    _format.expect(0 <= today <= 65535 and cap % KD_BUCKET == 0 and kcap % KD_BUCKET == 0, F,
                   "parameters out of range")
    return cap, kcap, window, limit, seed, today, stats, backoff


cdef object _live_pair_slots(KeyedDistinct kd):
    """Positions of the live pair slots (day != 0), increasing: one pass over the table (the ring of live pairs
    per day gives their number)."""
    cdef uint64_t j, n = 0, N = kd._nbp * KD_BUCKET
    for j in range(kd._ring_mask + 1):
        n += kd._ring[j]
    out = np.empty(n, dtype=np.uint64)
    cdef uint64_t[::1] o = out
    cdef uint64_t k = 0
    if n == 0:
        return out
    with nogil:
        for j in range(N):
            if kd._p[j].day:
                if k == n:           # the ring disagrees with the table: never for a consistent structure
                    break
                o[k] = j
                k += 1
    if k != n:
        raise RuntimeError("KeyedDistinct's live-pair count disagrees with its table")
    return out


cdef object _live_key_slots(KeyedDistinct kd):
    """Positions of the live key slots (wsum != 0), increasing: one pass, into a lazily allocated buffer."""
    cdef uint64_t j, k = 0, N = kd._nbk * KD_BUCKET
    buf = np.empty(N, dtype=np.uint64)
    cdef uint64_t[::1] o = buf
    with nogil:
        for j in range(N):
            if kd._k[j].wsum:
                o[k] = j
                k += 1
    return buf[:k].copy()


cdef bint _strictly_increasing_below(idx, uint64_t bound):
    return bool(idx.size == 0 or (idx[-1] < bound and (idx.size == 1 or bool(np.all(idx[1:] > idx[:-1])))))


class KeyedDistinctSparse:
    """The occupied entries of a :class:`KeyedDistinct`: each live pair slot and key slot with its position.

    ``KeyedDistinctSparse.of(kd).to_dense()`` answers every question exactly as ``kd`` (the same slots at the same
    positions; only the dead bytes of emptied slots, which no lookup reads, are zero), and
    ``merge_into(target)`` equals ``target.merge(kd)`` byte for byte (the same entries in the same slot order).
    Size ``20 * pairs + 24 * keys`` bytes plus the header, instead of ``12 * capacity + 16 * key_capacity``.
    ``of`` scans the tables once (O(capacity), no allocation of that size); ``from_bytes``, ``to_dense`` and
    ``merge_into`` cost O(live entries) (``to_dense`` also allocates the dense tables, lazily zeroed).
    """

    def __init__(self, params, pidx, pairs, kidx, keys):
        self.params = params          # KeyedDistinct's own parameters (capacity ... backoff)
        self.pidx = pidx              # uint64[n]: positions of the live pair slots, increasing
        self.pairs = pairs            # PAIR_DTYPE[n]
        self.kidx = kidx              # uint64[m]: positions of the live key slots, increasing
        self.keys = keys              # KEY_DTYPE[m]

    @staticmethod
    def of(KeyedDistinct kd):
        """The occupied entries of ``kd`` (a copy). O(capacity)."""
        pidx = _live_pair_slots(kd)
        kidx = _live_key_slots(kd)
        return KeyedDistinctSparse(_kd_params(kd), pidx, kd._pairs[pidx], kidx, kd._keys[kidx])

    @property
    def num_pairs(self):
        return int(self.pidx.shape[0])

    @property
    def num_keys(self):
        return int(self.kidx.shape[0])

    def to_bytes(self):
        return _format.pack("KeyedDistinctSparse", self.params, [self.pidx, self.pairs, self.kidx, self.keys])

    @staticmethod
    def from_bytes(data):
        """Rebuild from :meth:`to_bytes`, checking what ``KeyedDistinct.from_bytes`` checks on the live entries
        only (positions in range and increasing, every pair pointing at a live key, days inside the window,
        levels in range, each key's count the sum of its pairs' weights); raises ``ValueError``. O(entries)."""
        F = "KeyedDistinctSparse"
        params, arrays = _format.unpack(data, F)
        cap, kcap, window, limit, seed, today, stats, backoff = _kd_sparse_params(params, F)
        _format.expect(len(arrays) == 4 and arrays[0].ndim == 1 and arrays[2].ndim == 1
                       and arrays[0].dtype == np.uint64 and arrays[2].dtype == np.uint64
                       and arrays[1].shape == (arrays[0].shape[0], PAIR_DTYPE.itemsize)
                       and arrays[3].shape == (arrays[2].shape[0], KEY_DTYPE.itemsize), F,
                       "entry arrays do not match")
        pidx, kidx = arrays[0], arrays[2]
        pairs = np.ascontiguousarray(arrays[1]).reshape(-1).view(PAIR_DTYPE)
        keys = np.ascontiguousarray(arrays[3]).reshape(-1).view(KEY_DTYPE)
        _format.expect(_strictly_increasing_below(pidx, cap) and _strictly_increasing_below(kidx, kcap), F,
                       "slot positions out of range or not increasing")
        try:
            KeyedDistinct(cap, kcap, window, limit, seed)    # the parameters' own checks (allocation is lazy)
        except ValueError as e:
            raise ValueError(f"corrupt raresketch {F}: {e}") from None
        day = pairs["day"].astype(np.int64)
        _format.expect(bool(np.all((day > 0) & (day <= today) & (day > today - window))), F,
                       "a pair's day lies outside the window")
        _format.expect(bool(np.all(pairs["level"] <= KD_MAX_LEVEL)), F, "pair level out of range")
        ki = pairs["ki"].astype(np.uint64)
        pos = np.searchsorted(kidx, ki)
        hit = pos < kidx.shape[0]
        hit[hit] = kidx[pos[hit]] == ki[hit]
        _format.expect(bool(np.all(hit)), F, "a pair points at an empty key slot")
        wsum = keys["wsum"]
        weights = np.bincount(pos, weights=np.ldexp(1.0, pairs["level"].astype(np.int32)), minlength=kidx.shape[0])
        sat = wsum == 0xFFFFFFFFU
        _format.expect(bool(np.all(wsum > 0)) and bool(np.all((weights == wsum) | (sat & (weights >= wsum)))), F,
                       "key counts are not the sums of their pairs' weights")
        _format.expect(bool(np.all(np.isfinite(keys["wvar"]) & (keys["wvar"] >= 0))), F, "bad variance")
        return KeyedDistinctSparse(params, pidx, pairs, kidx, keys)

    def to_dense(self):
        """The KeyedDistinct itself: O(entries) plus the (lazily zeroed) allocation of its tables."""
        cap, kcap, window, limit, seed, today, stats, backoff = _kd_sparse_params(self.params, "KeyedDistinctSparse")
        cdef KeyedDistinct out = KeyedDistinct(cap, kcap, window, limit, seed)
        out._pairs[self.pidx] = self.pairs
        out._keys[self.kidx] = self.keys
        ring = out._ring_arr
        ring += np.bincount(self.pairs["day"] & out._ring_mask, minlength=ring.shape[0]).astype(np.uint64)
        out.today = today
        out.evictions, out.dropped_keys, out.too_old, out.unsampled, out.sweeps = stats
        out._backoff = backoff
        return out

    def merge_into(self, KeyedDistinct target):
        """``target.merge(self.to_dense())`` without the dense copy: the same entries inserted in the same (slot)
        order, so the result is the same byte for byte. O(entries)."""
        cap, kcap, window, limit, seed, today, stats, backoff = _kd_sparse_params(self.params, "KeyedDistinctSparse")
        if (window, limit, seed) != (target.window_days, target.exact_limit, target.seed):
            raise ValueError(
                f"cannot merge KeyedDistinct(window_days={window}, exact_limit={limit}, seed={seed}) into "
                f"KeyedDistinct(window_days={target.window_days}, exact_limit={target.exact_limit}, "
                f"seed={target.seed})")
        pos = np.searchsorted(self.kidx, self.pairs["ki"].astype(np.uint64))
        key_arr = np.ascontiguousarray(self.keys["key"][pos] if pos.size else np.zeros(0, np.uint64), dtype=np.uint64)
        mfp_arr = np.ascontiguousarray(self.pairs["mfp"], dtype=np.uint32)
        day_arr = np.ascontiguousarray(self.pairs["day"], dtype=np.uint16)
        lvl_arr = np.ascontiguousarray(self.pairs["level"], dtype=np.uint8)
        cdef const uint64_t[::1] kk = key_arr
        cdef const uint32_t[::1] mm = mfp_arr
        cdef const uint16_t[::1] dd = day_arr
        cdef const uint8_t[::1] ll = lvl_arr
        cdef uint32_t t = max(target.today, <uint32_t>today)
        target._sweep(t)
        cdef uint32_t cutoff = t - target.window_days if t > target.window_days else 0
        cdef Py_ssize_t j, n = kk.shape[0]
        cdef uint64_t key, w, s
        cdef int64_t ki
        cdef PairSlot* ps
        cdef KeySlot* ks
        with nogil:
            for j in range(n):
                if dd[j] <= cutoff:
                    continue
                key = kk[j]
                ki = target._find_key(key, False)
                if ki >= 0:
                    ps = target._find_pair(key, <uint32_t>ki, mm[j], False)
                    if ps != NULL:
                        if dd[j] > ps.day:
                            target._set_day(ps, dd[j])
                        continue
                else:
                    ki = target._find_key(key, True)
                    if ki < 0:
                        target.dropped_keys += 1
                        continue
                ps = target._find_pair(key, <uint32_t>ki, mm[j], True)
                ps.ki = <uint32_t>ki
                ps.mfp = mm[j]
                target._set_day(ps, dd[j])
                ps.level = ll[j]
                ks = &target._k[ki]
                w = (<uint64_t>1) << ll[j]
                s = <uint64_t>ks.wsum + w
                ks.wsum = <uint32_t>(s if s < 0xFFFFFFFFU else 0xFFFFFFFFU)
                ks.wvar += <float>(w * (w - 1))
        target.evictions += stats[0]
        target.dropped_keys += stats[1]
        target.too_old += stats[2]
        target.unsampled += stats[3]
        return target


class AgentTableSparse:
    """The occupied slots of an :class:`AgentTable` with their positions (16 + 8 bytes per agent instead of
    16 bytes per slot). ``of`` is O(capacity); ``from_bytes`` validates as ``AgentTable.from_bytes`` does
    (days in order and in range, each agent where linear probing finds it) in O(agents); ``to_dense``
    rebuilds the table exactly (its live slots at their positions)."""

    def __init__(self, params, idx, slots):
        self.params = params
        self.idx = idx                # uint64[n]: positions of the live slots, increasing
        self.slots = slots            # AGENT_DTYPE[n]

    @staticmethod
    def of(AgentTable t):
        idx = np.flatnonzero(t._slots["first"]).astype(np.uint64)
        params = {"capacity": int(t.capacity), "window_days": int(t.window_days), "seed": str(t.seed),
                  "today": int(t.today), "first_day": int(t.first_day), "dropped": str(t.dropped),
                  "active_day": int(t._active_day), "active_count": str(t._active_count)}
        return AgentTableSparse(params, idx, t._slots[idx])

    def to_bytes(self):
        return _format.pack("AgentTableSparse", self.params, [self.idx, self.slots])

    @staticmethod
    def from_bytes(data):
        F = "AgentTableSparse"
        params, arrays = _format.unpack(data, F)
        sp = AgentTableSparse(params, None, None)
        cap = sp._checked()[0]
        _format.expect(len(arrays) == 2 and arrays[0].ndim == 1 and arrays[0].dtype == np.uint64
                       and arrays[1].shape == (arrays[0].shape[0], AGENT_DTYPE.itemsize), F, "entry arrays do not match")
        sp.idx = arrays[0]
        sp.slots = np.ascontiguousarray(arrays[1]).reshape(-1).view(AGENT_DTYPE)
        slots_for_cap = 1
        while slots_for_cap < cap * 4 // 3 + 1:
            slots_for_cap <<= 1
        _format.expect(_strictly_increasing_below(sp.idx, slots_for_cap), F,
                       "slot positions out of range or not increasing")
        _format.expect(sp.idx.shape[0] <= cap, F, "more agents than capacity")
        sp.to_dense()          # checks days and slot positions
        return sp

    def _checked(self):
        F = "AgentTableSparse"
        p = self.params
        try:
            cap, window, seed = int(p["capacity"]), int(p["window_days"]), int(p["seed"])
            today, first_day, dropped = int(p["today"]), int(p["first_day"]), int(p["dropped"])
            active_day, active_count = int(p["active_day"]), int(p["active_count"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"corrupt raresketch {F}: bad parameters") from None
        _format.expect(8 <= cap <= (1 << 32), F, f"capacity {cap} out of range")
        _format.expect(0 <= today <= 65535 and 0 <= first_day <= today and 0 <= dropped < (1 << 64), F,
                       "days out of range")
        _format.expect(active_day in (0, today) and 0 <= active_count <= cap, F, "active-agent count out of range")
        try:
            AgentTable(cap, window, seed)
        except ValueError as e:
            raise ValueError(f"corrupt raresketch {F}: {e}") from None
        return cap, window, seed, today, first_day, dropped, active_day, active_count

    def to_dense(self):
        """The AgentTable itself (raises ``ValueError`` if the entries contradict each other). O(agents) plus the
        lazily zeroed allocation."""
        F = "AgentTableSparse"
        cap, window, seed, today, first_day, dropped, active_day, active_count = self._checked()
        cdef AgentTable out = AgentTable(cap, window, seed)
        s = self.slots
        _format.expect(bool(np.all((s["first"] > 0) & (s["last"] >= s["first"]) & (s["last"] <= today))), F,
                       "agent days out of order")
        out._slots[self.idx] = s
        out._hist[:] = np.bincount(s["last"], minlength=AG_DAYS).astype(np.uint32)
        out.size = int(self.idx.shape[0])
        out.today, out.first_day, out.dropped = today, first_day, dropped
        out._active_day, out._active_count = active_day, active_count
        _format.expect(bool(np.all(out._probe_all(s["key"]))), F, "agent slots are not where their keys hash")
        return out
