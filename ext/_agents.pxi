# AgentTable: exact per-agent presence (run start, last day) and active-agent counts per day.

cdef packed struct AgentSlot:     # 16 bytes
    uint64_t key
    uint16_t first                # first day of the agent's current run of presence; 0 = empty slot
    uint16_t last                 # last day seen
    uint32_t pad

AGENT_DTYPE = np.dtype([("key", "<u8"), ("first", "<u2"), ("last", "<u2"), ("pad", "<u4")])

cdef enum:
    AG_DAYS = 65536


cdef class AgentTable:
    """Exact presence of each agent: the start day of its current run and its last day, plus the number of
    active agents before each day (docs/DETECTORS.md, "Org and agent state").

    A run starts at an agent's first event and again at an event on day ``d`` when the agent's previous event
    was on a day ``<= d - window_days``. ``active(d)`` is the number of agents whose last event before day ``d``
    fell on days ``d - window_days .. d - 1``: kept as a histogram of last days, summed once per new day, so it
    is exact for in-order input and constant through a day.

    Open addressing (linear probing) over ``capacity`` slots of 16 bytes plus a 256 KiB histogram; agents are
    never deleted (an agent that leaves the window only stops counting). When full, new agents are counted in
    ``dropped`` and reported as starting a run at the event (never activated). Observe is O(1) per event and
    releases the GIL; not thread-safe for concurrent writers (one writer at a time).
    """
    cdef readonly uint64_t capacity
    cdef readonly uint32_t window_days
    cdef readonly uint64_t seed
    cdef readonly uint32_t today            # newest day seen
    cdef readonly uint32_t first_day        # first day of the org's current run of presence (0 = none yet)
    cdef readonly uint64_t size
    cdef public uint64_t dropped
    cdef uint32_t _active_day               # day for which _active_count was computed
    cdef uint64_t _active_count
    cdef object _slots, _hist
    cdef AgentSlot* _s
    cdef uint32_t* _h
    cdef uint64_t _mask, _hseed

    def __init__(self, capacity=1 << 18, window_days=30, seed=0):
        capacity = int(capacity)
        if not 8 <= capacity <= (1 << 32):
            raise ValueError(f"capacity must be in [8, 2**32], got {capacity}")
        if not 1 <= int(window_days) <= 10000:
            raise ValueError(f"window_days must be in [1, 10000], got {window_days}")
        cap = 1
        while cap < capacity * 4 // 3 + 1:       # at most 75 % load for linear probing
            cap <<= 1
        self.capacity = capacity
        self.window_days = int(window_days)
        self.seed = int(seed)
        self.today = self.first_day = 0
        self.size = self.dropped = 0
        self._active_day = 0
        self._active_count = 0
        self._hseed = rs_fmix64(self.seed ^ 0x3C6EF372FE94F82BULL)
        self._set(np.zeros(cap, dtype=AGENT_DTYPE), np.zeros(AG_DAYS, dtype=np.uint32))

    cdef _set(self, slots, hist):
        cdef uint8_t[::1] sv = slots.view(np.uint8)
        cdef uint32_t[::1] hv = hist
        self._slots = slots
        self._hist = hist
        self._s = <AgentSlot*>&sv[0]
        self._h = &hv[0]
        self._mask = slots.shape[0] - 1

    cdef inline uint64_t _count_active(self, uint32_t d) noexcept nogil:
        cdef uint64_t total = 0
        cdef uint32_t x, lo = d - self.window_days if d > self.window_days else 1
        for x in range(lo, d):
            total += self._h[x]
        return total

    cdef inline void _observe(self, uint64_t key, uint32_t d, uint16_t* run_first, uint64_t* active) noexcept nogil:
        cdef uint64_t j = rs_fmix64(key ^ self._hseed) & self._mask
        cdef AgentSlot* s
        if self.first_day == 0 or d >= self.today + self.window_days:
            self.first_day = d                      # the org's first event, or its first after leaving the window
        if d > self.today:
            self.today = d
        if d == self.today:
            if self._active_day != d:
                self._active_count = self._count_active(d)
                self._active_day = d
            active[0] = self._active_count
        else:
            active[0] = self._count_active(d)        # late event: from the current state
        while True:
            s = &self._s[j]
            if s.first == 0:
                if self.size >= self.capacity:
                    self.dropped += 1
                    run_first[0] = <uint16_t>d
                    return
                s.key = key
                s.first = <uint16_t>d
                s.last = <uint16_t>d
                self._h[d] += 1
                self.size += 1
                run_first[0] = <uint16_t>d
                return
            if s.key == key:
                break
            j = (j + 1) & self._mask
        if d >= s.last + self.window_days:          # the agent had left the window: a new run
            s.first = <uint16_t>d
        elif d < s.first:                            # a late event extends the run backwards
            s.first = <uint16_t>d
        if d > s.last:
            self._h[s.last] -= 1
            self._h[d] += 1
            s.last = <uint16_t>d
        run_first[0] = s.first

    def observe(self, keys, days, org_first=None):
        """For each (agent, day) event in order: the start day of the agent's run including this event, and the
        active-agent count for the event's day; then learn it. Returns ``(run_first uint16[n], active int64[n])``.
        ``org_first``, a writable contiguous int64 array of n, receives the start day of the org's run of presence
        including each event (:attr:`first_day` once the event is learned)."""
        cdef const uint64_t[::1] k = as_keys(keys)
        cdef Py_ssize_t i, n = k.shape[0]
        d_arr = np.asarray(days)
        if d_arr.ndim == 0:
            d_arr = np.full(n, int(d_arr))
        if d_arr.shape != (n,):
            raise ValueError(f"days has shape {d_arr.shape}, keys has {n} entries")
        if n and (d_arr.min() < 1 or d_arr.max() > 65535):
            raise ValueError("days must be in [1, 65535] (days since 1970-01-01)")
        cdef const uint16_t[::1] d = np.ascontiguousarray(d_arr, dtype=np.uint16)
        first = np.empty(n, dtype=np.uint16)
        active = np.empty(n, dtype=np.int64)
        cdef uint16_t[::1] fo = first
        cdef int64_t[::1] ao = active
        cdef uint16_t f
        cdef uint64_t a
        cdef int64_t[::1] oo
        cdef bint want_org = org_first is not None
        if want_org:
            if not (isinstance(org_first, np.ndarray) and org_first.dtype == np.int64 and org_first.shape == (n,)
                    and org_first.flags.c_contiguous and org_first.flags.writeable):
                raise ValueError(f"org_first must be a writable contiguous int64 array of {n} entries")
            oo = org_first
        with nogil:
            for i in range(n):
                self._observe(k[i], d[i], &f, &a)
                fo[i] = f
                ao[i] = <int64_t>a
                if want_org:
                    oo[i] = self.first_day
        return first, active

    def active_agents(self, day):
        """Agents with an event on days ``day - window_days .. day - 1``: the value the day's events were scored
        with if ``day`` is the newest day, else computed from the current state (exact for a later day)."""
        day = int(day)
        if day == self._active_day:
            return int(self._active_count)
        return int(self._count_active(day))

    def items(self):
        """``(keys uint64, run_first uint16, last uint16)`` of every agent tracked."""
        live = self._slots["first"] > 0
        return (self._slots["key"][live].copy(), self._slots["first"][live].copy(),
                self._slots["last"][live].copy())

    @property
    def nbytes(self):
        return self._slots.nbytes + self._hist.nbytes

    cdef AgentSlot* _slot(self, uint64_t key, bint create) noexcept nogil:
        cdef uint64_t j = rs_fmix64(key ^ self._hseed) & self._mask
        while self._s[j].first != 0:
            if self._s[j].key == key:
                return &self._s[j]
            j = (j + 1) & self._mask
        if not create or self.size >= self.capacity:
            return NULL
        self._s[j].key = key
        self.size += 1
        return &self._s[j]

    def merge(self, AgentTable other):
        """Union of two tables built over disjoint events (partitions of one stream).

        Per agent: overlapping runs (less than ``window_days`` apart) join, from the earlier start to the later
        last day; otherwise the later run is kept. Agents that do not fit are counted in ``dropped``."""
        if other is self:
            raise ValueError("cannot merge an AgentTable with itself")
        if (other.window_days, other.seed) != (self.window_days, self.seed):
            raise ValueError(f"cannot merge AgentTable(window_days={other.window_days}, seed={other.seed}) into "
                             f"AgentTable(window_days={self.window_days}, seed={self.seed})")
        cdef uint64_t j
        cdef AgentSlot* o
        cdef AgentSlot* s
        cdef uint32_t w = self.window_days
        for j in range(other._mask + 1):
            o = &other._s[j]
            if o.first == 0:
                continue
            s = self._slot(o.key, True)
            if s == NULL:
                self.dropped += 1
                continue
            if s.first == 0:
                s.first, s.last = o.first, o.last
                self._h[s.last] += 1
                continue
            if o.first < s.last + w and s.first < o.last + w:     # runs overlap: join them
                if o.first < s.first:
                    s.first = o.first
            elif o.last > s.last:                                 # disjoint: the later run wins
                s.first = o.first
            if o.last > s.last:
                self._h[s.last] -= 1
                self._h[o.last] += 1
                s.last = o.last
        if other.first_day and (self.first_day == 0 or other.first_day < self.first_day):
            self.first_day = other.first_day
        if other.today > self.today:
            self.today = other.today
        self.dropped += other.dropped
        self._active_day = 0
        return self

    def to_bytes(self):
        return _format.pack("AgentTable", {"capacity": int(self.capacity), "window_days": int(self.window_days),
                                           "seed": str(self.seed), "today": int(self.today),
                                           "first_day": int(self.first_day), "dropped": str(self.dropped),
                                           "active_day": int(self._active_day),
                                           "active_count": str(self._active_count)},
                            [self._slots])

    @staticmethod
    def from_bytes(data):
        """Rebuild from :meth:`to_bytes`; corrupted, truncated or inconsistent bytes raise ``ValueError``."""
        params, arrays = _format.unpack(data, "AgentTable")
        F = "AgentTable"
        try:
            cap, window, seed = int(params["capacity"]), int(params["window_days"]), int(params["seed"])
            today, first_day, dropped = int(params["today"]), int(params["first_day"]), int(params["dropped"])
            # The current day's active-agent count (fixed when the day began): states saved before it was kept
            # lack it and recount at the next event, as they always did.
            active_day, active_count = int(params.get("active_day", 0)), int(params.get("active_count", 0))
        except (KeyError, TypeError, ValueError):
            raise ValueError("corrupt raresketch AgentTable: bad parameters") from None
        # Check the slot array against the capacity before allocating anything the header asks for.
        _format.expect(8 <= cap <= (1 << 32), F, f"capacity {cap} out of range")
        slots_for_cap = 1
        while slots_for_cap < cap * 4 // 3 + 1:
            slots_for_cap <<= 1
        _format.expect(len(arrays) == 1 and arrays[0].shape == (slots_for_cap, AGENT_DTYPE.itemsize), F,
                       "slot table does not match capacity")
        try:
            out = AgentTable(cap, window, seed)
        except ValueError as e:
            raise ValueError(f"corrupt raresketch AgentTable: {e}") from None
        _format.expect(0 <= today <= 65535 and 0 <= first_day <= today and 0 <= dropped < (1 << 64), F,
                       "days out of range")
        slots = np.ascontiguousarray(arrays[0]).reshape(-1).view(AGENT_DTYPE)
        live = slots["first"] > 0
        _format.expect(bool(np.all(slots["last"][live] >= slots["first"][live])) and
                       bool(np.all(slots["last"][live] <= today)), F, "agent days out of order")
        _format.expect(int(live.sum()) <= cap, F, "more agents than capacity")
        hist = np.bincount(slots["last"][live], minlength=AG_DAYS).astype(np.uint32)
        out._set(slots, hist)
        out.size = int(live.sum())
        out.today, out.first_day, out.dropped = today, first_day, dropped
        _format.expect(active_day in (0, today) and 0 <= active_count <= cap, F, "active-agent count out of range")
        out._active_day, out._active_count = active_day, active_count
        # Every agent must be where linear probing finds it (else lookups would silently miss it).
        keys = slots["key"][live]
        found = out._probe_all(keys)
        _format.expect(bool(np.all(found)), F, "agent slots are not where their keys hash")
        return out

    def _probe_all(self, keys):
        return np.array([self._slot(<uint64_t>k, False) != NULL for k in keys], dtype=np.bool_)

    def __eq__(self, other):
        return isinstance(other, AgentTable) and self.to_bytes() == other.to_bytes()

    def __reduce__(self):
        return (AgentTable.from_bytes, (self.to_bytes(),))

    def __len__(self):
        return int(self.size)

    def __repr__(self):
        return f"AgentTable(agents={self.size}, capacity={self.capacity}, today={self.today})"
