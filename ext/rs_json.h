/* JSON lines -> columns of wanted dotted paths, on yyjson (ext/yyjson). Used by ext/_json.pyx.
 *
 * A block holds many '\n'-terminated lines. Each line is parsed on its own by yyjson (strict RFC 8259,
 * UTF-8 validated). The root object is walked key by key: the dotted path of each key (parent path + "." +
 * key, so nested {"a": {"b": 1}}, dotted {"a.b": 1} and mixed records all give "a.b") is looked up in a
 * small open-addressing hash table of the wanted leaf paths and of their prefixes; only objects at a wanted
 * prefix are descended into. A line is "fast" when it parses, its root is an object, every wanted leaf found
 * has the expected JSON type (or null), no wanted path or prefix occurs twice (duplicate keys: the per-line
 * reader keeps the last one, in an order this walk does not reproduce), it nests at most 1024 containers
 * (orjson's depth limit) and its strings fit 32-bit offsets. Every other line gets a non-zero status and is
 * left to the caller's per-line reader. Values of fast lines are appended to per-column buffers (Arrow
 * layouts: validity bitmap, int32 offsets + bytes, int64 values, bit-packed booleans).
 *
 * Cost: one yyjson parse per line (O(line bytes)) plus O(keys on wanted paths) hash lookups of
 * O(key bytes) each. No Python object is touched: the caller releases the GIL around rsj_project(). */
#ifndef RS_JSON_H
#define RS_JSON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "yyjson/yyjson.h"

enum { RSJ_STRING = 0, RSJ_INT = 1, RSJ_BOOL = 2, RSJ_HAS = 3 };

/* Line status (0 = projected). */
enum {
    RSJ_OK = 0,
    RSJ_INVALID = 1,     /* not JSON yyjson accepts (blank, malformed, invalid UTF-8, ...) */
    RSJ_NOT_OBJECT = 2,  /* valid JSON whose root is not an object */
    RSJ_WRONG_TYPE = 3,  /* a wanted leaf of another JSON type (the per-line reader coerces it) */
    RSJ_DUPLICATE = 4,   /* a wanted path or prefix reached twice */
    RSJ_TOO_DEEP = 5,    /* more than RSJ_MAX_CONTAINERS containers: may exceed orjson's depth limit */
    RSJ_TOO_BIG = 6,     /* a string column would pass 2 GiB in this block */
    RSJ_NO_MEMORY = 7
};

#define RSJ_MAX_CONTAINERS 1024
#define RSJ_POOL_LINE (1 << 16) /* lines up to this many bytes parse in a reused memory pool */

typedef struct {
    const char *path;   /* full dotted path */
    uint32_t len;
    int32_t leaf;       /* column index, or -1 for a prefix */
    uint64_t hash;      /* FNV-1a of path */
} rsj_entry;

typedef struct {
    rsj_entry *entries;
    int32_t n_entries;
    int32_t *table;     /* entry index + 1, 0 = empty */
    uint32_t mask;
    int32_t n_cols;
    uint8_t *kinds;     /* per column */
    const char **has_str; /* RSJ_HAS: the string looked for */
    uint32_t *has_len;
} rsj_spec;

typedef struct {
    /* RSJ_STRING */
    char *data;
    int64_t data_len, data_cap;
    int32_t *offsets;   /* n_lines + 1 */
    /* RSJ_INT */
    int64_t *ints;      /* n_lines */
    /* RSJ_BOOL: bit-packed values */
    uint8_t *bits;      /* (n_lines + 7) / 8, zeroed */
    /* RSJ_HAS: 0 absent or null, 1 contains, 2 present without it */
    int8_t *has;        /* n_lines */
    uint8_t *valid;     /* validity bitmap, (n_lines + 7) / 8, zeroed */
    int64_t null_count;
} rsj_col;

static inline uint64_t rsj_fnv(uint64_t h, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}
#define RSJ_FNV0 14695981039346656037ULL

/* Index of the entry whose path is prefix + "." + key (key alone at the root), or -1. */
static inline int32_t rsj_lookup(const rsj_spec *sp, uint64_t h, const rsj_entry *parent, const char *k,
                                 size_t kl) {
    uint32_t plen = parent ? parent->len : 0;
    size_t want = parent ? (size_t)plen + 1 + kl : kl;
    for (uint32_t i = (uint32_t)h & sp->mask;; i = (i + 1) & sp->mask) {
        int32_t e = sp->table[i];
        if (!e) return -1;
        const rsj_entry *en = &sp->entries[e - 1];
        if (en->hash != h || en->len != want) continue;
        if (parent) {
            if (memcmp(en->path, parent->path, plen) != 0 || en->path[plen] != '.') continue;
            if (memcmp(en->path + plen + 1, k, kl) != 0) continue;
        } else if (memcmp(en->path, k, kl) != 0) {
            continue;
        }
        return e - 1;
    }
}

