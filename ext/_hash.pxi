# Hashing: strings -> 64-bit keys (MurmurHash3 x64-128, first 64 bits), and pairs of keys -> one key.

#: The key given to a null value (None, Arrow null). A real string hashes to 0 with probability 2**-64.
NULL_KEY = 0

_ARROW_OFFSETS = {}

#: fast_keys' value for a null (any fixed 64-bit constant: a real string hashes to it with probability 2**-64).
cdef uint64_t FAST_NULL = 0x6A09E667F3BCC909ULL


cdef inline uint64_t _hash_pyobj(object v, uint32_t seed) except? 0:
    cdef const char* s
    cdef Py_ssize_t n
    if v is None:
        return 0
    if isinstance(v, str):
        try:
            s = PyUnicode_AsUTF8AndSize(v, &n)
        except UnicodeEncodeError:
            b = (<str>v).encode("utf-8", "surrogatepass")
            return rs_murmur3_64(<const uint8_t*>PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), seed)
        return rs_murmur3_64(<const uint8_t*>s, n, seed)
    if isinstance(v, bytes):
        return rs_murmur3_64(<const uint8_t*>PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v), seed)
    if isinstance(v, (bytearray, memoryview)):
        b = bytes(v)
        return rs_murmur3_64(<const uint8_t*>PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), seed)
    raise TypeError(f"hash64 takes str, bytes or None values, not {type(v).__name__}")


cdef object _hash_sequence(object values, uint32_t seed):
    cdef Py_ssize_t i, n = len(values)
    out = np.empty(n, dtype=np.uint64)
    cdef uint64_t[::1] o = out
    for i in range(n):
        o[i] = _hash_pyobj(values[i], seed)
    return out


cdef object _hash_arrow_binary(object arr, uint32_t seed, bint large, bint fast=False):
    """Zero-copy hashing over an Arrow (large_)string/binary array's offsets and data buffers: MurmurHash3
    (nulls -> NULL_KEY), or with ``fast`` XXH3-64 (nulls -> FAST_NULL; ``seed`` unused)."""
    cdef Py_ssize_t n = len(arr), i, off = arr.offset
    out = np.empty(n, dtype=np.uint64)
    if n == 0:
        return out
    bufs = arr.buffers()
    validity, offsets_buf, data_buf = bufs[0], bufs[1], bufs[2]
    cdef uint64_t[::1] o = out
    cdef const int32_t[::1] off32
    cdef const int64_t[::1] off64
    cdef const uint8_t[::1] data
    cdef const uint8_t[::1] valid
    cdef const uint8_t* dp = NULL
    cdef bint has_valid = validity is not None and arr.null_count > 0
    cdef Py_ssize_t vbit
    cdef uint64_t null_key = FAST_NULL if fast else NULL_KEY
    empty = np.zeros(1, dtype=np.uint8)
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None and data_buf.size > 0 else empty
    dp = &data[0]
    if has_valid:
        valid = np.frombuffer(validity, dtype=np.uint8)
    if large:
        off64 = np.frombuffer(offsets_buf, dtype=np.int64)
        with nogil:
            for i in range(n):
                if has_valid:
                    vbit = off + i
                    if not (valid[vbit >> 3] >> (vbit & 7)) & 1:
                        o[i] = null_key
                        continue
                if fast:
                    o[i] = rs_xxh3(dp + off64[off + i], off64[off + i + 1] - off64[off + i])
                else:
                    o[i] = rs_murmur3_64(dp + off64[off + i], off64[off + i + 1] - off64[off + i], seed)
    else:
        off32 = np.frombuffer(offsets_buf, dtype=np.int32)
        with nogil:
            for i in range(n):
                if has_valid:
                    vbit = off + i
                    if not (valid[vbit >> 3] >> (vbit & 7)) & 1:
                        o[i] = null_key
                        continue
                if fast:
                    o[i] = rs_xxh3(dp + off32[off + i], off32[off + i + 1] - off32[off + i])
                else:
                    o[i] = rs_murmur3_64(dp + off32[off + i], off32[off + i + 1] - off32[off + i], seed)
    return out


