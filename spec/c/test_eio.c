/* test_eio.c: the Engine.IO v4 codec, driven by wire tables (bytes in, fields or bytes out).
 * Every decoder input is passed in an exact-size heap copy without a NUL terminator so that
 * AddressSanitizer catches any read past len. */
#include "eio.h"

#include "testlib.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/* Wire strings may hold NUL and 0x1e bytes, so every case carries its length. The record
 * separator is written "\036" (three-digit octal) so the next character cannot extend it. */
#define W(s) s, sizeof(s) - 1

/* ---- eio_decode ------------------------------------------------------------------------ */

struct decode_case {
    const char *in;
    size_t len;
    int rc;
    enum eio_type type;
    const char *data; /* expected data, compared with data_len */
    size_t data_len;
};

/* clang-format off */
static const struct decode_case decode_cases[] = {
    /* valid: every type, with and without data */
    {W("0{\"sid\":\"x\"}"), 0, EIO_OPEN, W("{\"sid\":\"x\"}")},
    {W("1"), 0, EIO_CLOSE, W("")},
    {W("2"), 0, EIO_PING, W("")},
    {W("2probe"), 0, EIO_PING, W("probe")},
    {W("3"), 0, EIO_PONG, W("")},
    {W("3probe"), 0, EIO_PONG, W("probe")},
    {W("4"), 0, EIO_MESSAGE, W("")},
    {W("4hello"), 0, EIO_MESSAGE, W("hello")},
    {W("42[\"a\",{\"b\":1}]"), 0, EIO_MESSAGE, W("2[\"a\",{\"b\":1}]")},
    {W("4a\0b"), 0, EIO_MESSAGE, W("a\0b")}, /* data is length-delimited, NUL included */
    {W("4\x1e"), 0, EIO_MESSAGE, W("\x1e")}, /* a single packet may hold anything */
    {W("5"), 0, EIO_UPGRADE, W("")},
    {W("6"), 0, EIO_NOOP, W("")},
    /* malformed */
    {W(""), -EINVAL, 0, W("")},
    {W("7"), -EINVAL, 0, W("")},
    {W("9"), -EINVAL, 0, W("")},
    {W("x"), -EINVAL, 0, W("")},
    {W("/"), -EINVAL, 0, W("")}, /* '0' - 1 */
    {W(":"), -EINVAL, 0, W("")}, /* '9' + 1 */
    {W("b"), -EINVAL, 0, W("")},
    {W("bAQIDBA=="), -EINVAL, 0, W("")}, /* base64 binary: refused */
    {W("B4"), -EINVAL, 0, W("")},
    {W(" 4"), -EINVAL, 0, W("")},
    {W("\0004"), -EINVAL, 0, W("")},
    {W("\x1e"), -EINVAL, 0, W("")},
    {W("\xff"), -EINVAL, 0, W("")},
    {W("10"), 0, EIO_CLOSE, W("0")}, /* only the first byte is the type */
};
/* clang-format on */

static void test_decode_table(void)
{
    for (size_t i = 0; i < sizeof decode_cases / sizeof decode_cases[0]; i++) {
        const struct decode_case *c = &decode_cases[i];
        char *in = test_dup_exact(c->in, c->len);
        enum eio_type type = (enum eio_type)(-1);
        const char *data = NULL;
        size_t dlen = 12345;
        int rc = eio_decode(in, c->len, &type, &data, &dlen);
        CHECK_EQ_INT(rc, c->rc);
        if (rc != c->rc)
            fprintf(stderr, "  decode case %zu\n", i);
        if (rc == 0 && c->rc == 0) {
            CHECK_EQ_INT(type, c->type);
            CHECK(data >= in && data + dlen <= in + c->len);
            CHECK_EQ_MEM(data, dlen, c->data, c->data_len);
        }
        free(in);
    }
    /* NULL with length 0 is the empty packet, not a crash */
    enum eio_type type;
    const char *data;
    size_t dlen;
    CHECK_EQ_INT(eio_decode(NULL, 0, &type, &data, &dlen), -EINVAL);
}