typedef struct {
    const rsj_spec *sp;
    yyjson_val **slot;  /* per column: the value found, or NULL */
    uint8_t *seen;      /* per entry */
} rsj_line;

static int rsj_walk(rsj_line *ln, yyjson_val *obj, const rsj_entry *parent) {
    size_t idx, max;
    yyjson_val *key, *val;
    const rsj_spec *sp = ln->sp;
    uint64_t h0 = parent ? rsj_fnv(parent->hash, ".", 1) : RSJ_FNV0;
    yyjson_obj_foreach(obj, idx, max, key, val) {
        const char *k = unsafe_yyjson_get_str(key);
        size_t kl = unsafe_yyjson_get_len(key);
        int32_t e = rsj_lookup(sp, rsj_fnv(h0, k, kl), parent, k, kl);
        if (e < 0) continue;
        if (ln->seen[e]) return RSJ_DUPLICATE;
        ln->seen[e] = 1;
        const rsj_entry *en = &sp->entries[e];
        if (en->leaf >= 0) {
            ln->slot[en->leaf] = val;
        } else if (yyjson_is_obj(val)) {
            int r = rsj_walk(ln, val, en);
            if (r) return r;
        }
    }
    return RSJ_OK;
}

static inline int rsj_is_null(yyjson_val *v) { return v == NULL || yyjson_is_null(v); }

/* Check the types of the values found; RSJ_OK when the line can be projected. */
static int rsj_check(const rsj_spec *sp, yyjson_val **slot, rsj_col *cols, int64_t str_room) {
    for (int32_t c = 0; c < sp->n_cols; c++) {
        yyjson_val *v = slot[c];
        if (rsj_is_null(v)) continue;
        switch (sp->kinds[c]) {
        case RSJ_STRING:
            if (!yyjson_is_str(v)) return RSJ_WRONG_TYPE;
            if ((int64_t)unsafe_yyjson_get_len(v) > str_room - cols[c].data_len) return RSJ_TOO_BIG;
            break;
        case RSJ_INT:
            if (yyjson_is_sint(v)) break;
            if (yyjson_is_uint(v) && unsafe_yyjson_get_uint(v) <= (uint64_t)INT64_MAX) break;
            return RSJ_WRONG_TYPE;
        case RSJ_BOOL:
            if (!yyjson_is_bool(v)) return RSJ_WRONG_TYPE;
            break;
        default: /* RSJ_HAS: any type */
            break;
        }
    }
    return RSJ_OK;
}

static inline void rsj_setbit(uint8_t *bm, int64_t i) { bm[i >> 3] |= (uint8_t)(1u << (i & 7)); }

static int rsj_emit(const rsj_spec *sp, yyjson_val **slot, rsj_col *cols, int64_t row) {
    for (int32_t c = 0; c < sp->n_cols; c++) {
        yyjson_val *v = slot[c];
        rsj_col *col = &cols[c];
        int null = rsj_is_null(v);
        switch (sp->kinds[c]) {
        case RSJ_STRING:
            if (!null) {
                size_t n = unsafe_yyjson_get_len(v);
                if (col->data_len + (int64_t)n > col->data_cap) {
                    int64_t cap = col->data_cap ? col->data_cap : 4096;
                    while (cap < col->data_len + (int64_t)n) cap *= 2;
                    char *d = (char *)realloc(col->data, (size_t)cap);
                    if (!d) return RSJ_NO_MEMORY;
                    col->data = d;
                    col->data_cap = cap;
                }
                memcpy(col->data + col->data_len, unsafe_yyjson_get_str(v), n);
                col->data_len += (int64_t)n;
            }
            col->offsets[row + 1] = (int32_t)col->data_len;
            break;
        case RSJ_INT:
            col->ints[row] = null ? 0 : yyjson_is_sint(v) ? unsafe_yyjson_get_sint(v)
                                                           : (int64_t)unsafe_yyjson_get_uint(v);
            break;
        case RSJ_BOOL:
            if (!null && unsafe_yyjson_get_bool(v)) rsj_setbit(col->bits, row);
            break;
        default: { /* RSJ_HAS */
            int8_t r = 0;
            if (!null) {
                r = 2;
                const char *want = sp->has_str[c];
                size_t wl = sp->has_len[c];
                if (yyjson_is_str(v)) {
                    if (unsafe_yyjson_get_len(v) == wl && memcmp(unsafe_yyjson_get_str(v), want, wl) == 0) r = 1;
                } else if (yyjson_is_arr(v)) {
                    size_t i, m;
                    yyjson_val *x;
                    yyjson_arr_foreach(v, i, m, x) {
                        if (yyjson_is_str(x) && unsafe_yyjson_get_len(x) == wl &&
                            memcmp(unsafe_yyjson_get_str(x), want, wl) == 0) {
                            r = 1;
                            break;
                        }
                    }
                }
            }
            col->has[row] = r;
            null = (r == 0);
            break;
        }
        }
        if (null) col->null_count++;
        else rsj_setbit(col->valid, row);
    }
    return RSJ_OK;
}

