/* test_sio.c: the Socket.IO v5 codec, driven by wire tables (bytes in, fields or bytes out).
 * Every decoder input is passed in an exact-size heap copy without a NUL terminator so that
 * AddressSanitizer catches any read past len; every prefix of every case is decoded too. */
#include "sio.h"

#include "buf.h"
#include "testlib.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>

/* Wire strings may hold NUL bytes, so every input carries its length. */
#define W(s) s, sizeof(s) - 1

/* ---- sio_decode ------------------------------------------------------------------------ */

struct decode_case {
    const char *in;
    size_t len;
    int rc;
    enum sio_type type;
    const char *nsp;
    int64_t ack_id;
    unsigned attachments;
    const char *data; /* NULL: absent (data NULL, data_len 0) */
};

/* clang-format off */
#define BAD(s) {W(s), -EINVAL, 0, NULL, 0, 0, NULL}

static const struct decode_case decode_cases[] = {
    /* CONNECT */
    {W("0"), 0, SIO_CONNECT, "/", -1, 0, NULL},
    {W("0{}"), 0, SIO_CONNECT, "/", -1, 0, "{}"},
    {W("0{\"token\":\"x\"}"), 0, SIO_CONNECT, "/", -1, 0, "{\"token\":\"x\"}"},
    {W("0/admin,{\"token\":\"x\"}"), 0, SIO_CONNECT, "/admin", -1, 0, "{\"token\":\"x\"}"},
    {W("0/admin"), 0, SIO_CONNECT, "/admin", -1, 0, NULL}, /* namespace runs to the end */
    {W("0/admin,"), 0, SIO_CONNECT, "/admin", -1, 0, NULL},
    {W("0/,"), 0, SIO_CONNECT, "/", -1, 0, NULL},
    {W("0/"), 0, SIO_CONNECT, "/", -1, 0, NULL},
    {W("0{"), 0, SIO_CONNECT, "/", -1, 0, "{"}, /* JSON is the caller's to parse */
    /* DISCONNECT */
    {W("1"), 0, SIO_DISCONNECT, "/", -1, 0, NULL},
    {W("1/admin,"), 0, SIO_DISCONNECT, "/admin", -1, 0, NULL},
    {W("1/admin"), 0, SIO_DISCONNECT, "/admin", -1, 0, NULL},
    /* EVENT */
    {W("2[\"hello\",1]"), 0, SIO_EVENT, "/", -1, 0, "[\"hello\",1]"},
    {W("212[\"hello\"]"), 0, SIO_EVENT, "/", 12, 0, "[\"hello\"]"},
    {W("2/admin,13[\"x\"]"), 0, SIO_EVENT, "/admin", 13, 0, "[\"x\"]"},
    {W("2/admin,[\"x\"]"), 0, SIO_EVENT, "/admin", -1, 0, "[\"x\"]"},
    {W("2/a/b,[\"x\"]"), 0, SIO_EVENT, "/a/b", -1, 0, "[\"x\"]"},
    {W("2["), 0, SIO_EVENT, "/", -1, 0, "["},
    {W("20[\"a\"]"), 0, SIO_EVENT, "/", 0, 0, "[\"a\"]"},
    {W("2007[\"a\"]"), 0, SIO_EVENT, "/", 7, 0, "[\"a\"]"},
    {W("2999999999999999999[\"a\"]"), 0, SIO_EVENT, "/", 999999999999999999LL, 0, "[\"a\"]"},
    {W("22[\"sync\",{\"a\":\"b,c\"}]"), 0, SIO_EVENT, "/", 2, 0, "[\"sync\",{\"a\":\"b,c\"}]"},
    /* ACK */
    {W("31[\"ok\"]"), 0, SIO_ACK, "/", 1, 0, "[\"ok\"]"},
    {W("31[]"), 0, SIO_ACK, "/", 1, 0, "[]"},
    {W("3/admin,0[null]"), 0, SIO_ACK, "/admin", 0, 0, "[null]"},
    /* CONNECT_ERROR */
    {W("4{\"message\":\"auth.invalidToken\"}"), 0, SIO_CONNECT_ERROR, "/", -1, 0,
     "{\"message\":\"auth.invalidToken\"}"},
    {W("4/admin,{\"message\":\"x\"}"), 0, SIO_CONNECT_ERROR, "/admin", -1, 0,
     "{\"message\":\"x\"}"},
    /* BINARY_EVENT / BINARY_ACK (the Engine.IO text 451-[…] minus its leading "4") */
    {W("51-[\"a\",{\"_placeholder\":true,\"num\":0}]"), 0, SIO_BINARY_EVENT, "/", -1, 1,
     "[\"a\",{\"_placeholder\":true,\"num\":0}]"},
    {W("52-/admin,7[\"a\"]"), 0, SIO_BINARY_EVENT, "/admin", 7, 2, "[\"a\"]"},
    {W("50-[\"a\"]"), 0, SIO_BINARY_EVENT, "/", -1, 0, "[\"a\"]"},
    {W("5999999999-[\"a\"]"), 0, SIO_BINARY_EVENT, "/", -1, 999999999u, "[\"a\"]"},
    {W("61-3[{\"_placeholder\":true,\"num\":0}]"), 0, SIO_BINARY_ACK, "/", 3, 1,
     "[{\"_placeholder\":true,\"num\":0}]"},

    /* malformed: type */
    BAD(""),
    BAD("7"),
    BAD("9"),
    BAD("x"),
    BAD("-"),
    BAD("/"),
    BAD(":"),
    BAD(" 2[\"a\"]"),
    BAD("\0002[\"a\"]"),
    BAD("42[\"a\"]"), /* the Engine.IO "4" must be stripped first: this is CONNECT_ERROR+id */
    /* malformed: CONNECT */
    BAD("0[]"),
    BAD("0x"),
    BAD("0 {}"),
    BAD("01"),
    BAD("01{}"),
    BAD("0/admin,[]"),
    BAD("0\"tok\""),
    /* malformed: DISCONNECT */
    BAD("1{}"),
    BAD("1[]"),
    BAD("11"),
    BAD("1x"),
    BAD("1/admin,x"),
    /* malformed: EVENT */
    BAD("2"),
    BAD("2x"),
    BAD("2{}"),
    BAD("2 [\"a\"]"),
    BAD("2/admin"), /* namespace to the end leaves no payload */
    BAD("2/admin,"),
    BAD("2/admin,1"),
    BAD("21"),
    BAD("2-1[\"a\"]"),
    BAD("2/a[\"x,y\"]"), /* the namespace ends at the first ',' */
    BAD("21-[\"a\"]"),   /* attachments only exist on binary types */
    BAD("21 [\"a\"]"),
    /* malformed: ack id bounds (at most 18 digits) */
    BAD("29999999999999999999[\"a\"]"),  /* 19 digits */
    BAD("299999999999999999999[\"a\"]"), /* 21 digits */
    BAD("29223372036854775807[\"a\"]"),  /* INT64_MAX, 19 digits */
    BAD("218446744073709551616[\"a\"]"), /* 2^64 */
    BAD("20000000000000000000[\"a\"]"),  /* 19 digits even when the value is small */
    /* malformed: ACK */
    BAD("3"),
    BAD("3[\"ok\"]"), /* an ACK needs its id */
    BAD("31"),
    BAD("31{}"),
    BAD("3/admin,[\"ok\"]"),
    /* malformed: CONNECT_ERROR */
    BAD("4"),
    BAD("4[\"x\"]"),
    BAD("4\"x\""),
    BAD("41{\"message\":\"x\"}"),
    BAD("4/admin,"),
    /* malformed: binary */
    BAD("5"),
    BAD("5["),
    BAD("5[\"a\"]"),
    BAD("5-[\"a\"]"),
    BAD("51[\"a\"]"),
    BAD("51"),
    BAD("51-"),
    BAD("51-{}"),
    BAD("5a-[\"a\"]"),
    BAD("51a-[\"a\"]"),
    BAD("51--[\"a\"]"),
    BAD("59999999999-[\"a\"]"), /* 11 digits */
    BAD("54294967296-[\"a\"]"), /* 2^32 */
    BAD("5/admin,1-[\"a\"]"),   /* count comes before the namespace */
    BAD("6"),
    BAD("61-[\"a\"]"), /* BINARY_ACK needs its id */
    BAD("61-3"),
    BAD("6-3[\"a\"]"),
};
/* clang-format on */