/* Every byte value as a one-byte packet: exactly '0'..'6' decode. */
static void test_decode_all_bytes(void)
{
    for (int b = 0; b < 256; b++) {
        char *in = test_dup_exact((const char[]){(char)b}, 1);
        enum eio_type type;
        const char *data;
        size_t dlen;
        int rc = eio_decode(in, 1, &type, &data, &dlen);
        if (b >= '0' && b <= '6') {
            CHECK_EQ_INT(rc, 0);
            CHECK_EQ_INT(type, b - '0');
            CHECK_EQ_INT(dlen, 0);
        } else {
            CHECK_EQ_INT(rc, -EINVAL);
        }
        free(in);
    }
}

/* ---- eio_payload_split ----------------------------------------------------------------- */

#define MAX_PARTS 8

struct collect {
    size_t n;
    const char *parts[MAX_PARTS];
    size_t lens[MAX_PARTS];
    const char *lo, *hi; /* the body, to check slices stay inside it */
    int stop_at;         /* 1-based packet index at which to return stop_rc; 0 = never */
    int stop_rc;
    int out_of_bounds;
};

static int collect_cb(void *ud, const char *p, size_t len)
{
    struct collect *c = ud;
    if (p < c->lo || p + len > c->hi)
        c->out_of_bounds = 1;
    if (c->n < MAX_PARTS) {
        c->parts[c->n] = p;
        c->lens[c->n] = len;
    }
    c->n++;
    if (c->stop_at && (int)c->n == c->stop_at)
        return c->stop_rc;
    return 0;
}

struct split_case {
    const char *in;
    size_t len;
    size_t max_packets;
    int rc;
    size_t nparts; /* packets delivered */
    const char *parts[4];
};

/* clang-format off */
static const struct split_case split_cases[] = {
    {W("4hello"), 16, 0, 1, {"4hello"}},
    {W("2"), 1, 0, 1, {"2"}},
    {W("4a\0364b"), 16, 0, 2, {"4a", "4b"}},
    {W("4a\0364b\0362probe"), 16, 0, 3, {"4a", "4b", "2probe"}},
    {W("1\0362\0363"), 3, 0, 3, {"1", "2", "3"}}, /* exactly at the bound */
    {W("42[\"a\x1f\"]\0366"), 16, 0, 2, {"42[\"a\x1f\"]", "6"}},
    /* malformed: nothing is delivered */
    {W(""), 16, -EINVAL, 0, {0}},
    {W("\036"), 16, -EINVAL, 0, {0}},
    {W("\036\036"), 16, -EINVAL, 0, {0}},
    {W("\0364a"), 16, -EINVAL, 0, {0}},
    {W("4a\036"), 16, -EINVAL, 0, {0}},
    {W("4a\036\0364b"), 16, -EINVAL, 0, {0}},
    {W("4a\0364b\036"), 16, -EINVAL, 0, {0}},
    {W("1\0362\0363"), 2, -E2BIG, 0, {0}},
    {W("1"), 0, -E2BIG, 0, {0}},
    /* an empty packet past the bound is still reported (as whichever comes first) */
    {W("1\0362\036\036"), 1, -E2BIG, 0, {0}},
    {W("1\036\0362\0363"), 1, -EINVAL, 0, {0}},
};
/* clang-format on */

static void test_split_table(void)
{
    for (size_t i = 0; i < sizeof split_cases / sizeof split_cases[0]; i++) {
        const struct split_case *c = &split_cases[i];
        char *in = test_dup_exact(c->in, c->len);
        struct collect col = {.lo = in, .hi = in + c->len};
        int rc = eio_payload_split(in, c->len, c->max_packets, collect_cb, &col);
        CHECK_EQ_INT(rc, c->rc);
        CHECK_EQ_INT(col.n, c->nparts);
        if (rc != c->rc || col.n != c->nparts)
            fprintf(stderr, "  split case %zu\n", i);
        CHECK(!col.out_of_bounds);
        for (size_t k = 0; k < c->nparts && k < col.n; k++)
            CHECK_EQ_MEM(col.parts[k], col.lens[k], c->parts[k], strlen(c->parts[k]));
        free(in);
    }
}