cdef object _dict_indices(object arr):
    """(indices as contiguous int32 or int64 numpy, validity bytes or None) of a dictionary array, zero-copy for
    the usual int32/int64 indices."""
    idx = arr.indices
    it = idx.type
    dt = np.int32 if it.bit_width <= 32 else np.int64
    raw = np.frombuffer(idx.buffers()[1], dtype=it.to_pandas_dtype())[idx.offset:idx.offset + len(idx)]
    raw = np.ascontiguousarray(raw, dtype=dt)
    valid = np.asarray(idx.is_valid()).view(np.uint8) if idx.null_count else None
    return raw, valid


cdef object _gather_dict(object dict_keys, object arr, uint64_t null_key):
    """Per row of a dictionary array: the key of its dictionary entry (``dict_keys``), ``null_key`` for a null
    index; one compiled pass. An index out of range raises ValueError."""
    cdef Py_ssize_t i, n = len(arr)
    raw, valid = _dict_indices(arr)
    out = np.empty(n, dtype=np.uint64)
    if n == 0:
        return out
    cdef uint64_t[::1] o = out
    cdef const uint64_t[::1] dk = dict_keys if len(dict_keys) else np.zeros(1, np.uint64)
    cdef Py_ssize_t nd = len(dict_keys)
    cdef bint has_valid = valid is not None
    cdef const uint8_t[::1] vb = valid if has_valid else np.zeros(1, np.uint8)
    cdef const int32_t[::1] i32
    cdef const int64_t[::1] i64
    cdef int64_t k
    cdef bint bad = False
    if raw.dtype == np.int32:
        i32 = raw
        with nogil:
            for i in range(n):
                if has_valid and not vb[i]:
                    o[i] = null_key
                    continue
                k = i32[i]
                if k < 0 or k >= nd:
                    bad = True
                    break
                o[i] = dk[k]
    else:
        i64 = raw
        with nogil:
            for i in range(n):
                if has_valid and not vb[i]:
                    o[i] = null_key
                    continue
                k = i64[i]
                if k < 0 or k >= nd:
                    bad = True
                    break
                o[i] = dk[k]
    if bad:
        raise ValueError("dictionary index out of range")
    return out


cdef object _hash_arrow(object arr, uint32_t seed, bint fast=False):
    t = arr.type
    cdef uint64_t null_key = FAST_NULL if fast else NULL_KEY
    if pa.types.is_dictionary(t):
        # Hash each distinct value once, then gather by index in one pass; null indices get the null key.
        return _gather_dict(_hash_arrow(arr.dictionary, seed, fast), arr, null_key)
    if pa.types.is_string(t) or pa.types.is_binary(t):
        return _hash_arrow_binary(arr, seed, False, fast)
    if pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        return _hash_arrow_binary(arr, seed, True, fast)
    if hasattr(pa.types, "is_string_view") and (pa.types.is_string_view(t) or pa.types.is_binary_view(t)):
        return _hash_arrow_binary(arr.cast(pa.large_binary()), seed, True, fast)
    if pa.types.is_null(t):
        return np.full(len(arr), null_key, dtype=np.uint64)
    raise TypeError(f"hash64 takes Arrow string or binary arrays, not {t}")


def hash64(values, uint32_t seed=0):
    """64-bit keys of strings: MurmurHash3 x64-128 of each value's UTF-8 bytes, first 64 bits.

    Bit-for-bit equal to ``mmh3.hash64(v, seed, signed=False)[0]``, and stable across processes and
    machines, so sketches saved, loaded or merged anywhere agree.

    Parameters
    ----------
    values : str | bytes | list | tuple | numpy.ndarray | pyarrow.Array | pyarrow.ChunkedArray
        One value (returns an ``int``) or a sequence of str/bytes/None. Arrow string, large_string, binary,
        string_view and dictionary arrays are read zero-copy from their buffers (a dictionary array hashes
        each distinct value once). Null values get :data:`NULL_KEY` (0).
    seed : int
        32-bit seed.

    Returns
    -------
    numpy.ndarray of uint64, one key per value. O(total bytes); the GIL is released for Arrow input.
    """
    if isinstance(values, (str, bytes)):
        return _hash_pyobj(values, seed)
    if isinstance(values, pa.ChunkedArray):
        if values.num_chunks == 0:
            return np.empty(0, dtype=np.uint64)
        return np.concatenate([_hash_arrow(c, seed) for c in values.chunks])
    if isinstance(values, pa.Array):
        return _hash_arrow(values, seed)
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"hash64 takes a one-dimensional array, got shape {values.shape}")
        if values.dtype.kind in "US":
            return _hash_arrow(pa.array(values), seed)
        if values.dtype.kind == "O":
            return _hash_sequence(values, seed)
        raise TypeError(f"hash64 takes string arrays, not dtype {values.dtype}; integer keys are already keys")
    if isinstance(values, (list, tuple)):
        return _hash_sequence(values, seed)
    raise TypeError(f"hash64 takes str, bytes, a sequence or an Arrow/numpy string array, not {type(values).__name__}")


