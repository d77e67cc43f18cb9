/* On-demand scan of one JSON line for the wanted paths of an rsj_spec (included by rs_json.h).
 *
 * One validating pass over the line's bytes without building a document: keys and values on a wanted path are
 * read (the same (parent, key) lookups as rsj_walk), every other value is only checked against RFC 8259 and
 * skipped. Strings are skipped 16 bytes at a time (SSE2, when available) up to their first quote, backslash,
 * control or non-ASCII byte; non-ASCII bytes are checked as UTF-8 (Unicode Table 3-7).
 *
 * The scan only ever answers "projected, with these values" for a line yyjson would also project with the same
 * values; whenever it is not sure it gives up (returns 0) and the caller runs the yyjson path on that line, which
 * decides the line's status exactly. It gives up on: invalid JSON or UTF-8, a root that is not an object, more
 * than RSJ_MAX_CONTAINERS containers, a wanted path or prefix reached twice, a wanted value of another type
 * than its kind takes, a key with an escape, a \u escape of a surrogate, a number outside the forms below, a
 * string of a has: column with an escape. Numbers skipped: at most 20 integer digits, 32 fraction digits and
 * 2 exponent digits (yyjson parses those to a finite double); integers read: at most 18 digits, never "-0".
 *
 * Cost: O(line bytes), no allocation; about one branch per structural byte plus a 16-byte step per string. */
#ifndef RS_JSON_SCAN_H
#define RS_JSON_SCAN_H

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* A wanted leaf's value as the scan found it. */
enum { RSV_NULL = 0, RSV_STR = 1, RSV_INT = 2, RSV_BOOL = 3, RSV_HAS = 4 };

typedef struct {
    uint8_t t;          /* RSV_*: RSV_NULL when absent or JSON null */
    uint8_t esc;        /* RSV_STR: the raw string holds escapes (unescaped when emitted) */
    uint32_t n;         /* RSV_STR: raw length (between the quotes) */
    const char *s;      /* RSV_STR: raw bytes */
    int64_t i;          /* RSV_INT: value; RSV_BOOL: 0/1; RSV_HAS: 1 or 2 */
} rsj_sval;

typedef struct {
    const rsj_spec *sp;
    const char *end;
    rsj_sval *val;      /* per column */
    uint8_t *seen;      /* per entry */
    int32_t ctn;        /* containers so far */
} rsj_scan;

#if defined(__GNUC__)
#define RSJ_INLINE static inline __attribute__((always_inline))
#else
#define RSJ_INLINE static inline
#endif
#define RSJ_WS(c) ((c) == ' ' || (c) == '\t' || (c) == '\r' || (c) == '\n')

RSJ_INLINE const char *rsj_ws(const char *p, const char *end) {
    while (p < end && RSJ_WS(*p)) p++;
    return p;
}

static inline int rsj_hex(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* The \uXXXX code at p (after "\u"), or -1 when not 4 hex digits or a surrogate (given up on). */
static inline int32_t rsj_u4(const char *p, const char *end) {
    if (end - p < 4) return -1;
    int a = rsj_hex((unsigned char)p[0]), b = rsj_hex((unsigned char)p[1]);
    int c = rsj_hex((unsigned char)p[2]), d = rsj_hex((unsigned char)p[3]);
    if ((a | b | c | d) < 0) return -1;
    int32_t u = (a << 12) | (b << 8) | (c << 4) | d;
    return (u >= 0xD800 && u <= 0xDFFF) ? -1 : u;
}

/* Length of the valid UTF-8 sequence starting at p (first byte >= 0x80), or 0. */
RSJ_INLINE int rsj_utf8(const unsigned char *p, const unsigned char *end) {
    unsigned char c = p[0];
    int n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        else if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F;
    } else return 0;
    if (end - p < n) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (int k = 2; k < n; k++)
        if (p[k] < 0x80 || p[k] > 0xBF) return 0;
    return n;
}

/* p just after an opening quote: the closing quote, or NULL (invalid, or given up on). *esc is set when the
 * string holds an escape. */
RSJ_INLINE const char *rsj_str(const char *p, const char *end, int *esc) {
    for (;;) {
#if defined(__SSE2__)
        const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'), sp = _mm_set1_epi8(0x20);
        while (end - p >= 16) {
            __m128i x = _mm_loadu_si128((const __m128i *)p);
            /* signed compare: control bytes and bytes >= 0x80 (negative) are both < 0x20 */
            __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, q), _mm_cmpeq_epi8(x, bs)),
                                     _mm_cmplt_epi8(x, sp));
            int bits = _mm_movemask_epi8(m);
            if (bits) {
                p += __builtin_ctz((unsigned)bits);
                goto special;
            }
            p += 16;
        }