/* Borrowed pointers stay inside the input; the default namespace may be a static "/". */
static void check_in_bounds(const struct sio_packet *pk, const char *in, size_t len)
{
    if (pk->nsp >= in && pk->nsp < in + len)
        CHECK(pk->nsp_len <= (size_t)(in + len - pk->nsp));
    else
        CHECK(pk->nsp_len == 1 && pk->nsp[0] == '/');
    if (pk->data)
        CHECK(pk->data >= in && pk->data + pk->data_len <= in + len);
    else
        CHECK_EQ_INT(pk->data_len, 0);
}

static void test_decode_table(void)
{
    for (size_t i = 0; i < sizeof decode_cases / sizeof decode_cases[0]; i++) {
        const struct decode_case *c = &decode_cases[i];
        char *in = test_dup_exact(c->in, c->len);
        struct sio_packet pk;
        memset(&pk, 0x5a, sizeof pk);
        int rc = sio_decode(in, c->len, &pk);
        CHECK_EQ_INT(rc, c->rc);
        if (rc != c->rc)
            fprintf(stderr, "  decode case %zu: \"%.*s\"\n", i, (int)c->len, c->in);
        if (rc == 0 && c->rc == 0) {
            CHECK_EQ_INT(pk.type, c->type);
            CHECK_EQ_MEM(pk.nsp, pk.nsp_len, c->nsp, strlen(c->nsp));
            CHECK_EQ_INT(pk.ack_id, c->ack_id);
            CHECK_EQ_INT(pk.attachments, c->attachments);
            if (c->data)
                CHECK_EQ_MEM(pk.data, pk.data_len, c->data, strlen(c->data));
            else
                CHECK(pk.data == NULL && pk.data_len == 0);
            check_in_bounds(&pk, in, c->len);
        }
        free(in);
    }

    /* The payload is length-delimited: an embedded NUL does not end it. */
    static const char nul[] = "2[\"a\0b\"]";
    char *in = test_dup_exact(nul, sizeof nul - 1);
    struct sio_packet pk;
    CHECK_EQ_INT(sio_decode(in, sizeof nul - 1, &pk), 0);
    CHECK_EQ_MEM(pk.data, pk.data_len, nul + 1, sizeof nul - 2);
    free(in);

    CHECK_EQ_INT(sio_decode(NULL, 0, &pk), -EINVAL);
}