def as_keys(values):
    """Coerce ``values`` to a contiguous uint64 key array: integer arrays are taken as keys, strings hashed."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        if values.dtype == np.uint64 and values.flags.c_contiguous:
            return values.reshape(-1) if values.ndim != 1 else values
        return np.ascontiguousarray(values, dtype=np.uint64).reshape(-1)
    if isinstance(values, (int, np.integer)):
        if values < 0 or values > 0xFFFFFFFFFFFFFFFF:
            raise ValueError(f"a key is an unsigned 64-bit integer, got {values}")
        return np.array([values], dtype=np.uint64)
    if isinstance(values, (str, bytes)):
        return np.array([hash64(values)], dtype=np.uint64)
    if isinstance(values, (list, tuple)) and len(values) and all(isinstance(v, (int, np.integer)) for v in values):
        return np.asarray(values, dtype=np.uint64)
    if isinstance(values, (list, tuple)) and len(values) == 0:
        return np.empty(0, dtype=np.uint64)
    return hash64(values)


def hash_pair(a, b, uint32_t seed=0):
    """One 64-bit key for each pair (a[i], b[i]) — e.g. (process, destination) or (agent, destination).

    ``a`` and ``b`` are key arrays (uint64, e.g. from :func:`hash64`) or anything :func:`hash64` takes
    (hashed with seed 0 first); a scalar broadcasts. The pair key is MurmurHash3 x64-128 (first 64 bits) of
    the 16 little-endian bytes of ``a[i]`` then ``b[i]``: equal to
    ``mmh3.hash64(struct.pack('<QQ', a, b), seed, signed=False)[0]``. Order matters. O(n), GIL released.
    """
    ka = as_keys(a)
    kb = as_keys(b)
    if ka.shape[0] != kb.shape[0]:
        if ka.shape[0] == 1:
            ka = np.full(kb.shape[0], ka[0], dtype=np.uint64)
        elif kb.shape[0] == 1:
            kb = np.full(ka.shape[0], kb[0], dtype=np.uint64)
        else:
            raise ValueError(f"hash_pair needs equal lengths, got {ka.shape[0]} and {kb.shape[0]}")
    cdef Py_ssize_t i, n = ka.shape[0]
    out = np.empty(n, dtype=np.uint64)
    cdef const uint64_t[::1] x = ka
    cdef const uint64_t[::1] y = kb
    cdef uint64_t[::1] o = out
    with nogil:
        for i in range(n):
            o[i] = rs_hash_pair(x[i], y[i], seed)
    return out


def mix64(keys, uint64_t seed=0):
    """The 64-bit finaliser ``fmix64(key ^ seed)`` that every structure applies to a key before indexing.

    Exposed so that tests and other libraries (datasketch's ``hashfunc``) can reproduce the exact bits.
    """
    k = as_keys(keys)
    out = np.empty(k.shape[0], dtype=np.uint64)
    cdef const uint64_t[::1] x = k
    cdef uint64_t[::1] o = out
    cdef Py_ssize_t i
    with nogil:
        for i in range(x.shape[0]):
            o[i] = rs_fmix64(x[i] ^ seed)
    return out


def fast_keys(columns):
    """One in-memory index key per row of one or more aligned Arrow string columns: XXH3-64 of each value
    (nulls a fixed marker), folded over the columns in order with ``fmix64``, so equal rows (all columns
    equal, nulls equal to nulls) give equal keys and different rows differ with probability ~2**-64.

    For hash tables that live in memory only (the key resolver's per-stream indexes): 3-5x cheaper than
    :func:`hash64` on short strings, but **not** the stable MurmurHash3 keys that sketches save and merge.
    ``columns``: Arrow arrays or chunked arrays (string, large_string, binary, view, dictionary, null) of
    equal length. Returns uint64[n]. O(total bytes), GIL released per column.
    """
    if isinstance(columns, (pa.Array, pa.ChunkedArray)):
        columns = [columns]
    if not columns:
        raise ValueError("fast_keys needs at least one column")
    # A dictionary column is folded straight from its dictionary's keys and its indices (each distinct value
    # hashed once, no per-column gather); any other from its per-row keys. One pass over the rows per column.
    parts = []
    cdef Py_ssize_t n = -1, m
    for c in columns:
        if isinstance(c, pa.ChunkedArray) and c.num_chunks == 1:
            c = c.chunk(0)
        if isinstance(c, pa.Array) and pa.types.is_dictionary(c.type):
            raw, valid = _dict_indices(c)
            parts.append((_hash_arrow(c.dictionary, 0, True), raw.astype(np.int32, copy=False), valid))
            m = len(c)
        elif isinstance(c, pa.ChunkedArray):
            k = np.concatenate([_hash_arrow(ch, 0, True) for ch in c.chunks]) if c.num_chunks else \
                np.empty(0, dtype=np.uint64)
            parts.append((None, k, None))
            m = k.shape[0]
        elif isinstance(c, pa.Array):
            k = _hash_arrow(c, 0, True)
            parts.append((None, k, None))
            m = k.shape[0]
        else:
            raise TypeError(f"fast_keys takes Arrow arrays, not {type(c).__name__}")
        if n >= 0 and m != n:
            raise ValueError("fast_keys needs columns of equal length")
        n = m
    if len(parts) == 1 and parts[0][0] is None:
        return parts[0][1]
    out = np.empty(n, dtype=np.uint64)
    for j, (dk, v, valid) in enumerate(parts):
        if dk is None:
            _fold_keys(out, v, j)
        else:
            _fold_dict(out, dk, v, valid, j)
    return out


cdef void _fold_keys(uint64_t[::1] o, const uint64_t[::1] x, Py_ssize_t j):
    """Column ``j`` of fast_keys from per-row keys: the first column is copied, the others folded in."""
    cdef Py_ssize_t i, n = o.shape[0]
    cdef uint64_t salt = <uint64_t>j * 0x9E3779B97F4A7C15ULL
    with nogil:
        if j == 0:
            for i in range(n):
                o[i] = x[i]
        else:
            for i in range(n):
                o[i] = rs_fmix64(o[i] ^ rs_fmix64(x[i] + salt))


cdef int _fold_dict(uint64_t[::1] o, object dict_keys, const int32_t[::1] ix, object valid, Py_ssize_t j) except -1:
    """Column ``j`` of fast_keys from a dictionary column: its dictionary's keys gathered by index (FAST_NULL for
    a null index) and copied (first column) or folded in."""
    cdef Py_ssize_t i, n = o.shape[0], nd = len(dict_keys)
    cdef const uint64_t[::1] dk = dict_keys if nd else np.zeros(1, np.uint64)
    cdef bint has_valid = valid is not None
    cdef const uint8_t[::1] vb = valid if has_valid else np.zeros(1, np.uint8)
    cdef uint64_t salt = <uint64_t>j * 0x9E3779B97F4A7C15ULL, h
    cdef int32_t k
    cdef bint bad = False, first = j == 0
    with nogil:
        for i in range(n):
            if has_valid and not vb[i]:
                h = FAST_NULL
            else:
                k = ix[i]
                if k < 0 or k >= nd:
                    bad = True
                    break
                h = dk[k]
            o[i] = h if first else rs_fmix64(o[i] ^ rs_fmix64(h + salt))
    if bad:
        raise ValueError("dictionary index out of range")
    return 0