#endif
        while (p < end) {
            unsigned char c = (unsigned char)*p;
            if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) goto special;
            p++;
        }
        return NULL;
    special: {
            unsigned char c = (unsigned char)*p;
            if (c == '"') return p;
            if (c == '\\') {
                if (end - p < 2) return NULL;
                *esc = 1;
                switch (p[1]) {
                case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                    p += 2;
                    break;
                case 'u':
                    if (rsj_u4(p + 2, end) < 0) return NULL;
                    p += 6;
                    break;
                default:
                    return NULL;
                }
            } else if (c < 0x20) {
                return NULL;
            } else {
                int n = rsj_utf8((const unsigned char *)p, (const unsigned char *)end);
                if (!n) return NULL;
                p += n;
            }
        }
    }
}

/* Unescape the raw string s[0:n) (checked by rsj_str: no surrogate escapes) into out; returns the bytes
 * written (never more than n). */
static inline size_t rsj_unescape(const char *s, size_t n, char *out) {
    const char *end = s + n;
    char *o = out;
    while (s < end) {
        const char *b = (const char *)memchr(s, '\\', (size_t)(end - s));
        size_t run = (size_t)((b ? b : end) - s);
        memcpy(o, s, run);
        o += run;
        s += run;
        if (!b) break;
        char c = s[1];
        s += 2;
        switch (c) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            int32_t u = rsj_u4(s, end);
            s += 4;
            if (u < 0x80) {
                *o++ = (char)u;
            } else if (u < 0x800) {
                *o++ = (char)(0xC0 | (u >> 6));
                *o++ = (char)(0x80 | (u & 0x3F));
            } else {
                *o++ = (char)(0xE0 | (u >> 12));
                *o++ = (char)(0x80 | ((u >> 6) & 0x3F));
                *o++ = (char)(0x80 | (u & 0x3F));
            }
            break;
        }
        default: *o++ = c; break; /* " \ / */
        }
    }
    return (size_t)(o - out);
}

/* A number at p: its end, or NULL. With ival non-NULL, only an integer of at most 18 digits (not "-0") is
 * taken and its value stored. */
RSJ_INLINE const char *rsj_num(const char *p, const char *end, int64_t *ival) {
    const char *s = p;
    int neg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    const char *d0 = p;
    uint64_t v = 0;
    if (p < end && *p == '0') {
        p++;
    } else {
        while (p < end && (unsigned)(*p - '0') < 10) v = v * 10 + (uint64_t)(*p++ - '0');
    }
    ptrdiff_t nd = p - d0;
    if (nd == 0 || nd > 20) return NULL;
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) {
        if (ival) return NULL;  /* a real where an integer is wanted: the yyjson path decides */
        if (*p == '.') {
            const char *f = ++p;
            while (p < end && (unsigned)(*p - '0') < 10) p++;
            if (p == f || p - f > 32) return NULL;
        }
        if (p < end && (*p == 'e' || *p == 'E')) {
            p++;
            if (p < end && (*p == '+' || *p == '-')) p++;
            const char *x = p;
            while (p < end && (unsigned)(*p - '0') < 10) p++;
            if (p == x || p - x > 2) return NULL;
        }
        return p;
    }
    if (ival) {
        if (nd > 18 || (neg && v == 0)) return NULL;
        *ival = neg ? -(int64_t)v : (int64_t)v;
    }
    (void)s;
    return p;
}

RSJ_INLINE const char *rsj_lit(const char *p, const char *end, const char *lit, size_t n) {
    return ((size_t)(end - p) >= n && memcmp(p, lit, n) == 0) ? p + n : NULL;
}

static const char *rsj_skip(rsj_scan *s, const char *p);

/* p after the '{' of an object not on a wanted path: its end, or NULL. */
static const char *rsj_skip_obj(rsj_scan *s, const char *p) {
    const char *end = s->end;
    if (++s->ctn > RSJ_MAX_CONTAINERS) return NULL;
    p = rsj_ws(p, end);
    if (p < end && *p == '}') return p + 1;
    for (;;) {
        int esc = 0;
        if (p >= end || *p != '"') return NULL;
        p = rsj_str(p + 1, end, &esc);
        if (!p) return NULL;
        p = rsj_ws(p + 1, end);
        if (p >= end || *p != ':') return NULL;
        p = rsj_skip(s, rsj_ws(p + 1, end));
        if (!p) return NULL;
        p = rsj_ws(p, end);
        if (p >= end) return NULL;
        if (*p == ',') {
            p = rsj_ws(p + 1, end);
            continue;
        }
        return *p == '}' ? p + 1 : NULL;
    }
}