/* Project every line of block[0:len) (which ends with '\n'; a '\r' before it is dropped). starts/ends
 * receive each line's byte range, status its RSJ_* code; the rows of fast lines are appended to cols in
 * line order and their count returned (or -1 when out of memory). n_lines must be the number of '\n'. */
static int64_t rsj_project(const rsj_spec *sp, const char *block, int64_t len, int64_t n_lines,
                           int64_t *starts, int64_t *ends, uint8_t *status, rsj_col *cols) {
    int64_t rows = 0, pos = 0, line = 0;
    size_t pool_size = yyjson_read_max_memory_usage(RSJ_POOL_LINE, 0);
    void *pool_buf = malloc(pool_size);
    yyjson_val **slot = (yyjson_val **)calloc((size_t)sp->n_cols + 1, sizeof(yyjson_val *));
    uint8_t *seen = (uint8_t *)calloc((size_t)sp->n_entries + 1, 1);
    if (!pool_buf || !slot || !seen) {
        free(pool_buf); free(slot); free(seen);
        return -1;
    }
    yyjson_alc pool;
    yyjson_alc_pool_init(&pool, pool_buf, pool_size);
    rsj_line ln = {sp, slot, seen};
    const int64_t str_room = INT32_MAX;
    for (int32_t c = 0; c < sp->n_cols; c++) if (cols[c].offsets) cols[c].offsets[0] = 0;
    while (line < n_lines && pos < len) {
        const char *nl = (const char *)memchr(block + pos, '\n', (size_t)(len - pos));
        int64_t end = nl ? (int64_t)(nl - block) : len;
        int64_t e = end;
        if (e > pos && block[e - 1] == '\r') e--;
        starts[line] = pos;
        ends[line] = e;
        int st = RSJ_INVALID;
        if (e > pos) {
            yyjson_read_err err;
            size_t n = (size_t)(e - pos);
            yyjson_doc *doc = yyjson_read_opts((char *)(block + pos), n, 0, n <= RSJ_POOL_LINE ? &pool : NULL,
                                               &err);
            if (doc) {
                yyjson_val *root = yyjson_doc_get_root(doc);
                if (!yyjson_is_obj(root)) {
                    st = RSJ_NOT_OBJECT;
                } else {
                    st = RSJ_OK;
                    size_t nv = yyjson_doc_get_val_count(doc);
                    if (nv > RSJ_MAX_CONTAINERS) { /* values are stored flat, in document order */
                        size_t ctn = 0;
                        for (size_t i = 0; i < nv; i++) ctn += unsafe_yyjson_is_ctn(root + i);
                        if (ctn > RSJ_MAX_CONTAINERS) st = RSJ_TOO_DEEP;
                    }
                    if (st == RSJ_OK) {
                        memset(slot, 0, sizeof(yyjson_val *) * (size_t)sp->n_cols);
                        memset(seen, 0, (size_t)sp->n_entries);
                        st = rsj_walk(&ln, root, NULL);
                    }
                    if (st == RSJ_OK) st = rsj_check(sp, slot, cols, str_room);
                    if (st == RSJ_OK) {
                        st = rsj_emit(sp, slot, cols, rows);
                        if (st == RSJ_OK) rows++;
                    }
                }
                yyjson_doc_free(doc);
            }
        }
        status[line] = (uint8_t)st;
        if (st == RSJ_NO_MEMORY) {
            rows = -1;
            break;
        }
        line++;
        pos = end + 1;
    }
    free(pool_buf);
    free(slot);
    free(seen);
    return rows;
}

#endif