static void test_split_args_and_stop(void)
{
    struct collect col = {0};
    CHECK_EQ_INT(eio_payload_split(NULL, 0, 16, collect_cb, &col), -EINVAL);
    CHECK_EQ_INT(eio_payload_split("4a", 2, 16, NULL, NULL), -EINVAL);
    CHECK_EQ_INT(col.n, 0);

    /* The callback's non-zero value stops the split and is returned as is. */
    static const char body[] = "4a\x1e"
                               "4b\x1e"
                               "4c";
    char *in = test_dup_exact(body, sizeof body - 1);
    col = (struct collect){.lo = in, .hi = in + sizeof body - 1, .stop_at = 2, .stop_rc = 7};
    CHECK_EQ_INT(eio_payload_split(in, sizeof body - 1, 16, collect_cb, &col), 7);
    CHECK_EQ_INT(col.n, 2);
    col = (struct collect){.lo = in, .hi = in + sizeof body - 1, .stop_at = 1, .stop_rc = -EPROTO};
    CHECK_EQ_INT(eio_payload_split(in, sizeof body - 1, 16, collect_cb, &col), -EPROTO);
    CHECK_EQ_INT(col.n, 1);
    free(in);
}

static int count_cb(void *ud, const char *p, size_t len)
{
    (void)p;
    size_t *n = ud;
    if (len != 2)
        return -1;
    (*n)++;
    return 0;
}

/* Large bodies: many small packets around the bound, and one 1 MiB packet. */
static void test_split_huge(void)
{
    const size_t npk = 100000;
    size_t len = npk * 3 - 1; /* "4x" packets joined by 0x1e */
    char *body = malloc(len);
    CHECK(body != NULL);
    if (!body)
        return;
    for (size_t i = 0; i < npk; i++) {
        body[i * 3] = '4';
        body[i * 3 + 1] = 'x';
        if (i + 1 < npk)
            body[i * 3 + 2] = EIO_RECORD_SEP;
    }
    size_t n = 0;
    CHECK_EQ_INT(eio_payload_split(body, len, npk, count_cb, &n), 0);
    CHECK_EQ_INT(n, npk);
    n = 0;
    CHECK_EQ_INT(eio_payload_split(body, len, npk - 1, count_cb, &n), -E2BIG);
    CHECK_EQ_INT(n, 0);
    /* a doubled separator at the very end of a long body is still caught before delivery */
    body[len - 2] = EIO_RECORD_SEP;
    body[len - 1] = EIO_RECORD_SEP;
    n = 0;
    CHECK_EQ_INT(eio_payload_split(body, len, npk, count_cb, &n), -EINVAL);
    CHECK_EQ_INT(n, 0);
    free(body);

    const size_t big = 1u << 20;
    body = malloc(big);
    CHECK(body != NULL);
    if (!body)
        return;
    body[0] = '4';
    memset(body + 1, 'a', big - 1);
    struct collect col = {.lo = body, .hi = body + big};
    CHECK_EQ_INT(eio_payload_split(body, big, 1, collect_cb, &col), 0);
    CHECK_EQ_INT(col.n, 1);
    CHECK_EQ_INT(col.lens[0], big);
    free(body);
}

/* ---- eio_open_encode ------------------------------------------------------------------- */

