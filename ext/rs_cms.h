/*
 * Count-min sketch kernels (the only copy): row cells by double hashing, batch update/query in blocks whose
 * cells are hashed and prefetched ahead, specialised for small constant depths so the compiler unrolls.
 */
#ifndef RS_CMS_H
#define RS_CMS_H

#include "rs_hash.h"

#define RS_CMS_MAX_DEPTH 32
#define RS_CMS_BLOCK 16

/* Cell of each row: one fmix64, then Kirsch-Mitzenmacher double hashing g_r = h1 + r*h2 (mod 2^32),
 * reduced to [0, width) by multiply-shift; row r's cells start at r*width. */
RS_INLINE void rs_cms_rows(uint64_t key, uint64_t seed, uint32_t depth, uint64_t width, uint64_t *idx) {
    uint64_t h = rs_fmix64(key ^ seed);
    uint32_t g = (uint32_t)h, h2 = (uint32_t)(h >> 32) | 1u;
    for (uint32_t r = 0; r < depth; r++) {
        idx[r] = r * width + (((uint64_t)g * width) >> 32);
        g += h2;
    }
}

/* Add c to one key's cells; return its estimate after the update (saturating at 2^32-1). */
RS_INLINE uint32_t rs_cms_add(uint32_t *t, const uint64_t *idx, uint32_t depth, uint32_t c, int conservative) {
    uint32_t m = 0xFFFFFFFFu;
    if (conservative) {
        for (uint32_t r = 0; r < depth; r++) { uint32_t v = t[idx[r]]; m = v < m ? v : m; }
        uint64_t s = (uint64_t)m + c;
        uint32_t s32 = s > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)s;
        for (uint32_t r = 0; r < depth; r++) { uint32_t v = t[idx[r]]; t[idx[r]] = v < s32 ? s32 : v; }
        return s32;
    }
    for (uint32_t r = 0; r < depth; r++) {
        uint64_t s = (uint64_t)t[idx[r]] + c;
        uint32_t s32 = s > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)s;
        t[idx[r]] = s32;
        m = s32 < m ? s32 : m;
    }
    return m;
}

RS_INLINE uint32_t rs_cms_get(const uint32_t *t, const uint64_t *idx, uint32_t depth) {
    uint32_t m = 0xFFFFFFFFu;
    for (uint32_t r = 0; r < depth; r++) { uint32_t v = t[idx[r]]; m = v < m ? v : m; }
    return m;
}

/* The batch loop. counts == NULL means 1 each; write == 0 is a pure query; out may be NULL.
 * Returns the sum of the counts added. */
RS_INLINE uint64_t rs_cms_batch_d(uint32_t *t, uint64_t width, const uint32_t depth, uint64_t seed,
                                  int conservative, int write, const uint64_t *keys, const uint32_t *counts,
                                  int64_t n, uint32_t *out) {
    uint64_t idx[RS_CMS_BLOCK * RS_CMS_MAX_DEPTH];
    uint64_t added = 0;
    const int prefetch = width * depth >= (1u << 16);
    for (int64_t i = 0; i < n; i += RS_CMS_BLOCK) {
        int64_t m = n - i < RS_CMS_BLOCK ? n - i : RS_CMS_BLOCK;
        for (int64_t j = 0; j < m; j++) {
            rs_cms_rows(keys[i + j], seed, depth, width, &idx[j * depth]);
            if (prefetch)
                for (uint32_t r = 0; r < depth; r++) RS_PREFETCH(&t[idx[j * depth + r]]);
        }
        for (int64_t j = 0; j < m; j++) {
            uint32_t est;
            if (write) {
                uint32_t c = counts ? counts[i + j] : 1u;
                est = rs_cms_add(t, &idx[j * depth], depth, c, conservative);
                added += c;
            } else {
                est = rs_cms_get(t, &idx[j * depth], depth);
            }
            if (out) out[i + j] = est;
        }
    }
    return added;
}

/* Dispatch to a copy specialised for the depth (constant-propagated and unrolled by the compiler). */
static uint64_t rs_cms_batch(uint32_t *t, uint64_t width, uint32_t depth, uint64_t seed, int conservative,
                             int write, const uint64_t *keys, const uint32_t *counts, int64_t n, uint32_t *out) {
#define RS_CMS_CASE(D) case D: return rs_cms_batch_d(t, width, D, seed, conservative, write, keys, counts, n, out);
    switch (depth) {
        RS_CMS_CASE(1) RS_CMS_CASE(2) RS_CMS_CASE(3) RS_CMS_CASE(4)
        RS_CMS_CASE(5) RS_CMS_CASE(6) RS_CMS_CASE(7) RS_CMS_CASE(8)
        default: return rs_cms_batch_d(t, width, depth, seed, conservative, write, keys, counts, n, out);
    }
#undef RS_CMS_CASE
}

#endif /* RS_CMS_H */
