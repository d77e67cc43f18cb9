# cython: language_level=3
"""JSON lines -> Arrow columns of wanted dotted paths, compiled (an on-demand scan with yyjson behind it; see
ext/rs_json.h, ext/rs_json_scan.h, ext/yyjson/).

:class:`Projector` takes the dotted paths a reader wants, each with the JSON type it accepts, and projects a
block of newline-separated lines onto one Arrow array per path, built from buffers (no Python object per
value). Nested (``{"a": {"b": 1}}``), dotted (``{"a.b": 1}``) and mixed records give the same path. A line it
cannot project exactly (see :data:`STATUS`) gets a non-zero status and is left to the caller's per-line
reader. The parse runs without the GIL.
"""
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, calloc
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_FromStringAndSize

import numpy as np
import pyarrow as pa

cdef extern from "rs_json.h" nogil:
    enum:
        RSJ_STRING
        RSJ_INT
        RSJ_BOOL
        RSJ_HAS
        RSJ_INT32
    ctypedef struct rsj_pair:
        const char *key
        uint32_t len
        int32_t parent
        int32_t entry
        uint64_t hash
        uint64_t a
        uint64_t b
    ctypedef struct rsj_spec:
        int32_t n_entries
        int32_t *leaf
        rsj_pair *pairs
        int32_t n_pairs
        int32_t *table
        uint32_t mask
        uint64_t *lenmask
        uint64_t *c0mask
        int32_t n_cols
        uint8_t *kinds
        const char **has_str
        uint32_t *has_len
    ctypedef struct rsj_col:
        char *data
        int64_t data_len
        int64_t data_cap
        int32_t *offsets
        int64_t *ints
        int32_t *ints32
        uint8_t *bits
        int8_t *has
        uint8_t *valid
        int64_t null_count
    uint64_t rsj_hkey(int32_t parent, const char *k, size_t n)
    void rsj_words(const char *k, size_t n, uint64_t *a, uint64_t *b)
    int64_t rsj_split(const char *block, int64_t len, int64_t **starts, int64_t **ends)
    int64_t rsj_project(const rsj_spec *sp, const char *block, int64_t n_lines, const int64_t *starts,
                        const int64_t *ends, uint8_t *status, rsj_col *cols, int on_demand)

#: Line status codes of :meth:`Projector.project` (0: projected).
STATUS = {
    0: "ok",
    1: "invalid",       # not JSON yyjson accepts: blank, malformed, invalid UTF-8, BOM, lone surrogate, ...
    2: "not_object",    # valid JSON whose root is not an object
    3: "wrong_type",    # a wanted path holds another JSON type than its kind (the per-line reader coerces)
    4: "duplicate",     # a wanted path or one of its prefixes occurs twice (duplicate or overlapping keys)
    5: "too_deep",      # more than 1024 containers (may pass orjson's nesting limit)
    6: "too_big",       # a string column of the block would pass 2 GiB
}

_KINDS = {"string": RSJ_STRING, "int": RSJ_INT, "int32": RSJ_INT32, "bool": RSJ_BOOL}


