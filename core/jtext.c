/* jtext: compact JSON writer and strict JSON reader for jansson values; see jtext.h. Every
 * rule here mirrors what jansson 2.14 does (src/dump.c, src/load.c, src/strconv.c, src/utf.c),
 * including its quirks, which are marked "jansson:". The tests compare both directions against
 * the installed jansson. */
#include "jtext.h"
#include "jtext_int.h"

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

/* ---- writer ---------------------------------------------------------------------------- */

/* put_string past its fast path: o is where s[i] goes, flushed the length to fall back to. */
static int put_string_rest(struct jtext_buf *b, const unsigned char *s, size_t n, size_t i, char *o,
                           size_t flushed)
{
    static const char hex[] = "0123456789ABCDEF", esc_from[] = "\"\\\b\f\n\r\t",
                      esc_to[] = "\"\\bfnrt";
    for (;;) {
        size_t k = (size_t)(jtext_skip_plain(s + i, s + n) - (s + i));
        memcpy(o, s + i, k);
        i += k;
        o += k;
        if (i == n)
            break;
        unsigned c = s[i];
        if (c >= 0x80) {
            size_t u = jtext_utf8_seq(s + i, n - i);
            if (!u) {
                b->len = flushed;
                return -EINVAL;
            }
            memcpy(o, s + i, u);
            o += u;
            i += u;
            continue;
        }
        /* An escape of up to 6 bytes for 1 input byte: make room for it, the rest, the quote. */
        b->len = (size_t)(o - b->data);
        if (room(b, 6 + (n - i - 1) + 1))
            return -ENOMEM;
        o = b->data + b->len;
        const char *e = memchr(esc_from, (int)c, 7);
        *o++ = '\\';
        if (e) {
            *o++ = esc_to[e - esc_from];
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

/* Write s[0..n) quoted and escaped as jansson's dump_string does without JSON_ENSURE_ASCII or
 * JSON_ESCAPE_SLASH: '"' and '\\' and the short escapes \b \f \n \r \t, other bytes below 0x20
 * (NUL included) as \u00XX in upper-case hex, everything else (0x7F, valid multi-byte UTF-8)
 * as is. Invalid UTF-8 gives -EINVAL with b->len where jansson stops writing: after the last
 * escape it wrote (it flushes plain runs only at escapes), which matters for object keys.
 * The fast path is plain ASCII: whole words copied while they test plain, then the last
 * (partial) word tested and copied again as the word ending at s[n-1], overlapping bytes
 * already written with the same values; strings under 8 bytes go byte by byte. */
static inline int put_string(struct jtext_buf *b, const unsigned char *s, size_t n)
{
    if (room(b, n + 2))
        return -ENOMEM;
    char *o = b->data + b->len;
    size_t i = 0, flushed = b->len + 1;
    *o++ = '"';
#ifdef JTEXT_HAVE_SPECIAL16
    if (n >= 16) { /* the same, 16 bytes at a time */
        unsigned m = 0;
        for (; n - i > 16 && !(m = jtext_special16(s + i)); i += 16, o += 16)
            memcpy(o, s + i, 16);
        if (!m && !jtext_special16(s + n - 16)) {
            memcpy(o + (n - i) - 16, s + n - 16, 16);
            o[n - i] = '"';
            b->len = (size_t)(o + (n - i) + 1 - b->data);
            return 0;
        }
        return put_string_rest(b, s, n, i, o, flushed);
    }
#endif
    if (n >= 8) {
        uint64_t m = 0;
        for (; n - i > 8 && !(m = jtext_special8(jtext_load8(s + i))); i += 8, o += 8)
            memcpy(o, s + i, 8);
        if (!m && !jtext_special8(jtext_load8(s + n - 8))) {
            memcpy(o + (n - i) - 8, s + n - 8, 8);
            o[n - i] = '"';
            b->len = (size_t)(o + (n - i) + 1 - b->data);
            return 0;
        }
    } else {
        while (i < n && jtext_plain1(s[i]))
            *o++ = (char)s[i++];
        if (i == n) {
            *o++ = '"';
            b->len = (size_t)(o - b->data);
            return 0;
        }
    }
    return put_string_rest(b, s, n, i, o, flushed);
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

/* "00" "01" ... "99": put_int writes two digits per division. */
static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930"
    "31323334353637383940414243444546474849505152535455565758596061"
    "62636465666768697071727374757677787980818283848586878889909192"
    "93949596979899";

/* The number of decimal digits of u (1 for 0): log10 from the bit length (1233/4096 is just
 * above log10(2)), corrected by one comparison (Bit Twiddling Hacks, "IntegerLog10"). */
static inline size_t ndigits(uint64_t u)
{
    /* clang-format off */
    static const uint64_t pow10[20] = {
        1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u, 100000000u, 1000000000u,
        10000000000u, 100000000000u, 1000000000000u, 10000000000000u, 100000000000000u,
        1000000000000000u, 10000000000000000u, 100000000000000000u, 1000000000000000000u,
        10000000000000000000u};
    /* clang-format on */
    /* u | 1: clz(0) is undefined, and a power of ten from 10 on is even so no comparison moves */
    size_t t = (size_t)(64 - __builtin_clzll(u | 1)) * 1233 >> 12;
    return t + ((u | 1) >= pow10[t]);
}

/* Decimal digits of v (jansson: "%lld") at o, which has room for 20; returns the end. Written
 * backwards from the end, which ndigits finds first, so no copy is needed. */
static char *put_int(char *o, json_int_t v)
{
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    if (v < 0)
        *o++ = '-';
    char *e = o + ndigits(u), *q = e;
    while (u >= 100) {
        memcpy(q -= 2, digit_pairs + u % 100 * 2, 2);
        u /= 100;
    }
    if (u >= 10)
        memcpy(q - 2, digit_pairs + u * 2, 2);
    else
        q[-1] = (char)('0' + u);
    return e;
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