/* Every proper prefix of every case decodes without reading past its length (ASan), and a
 * failed decode leaves the output untouched. */
static void test_decode_prefixes(void)
{
    for (size_t i = 0; i < sizeof decode_cases / sizeof decode_cases[0]; i++) {
        const struct decode_case *c = &decode_cases[i];
        for (size_t k = 0; k < c->len; k++) {
            char *in = test_dup_exact(c->in, k);
            struct sio_packet pk, before;
            memset(&pk, 0x5a, sizeof pk);
            before = pk;
            int rc = sio_decode(in, k, &pk);
            CHECK(rc == 0 || rc == -EINVAL);
            if (rc == 0)
                check_in_bounds(&pk, in, k);
            else
                CHECK(memcmp(&pk, &before, sizeof pk) == 0);
            free(in);
        }
    }
}

/* Every byte after each type digit: decode must accept or refuse, never crash. */
static void test_decode_all_second_bytes(void)
{
    for (int t = 0; t < 256; t++) {
        for (int b = 0; b < 256; b++) {
            char two[2] = {(char)t, (char)b};
            for (size_t len = 1; len <= 2; len++) {
                char *in = test_dup_exact(two, len);
                struct sio_packet pk;
                int rc = sio_decode(in, len, &pk);
                if (t < '0' || t > '6')
                    CHECK_EQ_INT(rc, -EINVAL);
                if (rc == 0)
                    check_in_bounds(&pk, in, len);
                free(in);
            }
        }
    }
}

static void test_decode_huge(void)
{
    /* 1 MiB EVENT payload */
    size_t len = 1u << 20;
    char *in = malloc(len);
    memcpy(in, "2[\"", 3);
    memset(in + 3, 'a', len - 5);
    memcpy(in + len - 2, "\"]", 2);
    struct sio_packet pk;
    CHECK_EQ_INT(sio_decode(in, len, &pk), 0);
    CHECK_EQ_INT(pk.data_len, len - 1);
    free(in);

    /* 100k-character namespace without a comma */
    len = 100002;
    in = malloc(len);
    in[0] = '0';
    in[1] = '/';
    memset(in + 2, 'n', len - 2);
    CHECK_EQ_INT(sio_decode(in, len, &pk), 0);
    CHECK_EQ_INT(pk.nsp_len, len - 1);
    CHECK(pk.data == NULL);
    in[0] = '2'; /* an EVENT with the same namespace has no payload */
    CHECK_EQ_INT(sio_decode(in, len, &pk), -EINVAL);
    free(in);

    /* 1000-digit ack id and attachment count */
    len = 1003;
    in = malloc(len);
    in[0] = '2';
    memset(in + 1, '1', 1000);
    memcpy(in + 1001, "[]", 2);
    CHECK_EQ_INT(sio_decode(in, len, &pk), -EINVAL);
    in[0] = '5';
    in[1000] = '-';
    CHECK_EQ_INT(sio_decode(in, len, &pk), -EINVAL);
    /* all digits, nothing after them */
    memset(in + 1, '9', len - 1);
    in[0] = '2';
    CHECK_EQ_INT(sio_decode(in, len, &pk), -EINVAL);
    free(in);
}