cdef class Projector:
    """Project JSON lines onto columns.

    Parameters
    ----------
    paths : dict[str, str]
        Dotted path -> kind. Kinds: ``"string"`` (JSON string -> ``pa.string()``), ``"int"`` (JSON integer
        within int64 -> ``pa.int64()``), ``"int32"`` (JSON integer within int64 -> ``pa.int32()``, null when
        outside int32), ``"bool"`` (``pa.bool_()``), ``"has:VALUE"`` (a string or an array of
        values -> ``pa.int8()``: 0 absent or null, 1 the string VALUE or an array holding it, 2 anything
        else). JSON null or an absent path is null (0 for ``has:``); any other type makes the line's status
        ``wrong_type`` (``has:`` accepts every type). No path may be a prefix of another.
    on_demand : bool, default True
        Read each line with the on-demand scan (ext/rs_json_scan.h: one validating pass that reads only the
        wanted paths and builds no document), handing the lines it is not sure of to yyjson; False parses every
        line with yyjson. Both give the same statuses and columns (tests/readers/test_json_on_demand.py); the
        scan is about 2x faster on 2 KB ECS lines (benches/bench_readers.py).
    """
    cdef rsj_spec sp
    cdef list _keep          # bytes objects whose buffers the spec points into
    cdef readonly tuple paths
    cdef readonly tuple kinds
    cdef readonly bint on_demand

    def __cinit__(self):
        self.sp.leaf = NULL
        self.sp.pairs = NULL
        self.sp.lenmask = NULL
        self.sp.c0mask = NULL
        self.sp.table = NULL
        self.sp.kinds = NULL
        self.sp.has_str = NULL
        self.sp.has_len = NULL

    def __init__(self, paths, on_demand=True):
        self.on_demand = bool(on_demand)
        paths = dict(paths)
        if not paths:
            raise ValueError("no paths")
        names = sorted(paths)
        for p in names:
            if not p or p.startswith(".") or p.endswith(".") or ".." in p:
                raise ValueError(f"bad path {p!r}")
            for q in names:
                if q.startswith(p + "."):
                    raise ValueError(f"path {p!r} is a prefix of {q!r}")
        prefixes = sorted({".".join(p.split(".")[:k]) for p in names for k in range(1, p.count(".") + 1)})
        self.paths = tuple(names)
        self.kinds = tuple(paths[p] for p in names)
        cdef int n_cols = len(names)
        entries = list(names) + prefixes
        index = {p: i for i, p in enumerate(entries)}
        # every (parent prefix, rest) spelling of every entry: "a.b.c" = root+"a.b.c" = "a"+"b.c" = "a.b"+"c"
        pairs = []
        for j, p in enumerate(entries):
            parts = p.split(".")
            pairs.append((-1, p, j))
            for k in range(1, len(parts)):
                pairs.append((index[".".join(parts[:k])], ".".join(parts[k:]), j))
        cdef int n_ent = len(entries)
        cdef int n_pairs = len(pairs)
        cdef uint32_t size = 16
        while size < 4 * <uint32_t>n_pairs:
            size *= 2
        self.sp.leaf = <int32_t *>calloc(n_ent, sizeof(int32_t))
        self.sp.pairs = <rsj_pair *>calloc(n_pairs, sizeof(rsj_pair))
        self.sp.table = <int32_t *>calloc(size, sizeof(int32_t))
        self.sp.lenmask = <uint64_t *>calloc(n_ent + 1, sizeof(uint64_t))
        self.sp.c0mask = <uint64_t *>calloc(n_ent + 1, sizeof(uint64_t))
        self.sp.kinds = <uint8_t *>calloc(n_cols, 1)
        self.sp.has_str = <const char **>calloc(n_cols, sizeof(char *))
        self.sp.has_len = <uint32_t *>calloc(n_cols, sizeof(uint32_t))
        if not (self.sp.leaf and self.sp.pairs and self.sp.table and self.sp.kinds and self.sp.has_str
                and self.sp.has_len and self.sp.lenmask and self.sp.c0mask):
            raise MemoryError()
        self.sp.n_entries = n_ent
        self.sp.n_pairs = n_pairs
        self.sp.n_cols = n_cols
        self.sp.mask = size - 1
        self._keep = []
        cdef bytes b
        cdef int i, c
        cdef uint32_t slot
        for c, p in enumerate(names):
            kind = paths[p]
            if kind in _KINDS:
                self.sp.kinds[c] = _KINDS[kind]
            elif isinstance(kind, str) and kind.startswith("has:"):
                self.sp.kinds[c] = RSJ_HAS
                b = kind[4:].encode("utf-8")
                self._keep.append(b)
                self.sp.has_str[c] = <const char *>b
                self.sp.has_len[c] = len(b)
            else:
                raise ValueError(f"unknown kind {kind!r} for {p!r}")
        for i in range(n_ent):
            self.sp.leaf[i] = i if i < n_cols else -1
        for i, (parent, key, entry) in enumerate(pairs):
            b = key.encode("utf-8")
            self._keep.append(b)
            self.sp.pairs[i].key = <const char *>b
            self.sp.pairs[i].len = len(b)
            self.sp.pairs[i].parent = parent
            self.sp.pairs[i].entry = entry
            self.sp.pairs[i].hash = rsj_hkey(parent, <const char *>b, len(b))
            rsj_words(<const char *>b, len(b), &self.sp.pairs[i].a, &self.sp.pairs[i].b)
            self.sp.lenmask[parent + 1] |= (<uint64_t>1) << min(len(b), 63)
            self.sp.c0mask[parent + 1] |= (<uint64_t>1) << (b[0] & 63)
            slot = <uint32_t>self.sp.pairs[i].hash & self.sp.mask
            while self.sp.table[slot]:
                slot = (slot + 1) & self.sp.mask
            self.sp.table[slot] = i + 1

    def __dealloc__(self):
        free(self.sp.leaf)
        free(self.sp.pairs)
        free(self.sp.table)
        free(self.sp.lenmask)
        free(self.sp.c0mask)
        free(self.sp.kinds)
        free(<void *>self.sp.has_str)
        free(self.sp.has_len)

    def project(self, block):
        """Project the lines of ``block`` (bytes-like; lines end with ``\\n``, a ``\\r`` before it is dropped,
        a last line may lack it).

        Returns ``(status, starts, ends, columns)``: per line a uint8 status (0 projected, else a code of
        :data:`STATUS`) and its byte range ``[start, end)`` (int64 numpy arrays), and ``{path: pa.Array}`` with
        one value per projected line, in line order. Time O(len(block)) (one scan or yyjson parse per line
        plus O(keys on wanted paths) hash lookups); memory O(len(block)) for the output buffers. The GIL is
        released while parsing.
        """
        cdef const uint8_t[::1] view = memoryview(block).cast("B") if not isinstance(block, bytes) else block
        cdef int64_t n = view.shape[0]
        cdef const char *data = <const char *>&view[0] if n else NULL
        cdef int64_t n_lines = 0
        cdef int64_t *cs = NULL
        cdef int64_t *ce = NULL
        if n:
            with nogil:
                n_lines = rsj_split(data, n, &cs, &ce)
            if n_lines < 0:
                raise MemoryError("out of memory while splitting JSON lines")
        cdef int n_cols = self.sp.n_cols
        status_a = np.zeros(n_lines, np.uint8)
        starts_a = np.empty(n_lines, np.int64)
        ends_a = np.empty(n_lines, np.int64)
        cdef uint8_t[::1] status = status_a
        cdef int64_t[::1] starts = starts_a
        cdef int64_t[::1] ends = ends_a
        if n_lines:
            memcpy(&starts[0], cs, n_lines * sizeof(int64_t))
            memcpy(&ends[0], ce, n_lines * sizeof(int64_t))
        free(cs)
        free(ce)
        nbm = (n_lines + 7) // 8
        keep = []   # per column: the numpy arrays behind its buffers
        cdef rsj_col *cols = <rsj_col *>calloc(n_cols if n_cols else 1, sizeof(rsj_col))
        if not cols:
            raise MemoryError()
        cdef int c, k
        cdef int64_t rows = 0
        cdef uint8_t[::1] u8
        cdef int32_t[::1] i32
        cdef int64_t[::1] i64
        cdef int8_t[::1] s8
        try:
            for c in range(n_cols):
                k = self.sp.kinds[c]
                valid = np.zeros(max(nbm, 1), np.uint8)
                u8 = valid
                cols[c].valid = &u8[0]
                if k == RSJ_STRING:
                    arr = np.zeros(n_lines + 1, np.int32)
                    i32 = arr
                    cols[c].offsets = &i32[0]
                elif k == RSJ_INT:
                    arr = np.zeros(max(n_lines, 1), np.int64)
                    i64 = arr
                    cols[c].ints = &i64[0]
                elif k == RSJ_INT32:
                    arr = np.zeros(max(n_lines, 1), np.int32)
                    i32 = arr
                    cols[c].ints32 = &i32[0]
                elif k == RSJ_BOOL:
                    arr = np.zeros(max(nbm, 1), np.uint8)
                    u8 = arr
                    cols[c].bits = &u8[0]
                else:
                    arr = np.zeros(max(n_lines, 1), np.int8)
                    s8 = arr
                    cols[c].has = &s8[0]
                keep.append((valid, arr))
            if n_lines:
                with nogil:
                    rows = rsj_project(&self.sp, data, n_lines, &starts[0], &ends[0], &status[0], cols,
                                       self.on_demand)
                if rows < 0:
                    raise MemoryError("out of memory while projecting JSON lines")
            out = {}
            for c in range(n_cols):
                k = self.sp.kinds[c]
                valid, arr = keep[c]
                nb = (rows + 7) // 8
                nulls = cols[c].null_count
                vbuf = pa.py_buffer(valid[:nb]) if nulls else None
                if k == RSJ_STRING:
                    dbuf = pa.py_buffer(PyBytes_FromStringAndSize(cols[c].data, cols[c].data_len)
                                        if cols[c].data_len else b"")
                    out[self.paths[c]] = pa.Array.from_buffers(
                        pa.string(), rows, [vbuf, pa.py_buffer(arr[:rows + 1]), dbuf], nulls)
                elif k == RSJ_INT:
                    out[self.paths[c]] = pa.Array.from_buffers(pa.int64(), rows, [vbuf, pa.py_buffer(arr[:rows])],
                                                               nulls)
                elif k == RSJ_INT32:
                    out[self.paths[c]] = pa.Array.from_buffers(pa.int32(), rows, [vbuf, pa.py_buffer(arr[:rows])],
                                                               nulls)
                elif k == RSJ_BOOL:
                    out[self.paths[c]] = pa.Array.from_buffers(pa.bool_(), rows, [vbuf, pa.py_buffer(arr[:nb])],
                                                               nulls)
                else:
                    out[self.paths[c]] = pa.Array.from_buffers(pa.int8(), rows, [None, pa.py_buffer(arr[:rows])], 0)
            return status_a, starts_a, ends_a, out
        finally:
            for c in range(n_cols):
                free(cols[c].data)
            free(cols)
