/* JSON lines -> columns of wanted dotted paths, on yyjson (ext/yyjson). Used by ext/_json.pyx.
 *
 * A block holds many '\n'-terminated lines. Each line is parsed on its own by yyjson (strict RFC 8259,
 * UTF-8 validated). The root object is walked key by key: each (parent prefix, key) pair is looked up in a
 * small open-addressing hash table that maps every way of spelling a wanted path or prefix (nested
 * {"a": {"b": 1}}, dotted {"a.b": 1}, mixed) to it; only objects at a wanted prefix are descended into. A line is "fast" when it parses, its root is an object, every wanted leaf found
 * has the expected JSON type (or null), no wanted path or prefix occurs twice (duplicate keys: the per-line
 * reader keeps the last one, in an order this walk does not reproduce), it nests at most 1024 containers
 * (orjson's depth limit) and its strings fit 32-bit offsets. Every other line gets a non-zero status and is
 * left to the caller's per-line reader. Values of fast lines are appended to per-column buffers (Arrow
 * layouts: validity bitmap, int32 offsets + bytes, int64 values, bit-packed booleans).
 *
 * Cost: one yyjson parse per line (O(line bytes)) plus O(keys on wanted paths) hash lookups of
 * O(1) each (plus one memcmp of the key on a hit). No Python object is touched: the caller releases the GIL around rsj_project(). */
#ifndef RS_JSON_H
#define RS_JSON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "yyjson/yyjson.h"

enum { RSJ_STRING = 0, RSJ_INT = 1, RSJ_BOOL = 2, RSJ_HAS = 3, RSJ_INT32 = 4 };

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

/* A (parent, key) pair that leads to an entry: the entry's path is the parent's path + "." + key (key alone
 * at the root, parent -1). A path of k dotted parts is reachable by up to k pairs ("a.b.c" = "a.b" + "c" =
 * "a" + "b.c" = root + "a.b.c"), all registered, so nested, dotted and mixed keys resolve by one lookup. */
typedef struct {
    const char *key;
    uint32_t len;
    int32_t parent;     /* entry index of the parent prefix, -1 = root */
    int32_t entry;      /* entry reached */
    uint64_t hash;      /* rsj_hkey(parent, key) */
    uint64_t a, b;      /* the key's words as rsj_hkey loads them (the whole key when len <= 16) */
} rsj_pair;

typedef struct {
    int32_t n_entries;  /* leaves (= columns, first) and prefixes */
    int32_t *leaf;      /* per entry: its column, or -1 for a prefix */
    rsj_pair *pairs;
    int32_t n_pairs;
    int32_t *table;     /* pair index + 1, 0 = empty */
    uint32_t mask;
    uint64_t *lenmask;  /* per parent + 1 (0 = root): bit min(len, 63) set for each key length under it */
    uint64_t *c0mask;   /* per parent + 1: bit (first byte & 63) set for each key under it */
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
    /* RSJ_INT32: null outside int32 */
    int32_t *ints32;    /* n_lines */
    /* RSJ_BOOL: bit-packed values */
    uint8_t *bits;      /* (n_lines + 7) / 8, zeroed */
    /* RSJ_HAS: 0 absent or null, 1 contains, 2 present without it */
    int8_t *has;        /* n_lines */
    uint8_t *valid;     /* validity bitmap, (n_lines + 7) / 8, zeroed */
    int64_t null_count;
} rsj_col;

/* The words of a key that rsj_hkey mixes: its first and last 8 bytes (4 when shorter; bytes 0, n/2, n-1
 * below 4). Together they hold every byte of a key of at most 16 bytes. O(1). */
static inline void rsj_words(const char *k, size_t n, uint64_t *a, uint64_t *b) {
    *a = 0;
    *b = 0;
    if (n >= 8) {
        memcpy(a, k, 8);
        memcpy(b, k + n - 8, 8);
    } else if (n >= 4) {
        uint32_t x, y;
        memcpy(&x, k, 4);
        memcpy(&y, k + n - 4, 4);
        *a = x;
        *b = y;
    } else if (n > 0) {
        const unsigned char *u = (const unsigned char *)k;
        *a = (uint64_t)u[0] | ((uint64_t)u[n / 2] << 8) | ((uint64_t)u[n - 1] << 16);
    }
}