/* ---- encoders ---------------------------------------------------------------------------- */

/* Check a buf against the expected text and release it. */
static void check_buf(struct buf *b, const char *want, int line)
{
    if (!want) {
        if (b) {
            fprintf(stderr, "line %d: expected NULL\n", line);
            CHECK(b == NULL);
        }
        buf_unref(b);
        return;
    }
    CHECK(b != NULL);
    if (!b) {
        fprintf(stderr, "line %d: unexpected NULL\n", line);
        return;
    }
    CHECK_EQ_INT(buf_refcount(b), 1);
    CHECK_EQ_MEM(buf_cdata(b), buf_len(b), want, strlen(want));
    CHECK_EQ_INT(buf_cdata(b)[buf_len(b)], '\0');
    if (buf_len(b) != strlen(want) || memcmp(buf_cdata(b), want, buf_len(b)) != 0)
        fprintf(stderr, "  from line %d\n", line);
    buf_unref(b);
}

struct event_case {
    const char *name;
    size_t name_len;
    const char *json;
    size_t json_len;
    int64_t ack_id;
    const char *want; /* NULL: the encoder must refuse */
};

#define S(s) s, sizeof(s) - 1

/* clang-format off */
static const struct event_case event_cases[] = {
    {S("sync-7"), S("{\"a\":1}"), -1, "42[\"sync-7\",{\"a\":1}]"},
    {S("name"), NULL, 0, -1, "42[\"name\"]"},
    {S("name"), "", 0, -1, "42[\"name\"]"}, /* empty json: no argument */
    {S("name"), S("1"), 5, "425[\"name\",1]"},
    {S("name"), S("{}"), 0, "420[\"name\",{}]"},
    {S("name"), NULL, 0, 5, "425[\"name\"]"},
    {S("n"), S("[1,2]"), INT64_MAX, "429223372036854775807[\"n\",[1,2]]"},
    {S("n"), S("null"), -7, "42[\"n\",null]"}, /* any negative id: no ack requested */
    {NULL, 0, NULL, 0, -1, "42[\"\"]"},
    {S(""), NULL, 0, -1, "42[\"\"]"},
    {S("a\"b\\c\nd"), NULL, 0, -1, "42[\"a\\\"b\\\\c\\nd\"]"},
    {S("x\0y"), NULL, 0, -1, "42[\"x\\u0000y\"]"},
    {S("joinRoom-12"), S("{\"status\":\"success\",\"rooms\":[\"r1\"]}"), -1,
     "42[\"joinRoom-12\",{\"status\":\"success\",\"rooms\":[\"r1\"]}]"},
    {S("caf\xc3\xa9"), NULL, 0, -1, "42[\"caf\xc3\xa9\"]"},
    {NULL, 3, NULL, 0, -1, NULL},
};
/* clang-format on */

static void test_event_encode(void)
{
    for (size_t i = 0; i < sizeof event_cases / sizeof event_cases[0]; i++) {
        const struct event_case *c = &event_cases[i];
        /* exact-size copies so that the encoder never reads past the given lengths */
        char *name = c->name ? test_dup_exact(c->name, c->name_len) : NULL;
        char *json = c->json ? test_dup_exact(c->json, c->json_len) : NULL;
        check_buf(sio_event_encode(name, c->name_len, json, c->json_len, c->ack_id), c->want,
                  __LINE__);
        free(name);
        free(json);
    }
}

