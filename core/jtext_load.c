/* jtext_load: jtext's strict JSON reader (jtext_load, and the token reader jtext_next); see
 * jtext.h. Every rule mirrors jansson 2.14's src/load.c and src/strconv.c, including its quirks,
 * which are marked "jansson:". */
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

/* ---- reader ---------------------------------------------------------------------------- */

/* jtext_load and the token reader share the parser state, struct jtext_reader (jtext.h). */
#define STACK_INLINE 32

#define parser jtext_reader
#define scratch jtext_scratch

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

/* The first byte from s on that is not JSON whitespace, or end. */
static inline const unsigned char *ws_end(const unsigned char *s, const unsigned char *end)
{
    /* one test for the usual byte above ' ', then a bit set of the four */
    const uint64_t ws = 1ull << ' ' | 1ull << '\n' | 1ull << '\r' | 1ull << '\t';
    while (s < end && *s <= ' ' && (ws >> *s & 1))
        s++;
    return s;
}

/* The next byte that is not JSON whitespace (left unconsumed), or -1 at the end. */
static inline int skip_ws(struct parser *p)
{
    const unsigned char *s = p->s, *end = p->end;
    if (s < end && ' ' < *s)
        return *s; /* the common case: no whitespace at all */
    p->s = s = ws_end(s, end);
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

/* scan_string past its fast path: the string at p->s from its first byte. */
static const char *scan_string_rest(struct parser *p, struct scratch *sc, size_t *out_len)
{
    const unsigned char *end = p->end, *beg = p->s, *s = beg;
    int escaped = 0;
    for (;;) {
        /* Words at a time to the first byte that is not plain; the input's last bytes (never
         * inside a valid string: a bracket must follow it) one at a time. */
        s = jtext_skip_plain(s, end);
        if (s >= end)
            return fail(p, s, json_error_premature_end_of_input, "premature end of input");
        if (*s == '"') {
            p->s = s + 1;
            p->escaped = escaped;
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
            size_t k = jtext_utf8_seq(s, (size_t)(end - s));
            if (!k)
                return fail(p, s, json_error_invalid_utf8, "unable to decode byte 0x%x", *s);
            s += k;
        }
    }
}

/* The closing quote of the plain string (printable ASCII, no escape) that starts at s, found a
 * word at a time; NULL when the string is not plain or ends within the input's last 8 bytes. */
static inline const unsigned char *plain_end(const unsigned char *s, const unsigned char *end)
{
#ifdef JTEXT_HAVE_SPECIAL16
    for (; end - s >= 16; s += 16) {
        unsigned m = jtext_special16(s);
        if (m) {
            s += __builtin_ctz(m);
            return *s == '"' ? s : NULL;
        }
    }
#endif
    for (; end - s >= 8; s += 8) {
        uint64_t m = jtext_special8(jtext_load8(s));
        if (m) {
            s += jtext_first8(m);
            return *s == '"' ? s : NULL;
        }
    }
    return NULL;
}

/* A string whose opening quote p->s has passed: its text, borrowed from the input when it has
 * no escapes, else from sc; valid UTF-8 without NUL bytes either way. NULL with err set. */
static inline const char *scan_string(struct parser *p, struct scratch *sc, size_t *out_len)
{
    const unsigned char *beg = p->s, *q = plain_end(beg, p->end);
    if (!q)
        return scan_string_rest(p, sc, out_len);
    p->s = q + 1;
    p->escaped = 0;
    *out_len = (size_t)(q - beg);
    return (const char *)beg;
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

/* fail() for scan_num: -1. */
static int fail_num(struct parser *p, const unsigned char *at, enum json_error_code code,
                    const char *msg)
{
    fail(p, at, code, "%s", msg);
    return -1;
}

/* 1 when the 8 bytes at s are all ASCII digits, with their decimal value in *v. The test is
 * exact: a byte from 0x30 has high nibble 3, and still has it after adding 6 only up to '9'
 * (a carry out of a byte comes from one whose high nibble is F, which fails the first test).
 * The value is built by SWAR: pairs of digits, then quads, then the eight, each step one
 * multiply that adds 10^k times the more significant half (s[0] is the low byte of w). */
static inline int digits8(const unsigned char *s, uint64_t *v)
{
    const uint64_t hi = 0xF0F0F0F0F0F0F0F0u, threes = 0x3030303030303030u;
    uint64_t w = jtext_load8(s);
    if ((w & hi) != threes || ((w + 0x0606060606060606u) & hi) != threes)
        return 0;
    w = ((w & 0x0F0F0F0F0F0F0F0Fu) * (10 << 8 | 1)) >> 8;
    w = ((w & 0x00FF00FF00FF00FFu) * (100 << 16 | 1)) >> 16;
    *v = ((w & 0x0000FFFF0000FFFFu) * (10000ull << 32 | 1)) >> 32;
    return 1;
}

/* scan_num's fraction and exponent, from s (at '.', 'e' or 'E'), given the integer part read
 * so far: a real in *dv and 1, or -1 with err set. Out of line: integers are the common case. */
static int scan_real(struct parser *p, const unsigned char *beg, const unsigned char *s,
                     uint64_t mant, unsigned nd, int exact, int neg, double *dv)
{
    const unsigned char *end = p->end;
    long e10 = 0;
    if (*s == '.') {
        if (++s >= end || *s < '0' || *s > '9')
            return fail_num(p, beg, json_error_invalid_syntax, "invalid token");
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
        if (++s < end && (*s == '+' || *s == '-'))
            eneg = *s++ == '-';
        if (s >= end || *s < '0' || *s > '9')
            return fail_num(p, beg, json_error_invalid_syntax, "invalid token");
        for (; s < end && *s >= '0' && *s <= '9'; s++)
            if (ev < 1000000)
                ev = ev * 10 + (*s - '0');
        e10 += eneg ? -ev : ev;
    }
    p->s = s;
    double d;
    if (exact && mant == 0) {
        d = 0.0;
    } else if (exact && mant <= (uint64_t)1 << 53 && e10 >= -22 && e10 <= 22) {
        /* Both operands are exact doubles, so one IEEE operation rounds correctly, giving the
         * same double as strtod (Clinger's fast path). */
        d = e10 < 0 ? (double)mant / pow10_exact[-e10] : (double)mant * pow10_exact[e10];
    } else {
        int rc = slow_strtod(beg, (size_t)(s - beg), &d);
        if (rc == -2)
            return fail_nomem(p), -1;
        if (rc)
            return fail_num(p, s, json_error_numeric_overflow, "real number overflow");
        neg = 0; /* strtod saw the sign */
    }
    *dv = neg ? -d : d;
    return 1;
}

/* A number at p->s (RFC 8259 section 6): an integer when it has neither fraction nor exponent,
 * refused outside int64 (jansson uses strtoll; "-0" is the integer 0), else a real. Returns 0
 * (integer in *iv) or 1 (real in *dv), or -1 with err set. */
/* always inline: the call would cost jtext_next more than the body of a short integer does */
__attribute__((always_inline)) static inline int scan_num(struct parser *p, json_int_t *iv,
                                                          double *dv)
{
    const unsigned char *s = p->s, *end = p->end, *beg = s;
    int neg = *s == '-', exact = 1;
    uint64_t mant = 0, v8;
    unsigned nd = 0; /* significant digits in mant */
    s += neg;
    if (s >= end || *s < '0' || *s > '9')
        return fail_num(p, beg, json_error_invalid_syntax, "invalid token");
    if (*s == '0') {
        if (++s < end && *s >= '0' && *s <= '9')
            return fail_num(p, beg, json_error_invalid_syntax, "invalid token");
    } else {
        const unsigned char *lim = end - s > 19 ? s + 19 : end, *first = s;
        /* 19 digits always fit in mant: words of 8 while they are all digits, then bytes */
        while (lim - s >= 8 && digits8(s, &v8))
            mant = mant * 100000000u + v8, s += 8;
        for (; s < lim && *s >= '0' && *s <= '9'; s++)
            mant = mant * 10 + (*s - '0');
        nd = (unsigned)(s - first);
        for (; s < end && *s >= '0' && *s <= '9'; s++)
            exact = 0;
    }
    if (s < end && (*s == '.' || *s == 'e' || *s == 'E'))
        return scan_real(p, beg, s, mant, nd, exact, neg, dv);
    p->s = s;
    uint64_t limit = neg ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
    if (!exact || mant > limit)
        return fail_num(p, s, json_error_numeric_overflow,
                        neg ? "too big negative integer" : "too big integer");
    *iv = neg ? (json_int_t)(0 - mant) : (json_int_t)mant;
    return 0;
}

static json_t *scan_number(struct parser *p)
{
    json_int_t iv = 0;
    double dv = 0;
    int k = scan_num(p, &iv, &dv);
    json_t *v = k < 0 ? NULL : k == 0 ? json_integer(iv) : json_real(dv);
    return v || k < 0 ? v : fail_nomem(p);
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
    json_t *stack_inl[STACK_INLINE];
    struct parser p;
    p.err = err;
    p.key.p = p.key.inl = p.key_inl;
    p.val.p = p.val.inl = p.val_inl;
    p.key.cap = sizeof p.key_inl;
    p.val.cap = sizeof p.val_inl;
    p.stack = p.stack_inl = stack_inl;
    p.depth = 0;
    p.escaped = p.state = 0;
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

/* ---- the token reader ------------------------------------------------------------------ */

/* The reader's state: what may come next. After a value it remembers whether the container
 * around it is an array, so the common tokens need not look that up in r->arrays. */
enum {
    R_START,
    R_ELEM,         /* an array's element (after '[' or ',') */
    R_MEMBER,       /* an object member's value (after ':') */
    R_KEY,          /* an object's key (after '{' or ',') */
    R_AFTER_ELEM,   /* ',' or ']' */
    R_AFTER_MEMBER, /* ',' or '}' */
    R_DONE,
    R_ERROR
};

void jtext_reader_init(struct jtext_reader *r, const char *text, size_t len)
{
    r->err = NULL;
    r->key.p = r->key.inl = r->key_inl;
    r->val.p = r->val.inl = r->val_inl;
    r->key.cap = sizeof r->key_inl;
    r->val.cap = sizeof r->val_inl;
    r->stack = r->stack_inl = NULL;
    r->depth = 0;
    r->escaped = 0;
    r->start = r->s = (const unsigned char *)(text ? text : "");
    r->end = r->start + (text ? len : 0);
    r->state = text ? R_START : R_ERROR;
}

void jtext_reader_scratch(struct jtext_reader *r, char *key, size_t key_cap, char *val,
                          size_t val_cap)
{
    r->key.p = r->key.inl = key;
    r->val.p = r->val.inl = val;
    r->key.cap = key_cap;
    r->val.cap = val_cap;
}

void jtext_reader_close(struct jtext_reader *r)
{
    if (r->key.p != r->key.inl)
        free(r->key.p);
    if (r->val.p != r->val.inl)
        free(r->val.p);
    r->key.p = r->key.inl = r->key_inl;
    r->val.p = r->val.inl = r->val_inl;
    r->key.cap = sizeof r->key_inl;
    r->val.cap = sizeof r->val_inl;
    r->state = R_ERROR;
}

static inline int top_is_array(const struct jtext_reader *r)
{
    size_t i = r->depth - 1;
    return (r->arrays[i / 8] >> (i % 8)) & 1;
}

/* One token per call, in one pass over the state: locals instead of r's fields, a comma handled
 * on the spot (no second round), t->start written once at the end. Where it fails, r->s and
 * t->start stand where they always did (r->s where the failing check stopped, t->start at the
 * token's first byte), so the later calls that repeat the error repeat them too. */
enum jtext_tok jtext_next(struct jtext_reader *r, struct jtext_token *t)
{
    const unsigned char *s = r->s, *end = r->end, *tok;
    enum jtext_tok type;
    int c, k, st, arr = 0;
    size_t i;
    if (s >= end || *s <= ' ') /* most tokens follow their separator directly */
        s = ws_end(s, end);
    c = s < end ? *s : -1;
    tok = s;
    st = r->state;
    if (st == R_MEMBER) /* the common states by plain tests, cheaper than a jump table */
        goto value;
    if (st == R_AFTER_ELEM || st == R_AFTER_MEMBER) {
        arr = st == R_AFTER_ELEM;
        if (c == ',') {
            s = ws_end(s + 1, end);
            c = s < end ? *s : -1;
            tok = s;
            if (arr)
                goto value;
            goto key;
        }
        if (c != (arr ? ']' : '}'))
            goto fail;
        s++;
        t->end = (size_t)(s - r->start);
        if (--r->depth == 0) {
            s = ws_end(s, end);
            if (s < end)
                goto fail;
            r->state = R_DONE;
        } else {
            r->state = top_is_array(r) ? R_AFTER_ELEM : R_AFTER_MEMBER;
        }
        type = JTEXT_CLOSE;
        goto done;
    }
    switch (st) {
    case R_ELEM:
        arr = 1;
        goto value;
    case R_KEY:
        goto key;
    case R_START:
        if (c != '[' && c != '{')
            goto fail;
        goto open;
    case R_DONE:
        type = JTEXT_END;
        goto done;
    default:
        goto fail;
    }

key:
    if (c != '"')
        goto fail;
    r->s = s + 1;
    if (!(t->str = scan_string(r, &r->key, &t->len))) {
        s = r->s; /* where scan_string left it */
        goto fail;
    }
    t->escaped = r->escaped;
    s = r->s;
    t->end = (size_t)(s - r->start);
    s = ws_end(s, end);
    if (s >= end || *s != ':')
        goto fail;
    s++;
    r->state = R_MEMBER;
    type = JTEXT_KEY;
    goto done;

value: /* arr: the value's container is an array */
    if (r->depth >= JTEXT_MAX_DEPTH)
        goto fail;
    if (c == '"') {
        r->s = s + 1;
        if (!(t->str = scan_string(r, &r->val, &t->len))) {
            s = r->s;
            goto fail;
        }
        t->escaped = r->escaped;
        s = r->s;
        t->end = (size_t)(s - r->start);
        r->state = arr ? R_AFTER_ELEM : R_AFTER_MEMBER;
        type = JTEXT_STRING;
        goto done;
    }
    if (c == '[' || c == '{')
        goto open;
    if (c == '-' || (c >= '0' && c <= '9')) {
        r->s = s;
        k = scan_num(r, &t->i, &t->d);
        s = r->s;
        if (k < 0)
            goto fail;
        type = k ? JTEXT_REAL : JTEXT_INTEGER;
    } else if (c == 't' && end - s >= 4 && memcmp(s, "true", 4) == 0) {
        s += 4, type = JTEXT_TRUE;
    } else if (c == 'f' && end - s >= 5 && memcmp(s, "false", 5) == 0) {
        s += 5, type = JTEXT_FALSE;
    } else if (c == 'n' && end - s >= 4 && memcmp(s, "null", 4) == 0) {
        s += 4, type = JTEXT_NULL;
    } else {
        goto fail;
    }
    t->end = (size_t)(s - r->start);
    /* jansson: one NUL byte right after a number or a literal is skipped */
    if (s < end && *s == '\0')
        s++;
    r->state = arr ? R_AFTER_ELEM : R_AFTER_MEMBER;
    goto done;

open: /* a container opens at s: push it, and look past an immediate close */
    arr = c == '[';
    i = r->depth++;
    if (arr)
        r->arrays[i / 8] |= (unsigned char)(1u << (i % 8));
    else
        r->arrays[i / 8] &= (unsigned char)~(1u << (i % 8));
    s++;
    t->end = (size_t)(s - r->start);
    s = ws_end(s, end);
    if (s < end && *s == (arr ? ']' : '}'))
        r->state = arr ? R_AFTER_ELEM : R_AFTER_MEMBER;
    else
        r->state = arr ? R_ELEM : R_KEY;
    type = arr ? JTEXT_ARRAY : JTEXT_OBJECT;

done:
    r->s = s;
    t->start = (size_t)(tok - r->start);
    t->type = type;
    return type;
fail:
    r->s = s;
    t->start = (size_t)(tok - r->start);
    r->state = R_ERROR;
    t->type = JTEXT_ERROR;
    return JTEXT_ERROR;
}