/* Hash of a key (its words) under a parent, with its length. O(1). */
static inline uint64_t rsj_hwords(int32_t parent, uint64_t a, uint64_t b, size_t n) {
    uint64_t h = a * 0x9E3779B97F4A7C15ULL;
    h ^= (b + ((uint64_t)n << 48) + ((uint64_t)(uint32_t)(parent + 1) << 24)) * 0xC2B2AE3D27D4EB4FULL;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ULL;
    return h ^ (h >> 32);
}

static inline uint64_t rsj_hkey(int32_t parent, const char *k, size_t n) {
    uint64_t a, b;
    rsj_words(k, n, &a, &b);
    return rsj_hwords(parent, a, b, n);
}

/* Entry reached by key under parent (-1 = root), or -1. Most keys not wanted are rejected by the parent's
 * length and first-byte masks before hashing; keys of at most 16 bytes compare by their words. */
static inline int32_t rsj_lookup(const rsj_spec *sp, int32_t parent, const char *k, size_t kl) {
    if (!kl || !((sp->lenmask[parent + 1] >> (kl < 63 ? kl : 63)) & 1) ||
        !((sp->c0mask[parent + 1] >> ((unsigned char)k[0] & 63)) & 1))
        return -1;
    uint64_t a, b;
    rsj_words(k, kl, &a, &b);
    uint64_t h = rsj_hwords(parent, a, b, kl);
    for (uint32_t i = (uint32_t)h & sp->mask;; i = (i + 1) & sp->mask) {
        int32_t e = sp->table[i];
        if (!e) return -1;
        const rsj_pair *pr = &sp->pairs[e - 1];
        if (pr->hash == h && pr->len == kl && pr->parent == parent && pr->a == a && pr->b == b &&
            (kl <= 16 || memcmp(pr->key, k, kl) == 0))
            return pr->entry;
    }
}

typedef struct {
    const rsj_spec *sp;
    yyjson_val **slot;  /* per column: the value found, or NULL */
    uint8_t *seen;      /* per entry */
} rsj_line;