static void test_other_encoders(void)
{
    check_buf(sio_ack_encode(5, S("{\"x\":1}")), "435[{\"x\":1}]", __LINE__);
    check_buf(sio_ack_encode(0, NULL, 0), "430[]", __LINE__);
    check_buf(sio_ack_encode(12, "", 0), "4312[]", __LINE__);
    check_buf(sio_ack_encode(INT64_MAX, S("1")), "439223372036854775807[1]", __LINE__);
    check_buf(sio_ack_encode(-1, S("1")), NULL, __LINE__);

    check_buf(sio_connect_ok_encode("abc"), "40{\"sid\":\"abc\"}", __LINE__);
    check_buf(sio_connect_ok_encode(""), "40{\"sid\":\"\"}", __LINE__);
    check_buf(sio_connect_ok_encode("a\"b"), "40{\"sid\":\"a\\\"b\"}", __LINE__);
    check_buf(sio_connect_ok_encode(NULL), NULL, __LINE__);

    check_buf(sio_connect_error_encode("auth.invalidToken", NULL),
              "44{\"message\":\"auth.invalidToken\"}", __LINE__);
    check_buf(sio_connect_error_encode("auth.expired", ""), "44{\"message\":\"auth.expired\"}",
              __LINE__);
    check_buf(sio_connect_error_encode("x", "{\"a\":1}"),
              "44{\"message\":\"x\",\"data\":{\"a\":1}}", __LINE__);
    check_buf(sio_connect_error_encode("bad\tthing", NULL), "44{\"message\":\"bad\\tthing\"}",
              __LINE__);
    check_buf(sio_connect_error_encode(NULL, NULL), NULL, __LINE__);

    check_buf(sio_disconnect_encode(), "41", __LINE__);
}

/* A large event: the single allocation is sized exactly. */
static void test_event_encode_huge(void)
{
    size_t n = 1u << 20;
    char *json = malloc(n);
    json[0] = '"';
    memset(json + 1, 'z', n - 2);
    json[n - 1] = '"';
    char *name = malloc(n);
    memset(name, '\n', n); /* every byte escapes to two */
    struct buf *b = sio_event_encode(name, n, json, n, 42);
    CHECK(b != NULL);
    if (b) {
        CHECK_EQ_INT(buf_len(b), 4 + 2 + (2 + 2 * n) + 1 + n);
        CHECK_EQ_MEM(buf_cdata(b), 7, "4242[\"\\", 7);
        CHECK_EQ_MEM(buf_cdata(b) + buf_len(b) - 3, 3, "z\"]", 3);
        buf_unref(b);
    }
    free(json);
    free(name);
}

/* Encoder output minus its Engine.IO "4" decodes back to the same fields. */
static void test_round_trip(void)
{
    static const int64_t ids[] = {-1, 0, 1, 12, 999999999999999999LL};
    static const char *const names[] = {"", "sync", "a,b", "/ns,", "\"[", "x\x01y"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
            struct buf *b = sio_event_encode(names[k], strlen(names[k]), S("{\"a\":[1]}"), ids[i]);
            CHECK(b != NULL);
            if (!b)
                continue;
            CHECK_EQ_INT(buf_cdata(b)[0], '4');
            char *in = test_dup_exact(buf_cdata(b) + 1, buf_len(b) - 1);
            struct sio_packet pk;
            CHECK_EQ_INT(sio_decode(in, buf_len(b) - 1, &pk), 0);
            CHECK_EQ_INT(pk.type, SIO_EVENT);
            CHECK_EQ_INT(pk.ack_id, ids[i]);
            CHECK_EQ_MEM(pk.nsp, pk.nsp_len, "/", 1);
            CHECK(pk.data_len >= 2 && pk.data[0] == '[' && pk.data[pk.data_len - 1] == ']');
            free(in);
            buf_unref(b);
        }
        if (ids[i] >= 0) {
            struct buf *b = sio_ack_encode(ids[i], S("{\"ok\":true}"));
            char *in = test_dup_exact(buf_cdata(b) + 1, buf_len(b) - 1);
            struct sio_packet pk;
            CHECK_EQ_INT(sio_decode(in, buf_len(b) - 1, &pk), 0);
            CHECK_EQ_INT(pk.type, SIO_ACK);
            CHECK_EQ_INT(pk.ack_id, ids[i]);
            CHECK_EQ_MEM(pk.data, pk.data_len, "[{\"ok\":true}]", 13);
            free(in);
            buf_unref(b);
        }
    }
    struct buf *fixed[] = {sio_connect_ok_encode("abc"), sio_connect_error_encode("m", "{}"),
                           sio_disconnect_encode()};
    static const enum sio_type types[] = {SIO_CONNECT, SIO_CONNECT_ERROR, SIO_DISCONNECT};
    for (size_t i = 0; i < 3; i++) {
        char *in = test_dup_exact(buf_cdata(fixed[i]) + 1, buf_len(fixed[i]) - 1);
        struct sio_packet pk;
        CHECK_EQ_INT(sio_decode(in, buf_len(fixed[i]) - 1, &pk), 0);
        CHECK_EQ_INT(pk.type, types[i]);
        free(in);
        buf_unref(fixed[i]);
    }
}

