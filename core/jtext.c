/* jtext: compact JSON writer and strict JSON reader for jansson values; see jtext.h. Every
 * rule here mirrors what jansson 2.14 does (src/dump.c, src/load.c, src/strconv.c, src/utf.c),
 * including its quirks, which are marked "jansson:". The tests compare both directions against
 * the installed jansson. */
#include "jtext.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the buffer ------------------------------------------------------------------------ */

void jtext_buf_init(struct jtext_buf *b)
{
    *b = (struct jtext_buf){NULL, 0, 0};
}

void jtext_buf_close(struct jtext_buf *b)
{
    free(b->data);
    jtext_buf_init(b);
}

static int grow(struct jtext_buf *b, size_t extra)
{
    if (extra > (SIZE_MAX >> 2) - b->len)
        return -ENOMEM;
    size_t need = b->len + extra + 1, cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

/* Room for `extra` bytes and the NUL terminator. */
static inline int room(struct jtext_buf *b, size_t extra)
{
    return b->cap - b->len > extra ? 0 : grow(b, extra);
}

int jtext_buf_reserve(struct jtext_buf *b, size_t extra)
{
    return room(b, extra);
}

int jtext_buf_append(struct jtext_buf *b, const void *p, size_t n)
{
    if (room(b, n))
        return -ENOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* ---- string bytes ---------------------------------------------------------------------- */

/* 1 for a byte that stands for itself inside a JSON string: ASCII from 0x20 but '"' and '\\'. */
static inline int plain1(unsigned c)
{
    return c - 0x20 < 0x60 && c != '"' && c != '\\';
}

/* 1 when none of the 8 bytes at s needs a closer look inside a JSON string: no '"', '\\',
 * byte below 0x20 or byte from 0x80 (the "has zero byte"/"has less than" word tricks, exact for
 * whether any byte matches). Strings are scanned and copied a word at a time with it. */
static inline int plain8(const unsigned char *s)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t w, q, b;
    memcpy(&w, s, 8);
    q = w ^ (ones * '"');
    b = w ^ (ones * '\\');
    return ((((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b) | w) & high) == 0;
}

/* Length of the well-formed UTF-8 sequence at s (avail > 0 bytes, s[0] >= 0x80), or 0. Rejects
 * what jansson's utf8_check_first/utf8_check_full reject: stray continuation bytes, overlong
 * forms, UTF-16 surrogates (U+D800..U+DFFF) and code points above U+10FFFF (RFC 3629 table). */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned c = s[0], lo = 0x80, hi = 0xBF; /* the second byte's range */
    if (c == 0xE0 || c == 0xF0)
        lo = c == 0xE0 ? 0xA0 : 0x90; /* overlong forms */
    else if (c == 0xED || c == 0xF4)
        hi = c == 0xED ? 0x9F : 0x8F; /* surrogates, beyond U+10FFFF */
    size_t n = c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
    if (!n || avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* ---- writer ---------------------------------------------------------------------------- */

/* Write s[0..n) quoted and escaped as jansson's dump_string does without JSON_ENSURE_ASCII or
 * JSON_ESCAPE_SLASH: '"' and '\\' and the short escapes \b \f \n \r \t, other bytes below 0x20
 * (NUL included) as \u00XX in upper-case hex, everything else (0x7F, valid multi-byte UTF-8)
 * as is. Invalid UTF-8 gives -EINVAL with b->len where jansson stops writing: after the last
 * escape it wrote (it flushes plain runs only at escapes), which matters for object keys. */
static int put_string(struct jtext_buf *b, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF", esc_from[] = "\"\\\b\f\n\r\t",
                      esc_to[] = "\"\\bfnrt";
    if (room(b, n + 2))
        return -ENOMEM;
    char *o = b->data + b->len;
    *o++ = '"';
    size_t flushed = (size_t)(o - b->data), i = 0;
    for (;;) {
        for (; n - i >= 8 && plain8(s + i); i += 8, o += 8)
            memcpy(o, s + i, 8);
        while (i < n && plain1(s[i]))
            *o++ = (char)s[i++];
        if (i == n)
            break;
        unsigned c = s[i];
        if (c >= 0x80) {
            size_t k = utf8_seq(s + i, n - i);
            if (!k) {
                b->len = flushed;
                return -EINVAL;
            }
            memcpy(o, s + i, k);
            o += k;
            i += k;
            continue;
        }
        /* An escape of up to 6 bytes for 1 input byte: make room for it, the rest, the quote. */
        b->len = (size_t)(o - b->data);
        if (room(b, 6 + (n - i - 1) + 1))
            return -ENOMEM;
        o = b->data + b->len;
        const char *m = memchr(esc_from, (int)c, 7);
        *o++ = '\\';
        if (m) {
            *o++ = esc_to[m - esc_from];
        } else {
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
        }
        i++;
        flushed = (size_t)(o - b->data);
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    return 0;
}

int jtext_string_append(struct jtext_buf *b, const char *s, size_t n)
{
    size_t was = b->len;
    int rc = put_string(b, (const unsigned char *)s, n);
    if (rc)
        b->len = was;
    if (b->data)
        b->data[b->len] = '\0';
    return rc;
}

/* Decimal digits of v (jansson: "%lld") at o, which has room for 20; returns the end. */
static char *put_int(char *o, json_int_t v)
{
    char tmp[24], *t = tmp + sizeof tmp;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--t = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--t = '-';
    size_t n = (size_t)(tmp + sizeof tmp - t);
    memcpy(o, t, n);
    return o + n;
}

/* jansson's jsonp_dtostr at precision 17: "%.17g", the locale's decimal point turned into '.',
 * ".0" appended when there is neither '.' nor 'e', and the exponent's '+' and leading zeros
 * dropped. Integral values below 2^53 print their digits under %.17g, so they skip printf. */
static int put_real(struct jtext_buf *b, double d)
{
    if (!isfinite(d))
        return -EINVAL;
    if (room(b, 40))
        return -ENOMEM;
    char *o = b->data + b->len;
    if (d > -9007199254740992.0 && d < 9007199254740992.0 && d == (double)(int64_t)d) {
        if (d == 0 && signbit(d))
            *o++ = '-';
        o = put_int(o, (int64_t)d);
        memcpy(o, ".0", 2);
        b->len = (size_t)(o + 2 - b->data);
        return 0;
    }
    char tmp[40], *q = o;
    int n = snprintf(tmp, sizeof tmp, "%.17g", d), dot_or_e = 0;
    if (n <= 0 || (size_t)n >= sizeof tmp)
        return -EINVAL;
    for (const char *t = tmp; *t; t++) {
        if ((*t >= '0' && *t <= '9') || *t == '-') {
            *q++ = *t;
            continue;
        }
        dot_or_e = 1;
        if (*t != 'e') {
            *q++ = '.'; /* the only other character %g prints: the locale's decimal point */
            continue;
        }
        *q++ = 'e';
        t += t[1] == '+'; /* drop the exponent's '+' and leading zeros ("e-05" -> "e-5") */
        if (t[1] == '-')
            *q++ = *++t;
        while (t[1] == '0')
            t++;
    }
    if (!dot_or_e) {
        *q++ = '.';
        *q++ = '0';
    }
    b->len = (size_t)(q - b->data);
    return 0;
}

static int put_value(struct jtext_buf *b, const json_t *v, unsigned depth)
{
    if (!v)
        return -EINVAL;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
    case JSON_ARRAY: {
        int obj = json_is_object(v), rc;
        json_t *c = (json_t *)v; /* jansson's iterator API is not const-correct */
        void *it = obj ? json_object_iter(c) : NULL;
        size_t n = obj ? 0 : json_array_size(v);
        if (depth >= JTEXT_MAX_DEPTH)
            return -E2BIG;
        if (room(b, 2))
            return -ENOMEM;
        b->data[b->len++] = obj ? '{' : '[';
        for (size_t i = 0; obj ? it != NULL : i < n; i++) {
            const json_t *e;
            if (i)
                b->data[b->len++] = ','; /* the room(b, 1) below left space for it */
            if (obj) {
                /* jansson ignores a key's write failure and goes on with ':' and the value. */
                rc = put_string(b, (const unsigned char *)json_object_iter_key(it),
                                json_object_iter_key_len(it));
                if (rc == -ENOMEM || room(b, 1))
                    return -ENOMEM;
                b->data[b->len++] = ':';
                e = json_object_iter_value(it);
                it = json_object_iter_next(c, it);
            } else {
                e = json_array_get(v, i);
            }
            if ((rc = put_value(b, e, depth + 1)) || (rc = room(b, 1)))
                return rc;
        }
        b->data[b->len++] = obj ? '}' : ']';
        return 0;
    }
    case JSON_STRING:
        return put_string(b, (const unsigned char *)json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        if (room(b, 24))
            return -ENOMEM;
        b->len = (size_t)(put_int(b->data + b->len, json_integer_value(v)) - b->data);
        return 0;
    case JSON_REAL:
        return put_real(b, json_real_value(v));
    case JSON_TRUE:
        return jtext_buf_append(b, "true", 4);
    case JSON_FALSE:
        return jtext_buf_append(b, "false", 5);
    case JSON_NULL:
        return jtext_buf_append(b, "null", 4);
    }
    return -EINVAL;
}

int jtext_dump_append(struct jtext_buf *b, const json_t *v)
{
    size_t start = b->len;
    int rc = put_value(b, v, 0);
    if (rc) {
        b->len = start;
        if (b->data)
            b->data[start] = '\0';
        return rc;
    }
    b->data[b->len] = '\0';
    return 0;
}

char *jtext_dump(const json_t *v, size_t *len_out)
{
    struct jtext_buf b;
    if (!json_is_array(v) && !json_is_object(v))
        return NULL; /* jansson: only containers without JSON_ENCODE_ANY */
    jtext_buf_init(&b);
    if (jtext_dump_append(&b, v)) {
        jtext_buf_close(&b);
        return NULL;
    }
    if (len_out)
        *len_out = b.len;
    return b.data;
}

int jtext_integer_append(struct jtext_buf *b, long long v)
{
    if (room(b, 24))
        return -ENOMEM;
    char *o = put_int(b->data + b->len, (json_int_t)v);
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
    return 0;
}

int jtext_real_append(struct jtext_buf *b, double d)
{
    size_t was = b->len;
    int rc = put_real(b, d);
    if (rc)
        b->len = was;
    if (b->data)
        b->data[b->len] = '\0';
    return rc;
}

/* ---- reader ---------------------------------------------------------------------------- */

/* Decoded strings that hold escapes go to a scratch area; one for the pending object key and
 * one for string values, since a key waits while its value is read. */
struct scratch {
    char *p, *inl; /* p is inl (on jtext_load's stack) or malloc'd */
    size_t cap;
};

#define STACK_INLINE 32

struct parser {
    const unsigned char *start, *s, *end;
    json_error_t *err;
    struct scratch key, val;
    json_t **stack; /* the open containers, innermost last; JTEXT_MAX_DEPTH at most */
    json_t **stack_inl;
    size_t depth;
};

/* Fill err like jansson's error_set (without its "near '…'" context); at is where the parser
 * stood. Always returns NULL for the callers' convenience. */
static void *fail(struct parser *p, const unsigned char *at, enum json_error_code code,
                  const char *fmt, ...)
{
    json_error_t *e = p->err;
    if (!e)
        return NULL;
    e->line = 1; /* jansson counts characters in a column: continuation bytes do not count */
    e->column = 0;
    for (const unsigned char *q = p->start; q < at && q < p->end; q++)
        e->column = *q == '\n' ? (e->line++, 0) : e->column + ((*q & 0xC0) != 0x80);
    e->position = (int)(at - p->start);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->text, JSON_ERROR_TEXT_LENGTH - 1, fmt, ap);
    va_end(ap);
    e->text[JSON_ERROR_TEXT_LENGTH - 1] = (char)code; /* where json_error_code() reads it */
    return NULL;
}

static void *fail_nomem(struct parser *p)
{
    return fail(p, p->s, json_error_out_of_memory, "out of memory");
}

/* The next byte that is not JSON whitespace (left unconsumed), or -1 at the end. */
static inline int skip_ws(struct parser *p)
{
    const unsigned char *s = p->s, *end = p->end;
    if (s < end && ' ' < *s)
        return *s; /* the common case: no whitespace at all */
    while (s < end && (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t'))
        s++;
    p->s = s;
    return s < end ? *s : -1;
}

/* The value of four hex digits at q (any case), or -1. */
static long hex4(const unsigned char *q)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = q[i], l = c | 0x20;
        if (!((c >= '0' && c <= '9') || (l >= 'a' && l <= 'f')))
            return -1;
        v = v << 4 | (c <= '9' ? c - '0' : l - 'a' + 10);
    }
    return v;
}

/* Decode the escapes of the raw string q[0..n) (its closing quote excluded; every '\\' is
 * followed by a byte inside it) into sc. RFC 8259 section 7; like jansson, a high surrogate
 * must be followed by a low one, a lone low surrogate and \u0000 are refused. Returns the
 * decoded text (length in *out_len), or NULL with err set. */
static const char *unescape(struct parser *p, struct scratch *sc, const unsigned char *q, size_t n,
                            size_t *out_len)
{
    static const char esc_from[] = "\"\\/bfnrt", esc_to[] = "\"\\/\b\f\n\r\t";
    static const unsigned char lead[] = {0, 0, 0xC0, 0xE0, 0xF0};
    if (n > sc->cap) { /* decoding never lengthens: \uXXXX gives 3 bytes, a pair 4 */
        if (sc->p != sc->inl)
            free(sc->p);
        sc->cap = n > 2 * sc->cap ? n : 2 * sc->cap;
        if (!(sc->p = malloc(sc->cap))) {
            sc->p = sc->inl;
            sc->cap = 0;
            return fail_nomem(p);
        }
    }
    const unsigned char *qe = q + n;
    char *o = sc->p;
    while (q < qe) {
        if (*q != '\\') {
            *o++ = (char)*q++;
            continue;
        }
        const unsigned char *esc = q++;
        const char *m = memchr(esc_from, *q++, 8);
        if (m) {
            *o++ = esc_to[m - esc_from];
            continue;
        }
        long cp = q[-1] == 'u' && qe - q >= 4 ? hex4(q) : -1;
        if (cp < 0)
            return fail(p, esc, json_error_invalid_syntax, "invalid escape");
        q += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            long lo = qe - q >= 6 && q[0] == '\\' && q[1] == 'u' ? hex4(q + 2) : -1;
            if (lo < 0xDC00 || lo > 0xDFFF)
                return fail(p, esc, json_error_invalid_syntax, "invalid Unicode '\\u%04lX'", cp);
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            q += 6;
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return fail(p, esc, json_error_invalid_syntax, "invalid Unicode '\\u%04lX'", cp);
        } else if (cp == 0) {
            return fail(p, esc, json_error_null_character,
                        "\\u0000 is not allowed without JSON_ALLOW_NUL");
        }
        int k = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        for (int i = k - 1; i > 0; i--, cp >>= 6)
            o[i] = (char)(0x80 | (cp & 0x3F));
        o[0] = (char)(lead[k] | cp);
        o += k;
    }
    *out_len = (size_t)(o - sc->p);
    return sc->p;
}

/* A string whose opening quote p->s has passed: its text, borrowed from the input when it has
 * no escapes, else from sc; valid UTF-8 without NUL bytes either way. NULL with err set. */
static const char *scan_string(struct parser *p, struct scratch *sc, size_t *out_len)
{
    const unsigned char *s = p->s, *end = p->end, *beg = s;
    int escaped = 0;
    for (;;) {
        while (end - s >= 8 && plain8(s))
            s += 8;
        while (s < end && plain1(*s))
            s++;
        if (s >= end)
            return fail(p, s, json_error_premature_end_of_input, "premature end of input");
        if (*s == '"') {
            p->s = s + 1;
            *out_len = (size_t)(s - beg);
            return escaped ? unescape(p, sc, beg, *out_len, out_len) : (const char *)beg;
        }
        if (*s == '\\') { /* unescape checks the escape; skip its byte so '"' cannot end here */
            if (end - s < 2 || s[1] < 0x20 || s[1] >= 0x80)
                return fail(p, s, json_error_invalid_syntax, "invalid escape");
            escaped = 1;
            s += 2;
        } else if (*s < 0x20) {
            return fail(p, s, json_error_invalid_syntax,
                        *s == '\n' ? "unexpected newline" : "control character 0x%x", *s);
        } else {
            size_t k = utf8_seq(s, (size_t)(end - s));
            if (!k)
                return fail(p, s, json_error_invalid_utf8, "unable to decode byte 0x%x", *s);
            s += k;
        }
    }
}

/* Exact powers of ten for the fast path of real numbers. */
static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* strtod on a NUL-terminated copy of the number, with '.' turned into the locale's decimal
 * point as jansson's jsonp_strtod does. 0, or -1 when the value overflows to +-HUGE_VAL. */
static int slow_strtod(const unsigned char *beg, size_t n, double *out)
{
    char local[64], *t = n < sizeof local ? local : malloc(n + 1);
    if (!t)
        return -2;
    memcpy(t, beg, n);
    t[n] = '\0';
    char point = localeconv()->decimal_point[0];
    char *dot = point != '.' ? memchr(t, '.', n) : NULL;
    if (dot)
        *dot = point;
    errno = 0;
    double d = strtod(t, NULL);
    int overflow = (d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE;
    if (t != local)
        free(t);
    *out = d;
    return overflow ? -1 : 0;
}

/* A number at p->s (RFC 8259 section 6): an integer when it has neither fraction nor exponent,
 * refused outside int64 (jansson uses strtoll; "-0" is the integer 0), else a real. */
static json_t *scan_number(struct parser *p)
{
    const unsigned char *s = p->s, *end = p->end, *beg = s;
    int neg = 0, real = 0, exact = 1;
    uint64_t mant = 0;
    long e10 = 0;
    unsigned nd = 0; /* significant digits in mant */
    if (*s == '-') {
        neg = 1;
        s++;
    }
    if (s >= end || *s < '0' || *s > '9')
        return fail(p, beg, json_error_invalid_syntax, "invalid token");
    if (*s == '0') {
        if (++s < end && *s >= '0' && *s <= '9')
            return fail(p, beg, json_error_invalid_syntax, "invalid token");
    } else {
        const unsigned char *lim = end - s > 19 ? s + 19 : end, *first = s;
        for (; s < lim && *s >= '0' && *s <= '9'; s++)
            mant = mant * 10 + (*s - '0');
        nd = (unsigned)(s - first);
        for (; s < end && *s >= '0' && *s <= '9'; s++)
            exact = 0;
    }
    if (s < end && *s == '.') {
        if (++s >= end || *s < '0' || *s > '9')
            return fail(p, beg, json_error_invalid_syntax, "invalid token");
        real = 1;
        for (; s < end && *s >= '0' && *s <= '9'; s++) {
            if (nd < 19 && (nd || *s != '0'))
                mant = mant * 10 + (*s - '0'), nd++, e10--;
            else if (!nd)
                e10--; /* a leading zero of 0.00x */
            else
                exact = 0;
        }
    }
    if (s < end && (*s == 'e' || *s == 'E')) {
        int eneg = 0;
        long ev = 0;
        real = 1;
        if (++s < end && (*s == '+' || *s == '-'))
            eneg = *s++ == '-';
        if (s >= end || *s < '0' || *s > '9')
            return fail(p, beg, json_error_invalid_syntax, "invalid token");
        for (; s < end && *s >= '0' && *s <= '9'; s++)
            if (ev < 1000000)
                ev = ev * 10 + (*s - '0');
        e10 += eneg ? -ev : ev;
    }
    p->s = s;
    json_t *v;
    if (!real) {
        uint64_t limit = neg ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
        if (!exact || mant > limit)
            return fail(p, s, json_error_numeric_overflow,
                        neg ? "too big negative integer" : "too big integer");
        v = json_integer(neg ? (json_int_t)(0 - mant) : (json_int_t)mant);
    } else {
        double d;
        if (exact && mant == 0) {
            d = 0.0;
        } else if (exact && mant <= (uint64_t)1 << 53 && e10 >= -22 && e10 <= 22) {
            /* Both operands are exact doubles, so one IEEE operation rounds correctly, giving
             * the same double as strtod (Clinger's fast path). */
            d = e10 < 0 ? (double)mant / pow10_exact[-e10] : (double)mant * pow10_exact[e10];
        } else {
            int rc = slow_strtod(beg, (size_t)(s - beg), &d);
            if (rc == -2)
                return fail_nomem(p);
            if (rc)
                return fail(p, s, json_error_numeric_overflow, "real number overflow");
            neg = 0; /* strtod saw the sign */
        }
        v = json_real(neg ? -d : d);
    }
    return v ? v : fail_nomem(p);
}

/* A scalar value starting with byte c at p->s. New reference, or NULL with err set. */
static json_t *scan_scalar(struct parser *p, int c)
{
    static const char *const words[] = {"true", "false", "null"};
    if (c == '"') {
        size_t n = 0;
        p->s++;
        const char *str = scan_string(p, &p->val, &n);
        json_t *v = str ? json_stringn_nocheck(str, n) : NULL;
        return v || !str ? v : fail_nomem(p);
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return scan_number(p);
    int k = c == 't' ? 0 : c == 'f' ? 1 : c == 'n' ? 2 : -1;
    size_t n = k == 1 ? 5 : 4;
    if (k < 0 || (size_t)(p->end - p->s) < n || memcmp(p->s, words[k], n) != 0)
        return fail(p, p->s, c < 0 ? json_error_premature_end_of_input : json_error_invalid_syntax,
                    "invalid token");
    p->s += n;
    return k == 0 ? json_true() : k == 1 ? json_false() : json_null();
}

static int push(struct parser *p, json_t *v)
{
    if (p->depth == STACK_INLINE && p->stack == p->stack_inl) { /* deep: take the bound at once */
        json_t **st = malloc(JTEXT_MAX_DEPTH * sizeof *st);
        if (!st)
            return -1;
        memcpy(st, p->stack_inl, STACK_INLINE * sizeof *st);
        p->stack = st;
    }
    p->stack[p->depth++] = v; /* parse checks depth < JTEXT_MAX_DEPTH first */
    return 0;
}

/* Attach v (reference taken over, also on failure) to the container top. 0, or -1 with err
 * set. A duplicate key replaces the earlier member and leaves the size unchanged: checking that
 * afterwards costs no second hash lookup, and the parse fails anyway. */
static int attach(struct parser *p, json_t *top, const char *key, size_t klen, json_t *v)
{
    if (json_is_array(top)) {
        if (!json_array_append_new(top, v))
            return 0;
    } else {
        size_t n = json_object_size(top);
        if (!json_object_setn_new_nocheck(top, key, klen, v)) {
            if (json_object_size(top) > n)
                return 0;
            fail(p, p->s, json_error_duplicate_key, "duplicate object key");
            return -1;
        }
    }
    fail_nomem(p);
    return -1;
}

enum { WANT_VALUE, WANT_KEY, AFTER_VALUE };

/* Iterative so hostile nesting costs heap, not C stack. A container is attached to its parent
 * as soon as it opens, so freeing the root frees everything on any error. */
static json_t *parse(struct parser *p)
{
    json_t *root = NULL, *top = NULL, *v;
    const char *key = NULL, *msg;
    size_t klen = 0;
    int c = skip_ws(p), state = WANT_VALUE, code = json_error_invalid_syntax;
    if (c != '[' && c != '{')
        return fail(p, p->s, code, "'[' or '{' expected");
    for (;;) {
        switch (state) {
        case WANT_VALUE: /* a value for top (an array, or an object with key pending) */
            c = skip_ws(p);
            if (p->depth >= JTEXT_MAX_DEPTH) {
                code = json_error_stack_overflow;
                msg = "maximum parsing depth reached";
                goto bad;
            }
            if (c != '[' && c != '{') {
                if (!(v = scan_scalar(p, c)) || attach(p, top, key, klen, v))
                    goto fail;
                /* jansson: the byte after a number or literal is read and pushed back; when it
                 * is NUL, its stream takes the slot for empty and reads on: that NUL is skipped. */
                if (c != '"' && p->s < p->end && *p->s == '\0')
                    p->s++;
                state = AFTER_VALUE;
                break;
            }
            p->s++;
            if (!(v = c == '[' ? json_array() : json_object()))
                goto nomem;
            if (!top)
                root = v;
            else if (attach(p, top, key, klen, v))
                goto fail;
            if (push(p, v))
                goto nomem;
            top = v; /* an immediate closing bracket is handled as after a value */
            if (skip_ws(p) == (json_is_array(top) ? ']' : '}'))
                state = AFTER_VALUE;
            else
                state = json_is_array(top) ? WANT_VALUE : WANT_KEY;
            break;
        case WANT_KEY:
            msg = "string or '}' expected";
            if (skip_ws(p) != '"')
                goto bad;
            p->s++;
            if (!(key = scan_string(p, &p->key, &klen)))
                goto fail;
            msg = "':' expected";
            if (skip_ws(p) != ':')
                goto bad;
            p->s++;
            state = WANT_VALUE;
            break;
        case AFTER_VALUE:
            c = skip_ws(p);
            if (c == ',') {
                p->s++;
                state = json_is_array(top) ? WANT_VALUE : WANT_KEY;
                break;
            }
            msg = json_is_array(top) ? "']' expected" : "'}' expected";
            if (c != (json_is_array(top) ? ']' : '}'))
                goto bad;
            p->s++;
            if (--p->depth == 0) {
                code = json_error_end_of_input_expected;
                msg = "end of file expected";
                if (skip_ws(p) != -1)
                    goto bad;
                return root;
            }
            top = p->stack[p->depth - 1];
            break;
        }
    }
bad:
    if (p->s == p->end && code == json_error_invalid_syntax)
        code = json_error_premature_end_of_input;
    fail(p, p->s, (enum json_error_code)code, "%s", msg);
    goto fail;
nomem:
    fail_nomem(p);
fail:
    json_decref(root);
    return NULL;
}

json_t *jtext_load(const char *text, size_t len, json_error_t *err)
{
    char key_inl[128], val_inl[128];
    json_t *stack_inl[STACK_INLINE];
    struct parser p = {.err = err,
                       .key = {key_inl, key_inl, sizeof key_inl},
                       .val = {val_inl, val_inl, sizeof val_inl},
                       .stack = stack_inl,
                       .stack_inl = stack_inl};
    if (err) {
        memset(err, 0, sizeof *err);
        err->line = err->column = -1;
        memcpy(err->source, "<buffer>", sizeof "<buffer>");
    }
    p.start = p.s = (const unsigned char *)(text ? text : "");
    p.end = p.start + (text ? len : 0);
    if (!text)
        return fail(&p, p.s, json_error_invalid_argument, "wrong arguments");
    json_t *v = parse(&p);
    if (p.key.p != p.key.inl)
        free(p.key.p);
    if (p.val.p != p.val.inl)
        free(p.val.p);
    if (p.stack != p.stack_inl)
        free(p.stack);
    if (v && err)
        err->position = (int)len;
    return v;
}