static int rsj_walk(rsj_line *ln, yyjson_val *obj, int32_t parent) {
    size_t idx, max;
    yyjson_val *key, *val;
    const rsj_spec *sp = ln->sp;
    yyjson_obj_foreach(obj, idx, max, key, val) {
        int32_t e = rsj_lookup(sp, parent, unsafe_yyjson_get_str(key), unsafe_yyjson_get_len(key));
        if (e < 0) continue;
        if (ln->seen[e]) return RSJ_DUPLICATE;
        ln->seen[e] = 1;
        int32_t leaf = sp->leaf[e];
        if (leaf >= 0) {
            ln->slot[leaf] = val;
        } else if (yyjson_is_obj(val)) {
            int r = rsj_walk(ln, val, e);
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
        case RSJ_INT32:
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

/* Room for n more bytes in a string column's data (doubling from 4 KiB): 0, or -1 when out of memory. */
static inline int rsj_reserve(rsj_col *col, size_t n) {
    if (col->data_len + (int64_t)n <= col->data_cap) return 0;
    int64_t cap = col->data_cap ? col->data_cap : 4096;
    while (cap < col->data_len + (int64_t)n) cap *= 2;
    char *d = (char *)realloc(col->data, (size_t)cap);
    if (!d) return -1;
    col->data = d;
    col->data_cap = cap;
    return 0;
}

static int rsj_emit(const rsj_spec *sp, yyjson_val **slot, rsj_col *cols, int64_t row) {
    for (int32_t c = 0; c < sp->n_cols; c++) {
        yyjson_val *v = slot[c];
        rsj_col *col = &cols[c];
        int null = rsj_is_null(v);
        switch (sp->kinds[c]) {
        case RSJ_STRING:
            if (!null) {
                size_t n = unsafe_yyjson_get_len(v);
                if (rsj_reserve(col, n)) return RSJ_NO_MEMORY;
                memcpy(col->data + col->data_len, unsafe_yyjson_get_str(v), n);
                col->data_len += (int64_t)n;
            }
            col->offsets[row + 1] = (int32_t)col->data_len;
            break;
        case RSJ_INT:
            col->ints[row] = null ? 0 : yyjson_is_sint(v) ? unsafe_yyjson_get_sint(v)
                                                           : (int64_t)unsafe_yyjson_get_uint(v);
            break;
        case RSJ_INT32: {
            int64_t x = null ? 0 : yyjson_is_sint(v) ? unsafe_yyjson_get_sint(v) : (int64_t)unsafe_yyjson_get_uint(v);
            if (x < INT32_MIN || x > INT32_MAX) { /* as the per-line reader: out of range -> null */
                null = 1;
                x = 0;
            }
            col->ints32[row] = (int32_t)x;
            break;
        }
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

/* Split block[0:len) into lines: *starts/*ends (malloc'd, the caller frees) receive each line's byte range
 * without its '\n' and a '\r' before it; a last line without '\n' counts. Returns the number of lines, or
 * -1 when out of memory. One memchr pass, O(len). */
static int64_t rsj_split(const char *block, int64_t len, int64_t **starts, int64_t **ends) {
    int64_t cap = 1024, n = 0, pos = 0;
    int64_t *s = (int64_t *)malloc(sizeof(int64_t) * (size_t)cap);
    int64_t *e = (int64_t *)malloc(sizeof(int64_t) * (size_t)cap);
    while (s && e && pos < len) {
        if (n == cap) {
            cap *= 2;
            int64_t *s2 = (int64_t *)realloc(s, sizeof(int64_t) * (size_t)cap);
            if (s2) s = s2;
            int64_t *e2 = s2 ? (int64_t *)realloc(e, sizeof(int64_t) * (size_t)cap) : NULL;
            if (e2) e = e2;
            if (!s2 || !e2) break;
        }
        const char *nl = (const char *)memchr(block + pos, '\n', (size_t)(len - pos));
        int64_t end = nl ? (int64_t)(nl - block) : len, x = end;
        if (x > pos && block[x - 1] == '\r') x--;
        s[n] = pos;
        e[n] = x;
        n++;
        pos = end + 1;
    }
    if (!s || !e || pos < len) {
        free(s);
        free(e);
        return -1;
    }
    *starts = s;
    *ends = e;
    return n;
}

#include "rs_json_scan.h"

/* Project the n_lines lines block[starts[i]:ends[i]) (from rsj_split): status receives each line's RSJ_*
 * code; the rows of fast lines are appended to cols in line order and their count returned (or -1 when out
 * of memory). With on_demand, each line is first read by rsj_scan_line (rs_json_scan.h); the lines it gives
 * up on, and every line without it, are parsed by yyjson and walked (rsj_walk): the same statuses and values
 * either way. */
static int64_t rsj_project(const rsj_spec *sp, const char *block, int64_t n_lines, const int64_t *starts,
                           const int64_t *ends, uint8_t *status, rsj_col *cols, int on_demand) {
    int64_t rows = 0, line = 0;
    size_t pool_size = yyjson_read_max_memory_usage(RSJ_POOL_LINE, 0);
    void *pool_buf = malloc(pool_size);
    yyjson_val **slot = (yyjson_val **)calloc((size_t)sp->n_cols + 1, sizeof(yyjson_val *));
    uint8_t *seen = (uint8_t *)calloc((size_t)sp->n_entries + 1, 1);
    rsj_sval *sval = (rsj_sval *)calloc((size_t)sp->n_cols + 1, sizeof(rsj_sval));
    if (!pool_buf || !slot || !seen || !sval) {
        free(pool_buf); free(slot); free(seen); free(sval);
        return -1;
    }
    yyjson_alc pool;
    yyjson_alc_pool_init(&pool, pool_buf, pool_size);
    rsj_line ln = {sp, slot, seen};
    rsj_scan sc = {sp, NULL, sval, seen, 0};
    const int64_t str_room = INT32_MAX;
    for (int32_t c = 0; c < sp->n_cols; c++) if (cols[c].offsets) cols[c].offsets[0] = 0;
    for (; line < n_lines; line++) {
        int64_t pos = starts[line], e = ends[line];
        int st = RSJ_INVALID;
        if (on_demand && e > pos && rsj_scan_line(&sc, block + pos, (size_t)(e - pos))) {
            st = rsj_emit_scan(sp, sval, cols, rows, str_room);
            if (st == RSJ_OK) {
                rows++;
                status[line] = RSJ_OK;
                continue;
            }
            if (st == RSJ_NO_MEMORY) {
                rows = -1;
                break;
            }
            st = RSJ_INVALID;  /* (too big by the raw length: yyjson's length decides) */
        }
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
                        st = rsj_walk(&ln, root, -1);
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
    }
    free(pool_buf);
    free(slot);
    free(seen);
    free(sval);
    return rows;
}

#endif