/* p after the '[' of an array not on a wanted path: its end, or NULL. */
static const char *rsj_skip_arr(rsj_scan *s, const char *p) {
    const char *end = s->end;
    if (++s->ctn > RSJ_MAX_CONTAINERS) return NULL;
    p = rsj_ws(p, end);
    if (p < end && *p == ']') return p + 1;
    for (;;) {
        p = rsj_skip(s, p);
        if (!p) return NULL;
        p = rsj_ws(p, end);
        if (p >= end) return NULL;
        if (*p == ',') {
            p = rsj_ws(p + 1, end);
            continue;
        }
        return *p == ']' ? p + 1 : NULL;
    }
}

/* Check and skip any value at p: its end, or NULL. */
static const char *rsj_skip(rsj_scan *s, const char *p) {
    const char *end = s->end;
    if (p >= end) return NULL;
    int esc = 0;
    switch (*p) {
    case '"': p = rsj_str(p + 1, end, &esc); return p ? p + 1 : NULL;
    case '{': return rsj_skip_obj(s, p + 1);
    case '[': return rsj_skip_arr(s, p + 1);
    case 't': return rsj_lit(p, end, "true", 4);
    case 'f': return rsj_lit(p, end, "false", 5);
    case 'n': return rsj_lit(p, end, "null", 4);
    default: return rsj_num(p, end, NULL);
    }
}

/* A has:VALUE value at p: 1 when it is the string VALUE or an array holding it, 2 otherwise (null: 0). */
static const char *rsj_has(rsj_scan *s, const char *p, int32_t c, rsj_sval *out) {
    const char *end = s->end, *want = s->sp->has_str[c];
    size_t wl = s->sp->has_len[c];
    int esc = 0;
    if (p >= end) return NULL;
    if (*p == 'n') {
        out->t = RSV_NULL;
        return rsj_lit(p, end, "null", 4);
    }
    out->t = RSV_HAS;
    out->i = 2;
    if (*p == '"') {
        const char *q = rsj_str(p + 1, end, &esc);
        if (!q || esc) return NULL;
        if ((size_t)(q - p - 1) == wl && memcmp(p + 1, want, wl) == 0) out->i = 1;
        return q + 1;
    }
    if (*p != '[') return rsj_skip(s, p);
    if (++s->ctn > RSJ_MAX_CONTAINERS) return NULL;
    p = rsj_ws(p + 1, end);
    if (p < end && *p == ']') return p + 1;
    for (;;) {
        if (p < end && *p == '"') {
            const char *q = rsj_str(p + 1, end, &esc);
            if (!q || esc) return NULL;
            if ((size_t)(q - p - 1) == wl && memcmp(p + 1, want, wl) == 0) out->i = 1;
            p = q + 1;
        } else {
            p = rsj_skip(s, p);
            if (!p) return NULL;
        }
        p = rsj_ws(p, end);
        if (p >= end) return NULL;
        if (*p == ',') {
            p = rsj_ws(p + 1, end);
            continue;
        }
        return *p == ']' ? p + 1 : NULL;
    }
}

/* The value of wanted leaf column c at p, of the column's kind (or null): its end, or NULL. */
static const char *rsj_leaf(rsj_scan *s, const char *p, int32_t c) {
    const char *end = s->end;
    rsj_sval *v = &s->val[c];
    if (p >= end) return NULL;
    uint8_t k = s->sp->kinds[c];
    if (k == RSJ_HAS) return rsj_has(s, p, c, v);
    if (*p == 'n') {
        v->t = RSV_NULL;
        return rsj_lit(p, end, "null", 4);
    }
    switch (k) {
    case RSJ_STRING: {
        if (*p != '"') return NULL;
        int esc = 0;
        const char *q = rsj_str(p + 1, end, &esc);
        if (!q) return NULL;
        v->t = RSV_STR;
        v->esc = (uint8_t)esc;
        v->s = p + 1;
        v->n = (uint32_t)(q - p - 1);
        if ((ptrdiff_t)v->n != q - p - 1) return NULL;
        return q + 1;
    }
    case RSJ_INT:
    case RSJ_INT32:
        v->t = RSV_INT;
        return rsj_num(p, end, &v->i);
    default: /* RSJ_BOOL */
        v->t = RSV_BOOL;
        v->i = *p == 't';
        return *p == 't' ? rsj_lit(p, end, "true", 4) : *p == 'f' ? rsj_lit(p, end, "false", 5) : NULL;
    }
}

