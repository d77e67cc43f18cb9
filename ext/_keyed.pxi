# KeyedDistinct: per-key distinct counts and pair membership over a sliding window of days.

cdef packed struct PairSlot:      # 12 bytes: one (key, member) pair seen in the window
    uint32_t ki                   # index of the key's slot in the key table
    uint32_t mfp                  # 32-bit member fingerprint
    uint16_t day                  # last day seen (days since 1970-01-01); 0 = empty slot
    uint8_t level                 # sampling level at insertion: the pair weighs 2**level
    uint8_t pad

cdef packed struct KeySlot:       # 16 bytes: one key with live pairs
    uint64_t key
    uint32_t wsum                 # estimated distinct members in the window (sum of pair weights); 0 = empty
    float wvar                    # variance of that estimate (sum of w * (w - 1))

cdef struct KdProbe:              # where one (key, member) lives: computed, and prefetched, ahead of use
    uint64_t kb1, kb2             # the key's two candidate buckets in the key table
    uint64_t pb1, pb2             # the pair's two candidate buckets in the pair table
    uint32_t mfp

cdef enum:
    KD_BUCKET = 4
    KD_MAX_LEVEL = 31
    KD_BLOCK = 16                 # events whose buckets are prefetched before any of them is processed
    KD_BACKOFF = 64               # after a displacement fails, this many full-bucket inserts evict directly
    KD_CHUNK = 512                # selected rows gathered at a time by observe_into

PAIR_DTYPE = np.dtype([("ki", "<u4"), ("mfp", "<u4"), ("day", "<u2"), ("level", "u1"), ("pad", "u1")])
KEY_DTYPE = np.dtype([("key", "<u8"), ("wsum", "<u4"), ("wvar", "<f4")])

cdef uint64_t KD_SEED_KEY = 0x2545F4914F6CDD1DULL
cdef uint64_t KD_SEED_PAIR = 0x9E6C63D0676A9A99ULL
cdef uint64_t KD_SEED_MEMBER = 0xD6E8FEB86659FD93ULL
cdef uint64_t KD_SEED_SAMPLE = 0xA0761D6478BD642FULL


cdef inline uint32_t _kd_level(uint32_t wsum, uint32_t limit) noexcept nogil:
    """Sampling level for new members: 0 below ``limit``, then bit_length(wsum // limit)."""
    cdef uint32_t q = wsum // limit
    if q == 0:
        return 0
    return <uint32_t>(64 - rs_clz64(q))


cdef inline uint64_t _pow2_at_least(uint64_t x):
    cdef uint64_t p = 1
    while p < x:
        p <<= 1
    return p


