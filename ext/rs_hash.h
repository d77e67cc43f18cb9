/*
 * Hash kernels of the compiled core: MurmurHash3 x64-128 (first 64 bits), its 64-bit finaliser, and the
 * range reduction used by every table. Each kernel exists once, here; the Cython sources include this file.
 *
 * MurmurHash3 was written by Austin Appleby and placed in the public domain (smhasher, MurmurHash3.cpp);
 * this is a C99 transcription of MurmurHash3_x64_128 that returns h1, so that
 * rs_murmur3_64(s, n, seed) == mmh3.hash64(s, seed, signed=False)[0].
 */
#ifndef RS_HASH_H
#define RS_HASH_H

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define RS_INLINE static inline __attribute__((always_inline))
#define RS_PREFETCH(p) __builtin_prefetch((p), 1, 1)
#else
#define RS_INLINE static inline
#define RS_PREFETCH(p) ((void)0)
#endif

RS_INLINE uint64_t rs_rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* MurmurHash3's 64-bit finaliser: a bijective avalanche mix. */
RS_INLINE uint64_t rs_fmix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

/* Little-endian 64-bit load from any alignment. */
RS_INLINE uint64_t rs_load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* MurmurHash3_x64_128(data, len, seed), first 64 bits (h1). */
RS_INLINE uint64_t rs_murmur3_64(const uint8_t *data, int64_t len, uint32_t seed) {
    const int64_t nblocks = len / 16;
    uint64_t h1 = seed, h2 = seed;
    const uint64_t c1 = 0x87c37b91114253d5ULL;
    const uint64_t c2 = 0x4cf5ad432745937fULL;
    int64_t i;
    for (i = 0; i < nblocks; i++) {
        uint64_t k1 = rs_load64(data + 16 * i);
        uint64_t k2 = rs_load64(data + 16 * i + 8);
        k1 *= c1; k1 = rs_rotl64(k1, 31); k1 *= c2; h1 ^= k1;
        h1 = rs_rotl64(h1, 27); h1 += h2; h1 = h1 * 5 + 0x52dce729;
        k2 *= c2; k2 = rs_rotl64(k2, 33); k2 *= c1; h2 ^= k2;
        h2 = rs_rotl64(h2, 31); h2 += h1; h2 = h2 * 5 + 0x38495ab5;
    }
    const uint8_t *tail = data + nblocks * 16;
    const int t = (int)(len & 15);
    uint64_t k1 = 0, k2 = 0;
    if (t && len >= 8) {
        /* The tail's bytes end where the data ends: load the 8 (or 16) bytes before the end, which lie inside
           the data, and shift the tail's bytes down (the same little-endian value the byte switch builds). */
        if (t > 8) {
            k2 = rs_load64(tail + t - 8) >> (64 - 8 * (t - 8));
            k2 *= c2; k2 = rs_rotl64(k2, 33); k2 *= c1; h2 ^= k2;
            k1 = rs_load64(tail);
        } else {
            k1 = rs_load64(tail + t - 8) >> (64 - 8 * t);
        }
        k1 *= c1; k1 = rs_rotl64(k1, 31); k1 *= c2; h1 ^= k1;
    } else switch (t) {
    case 15: k2 ^= ((uint64_t)tail[14]) << 48; /* fall through */
    case 14: k2 ^= ((uint64_t)tail[13]) << 40; /* fall through */
    case 13: k2 ^= ((uint64_t)tail[12]) << 32; /* fall through */
    case 12: k2 ^= ((uint64_t)tail[11]) << 24; /* fall through */
    case 11: k2 ^= ((uint64_t)tail[10]) << 16; /* fall through */
    case 10: k2 ^= ((uint64_t)tail[9]) << 8;   /* fall through */
    case 9:  k2 ^= ((uint64_t)tail[8]);
             k2 *= c2; k2 = rs_rotl64(k2, 33); k2 *= c1; h2 ^= k2; /* fall through */
    case 8:  k1 ^= ((uint64_t)tail[7]) << 56; /* fall through */
    case 7:  k1 ^= ((uint64_t)tail[6]) << 48; /* fall through */
    case 6:  k1 ^= ((uint64_t)tail[5]) << 40; /* fall through */
    case 5:  k1 ^= ((uint64_t)tail[4]) << 32; /* fall through */
    case 4:  k1 ^= ((uint64_t)tail[3]) << 24; /* fall through */
    case 3:  k1 ^= ((uint64_t)tail[2]) << 16; /* fall through */
    case 2:  k1 ^= ((uint64_t)tail[1]) << 8;  /* fall through */
    case 1:  k1 ^= ((uint64_t)tail[0]);
             k1 *= c1; k1 = rs_rotl64(k1, 31); k1 *= c2; h1 ^= k1;
    }
    h1 ^= (uint64_t)len; h2 ^= (uint64_t)len;
    h1 += h2; h2 += h1;
    h1 = rs_fmix64(h1); h2 = rs_fmix64(h2);
    h1 += h2;
    return h1;
}

/* Hash of a pair of 64-bit keys: MurmurHash3 of their 16 little-endian bytes (a then b). */
RS_INLINE uint64_t rs_hash_pair(uint64_t a, uint64_t b, uint32_t seed) {
    uint8_t buf[16];
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    a = __builtin_bswap64(a); b = __builtin_bswap64(b);
#endif
    memcpy(buf, &a, 8);
    memcpy(buf + 8, &b, 8);
    return rs_murmur3_64(buf, 16, seed);
}

/* Lemire's multiply-shift range reduction: a uniform 64-bit h onto [0, n) without a division. */
RS_INLINE uint64_t rs_reduce(uint64_t h, uint64_t n) {
    return (uint64_t)(((__uint128_t)h * (__uint128_t)n) >> 64);
}

/* Number of leading zero bits of a non-zero 64-bit value. */
RS_INLINE int rs_clz64(uint64_t x) { return __builtin_clzll(x); }

/* XXH3-64 (xxHash 0.8, vendored in ext/xxhash, header-only): 3-5x faster than MurmurHash3 on short strings.
 * Only for keys that live in memory (the key resolver's indexes): saved keys stay MurmurHash3. */
#define XXH_INLINE_ALL
#include "xxhash/xxhash.h"
RS_INLINE uint64_t rs_xxh3(const uint8_t *data, int64_t length) { return XXH3_64bits(data, (size_t)length); }

#endif /* RS_HASH_H */