static void test_open_encode(void)
{
    static const char want[] = "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],"
                               "\"pingInterval\":25000,\"pingTimeout\":20000,"
                               "\"maxPayload\":1000000}";
    char out[256];
    int n = eio_open_encode(out, sizeof out, "lv_VI97HAXpY6yYWAAAC", 25000, 20000, 1000000, 1);
    CHECK_EQ_INT(n, sizeof want - 1);
    CHECK_EQ_STR(out, want);

    n = eio_open_encode(out, sizeof out, "abc", 1, 2, 3, 0);
    CHECK_EQ_STR(out, "0{\"sid\":\"abc\",\"upgrades\":[],\"pingInterval\":1,\"pingTimeout\":2,"
                      "\"maxPayload\":3}");
    CHECK_EQ_INT(n, strlen(out));

    /* The capacity must hold the NUL too. */
    char *exact = malloc(sizeof want);
    CHECK_EQ_INT(
        eio_open_encode(exact, sizeof want, "lv_VI97HAXpY6yYWAAAC", 25000, 20000, 1000000, 1),
        sizeof want - 1);
    CHECK_EQ_STR(exact, want);
    CHECK_EQ_INT(
        eio_open_encode(exact, sizeof want - 1, "lv_VI97HAXpY6yYWAAAC", 25000, 20000, 1000000, 1),
        -ENOSPC);
    free(exact);
    CHECK_EQ_INT(eio_open_encode(NULL, 0, "abc", 1, 2, 3, 1), -ENOSPC);
    CHECK_EQ_INT(eio_open_encode(out, 1, "abc", 1, 2, 3, 1), -ENOSPC);

    /* Extreme numbers print in full. */
    n = eio_open_encode(out, sizeof out, "s", 4294967295u, 0, SIZE_MAX, 1);
    CHECK(n > 0);
    char want_max[128];
    snprintf(want_max, sizeof want_max,
             "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingInterval\":4294967295,"
             "\"pingTimeout\":0,\"maxPayload\":%zu}",
             (size_t)SIZE_MAX);
    CHECK_EQ_STR(out, want_max);

    /* A sid that would need escaping is refused rather than pasted into JSON. */
    static const char *const bad_sids[] = {"a\"b", "a\\b", "a\nb", "\x01", "caf\xc3\xa9", "\x7f"};
    for (size_t i = 0; i < sizeof bad_sids / sizeof bad_sids[0]; i++)
        CHECK_EQ_INT(eio_open_encode(out, sizeof out, bad_sids[i], 1, 2, 3, 1), -EINVAL);
    CHECK_EQ_INT(eio_open_encode(out, sizeof out, NULL, 1, 2, 3, 1), -EINVAL);
}

/* ---- eio_ws_header --------------------------------------------------------------------- */

struct ws_case {
    size_t len;
    size_t n;
    unsigned char bytes[10];
};

static const struct ws_case ws_cases[] = {
    {0, 2, {0x81, 0x00}},
    {1, 2, {0x81, 0x01}},
    {125, 2, {0x81, 0x7d}},
    {126, 4, {0x81, 0x7e, 0x00, 0x7e}},
    {127, 4, {0x81, 0x7e, 0x00, 0x7f}},
    {256, 4, {0x81, 0x7e, 0x01, 0x00}},
    {65535, 4, {0x81, 0x7e, 0xff, 0xff}},
    {65536, 10, {0x81, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}},
    {1000000, 10, {0x81, 0x7f, 0, 0, 0, 0, 0x00, 0x0f, 0x42, 0x40}},
#if SIZE_MAX > 0xffffffffu
    {(size_t)0x0123456789abcdefULL,
     10,
     {0x81, 0x7f, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}},
    /* RFC 6455 §5.2: the top bit of the 64-bit length is always 0 */
    {SIZE_MAX, 10, {0x81, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
#endif
};

static void test_ws_header(void)
{
    for (size_t i = 0; i < sizeof ws_cases / sizeof ws_cases[0]; i++) {
        const struct ws_case *c = &ws_cases[i];
        unsigned char out[10];
        memset(out, 0xAA, sizeof out);
        size_t n = eio_ws_header(out, c->len);
        CHECK_EQ_INT(n, c->n);
        CHECK_EQ_MEM(out, n, c->bytes, c->n);
        for (size_t k = n; k < sizeof out; k++)
            CHECK_EQ_INT(out[k], 0xAA); /* nothing written past the header */
    }
}

int main(void)
{
    test_decode_table();
    test_decode_all_bytes();
    test_split_table();
    test_split_args_and_stop();
    test_split_huge();
    test_open_encode();
    test_ws_header();
    TEST_MAIN_END();
}