cdef class KeyedDistinct:
    """Per-key distinct counts and pair membership over a sliding window of days, in bounded memory.

    For each key (a destination, say) it answers *how many distinct members (agents) were seen with it in the
    last* ``window_days`` *days* and, for each (key, member) pair, *on which day it was last seen*. It is the
    structure behind the detectors' prevalence and "contacted before?" questions.

    Design. The shared-pool estimators of the literature (vHLL, SpreadSketch) are noisy exactly where rarity
    thresholds sit (1-100 members: the noise of the other keys in the pool is of the order of the count). So
    this structure stores the pairs themselves, as fingerprints in a shared bucketised hash table (two
    choices, four 12-byte slots per bucket), each with its last-seen day, plus a key table holding each key's
    running count. While a key has fewer than ``exact_limit`` members its count is exact (up to 32-bit
    fingerprint collisions, probability about ``n**2 / 2**33`` per key). Beyond that, a new member is stored
    only if its hash falls in a sample of rate ``2**-L`` (L grows with the count: ``L = bit_length(count //
    exact_limit)``) and then weighs ``2**L``: a Horvitz-Thompson estimate, unbiased because L is fixed by the
    members seen before. A key therefore holds about ``exact_limit * (1 + log2(n / exact_limit) / 2)``
    pairs, and its relative standard error beyond the limit is about ``sqrt(2 / exact_limit)`` (the variance
    estimate is kept per key: :meth:`count_interval`).

    Windowing really forgets: each pair keeps its last-seen day; when the newest day seen advances, pairs
    last seen ``window_days`` or more days ago are removed and their weight leaves the key's count (one
    O(capacity) sweep per new day). Events older than the window are counted in ``stats['too_old']`` and
    not learned.

    Memory is fixed at construction: ``12 * capacity + 16 * key_capacity`` bytes. When both candidate
    buckets of a new pair are full, a resident pair is moved to its other bucket (cuckoo displacement, two
    levels), so the pair table fills to ~90 % before the pair last seen longest ago is evicted
    (``stats['evictions']``). Keys cannot move (pairs point at their slot): a new key that finds no slot is
    not learned (``stats['dropped_keys']``), from ~70 % full. Both are health signals: size ``capacity`` to the
    expected live pairs / 0.9 and ``key_capacity`` to the live keys / 0.7.

    Days are integers in [1, 65535] (days since 1970-01-01). Observe is O(1) per event (two key-table and
    two pair-table buckets); batch calls release the GIL. Not thread-safe for concurrent writers.
    """
    cdef readonly uint64_t capacity
    cdef readonly uint64_t key_capacity
    cdef readonly uint32_t window_days
    cdef readonly uint32_t exact_limit
    cdef readonly uint64_t seed
    cdef readonly uint32_t today
    cdef uint64_t _nbp, _nbk
    cdef object _pairs, _keys
    cdef PairSlot* _p
    cdef KeySlot* _k
    cdef uint64_t _s_key, _s_pair, _s_member, _s_sample
    cdef public uint64_t evictions, dropped_keys, too_old, unsampled, sweeps
    cdef uint32_t _backoff                  # inserts left that evict without trying displacement
    cdef object _ring_arr                   # live pairs by last-seen day, at day & _ring_mask (not saved: derived)
    cdef uint64_t* _ring
    cdef uint64_t _ring_mask

    def __init__(self, capacity=1 << 20, key_capacity=None, window_days=30, exact_limit=256, seed=0):
        capacity = int(capacity)
        key_capacity = capacity if key_capacity is None else int(key_capacity)
        if not KD_BUCKET * 2 <= capacity <= (1 << 34):
            raise ValueError(f"capacity must be in [8, 2**34], got {capacity}")
        if not KD_BUCKET * 2 <= key_capacity <= (1 << 32):
            raise ValueError(f"key_capacity must be in [8, 2**32], got {key_capacity}")
        if not 1 <= int(window_days) <= 10000:
            raise ValueError(f"window_days must be in [1, 10000], got {window_days}")
        if not 1 <= int(exact_limit) <= (1 << 24):
            raise ValueError(f"exact_limit must be in [1, 2**24], got {exact_limit}")
        if not 0 <= int(seed) < (1 << 64):
            raise ValueError(f"seed must be an unsigned 64-bit integer, got {seed}")
        self._nbp = (capacity + KD_BUCKET - 1) // KD_BUCKET
        self._nbk = (key_capacity + KD_BUCKET - 1) // KD_BUCKET
        self.capacity = self._nbp * KD_BUCKET
        self.key_capacity = self._nbk * KD_BUCKET
        self.window_days = int(window_days)
        self.exact_limit = int(exact_limit)
        self.seed = int(seed)
        self.today = 0
        self.evictions = self.dropped_keys = self.too_old = self.unsampled = self.sweeps = 0
        self._s_key = rs_fmix64(self.seed ^ KD_SEED_KEY)
        self._s_pair = rs_fmix64(self.seed ^ KD_SEED_PAIR)
        self._s_member = rs_fmix64(self.seed ^ KD_SEED_MEMBER)
        self._s_sample = rs_fmix64(self.seed ^ KD_SEED_SAMPLE)
        self._set_tables(np.zeros(self.capacity, dtype=PAIR_DTYPE), np.zeros(self.key_capacity, dtype=KEY_DTYPE),
                         True)

    cdef _set_tables(self, pairs, keys, bint empty=False):
        cdef uint8_t[::1] pv = pairs.view(np.uint8)
        cdef uint8_t[::1] kv = keys.view(np.uint8)
        self._pairs = pairs
        self._keys = keys
        self._p = <PairSlot*>&pv[0]
        self._k = <KeySlot*>&kv[0]
        # Live days span at most window_days consecutive days, so a power of two >= window_days tells them apart.
        # Fresh zeroed tables (``empty``) hold no live pair: their count is zero without reading them (which also
        # leaves their pages untouched until used).
        if empty:
            ring = np.zeros(_pow2_at_least(self.window_days), np.uint64)
        else:
            ring = np.bincount(pairs["day"][pairs["day"] > 0] & (_pow2_at_least(self.window_days) - 1),
                               minlength=_pow2_at_least(self.window_days)).astype(np.uint64)
        cdef uint64_t[::1] rv = ring
        self._ring_arr = ring
        self._ring = &rv[0]
        self._ring_mask = ring.shape[0] - 1

    # ---- kernels (no GIL) ---------------------------------------------------------------------------
    cdef inline void _buckets(self, uint64_t h, uint64_t nb, uint64_t* b1, uint64_t* b2) noexcept nogil:
        b1[0] = rs_reduce(h, nb)
        b2[0] = rs_reduce(rs_fmix64(h ^ 0x94D049BB133111EBULL), nb)
        if b2[0] == b1[0]:
            b2[0] = (b1[0] + 1) % nb

    cdef inline void _probe(self, uint64_t key, uint64_t member, KdProbe* pr, bint prefetch) noexcept nogil:
        pr.mfp = <uint32_t>(rs_fmix64(member ^ self._s_member) >> 32)
        self._buckets(rs_fmix64(key ^ self._s_key), self._nbk, &pr.kb1, &pr.kb2)
        self._buckets(rs_fmix64(key ^ rs_fmix64(<uint64_t>pr.mfp ^ self._s_pair)), self._nbp, &pr.pb1, &pr.pb2)
        if prefetch:
            RS_PREFETCH(&self._k[pr.kb1 * KD_BUCKET])
            RS_PREFETCH(&self._k[pr.kb2 * KD_BUCKET])
            RS_PREFETCH(&self._p[pr.pb1 * KD_BUCKET])
            RS_PREFETCH(&self._p[pr.pb2 * KD_BUCKET])

    cdef inline int64_t _find_key(self, uint64_t key, bint create) noexcept nogil:
        cdef uint64_t b1, b2
        self._buckets(rs_fmix64(key ^ self._s_key), self._nbk, &b1, &b2)
        return self._find_key_at(key, b1, b2, create)

    cdef inline int64_t _find_key_at(self, uint64_t key, uint64_t b1, uint64_t b2, bint create) noexcept nogil:
        """Slot index of ``key`` in the key table, or -1. With ``create``, claim a free slot for it."""
        cdef uint64_t j
        cdef int64_t free1 = -1, free2 = -1
        cdef int n1 = 0, n2 = 0
        for j in range(b1 * KD_BUCKET, b1 * KD_BUCKET + KD_BUCKET):
            if self._k[j].wsum:
                if self._k[j].key == key:
                    return j
            else:
                n1 += 1
                if free1 < 0:
                    free1 = j
        for j in range(b2 * KD_BUCKET, b2 * KD_BUCKET + KD_BUCKET):
            if self._k[j].wsum:
                if self._k[j].key == key:
                    return j
            else:
                n2 += 1
                if free2 < 0:
                    free2 = j
        if not create:
            return -1
        if n2 > n1:
            free1 = free2
        if free1 >= 0:
            self._k[free1].key = key
            self._k[free1].wvar = 0
        return free1

    cdef inline void _unweigh(self, PairSlot* ps) noexcept nogil:
        """Remove a pair's weight from its key (freeing the key at zero) and empty the slot."""
        cdef KeySlot* ks = &self._k[ps.ki]
        cdef uint64_t w = (<uint64_t>1) << ps.level
        if ks.wsum != 0xFFFFFFFFU:
            ks.wsum = <uint32_t>(ks.wsum - w) if ks.wsum > w else 0
        ks.wvar -= <float>(w * (w - 1))
        if ks.wsum == 0 or ks.wvar < 0:
            ks.wvar = 0
        self._ring[ps.day & self._ring_mask] -= 1
        ps.day = 0

    cdef inline void _set_day(self, PairSlot* ps, uint16_t day) noexcept nogil:
        """Set a pair's last-seen day (0 in an empty slot being claimed), keeping the live-pairs-per-day ring."""
        if ps.day:
            self._ring[ps.day & self._ring_mask] -= 1
        self._ring[day & self._ring_mask] += 1
        ps.day = day

    cdef inline PairSlot* _find_pair(self, uint64_t key, uint32_t ki, uint32_t mfp, bint claim) noexcept nogil:
        cdef uint64_t b1, b2
        self._buckets(rs_fmix64(key ^ rs_fmix64(<uint64_t>mfp ^ self._s_pair)), self._nbp, &b1, &b2)
        return self._find_pair_at(ki, mfp, b1, b2, claim)

    cdef inline PairSlot* _find_pair_at(self, uint32_t ki, uint32_t mfp, uint64_t b1, uint64_t b2,
                                        bint claim) noexcept nogil:
        """The pair's slot, or NULL. With ``claim``, return a free (or evicted) slot for it instead of NULL."""
        cdef uint64_t j
        cdef PairSlot* s
        cdef PairSlot* free1 = NULL
        cdef PairSlot* free2 = NULL
        cdef PairSlot* oldest = NULL
        cdef int n1 = 0, n2 = 0
        for j in range(b1 * KD_BUCKET, b1 * KD_BUCKET + KD_BUCKET):
            s = &self._p[j]
            if s.day:
                if s.ki == ki and s.mfp == mfp:
                    return s
                if oldest == NULL or s.day < oldest.day:
                    oldest = s
            else:
                n1 += 1
                if free1 == NULL:
                    free1 = s
        for j in range(b2 * KD_BUCKET, b2 * KD_BUCKET + KD_BUCKET):
            s = &self._p[j]
            if s.day:
                if s.ki == ki and s.mfp == mfp:
                    return s
                if oldest == NULL or s.day < oldest.day:
                    oldest = s
            else:
                n2 += 1
                if free2 == NULL:
                    free2 = s
        if not claim:
            return NULL
        if n2 > n1:
            free1 = free2
        if free1 != NULL:
            return free1
        if self._backoff:                  # a table that is (nearly) full: displacement would fail again
            self._backoff -= 1
        else:
            s = self._displace(b1, b2)
            if s != NULL:
                return s
            self._backoff = KD_BACKOFF
        self.evictions += 1
        self._unweigh(oldest)
        return oldest

    cdef inline uint64_t _alt_bucket(self, PairSlot* s, uint64_t here) noexcept nogil:
        """The other bucket of the pair in ``s`` (which lies in bucket ``here``), or ``here`` when it has none to
        go to (its key slot is empty, or ``here`` is not one of its buckets)."""
        cdef uint64_t c1, c2
        if self._k[s.ki].wsum == 0:
            return here
        self._buckets(rs_fmix64(self._k[s.ki].key ^ rs_fmix64(<uint64_t>s.mfp ^ self._s_pair)), self._nbp, &c1, &c2)
        if here == c1:
            return c2
        if here == c2:
            return c1
        return here

    cdef inline PairSlot* _free_in(self, uint64_t b) noexcept nogil:
        cdef uint64_t k
        for k in range(b * KD_BUCKET, b * KD_BUCKET + KD_BUCKET):
            if self._p[k].day == 0:
                return &self._p[k]
        return NULL

    cdef inline PairSlot* _displace(self, uint64_t b1, uint64_t b2) noexcept nogil:
        """Both buckets full: make room by moving pairs to their other bucket (cuckoo displacement, breadth
        first, two levels: a pair of b1/b2 to a free slot of its other bucket, else a pair of that bucket to
        its own other bucket and the first pair into the slot it left). Returns the freed slot, or NULL. The
        table then fills to ~95 % before it evicts (plain two choices: ~50 %). A pair's two buckets follow
        from its key and fingerprint, so a moved pair stays where lookups look."""
        cdef uint64_t j, k, here, alt, alt2
        cdef PairSlot* s
        cdef PairSlot* t
        cdef PairSlot* f
        for j in range(2 * KD_BUCKET):                       # level 1
            here = b1 if j < KD_BUCKET else b2
            s = &self._p[here * KD_BUCKET + (j % KD_BUCKET)]
            alt = self._alt_bucket(s, here)
            if alt == b1 or alt == b2:
                continue
            f = self._free_in(alt)
            if f != NULL:
                f[0] = s[0]
                s.day = 0
                return s
        for j in range(2 * KD_BUCKET):                       # level 2
            here = b1 if j < KD_BUCKET else b2
            s = &self._p[here * KD_BUCKET + (j % KD_BUCKET)]
            alt = self._alt_bucket(s, here)
            if alt == b1 or alt == b2:
                continue
            for k in range(alt * KD_BUCKET, alt * KD_BUCKET + KD_BUCKET):
                t = &self._p[k]
                alt2 = self._alt_bucket(t, alt)
                if alt2 == alt or alt2 == b1 or alt2 == b2:
                    continue
                f = self._free_in(alt2)
                if f != NULL:
                    f[0] = t[0]
                    t[0] = s[0]
                    s.day = 0
                    return s
        return NULL

    cdef void _sweep(self, uint32_t new_today) noexcept nogil:
        """Advance the newest day to ``new_today`` and drop pairs that left the window. The ring of live pairs
        per day says how many leave: none (a day inside the window's first days) costs nothing, otherwise one
        scan of the pair table that stops at the last of them. O(capacity) per day that drops pairs."""
        cdef uint64_t j, expiring = 0
        cdef uint32_t cutoff, old_cut, d
        if new_today <= self.today:
            return
        old_cut = self.today - self.window_days if self.today > self.window_days else 0
        self.today = new_today
        if new_today <= self.window_days:
            return
        cutoff = new_today - self.window_days      # pairs last seen on or before this day are gone
        if cutoff - old_cut >= self.window_days:  # every live pair (they all lie after old_cut)
            for j in range(self._ring_mask + 1):
                expiring += self._ring[j]
        else:
            for d in range(old_cut + 1, cutoff + 1):
                expiring += self._ring[d & self._ring_mask]
        if expiring == 0:
            return
        self.sweeps += 1
        for j in range(self._nbp * KD_BUCKET):
            if self._p[j].day and self._p[j].day <= cutoff:
                self._unweigh(&self._p[j])
                expiring -= 1
                if expiring == 0:
                    break

    cdef inline void _observe(self, uint64_t key, const KdProbe* pr, uint32_t day, bint learn,
                              uint32_t* prior_count, uint16_t* prior_day) noexcept nogil:
        cdef uint32_t mfp = pr.mfp
        cdef int64_t ki
        cdef PairSlot* ps = NULL
        cdef KeySlot* ks
        cdef uint32_t level
        cdef uint64_t w, u, s
        if day > self.today:                     # an event moves the window, learned or not (day 0: a query)
            self._sweep(day)
        ki = self._find_key_at(key, pr.kb1, pr.kb2, False)
        if ki >= 0:
            prior_count[0] = self._k[ki].wsum
            ps = self._find_pair_at(<uint32_t>ki, mfp, pr.pb1, pr.pb2, False)
        else:
            prior_count[0] = 0
        prior_day[0] = ps.day if ps != NULL else 0
        if not learn:
            return
        if self.today > self.window_days and day <= self.today - self.window_days:
            self.too_old += 1
            return
        if ps != NULL:
            if day > ps.day:
                self._set_day(ps, <uint16_t>day)
            return
        level = _kd_level(prior_count[0], self.exact_limit)
        if level > KD_MAX_LEVEL:
            level = KD_MAX_LEVEL
        if level:
            u = rs_fmix64(key ^ ((<uint64_t>mfp) * 0x9E3779B97F4A7C15ULL) ^ self._s_sample)
            if (u >> (64 - level)) != 0:
                self.unsampled += 1
                return
        if ki < 0:
            ki = self._find_key_at(key, pr.kb1, pr.kb2, True)
            if ki < 0:
                self.dropped_keys += 1
                return
        ps = self._find_pair_at(<uint32_t>ki, mfp, pr.pb1, pr.pb2, True)
        ps.ki = <uint32_t>ki
        ps.mfp = mfp
        self._set_day(ps, <uint16_t>day)
        ps.level = <uint8_t>level
        ks = &self._k[ki]
        w = (<uint64_t>1) << level
        s = <uint64_t>ks.wsum + w
        ks.wsum = <uint32_t>(s if s < 0xFFFFFFFFU else 0xFFFFFFFFU)
        ks.wvar += <float>(w * (w - 1))

    # ---- Python API ---------------------------------------------------------------------------------
    def observe(self, keys, members, days, learn=None):
        """Score-then-learn in one pass: for each event, in order, the key's count and the pair's last-seen day
        *before* this event, then learn it.

        Returns ``(prior_counts: uint32[n], prior_days: uint16[n])``; a prior day of 0 means the pair was not
        seen in the window. ``keys`` and ``members`` are uint64 keys (or strings, hashed), ``days`` an int
        array or scalar. ``learn``, a bool array, learns only the events where it is true (the others are
        answered in sequence and move the window's day, but are not learned). O(n), GIL released.
        """
        return _kd_run(self, keys, members, days, True, True, learn)

    def observe_into(self, keys, members, days, where=None, *, counts=None, last=None, learn=None,
                     key_with=None, member_with=None, keys2=None, counts2=None):
        """:meth:`observe` over the rows of a batch's columns that ``where`` selects, writing into the caller's
        arrays: the per-batch pass of a baseline, with no gather, scatter or temporary array.

        For each row ``i`` with ``where[i]`` (every row when None), in row order: the key is ``keys[i]``, or
        ``hash_pair(keys[i], key_with[i])`` when ``key_with`` is given; the member is ``members[i]``, or
        ``hash_pair(members[i], member_with[i])``; the event (key, member, ``days[i]``) is scored then learned
        exactly as :meth:`observe` does (only where ``learn[i]``, when ``learn`` is given), and its prior count
        and prior last-seen day are written to ``counts[i]`` and ``last[i]``. With ``keys2``, the same member is
        then observed under a second key ``keys2[i]`` (prior count to ``counts2[i]``). Rows not selected get 0
        in every output and change nothing. Equal to gathering the selected rows (interleaving the two keys)
        and calling :meth:`observe`.

        ``keys``, ``members``, ``key_with``, ``member_with`` and ``keys2`` are uint64 arrays of one length n;
        ``days`` an int array of n (days since 1970-01-01 in [1, 65535] at the selected rows, else
        ``ValueError`` before anything is learned; uint16 is read as it is, other types are checked and
        converted first); ``where`` and ``learn`` bool arrays of n; ``counts``,
        ``last`` and ``counts2`` writable contiguous int64 arrays of n (each optional). Returns None. O(n), one
        compiled pass, GIL released.
        """
        _kd_observe_into(self, keys, members, days, where, counts, last, learn, key_with, member_with, keys2,
                         counts2)

    def update(self, keys, members, days):
        """Learn the (key, member, day) events, in order. O(n)."""
        _kd_run(self, keys, members, days, True, False)

    def last_seen(self, keys, members):
        """Last day each (key, member) pair was seen in the window (uint16; 0 = not seen)."""
        return _kd_run(self, keys, members, None, False, True)[1]

    def count(self, keys):
        """Estimated distinct members of each key in the window (uint32). Exact below ``exact_limit``."""
        karr = as_keys(keys)
        return _kd_run(self, karr, np.zeros(1, dtype=np.uint64), None, False, True)[0]

    def count_interval(self, keys, num_std_dev=2.0):
        """``(lower, upper)`` float arrays: count -/+ ``num_std_dev`` standard errors (equal while exact)."""
        karr = as_keys(keys)
        est = self.count(karr).astype(np.float64)
        sd = np.sqrt(self._variances(karr))
        return np.maximum(est - num_std_dev * sd, 0.0), est + num_std_dev * sd

    cdef object _variances(self, karr):
        cdef const uint64_t[::1] k = karr
        out = np.zeros(k.shape[0], dtype=np.float64)
        cdef double[::1] o = out
        cdef Py_ssize_t i
        cdef int64_t ki
        with nogil:
            for i in range(k.shape[0]):
                ki = self._find_key(k[i], False)
                if ki >= 0:
                    o[i] = self._k[ki].wvar
        return out

    def observe_one(self, uint64_t key, uint64_t member, uint32_t day):
        """The per-event path of :meth:`observe`: returns ``(prior_count, prior_day)``."""
        cdef uint32_t c
        cdef uint16_t ld
        cdef KdProbe pr
        if day < 1 or day > 65535:
            raise ValueError("day must be in [1, 65535] (days since 1970-01-01)")
        self._probe(key, member, &pr, False)
        self._observe(key, &pr, day, True, &c, &ld)
        return c, ld

    def count_one(self, uint64_t key):
        cdef int64_t ki = self._find_key(key, False)
        return self._k[ki].wsum if ki >= 0 else 0

    def advance(self, day):
        """Move the window's newest day forward to ``day`` (no-op if not newer), forgetting what left it."""
        day = int(day)
        if not 1 <= day <= 65535:
            raise ValueError("day must be in [1, 65535] (days since 1970-01-01)")
        self._sweep(day)

    def items(self):
        """``(keys uint64[k], counts uint32[k])`` of every key with members in the window (unordered)."""
        live = self._keys["wsum"] > 0
        return self._keys["key"][live].copy(), self._keys["wsum"][live].copy()

    @property
    def num_keys(self):
        """Keys with at least one member in the window (exact)."""
        return int(np.count_nonzero(self._keys["wsum"]))

    @property
    def num_pairs(self):
        """Stored (key, member) pairs."""
        return int(np.count_nonzero(self._pairs["day"]))

    @property
    def load_factor(self):
        return self.num_pairs / self.capacity

    @property
    def nbytes(self):
        return self._pairs.nbytes + self._keys.nbytes

    @property
    def stats(self):
        """Health counters: evictions, dropped_keys, too_old, unsampled, sweeps, plus sizes and load."""
        return {"evictions": self.evictions, "dropped_keys": self.dropped_keys, "too_old": self.too_old,
                "unsampled": self.unsampled, "sweeps": self.sweeps, "num_keys": self.num_keys,
                "num_pairs": self.num_pairs, "capacity": int(self.capacity), "nbytes": self.nbytes}

    # ---- merge / state ------------------------------------------------------------------------------
    def merge(self, KeyedDistinct other):
        """Add ``other``'s pairs into this structure (in place): afterwards it describes both streams.

        Equal ``window_days``, ``exact_limit`` and ``seed`` are required; capacities may differ. A pair in
        both keeps its latest day. Counts are exact, as for one structure fed both streams, while keys stay
        below ``exact_limit``; beyond it the merged weights are the union of both samples (an estimate).
        The newest day becomes the later of the two and the window is swept. O(capacity of other).
        """
        return _kd_merge(self, other)

    def __ior__(self, other):
        return self.merge(other)

    def copy(self):
        return KeyedDistinct.from_bytes(self.to_bytes())

    def to_bytes(self):
        return _format.pack("KeyedDistinct", _kd_params(self), [self._pairs, self._keys])

    @staticmethod
    def from_bytes(data):
        """Rebuild from :meth:`to_bytes`. Corrupted, truncated or foreign bytes, and tables whose contents
        contradict each other (a pair pointing at an empty key, counts that are not the sum of their pairs'
        weights, days outside the window), raise ``ValueError``."""
        return _kd_from_bytes(data)

    def __reduce__(self):
        return (KeyedDistinct.from_bytes, (self.to_bytes(),))

    def __eq__(self, other):
        return isinstance(other, KeyedDistinct) and self.to_bytes() == other.to_bytes()

    def __repr__(self):
        return (f"KeyedDistinct(capacity={self.capacity}, window_days={self.window_days}, "
                f"exact_limit={self.exact_limit}, keys={self.num_keys}, pairs={self.num_pairs}, "
                f"today={self.today})")