/* ---- sio_json_quote ---------------------------------------------------------------------- */

struct quote_case {
    const char *in;
    size_t len;
    const char *want;
};

/* clang-format off */
static const struct quote_case quote_cases[] = {
    {W(""), "\"\""},
    {W("abc"), "\"abc\""},
    {W("\""), "\"\\\"\""},
    {W("\\"), "\"\\\\\""},
    {W("/"), "\"/\""},
    {W("\b\f\n\r\t"), "\"\\b\\f\\n\\r\\t\""},
    {W("\0"), "\"\\u0000\""},
    {W("\x01"), "\"\\u0001\""},
    {W("\x0b"), "\"\\u000b\""},
    {W("\x1e\x1f"), "\"\\u001e\\u001f\""},
    {W(" "), "\" \""},
    {W("\x7f"), "\"\x7f\""},
    {W("caf\xc3\xa9"), "\"caf\xc3\xa9\""},
    {W("\xe2\x80\xa8"), "\"\xe2\x80\xa8\""}, /* U+2028 passes through */
    {W("\xff"), "\"\xff\""},
    {W("a\"b\\c"), "\"a\\\"b\\\\c\""},
};
/* clang-format on */

static void test_json_quote_table(void)
{
    for (size_t i = 0; i < sizeof quote_cases / sizeof quote_cases[0]; i++) {
        const struct quote_case *c = &quote_cases[i];
        char *in = test_dup_exact(c->in, c->len);
        size_t want_len = strlen(c->want);
        char out[64];
        CHECK_EQ_INT(sio_json_quote(NULL, 0, in, c->len), want_len);
        CHECK_EQ_INT(sio_json_quote(out, sizeof out, in, c->len), want_len);
        CHECK_EQ_STR(out, c->want);

        /* cap == need: all bytes, no NUL (the byte after is untouched) */
        char *exact = malloc(want_len + 1);
        exact[want_len] = '#';
        CHECK_EQ_INT(sio_json_quote(exact, want_len, in, c->len), want_len);
        CHECK_EQ_MEM(exact, want_len, c->want, want_len);
        CHECK_EQ_INT(exact[want_len], '#');
        free(exact);

        /* cap < need: the needed length, and an empty string */
        char small[2] = {'#', '#'};
        CHECK_EQ_INT(sio_json_quote(small, 1, in, c->len), want_len);
        CHECK_EQ_INT(small[0], '\0');
        CHECK_EQ_INT(small[1], '#');
        free(in);
    }
}

/* Every byte value: quoted unchanged, or escaped with a backslash form that JSON allows. */
static void test_json_quote_all_bytes(void)
{
    for (int b = 0; b < 256; b++) {
        char in = (char)b;
        char out[16];
        size_t n = sio_json_quote(out, sizeof out, &in, 1);
        CHECK(n >= 3 && out[0] == '"' && out[n - 1] == '"');
        if (b >= 0x20 && b != '"' && b != '\\') {
            CHECK_EQ_INT(n, 3);
            CHECK_EQ_INT((unsigned char)out[1], b);
        } else {
            CHECK_EQ_INT(out[1], '\\');
            if (n == 8) {
                char want[8];
                snprintf(want, sizeof want, "\\u%04x", b);
                CHECK_EQ_MEM(out + 1, 6, want, 6);
            } else {
                CHECK_EQ_INT(n, 4);
                CHECK(strchr("\"\\bfnrt", out[2]) != NULL);
            }
        }
    }
}

int main(void)
{
    test_decode_table();
    test_decode_prefixes();
    test_decode_all_second_bytes();
    test_decode_huge();
    test_event_encode();
    test_other_encoders();
    test_event_encode_huge();
    test_round_trip();
    test_json_quote_table();
    test_json_quote_all_bytes();
    TEST_MAIN_END();
}