/* p after the '{' of an object on wanted prefix `parent` (-1: the root): its end, or NULL. */
static const char *rsj_obj(rsj_scan *s, const char *p, int32_t parent) {
    const char *end = s->end;
    const rsj_spec *sp = s->sp;
    if (++s->ctn > RSJ_MAX_CONTAINERS) return NULL;
    p = rsj_ws(p, end);
    if (p < end && *p == '}') return p + 1;
    for (;;) {
        int esc = 0;
        if (p >= end || *p != '"') return NULL;
        const char *k = p + 1, *q = rsj_str(k, end, &esc);
        if (!q || esc) return NULL;  /* (an escaped key may spell a wanted path: the yyjson path reads it) */
        int32_t e = rsj_lookup(sp, parent, k, (size_t)(q - k));
        p = rsj_ws(q + 1, end);
        if (p >= end || *p != ':') return NULL;
        p = rsj_ws(p + 1, end);
        if (e < 0) {
            p = rsj_skip(s, p);
        } else {
            if (s->seen[e]) return NULL;
            s->seen[e] = 1;
            int32_t leaf = sp->leaf[e];
            if (leaf >= 0) p = rsj_leaf(s, p, leaf);
            else if (p < end && *p == '{') p = rsj_obj(s, p + 1, e);
            else p = rsj_skip(s, p);
        }
        if (!p) return NULL;
        p = rsj_ws(p, end);
        if (p >= end) return NULL;
        if (*p == ',') {
            p = rsj_ws(p + 1, end);
            continue;
        }
        return *p == '}' ? p + 1 : NULL;
    }
}

/* Scan line[0:n): 1 when it projects (values in s->val), 0 when the yyjson path must decide. */
static int rsj_scan_line(rsj_scan *s, const char *line, size_t n) {
    const char *end = line + n;
    s->end = end;
    s->ctn = 0;
    memset(s->val, 0, sizeof(rsj_sval) * (size_t)s->sp->n_cols);
    memset(s->seen, 0, (size_t)s->sp->n_entries);
    const char *p = rsj_ws(line, end);
    if (p >= end || *p != '{') return 0;
    p = rsj_obj(s, p + 1, -1);
    if (!p) return 0;
    return rsj_ws(p, end) == end;
}

/* Append the scanned values as one row (the layout rsj_emit writes); RSJ_TOO_BIG (nothing written) when a string
 * column would pass str_room bytes, RSJ_NO_MEMORY. */
static int rsj_emit_scan(const rsj_spec *sp, const rsj_sval *val, rsj_col *cols, int64_t row, int64_t str_room) {
    for (int32_t c = 0; c < sp->n_cols; c++)
        if (val[c].t == RSV_STR && (int64_t)val[c].n > str_room - cols[c].data_len) return RSJ_TOO_BIG;
    for (int32_t c = 0; c < sp->n_cols; c++) {
        const rsj_sval *v = &val[c];
        rsj_col *col = &cols[c];
        int null = v->t == RSV_NULL;
        switch (sp->kinds[c]) {
        case RSJ_STRING:
            if (!null) {
                size_t n = v->n;
                if (rsj_reserve(col, n)) return RSJ_NO_MEMORY;
                if (v->esc) n = rsj_unescape(v->s, n, col->data + col->data_len);
                else memcpy(col->data + col->data_len, v->s, n);
                col->data_len += (int64_t)n;
            }
            col->offsets[row + 1] = (int32_t)col->data_len;
            break;
        case RSJ_INT:
            col->ints[row] = null ? 0 : v->i;
            break;
        case RSJ_INT32: {
            int64_t x = null ? 0 : v->i;
            if (x < INT32_MIN || x > INT32_MAX) {
                null = 1;
                x = 0;
            }
            col->ints32[row] = (int32_t)x;
            break;
        }
        case RSJ_BOOL:
            if (!null && v->i) rsj_setbit(col->bits, row);
            break;
        default: /* RSJ_HAS */
            col->has[row] = null ? 0 : (int8_t)v->i;
            break;
        }
        if (null) col->null_count++;
        else rsj_setbit(col->valid, row);
    }
    return RSJ_OK;
}

#endif
