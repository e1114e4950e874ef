/* test_wsproto.c: the RFC 6455 codec (core/wsproto.c), driven by wire tables: SHA-1 and the
 * accept key against published and sha1sum-computed vectors, request heads (whole, every prefix,
 * malformed, over the bounds), client frame headers with the checks of §5.2–§5.5, unmasking
 * against a byte-by-byte reference, and the server's frame and close encoders. Every decoder
 * input is an exact-size heap copy without a NUL terminator so that AddressSanitizer catches any
 * read past len. */
#include "wsproto.h"

#include "testlib.h"

#include <stdint.h>
#include <stdlib.h>

#define W(s) s, sizeof(s) - 1

/* p[0..n) holds exactly the C string s. */
#define CHECK_MEM_STR(p, n, s) CHECK_EQ_MEM(p, n, s, strlen(s))

static void hex20(const unsigned char md[20], char out[41])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 20; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[40] = '\0';
}

/* The digest of data[0..len), computed from an exact-size copy, as lowercase hex. */
static void sha1_hex(const void *data, size_t len, char out[41])
{
    unsigned char md[20];
    char *in = test_dup_exact(data, len);
    wsproto_sha1(in, len, md);
    free(in);
    hex20(md, out);
}

/* ---- wsproto_sha1 ---------------------------------------------------------------------- */

/* "abcdefghijklmnopqrstuvwxyz" repeated, cut at n bytes: the sha1sum vectors below. */
static void alphabet(char *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (char)('a' + i % 26);
}

struct sha1_case {
    size_t len;
    const char *hex; /* printf '%s' "<alphabet cut at len>" | sha1sum */
};

/* Around the padding boundaries of one and two blocks (55/56: the length still fits the last
 * block or not; 63/64/65: a whole block). */
static const struct sha1_case sha1_alphabet[] = {
    {55, "a617d006d1ca12671785098a19a87fe58443bde9"},
    {56, "4ad5bb7ae3c4024768d364b77c52128ea3cffebe"},
    {63, "fc8a5ab77259625085ead3ec96515b3b8d933fad"},
    {64, "93249d4c2f8903ebf41ac358473148ae6ddd7042"},
    {65, "cf2a63cc308225cf07b498d2309a01dd0df52f67"},
    {119, "edd0f1133d0e4ca5f3e98bb7e0295f31d20d2cdb"},
    {120, "23a58eee587aa1f50d19a969ab36a3fe3e88c393"},
    {127, "4add81c7de2e43d621cdb34132bbb23178f4c500"},
    {128, "3698f9beb7cdf5b1e1ce786672fb234143d4df89"},
    {129, "1d96f2c973fdd492d08f2a16f950d654912b61ca"},
};

static void test_sha1(void)
{
    char hex[41];
    /* FIPS 180-2 appendix A and the empty message */
    sha1_hex("", 0, hex);
    CHECK_EQ_STR(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    sha1_hex(W("abc"), hex);
    CHECK_EQ_STR(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    sha1_hex(W("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"), hex);
    CHECK_EQ_STR(hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    char *million = malloc(1000000);
    CHECK(million != NULL);
    if (million) {
        memset(million, 'a', 1000000);
        sha1_hex(million, 1000000, hex);
        CHECK_EQ_STR(hex, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
        free(million);
    }

    char text[256];
    alphabet(text, sizeof text);
    for (size_t i = 0; i < sizeof sha1_alphabet / sizeof sha1_alphabet[0]; i++) {
        sha1_hex(text, sha1_alphabet[i].len, hex);
        CHECK_EQ_STR(hex, sha1_alphabet[i].hex);
        if (strcmp(hex, sha1_alphabet[i].hex) != 0)
            fprintf(stderr, "  sha1 of %zu bytes\n", sha1_alphabet[i].len);
    }

    /* The same message at every misalignment gives the same digest. */
    unsigned char *block = malloc(65 + 8);
    CHECK(block != NULL);
    if (block) {
        for (size_t a = 0; a < 8; a++) {
            unsigned char md[20];
            memcpy(block + a, text, 65);
            wsproto_sha1(block + a, 65, md);
            hex20(md, hex);
            CHECK_EQ_STR(hex, "cf2a63cc308225cf07b498d2309a01dd0df52f67");
        }
        free(block);
    }

    /* Every length 0..1024: the SHA-1 of the 1025 digests one after the other, as sha1sum
     * computes it (each prefix through sha1sum, then the concatenated digests through it). */
    unsigned char *all = malloc(1025 * 20);
    char *big = malloc(1024);
    CHECK(all && big);
    if (all && big) {
        alphabet(big, 1024);
        for (size_t n = 0; n <= 1024; n++) {
            char *in = test_dup_exact(big, n);
            wsproto_sha1(in, n, all + n * 20);
            free(in);
        }
        sha1_hex(all, 1025 * 20, hex);
        CHECK_EQ_STR(hex, "4a158240ddcc152def15efd9902f9a754d757bd6");
    }
    free(all);
    free(big);
}

/* ---- wsproto_accept_key ---------------------------------------------------------------- */

struct accept_case {
    const char *key;
    size_t len;
    int rc;
    const char *accept; /* python: b64encode(sha1(key + GUID)) */
};

/* clang-format off */
static const struct accept_case accept_cases[] = {
    /* RFC 6455 §1.3 */
    {W("dGhlIHNhbXBsZSBub25jZQ=="), 0, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
    {W("AQIDBAUGBwgJCgsMDQ4PEA=="), 0, "C/0nmHhBztSRGR1CwL6Tf4ZjwpY="},
    {W("AAAAAAAAAAAAAAAAAAAAAA=="), 0, "ICX+Yqv66kxgM0FcWaLWlFLwTAI="},
    {W("/////////////////////w=="), 0, "XXpj4jYzLM2yUE0C7TIgMwTQh2g="},
    {W("x3JJHMbDL1EzLkh9GBhXDw=="), 0, "HSmrc0sMlYUkAGmm5OPpG2HaGWk="},
    /* wrong length */
    {W(""), -1, NULL},
    {W("dGhlIHNhbXBsZSBub25jZQ="), -1, NULL},
    {W("dGhlIHNhbXBsZSBub25jZQ==="), -1, NULL},
    {W("dGhlIHNhbXBsZSBub25jZQ"), -1, NULL},
    {W("dGhlIHNhbXBsZSBub25jZQAA"), -1, NULL},    /* 24 chars, 18 bytes */
    {W("dGhlIHNhbXBsZSBub25jZQAAAA=="), -1, NULL}, /* 28 chars, 19 bytes */
    {W("dGhlIHNhbXBsZSBub25j"), -1, NULL},         /* 15 bytes */
    {W("dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ=="), -1, NULL},
    /* bad characters */
    {W("dGhlIHNhbXBsZSBub25jZQ!="), -1, NULL},
    {W("dGhlIHNhbXBs ZSBub25jZQ="), -1, NULL},
    {W("dGhlIHNhbXBsZSBub25jZQ=\0"), -1, NULL},
    {W("dGhlIHNh\0XBsZSBub25jZQ=="), -1, NULL},
    {W("dGhlIHNhbXBsZSBub25j-Q=="), -1, NULL}, /* base64url alphabet */
    {W("dGhlIHNhbXBsZSBub25j_Q=="), -1, NULL},
    {W("dGhlIHNhbXBsZSBub25jZ\xc3\xa9="), -1, NULL},
    /* wrong padding */
    {W("dGhlIHNhbXBsZSBub25jZQ=A"), -1, NULL},
    {W("dGhlIHNhbXBsZSBub25jZ==="), -1, NULL},
    {W("dGhlIHNhbXBsZSBub25j===="), -1, NULL},
    {W("dGhlIHNhbXBsZSBu=25jZQ=="), -1, NULL},
    {W("========================"), -1, NULL},
    /* 22 characters hold 132 bits: the last one's low 4 bits are padding and must be 0 for the
     * string to be the base64 of 16 bytes (RFC 4648 §3.5); the last character is A, Q, g or w */
    {W("dGhlIHNhbXBsZSBub25jZR=="), -1, NULL},
    {W("dGhlIHNhbXBsZSBub25jZf=="), -1, NULL},
    {W("AAAAAAAAAAAAAAAAAAAAA/=="), -1, NULL},
};
/* clang-format on */

static void test_accept_key(void)
{
    for (size_t i = 0; i < sizeof accept_cases / sizeof accept_cases[0]; i++) {
        const struct accept_case *c = &accept_cases[i];
        char *key = test_dup_exact(c->key, c->len);
        char out[29 + 4];
        memset(out, '#', sizeof out);
        int rc = wsproto_accept_key(key, c->len, out);
        CHECK_EQ_INT(rc, c->rc);
        if (rc != c->rc)
            fprintf(stderr, "  accept case %zu: \"%.*s\"\n", i, (int)c->len, c->key);
        if (rc == 0 && c->accept) {
            CHECK_EQ_STR(out, c->accept);
            CHECK_EQ_INT(out[28], '\0');
        }
        for (size_t k = 29; k < sizeof out; k++)
            CHECK_EQ_INT(out[k], '#');
        free(key);
    }
}

/* ---- wsproto_head_parse ---------------------------------------------------------------- */

/* What socket.io-client sends from a browser (Chrome's headers, in its order). */
static const char sio_head[] =
    "GET /socket.io/?EIO=4&transport=websocket&sid=abc%2Fdef%3D HTTP/1.1\r\n"
    "Host: localhost:3000\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)\r\n"
    "Upgrade: websocket\r\n"
    "Origin: http://localhost:8080\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

static const char *sio_names[] = {
    "Host",
    "Connection",
    "Pragma",
    "Cache-Control",
    "User-Agent",
    "Upgrade",
    "Origin",
    "Sec-WebSocket-Version",
    "Accept-Encoding",
    "Accept-Language",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Extensions",
};
static const char *sio_values[] = {
    "localhost:3000",
    "Upgrade",
    "no-cache",
    "no-cache",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)",
    "websocket",
    "http://localhost:8080",
    "13",
    "gzip, deflate, br",
    "en-US,en;q=0.9",
    "dGhlIHNhbXBsZSBub25jZQ==",
    "permessage-deflate; client_max_window_bits",
};

/* The pointer p[0..n) lies inside buf[0..len). */
static int inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p && p >= buf && p <= buf + len && n <= (size_t)(buf + len - p);
}

/* Parse text[0..len) from an exact-size copy; *copy keeps it for the head's pointers. */
static int parse(const char *text, size_t len, struct wsproto_head *head, char **copy)
{
    *copy = test_dup_exact(text, len);
    memset(head, 0x5A, sizeof *head);
    return wsproto_head_parse(*copy, len, head);
}

static void check_header(const struct wsproto_head *h, const char *name, const char *want)
{
    size_t n = 12345;
    const char *v = wsproto_head_header(h, name, &n);
    if (!want) {
        CHECK(v == NULL);
        return;
    }
    CHECK(v != NULL);
    if (v)
        CHECK_EQ_MEM(v, n, want, strlen(want));
    if (!v || n != strlen(want) || memcmp(v, want, n) != 0)
        fprintf(stderr, "  header \"%s\"\n", name);
}

static void test_head_socketio(void)
{
    size_t len = sizeof sio_head - 1;
    struct wsproto_head h;
    char *in;
    CHECK_EQ_INT(parse(sio_head, len, &h, &in), WSPROTO_HEAD_DONE);
    CHECK_EQ_INT(h.len, len);
    CHECK_EQ_MEM(h.method, h.method_len, "GET", 3);
    CHECK_MEM_STR(h.target, h.target_len, "/socket.io/?EIO=4&transport=websocket&sid=abc%2Fdef%3D");
    CHECK_MEM_STR(h.path, h.path_len, "/socket.io/");
    CHECK(h.query != NULL);
    if (h.query)
        CHECK_MEM_STR(h.query, h.query_len, "EIO=4&transport=websocket&sid=abc%2Fdef%3D");
    CHECK_EQ_INT(h.minor, 1);
    CHECK_EQ_INT(h.nheaders, 12);
    for (size_t i = 0; i < 12 && i < h.nheaders; i++) {
        CHECK_EQ_MEM(h.headers[i].name, h.headers[i].name_len, sio_names[i], strlen(sio_names[i]));
        CHECK_EQ_MEM(h.headers[i].value, h.headers[i].value_len, sio_values[i],
                     strlen(sio_values[i]));
        CHECK(inside(h.headers[i].name, h.headers[i].name_len, in, len));
        CHECK(inside(h.headers[i].value, h.headers[i].value_len, in, len));
    }
    CHECK(inside(h.method, h.method_len, in, len));
    CHECK(inside(h.target, h.target_len, in, len));
    CHECK(inside(h.path, h.path_len, in, len));
    CHECK(inside(h.query, h.query_len, in, len));

    /* lookups: names are case-insensitive; the first of a name wins */
    check_header(&h, "upgrade", "websocket");
    check_header(&h, "UPGRADE", "websocket");
    check_header(&h, "sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    check_header(&h, "Sec-WebSocket-Version", "13");
    check_header(&h, "Sec-WebSocket-Protocol", NULL);
    check_header(&h, "Upgrad", NULL);
    check_header(&h, "Upgrade2", NULL);
    check_header(&h, "", NULL);
    CHECK_EQ_INT(wsproto_is_upgrade(&h), 1);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "connection", "upgrade"), 1);

    char out[64];
    CHECK_EQ_INT(wsproto_head_arg(&h, "EIO", out, sizeof out), 1);
    CHECK_EQ_STR(out, "4");
    CHECK_EQ_INT(wsproto_head_arg(&h, "transport", out, sizeof out), 9);
    CHECK_EQ_STR(out, "websocket");
    CHECK_EQ_INT(wsproto_head_arg(&h, "sid", out, sizeof out), 8);
    CHECK_EQ_STR(out, "abc/def=");
    CHECK_EQ_INT(wsproto_head_arg(&h, "j", out, sizeof out), -1);

    char accept[29];
    size_t klen;
    const char *key = wsproto_head_header(&h, "Sec-WebSocket-Key", &klen);
    CHECK(key != NULL);
    if (key) {
        CHECK_EQ_INT(wsproto_accept_key(key, klen, accept), 0);
        CHECK_EQ_STR(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }
    free(in);
}

/* Every proper prefix of a head is MORE; bytes after it are left alone. */
static void test_head_prefixes_and_rest(void)
{
    size_t len = sizeof sio_head - 1;
    struct wsproto_head h;
    char *in;
    for (size_t n = 0; n < len; n++) {
        int rc = parse(sio_head, n, &h, &in);
        CHECK_EQ_INT(rc, WSPROTO_HEAD_MORE);
        if (rc != WSPROTO_HEAD_MORE)
            fprintf(stderr, "  prefix of %zu bytes\n", n);
        free(in);
    }

    /* a masked frame pipelined after the head, then garbage, then a second head */
    static const char frame[] = "\x81\x82\x01\x02\x03\x04\x35\x32";
    static const char *tails[] = {frame, "\r\n\r\n", "garbage\x01\xff", sio_head};
    for (size_t t = 0; t < sizeof tails / sizeof tails[0]; t++) {
        size_t tlen = t == 0 ? sizeof frame - 1 : strlen(tails[t]);
        char *buf = malloc(len + tlen);
        memcpy(buf, sio_head, len);
        memcpy(buf + len, tails[t], tlen);
        CHECK_EQ_INT(parse(buf, len + tlen, &h, &in), WSPROTO_HEAD_DONE);
        CHECK_EQ_INT(h.len, len);
        CHECK_EQ_INT(h.nheaders, 12);
        CHECK(memcmp(in, buf, len + tlen) == 0);
        free(in);
        free(buf);
    }

    /* a short head followed by more than WSPROTO_HEAD_MAX bytes is still DONE */
    static const char small[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t big = sizeof small - 1 + 3 * WSPROTO_HEAD_MAX;
    char *buf = malloc(big);
    memcpy(buf, small, sizeof small - 1);
    memset(buf + sizeof small - 1, 'x', big - (sizeof small - 1));
    CHECK_EQ_INT(parse(buf, big, &h, &in), WSPROTO_HEAD_DONE);
    CHECK_EQ_INT(h.len, sizeof small - 1);
    free(in);
    free(buf);
}

struct head_case {
    const char *in;
    size_t len;
    int rc;
};

/* clang-format off */
static const struct head_case head_cases[] = {
    /* whole heads */
    {W("GET / HTTP/1.1\r\n\r\n"), WSPROTO_HEAD_DONE},
    {W("GET / HTTP/1.0\r\nHost: x\r\n\r\n"), WSPROTO_HEAD_DONE},
    {W("POST /a/b?c=d HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), WSPROTO_HEAD_DONE},
    {W("GET / HTTP/1.1\r\nX-Tab:\tv\tw\t\r\n\r\n"), WSPROTO_HEAD_DONE},
    {W("GET / HTTP/1.1\r\nX-Empty:\r\n\r\n"), WSPROTO_HEAD_DONE},
    {W("GET / HTTP/1.1\r\nX-Tchars!#$%&'*+-.^_`|~09AZaz: v\r\n\r\n"), WSPROTO_HEAD_DONE},
    /* not yet */
    {W(""), WSPROTO_HEAD_MORE},
    {W("G"), WSPROTO_HEAD_MORE},
    {W("GET / HTTP/1.1\r\n"), WSPROTO_HEAD_MORE},
    {W("GET / HTTP/1.1\r\nHost: x\r\n\r"), WSPROTO_HEAD_MORE},
    /* the request line */
    {W(" / HTTP/1.1\r\n\r\n"), WSPROTO_HEAD_BAD},          /* no method */
    {W("/ HTTP/1.1\r\n\r\n"), WSPROTO_HEAD_BAD},
    {W("GET HTTP/1.1\r\n\r\n"), WSPROTO_HEAD_BAD},        /* no target */
    {W("GET  HTTP/1.1\r\n\r\n"), WSPROTO_HEAD_BAD},         /* empty target */
    {W("GET /\r\n\r\n"), WSPROTO_HEAD_BAD},               /* HTTP/0.9 */
    {W("GET / HTTP/2.0\r\n\r\n"), WSPROTO_HEAD_BAD},
    {W("GET / HTTP/1\r\n\r\n"), WSPROTO_HEAD_BAD},
    {W("GET / HTTP/1.\r\n\r\n"), WSPROTO_HEAD_BAD},
    {W("GET / HTTP/1.x\r\n\r\n"), WSPROTO_HEAD_BAD},
    {W("GET / HTTPS/1.1\r\n\r\n"), WSPROTO_HEAD_BAD},
    {W("GET / XTTP/1.1\r\n\r\n"), WSPROTO_HEAD_BAD},
    {W("GET / HTTP/0.9\r\n\r\n"), WSPROTO_HEAD_BAD},
    {W("GET / HTTP/1.1x\r\n\r\n"), WSPROTO_HEAD_BAD},
    {W("GET / HTTP/1.10\r\n\r\n"), WSPROTO_HEAD_BAD},
    {W("GET / HTTP/11.1\r\n\r\n"), WSPROTO_HEAD_BAD},
    /* control characters */
    {W("G\x01T / HTTP/1.1\r\n\r\n"), WSPROTO_HEAD_BAD},
    {W("GET /\x01 HTTP/1.1\r\n\r\n"), WSPROTO_HEAD_BAD},
    {W("GET /\x7f HTTP/1.1\r\n\r\n"), WSPROTO_HEAD_BAD},
    {W("GET /\0 HTTP/1.1\r\n\r\n"), WSPROTO_HEAD_BAD},
    {W("GET / HTTP/1.1\rX\r\n\r\n"), WSPROTO_HEAD_BAD},    /* a CR not before LF */
    {W("GET / HTTP/1.1\r\nHo\x01st: x\r\n\r\n"), WSPROTO_HEAD_BAD},
    {W("GET / HTTP/1.1\r\nHost: a\x01z\r\n\r\n"), WSPROTO_HEAD_BAD},
    {W("GET / HTTP/1.1\r\nHost: a\0z\r\n\r\n"), WSPROTO_HEAD_BAD},
    {W("GET / HTTP/1.1\r\nHost: a\x7fz\r\n\r\n"), WSPROTO_HEAD_BAD},
    {W("GET / HTTP/1.1\r\nHost: a\rz\r\n\r\n"), WSPROTO_HEAD_BAD},
    {W("GET / HTTP/1.1\r\nA: b\rXX: y\r\n\r\n"), WSPROTO_HEAD_BAD}, /* a bare CR ends no line */
    {W("GET / HTTP/1.1\r\nA: b\nX: y\r\n\r\n"), WSPROTO_HEAD_BAD}, /* nor does a bare LF */
    {W("GET / HTTP/1.1\r\nHost: a\r\n\x01\r\n\r\n"), WSPROTO_HEAD_BAD},
    /* header lines */
    {W("GET / HTTP/1.1\r\nHost x\r\n\r\n"), WSPROTO_HEAD_BAD},  /* no ':' */
    {W("GET / HTTP/1.1\r\nHost\r\n\r\n"), WSPROTO_HEAD_BAD},
    {W("GET / HTTP/1.1\r\n: x\r\n\r\n"), WSPROTO_HEAD_BAD},     /* empty name */
    {W("GET / HTTP/1.1\r\nHo(st: x\r\n\r\n"), WSPROTO_HEAD_BAD}, /* not a tchar */
    {W("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), WSPROTO_HEAD_BAD}, /* RFC 7230 §3.2.4 */
};
/* clang-format on */

static void test_head_table(void)
{
    for (size_t i = 0; i < sizeof head_cases / sizeof head_cases[0]; i++) {
        const struct head_case *c = &head_cases[i];
        struct wsproto_head h;
        char *in;
        int rc = parse(c->in, c->len, &h, &in);
        CHECK_EQ_INT(rc, c->rc);
        if (rc != c->rc)
            fprintf(stderr, "  head case %zu: \"%.*s\"\n", i, (int)c->len, c->in);
        if (rc == WSPROTO_HEAD_DONE) {
            CHECK(h.len <= c->len);
            CHECK(h.nheaders <= WSPROTO_HEADERS_MAX);
        }
        free(in);
    }

    /* LF-only line endings: the header promises nothing; only no crash and a valid result */
    static const char *lf[] = {"GET / HTTP/1.1\nHost: x\n\n", "GET / HTTP/1.1\r\nHost: x\n\r\n",
                               "GET / HTTP/1.1\r\nHost: x\r\n\n"};
    for (size_t i = 0; i < sizeof lf / sizeof lf[0]; i++) {
        struct wsproto_head h;
        char *in;
        int rc = parse(lf[i], strlen(lf[i]), &h, &in);
        CHECK(rc == WSPROTO_HEAD_DONE || rc == WSPROTO_HEAD_MORE || rc == WSPROTO_HEAD_BAD);
        if (rc == WSPROTO_HEAD_DONE)
            CHECK(h.len <= strlen(lf[i]));
        free(in);
    }
}

static void test_head_fields(void)
{
    struct wsproto_head h;
    char *in;
    CHECK_EQ_INT(parse(W("POST /a/b?c=d HTTP/1.0\r\n\r\n"), &h, &in), WSPROTO_HEAD_DONE);
    CHECK_EQ_MEM(h.method, h.method_len, "POST", 4);
    CHECK_MEM_STR(h.target, h.target_len, "/a/b?c=d");
    CHECK_MEM_STR(h.path, h.path_len, "/a/b");
    CHECK(h.query && h.query_len == 3 && memcmp(h.query, "c=d", 3) == 0);
    CHECK_EQ_INT(h.minor, 0);
    CHECK_EQ_INT(h.nheaders, 0);
    CHECK_EQ_INT(h.len, 26);
    CHECK_EQ_INT(wsproto_is_upgrade(&h), 0);
    free(in);

    CHECK_EQ_INT(parse(W("GET /x HTTP/1.1\r\n\r\n"), &h, &in), WSPROTO_HEAD_DONE);
    CHECK(h.query == NULL);
    CHECK_MEM_STR(h.path, h.path_len, "/x");
    char out[8];
    CHECK_EQ_INT(wsproto_head_arg(&h, "x", out, sizeof out), -1);
    free(in);

    CHECK_EQ_INT(parse(W("GET /x? HTTP/1.1\r\n\r\n"), &h, &in), WSPROTO_HEAD_DONE);
    CHECK(h.query != NULL);
    CHECK_EQ_INT(h.query_len, 0);
    CHECK_MEM_STR(h.path, h.path_len, "/x");
    CHECK_MEM_STR(h.target, h.target_len, "/x?");
    CHECK_EQ_INT(wsproto_head_arg(&h, "x", out, sizeof out), -1);
    free(in);

    /* values lose their surrounding blanks, not the inner ones; empty values are present */
    CHECK_EQ_INT(parse(W("GET / HTTP/1.1\r\n"
                         "X-Pad:  \t spaced \t value \t  \r\n"
                         "x-empty:\r\n"
                         "X-Blank:   \t \r\n"
                         "X-Tight:v\r\n"
                         "X-Pad: second\r\n"
                         "\r\n"),
                       &h, &in),
                 WSPROTO_HEAD_DONE);
    CHECK_EQ_INT(h.nheaders, 5);
    check_header(&h, "x-pad", "spaced \t value");
    check_header(&h, "X-PAD", "spaced \t value");
    check_header(&h, "X-Empty", "");
    check_header(&h, "x-blank", "");
    check_header(&h, "x-tight", "v");
    check_header(&h, "x-missing", NULL);
    free(in);
}

static void test_head_tokens(void)
{
    struct wsproto_head h;
    char *in;
    CHECK_EQ_INT(parse(W("GET / HTTP/1.1\r\n"
                         "Connection: keep-alive, Upgrade\r\n"
                         "X-Odd: ,Upgrade ,\t,keep-alive\t\r\n"
                         "X-Tight: a,b,c\r\n"
                         "X-Tab: a,\tb\t,\tc\r\n"
                         "\r\n"),
                       &h, &in),
                 WSPROTO_HEAD_DONE);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "Connection", "upgrade"), 1);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "connection", "Upgrade"), 1);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "CONNECTION", "UPGRADE"), 1);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "Connection", "keep-alive"), 1);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "Connection", "keep"), 0);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "Connection", "alive"), 0);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "Connection", "upgrad"), 0);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "Connection", "upgrades"), 0);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "Connection", "close"), 0);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "Connection", "keep-alive, Upgrade"), 0);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "Upgrade", "upgrade"), 0); /* absent header */
    CHECK_EQ_INT(wsproto_head_has_token(&h, "X-Odd", "upgrade"), 1);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "X-Odd", "keep-alive"), 1);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "X-Tight", "a"), 1);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "X-Tight", "b"), 1);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "X-Tight", "c"), 1);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "X-Tight", "d"), 0);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "X-Tight", "a,b"), 0);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "X-Tab", "a"), 1);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "X-Tab", "b"), 1);
    CHECK_EQ_INT(wsproto_head_has_token(&h, "X-Tab", "c"), 1);
    free(in);
}

struct arg_case {
    const char *name;
    size_t cap;
    int rc;
    const char *out; /* expected when rc >= 0 */
};

static const char args_head[] = "GET /p?a=1&ab=2&b=3&x=b&sid=abc%2Fdef&e=&pct=%41%62%7e%7E%25"
                                "&bad=%4&bad2=%zz&bad3=%&ba=7&s=A%20B HTTP/1.1\r\n\r\n";

/* clang-format off */
static const struct arg_case arg_cases[] = {
    {"a", 16, 1, "1"},
    {"ab", 16, 1, "2"},
    {"b", 16, 1, "3"},     /* not "ab"'s value, not "x"'s value "b" */
    {"x", 16, 1, "b"},
    {"ba", 16, 1, "7"},
    {"sid", 16, 7, "abc/def"},
    {"sid", 8, 7, "abc/def"}, /* exactly fits with its NUL */
    {"sid", 7, -2, NULL},
    {"sid", 1, -2, NULL},
    {"e", 1, 0, ""},
    {"e", 0, -2, NULL},
    {"pct", 16, 5, "Ab~~%"},
    {"pct", 5, -2, NULL},
    {"s", 16, 3, "A B"},
    {"bad", 16, -2, NULL},
    {"bad2", 16, -2, NULL},
    {"bad3", 16, -2, NULL},
    {"c", 16, -1, NULL},
    {"sidx", 16, -1, NULL},
    {"si", 16, -1, NULL},
    {"p", 16, -1, NULL},
    {"1", 16, -1, NULL},
    {"A", 16, -1, NULL},
    {"HTTP/1.1", 16, -1, NULL},
};
/* clang-format on */

static void test_head_args(void)
{
    struct wsproto_head h;
    char *in;
    CHECK_EQ_INT(parse(args_head, sizeof args_head - 1, &h, &in), WSPROTO_HEAD_DONE);
    for (size_t i = 0; i < sizeof arg_cases / sizeof arg_cases[0]; i++) {
        const struct arg_case *c = &arg_cases[i];
        char *out = malloc(c->cap ? c->cap : 1); /* exact size: writes past cap are caught */
        int rc = wsproto_head_arg(&h, c->name, out, c->cap);
        CHECK_EQ_INT(rc, c->rc);
        if (rc != c->rc)
            fprintf(stderr, "  arg case %zu: \"%s\" cap %zu\n", i, c->name, c->cap);
        if (rc >= 0 && c->out) {
            CHECK((size_t)rc < c->cap);
            CHECK_EQ_STR(out, c->out);
        }
        free(out);
    }
    free(in);

    /* a name's first occurrence, compared exactly, whatever comes before it */
    static const struct {
        const char *head, *name, *want;
    } firsts[] = {
        {"GET /?ab=2&a=1 HTTP/1.1\r\n\r\n", "a", "1"},
        {"GET /?ba=2&a=1 HTTP/1.1\r\n\r\n", "a", "1"},
        {"GET /?a=1&ab=2&b=3 HTTP/1.1\r\n\r\n", "b", "3"},
        {"GET /?b=3 HTTP/1.1\r\n\r\n", "b", "3"},
        {"GET /?xb=1&b=3 HTTP/1.1\r\n\r\n", "b", "3"},
        {"GET /?x=b=1&b=3 HTTP/1.1\r\n\r\n", "b", "3"},
    };
    for (size_t i = 0; i < sizeof firsts / sizeof firsts[0]; i++) {
        char out[16];
        CHECK_EQ_INT(parse(firsts[i].head, strlen(firsts[i].head), &h, &in), WSPROTO_HEAD_DONE);
        int rc = wsproto_head_arg(&h, firsts[i].name, out, sizeof out);
        CHECK_EQ_INT(rc, (int)strlen(firsts[i].want));
        if (rc >= 0)
            CHECK_EQ_STR(out, firsts[i].want);
        else
            fprintf(stderr, "  first case %zu\n", i);
        free(in);
    }
}

/* Exactly WSPROTO_HEADERS_MAX headers fit; one more is TOO_LARGE. So are more than
 * WSPROTO_HEAD_MAX bytes, whole or without their blank line yet. */
static void test_head_bounds(void)
{
    struct wsproto_head h;
    char *in;
    char *buf = malloc(4 * WSPROTO_HEAD_MAX);
    size_t n;

    for (int extra = 0; extra <= 1; extra++) {
        n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
        for (int i = 0; i < WSPROTO_HEADERS_MAX + extra; i++)
            n += (size_t)sprintf(buf + n, "X-H%d: %d\r\n", i, i);
        n += (size_t)sprintf(buf + n, "\r\n");
        int rc = parse(buf, n, &h, &in);
        CHECK_EQ_INT(rc, extra ? WSPROTO_HEAD_TOO_LARGE : WSPROTO_HEAD_DONE);
        if (rc == WSPROTO_HEAD_DONE) {
            CHECK_EQ_INT(h.nheaders, WSPROTO_HEADERS_MAX);
            check_header(&h, "x-h63", "63");
        }
        free(in);
    }

    /* a head of exactly WSPROTO_HEAD_MAX bytes, then one byte more */
    static const char line[] = "GET / HTTP/1.1\r\nX-Long: ";
    for (size_t total = WSPROTO_HEAD_MAX - 1; total <= WSPROTO_HEAD_MAX + 1; total++) {
        n = sizeof line - 1;
        memcpy(buf, line, n);
        memset(buf + n, 'v', total - n - 4);
        memcpy(buf + total - 4, "\r\n\r\n", 4);
        int rc = parse(buf, total, &h, &in);
        CHECK_EQ_INT(rc, total <= WSPROTO_HEAD_MAX ? WSPROTO_HEAD_DONE : WSPROTO_HEAD_TOO_LARGE);
        if (rc == WSPROTO_HEAD_DONE)
            CHECK_EQ_INT(h.len, total);
        free(in);
    }

    /* no blank line: MORE while short, TOO_LARGE once past the bound */
    n = sizeof line - 1;
    memcpy(buf, line, n);
    memset(buf + n, 'v', 4 * WSPROTO_HEAD_MAX - n);
    CHECK_EQ_INT(parse(buf, WSPROTO_HEAD_MAX / 2, &h, &in), WSPROTO_HEAD_MORE);
    free(in);
    CHECK_EQ_INT(parse(buf, WSPROTO_HEAD_MAX + 1, &h, &in), WSPROTO_HEAD_TOO_LARGE);
    free(in);
    CHECK_EQ_INT(parse(buf, 4 * WSPROTO_HEAD_MAX, &h, &in), WSPROTO_HEAD_TOO_LARGE);
    free(in);
    /* many short header lines without the blank line */
    n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
    while (n < WSPROTO_HEAD_MAX + 100)
        n += (size_t)sprintf(buf + n, "A: b\r\n");
    CHECK_EQ_INT(parse(buf, n, &h, &in), WSPROTO_HEAD_TOO_LARGE);
    free(in);
    free(buf);
}

static void test_is_upgrade(void)
{
    static const struct {
        const char *head;
        int want;
    } cases[] = {
        {"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 1},
        {"GET /ws HTTP/1.1\r\nUpgrade: WebSocket\r\n\r\n", 1},
        {"GET /ws HTTP/1.1\r\nupgrade: WEBSOCKET\r\n\r\n", 1},
        {"GET /ws HTTP/1.1\r\nUPGRADE:   websocket  \r\n\r\n", 1},
        {"POST /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 0},
        {"PUT /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", 0},
        {"GETX /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", 0},
        {"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\n\r\n", 0},
        {"GET /ws HTTP/1.1\r\n\r\n", 0},
        {"GET /ws HTTP/1.1\r\nUpgrade: h2c\r\n\r\n", 0},
        {"GET /ws HTTP/1.1\r\nUpgrade: websockets\r\n\r\n", 0},
        {"GET /ws HTTP/1.1\r\nUpgrade: websock\r\n\r\n", 0},
        {"GET /ws HTTP/1.1\r\nUpgrade:\r\n\r\n", 0},
        {"GET /ws HTTP/1.1\r\nX-Upgrade: websocket\r\n\r\n", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct wsproto_head h;
        char *in;
        CHECK_EQ_INT(parse(cases[i].head, strlen(cases[i].head), &h, &in), WSPROTO_HEAD_DONE);
        int got = wsproto_is_upgrade(&h);
        CHECK_EQ_INT(got, cases[i].want);
        if (got != cases[i].want)
            fprintf(stderr, "  upgrade case %zu\n", i);
        free(in);
    }
}

/* ---- wsproto_frame_decode -------------------------------------------------------------- */

#define M 0x37, 0xfa, 0x21, 0x3d /* the mask of RFC 6455 §5.7 */
#define BIG UINT64_MAX

struct frame_case {
    unsigned char in[16];
    size_t len;
    uint64_t max;
    int rc;
    unsigned opcode;
    int fin;
    uint64_t payload_len;
};

/* clang-format off */
static const struct frame_case frame_cases[] = {
    /* 7-bit lengths */
    {{0x81, 0x85, M}, 6, 1 << 20, 6, WSPROTO_TEXT, 1, 5},
    {{0x81, 0x80, M}, 6, 1 << 20, 6, WSPROTO_TEXT, 1, 0},
    {{0x81, 0xfd, M}, 6, 1 << 20, 6, WSPROTO_TEXT, 1, 125},
    {{0x01, 0x83, M}, 6, 1 << 20, 6, WSPROTO_TEXT, 0, 3},
    {{0x82, 0x81, M}, 6, 1 << 20, 6, WSPROTO_BINARY, 1, 1},
    {{0x80, 0x81, M}, 6, 1 << 20, 6, WSPROTO_CONT, 1, 1},
    {{0x00, 0x81, M}, 6, 1 << 20, 6, WSPROTO_CONT, 0, 1},
    {{0x88, 0x82, M}, 6, 1 << 20, 6, WSPROTO_CLOSE, 1, 2},
    {{0x88, 0x80, M}, 6, 1 << 20, 6, WSPROTO_CLOSE, 1, 0},
    {{0x89, 0xfd, M}, 6, 1 << 20, 6, WSPROTO_PING, 1, 125},
    {{0x8a, 0x80, M}, 6, 1 << 20, 6, WSPROTO_PONG, 1, 0},
    /* 16-bit lengths */
    {{0x81, 0xfe, 0x00, 0x7e, M}, 8, 1 << 20, 8, WSPROTO_TEXT, 1, 126},
    {{0x82, 0xfe, 0x01, 0x00, M}, 8, 1 << 20, 8, WSPROTO_BINARY, 1, 256},
    {{0x02, 0xfe, 0xff, 0xff, M}, 8, 1 << 20, 8, WSPROTO_BINARY, 0, 65535},
    /* 64-bit lengths */
    {{0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, M}, 14, 1 << 20, 14, WSPROTO_BINARY, 1, 65536},
    {{0x81, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, M}, 14, BIG, 14, WSPROTO_TEXT, 1, 1ull << 32},
    {{0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, M}, 14, BIG, 14,
     WSPROTO_TEXT, 1, 0x7fffffffffffffffull},
    {{0x81, 0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, M}, 14, BIG, 14,
     WSPROTO_TEXT, 1, 0x0102030405060708ull},
    /* the header is decoded whatever follows it */
    {{0x81, 0x85, M, 0x7f, 0x9f, 0x4d, 0x51, 0x58}, 11, 1 << 20, 6, WSPROTO_TEXT, 1, 5},
    {{0x81, 0x85, M, 0x81, 0x85}, 8, 1 << 20, 6, WSPROTO_TEXT, 1, 5},
    /* max_payload: equal passes, one over is TOO_BIG */
    {{0x81, 0x85, M}, 6, 5, 6, WSPROTO_TEXT, 1, 5},
    {{0x81, 0x85, M}, 6, 4, WSPROTO_FRAME_TOO_BIG, 0, 0, 0},
    {{0x81, 0x80, M}, 6, 0, 6, WSPROTO_TEXT, 1, 0},
    {{0x81, 0x81, M}, 6, 0, WSPROTO_FRAME_TOO_BIG, 0, 0, 0},
    {{0x82, 0xfe, 0x01, 0x00, M}, 8, 256, 8, WSPROTO_BINARY, 1, 256},
    {{0x82, 0xfe, 0x01, 0x00, M}, 8, 255, WSPROTO_FRAME_TOO_BIG, 0, 0, 0},
    {{0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, M}, 14, 65536, 14, WSPROTO_BINARY, 1, 65536},
    {{0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, M}, 14, 65535, WSPROTO_FRAME_TOO_BIG, 0, 0, 0},
    {{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, M}, 14, 1 << 20,
     WSPROTO_FRAME_TOO_BIG, 0, 0, 0},
    /* unmasked (§5.1: the server closes on an unmasked client frame) */
    {{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'}, 7, 1 << 20, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    {{0x81, 0x00, 0, 0, 0, 0}, 6, 1 << 20, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    {{0x82, 0x7e, 0x00, 0x80, 0, 0, 0, 0}, 8, 1 << 20, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    /* reserved bits, no extension negotiated (§5.2) */
    {{0xc1, 0x85, M}, 6, 1 << 20, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    {{0xa1, 0x85, M}, 6, 1 << 20, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    {{0x91, 0x85, M}, 6, 1 << 20, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    {{0x41, 0x85, M}, 6, 1 << 20, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    {{0xf1, 0x85, M}, 6, 1 << 20, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    /* control frames: fragmented, or over 125 bytes (§5.5) */
    {{0x08, 0x80, M}, 6, 1 << 20, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    {{0x09, 0x80, M}, 6, 1 << 20, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    {{0x0a, 0x80, M}, 6, 1 << 20, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    {{0x89, 0xfe, 0x00, 0x7e, M}, 8, 1 << 20, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    {{0x88, 0xfe, 0x01, 0x00, M}, 8, 1 << 20, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    {{0x8a, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, M}, 14, 1 << 20, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    /* non-minimal lengths (§5.2: "the minimal number of bytes MUST be used") */
    {{0x81, 0xfe, 0x00, 0x7d, M}, 8, 1 << 20, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    {{0x81, 0xfe, 0x00, 0x00, M}, 8, 1 << 20, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    {{0x81, 0xff, 0, 0, 0, 0, 0, 0, 0xff, 0xff, M}, 14, 1 << 20, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    {{0x81, 0xff, 0, 0, 0, 0, 0, 0, 0x00, 0x7e, M}, 14, 1 << 20, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    {{0x81, 0xff, 0, 0, 0, 0, 0, 0, 0x00, 0x05, M}, 14, 1 << 20, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    {{0x81, 0xff, 0, 0, 0, 0, 0, 0, 0x00, 0x00, M}, 14, 1 << 20, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    /* the 64-bit length's top bit must be 0 (§5.2) */
    {{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, M}, 14, BIG, WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
    {{0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, M}, 14, BIG,
     WSPROTO_FRAME_PROTOCOL, 0, 0, 0},
};
/* clang-format on */

static const unsigned char rfc_mask[4] = {M};

static void test_frame_table(void)
{
    for (size_t i = 0; i < sizeof frame_cases / sizeof frame_cases[0]; i++) {
        const struct frame_case *c = &frame_cases[i];
        unsigned char *in = (unsigned char *)test_dup_exact((const char *)c->in, c->len);
        struct wsproto_frame f;
        memset(&f, 0x5A, sizeof f);
        int rc = wsproto_frame_decode(in, c->len, c->max, &f);
        CHECK_EQ_INT(rc, c->rc);
        if (rc != c->rc)
            fprintf(stderr, "  frame case %zu\n", i);
        if (rc > 0 && c->rc > 0) {
            CHECK_EQ_INT(f.header_len, (size_t)rc);
            CHECK_EQ_INT(f.opcode, c->opcode);
            CHECK_EQ_INT(f.fin, c->fin);
            CHECK(f.payload_len == c->payload_len);
            CHECK(memcmp(f.mask, rfc_mask, 4) == 0);
        }
        free(in);

        /* every proper prefix of a good header asks for more */
        if (c->rc > 0) {
            for (size_t n = 0; n < (size_t)c->rc; n++) {
                in = (unsigned char *)test_dup_exact((const char *)c->in, n);
                int prc = wsproto_frame_decode(in, n, c->max, &f);
                CHECK_EQ_INT(prc, WSPROTO_FRAME_MORE);
                if (prc != WSPROTO_FRAME_MORE)
                    fprintf(stderr, "  frame case %zu, prefix of %zu bytes\n", i, n);
                free(in);
            }
        }
    }
}

/* Unknown opcodes 3–7 and 0xB–0xF (§5.2), with and without FIN, are refused; the six known
 * ones pass. */
static void test_frame_opcodes(void)
{
    for (unsigned op = 0; op < 16; op++) {
        int known = op <= 2 || (op >= 8 && op <= 0xA);
        for (int fin = 0; fin <= 1; fin++) {
            unsigned char hdr[6] = {(unsigned char)((fin ? 0x80 : 0) | op), 0x80 | 3, M};
            unsigned char *in = (unsigned char *)test_dup_exact((const char *)hdr, 6);
            struct wsproto_frame f;
            int rc = wsproto_frame_decode(in, 6, 1 << 20, &f);
            int want = known && (fin || op < 8) ? 6 : WSPROTO_FRAME_PROTOCOL;
            CHECK_EQ_INT(rc, want);
            if (rc != want)
                fprintf(stderr, "  opcode %u fin %d\n", op, fin);
            if (rc > 0)
                CHECK_EQ_INT(f.opcode, op);
            free(in);
        }
    }
}

/* A stream of frames with their payloads, as the transport walks it. */
static void test_frame_stream(void)
{
    /* RFC 6455 §5.7: a single-frame masked text message "Hello", then a masked ping "Hi"
     * (same mask), then a 126-byte masked binary frame */
    unsigned char wire[6 + 5 + 6 + 2 + 8 + 126];
    size_t n = 0;
    static const unsigned char hello[] = {0x81, 0x85, M, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    memcpy(wire, hello, sizeof hello);
    n = sizeof hello;
    static const unsigned char ping[] = {0x89, 0x82, M, 'H' ^ 0x37, 'i' ^ 0xfa};
    memcpy(wire + n, ping, sizeof ping);
    n += sizeof ping;
    static const unsigned char bin[] = {0x82, 0xfe, 0x00, 0x7e, 1, 2, 3, 4};
    memcpy(wire + n, bin, sizeof bin);
    n += sizeof bin;
    for (size_t i = 0; i < 126; i++)
        wire[n + i] = (unsigned char)(i ^ (i % 4 + 1));
    n += 126;
    CHECK_EQ_INT(n, sizeof wire);

    unsigned char *in = (unsigned char *)test_dup_exact((const char *)wire, n);
    size_t pos = 0;
    struct wsproto_frame f;
    int rc = wsproto_frame_decode(in, n, 1 << 20, &f);
    CHECK_EQ_INT(rc, 6);
    wsproto_unmask(in + 6, 5, f.mask, 0);
    CHECK_EQ_MEM(in + 6, 5, "Hello", 5);
    pos = 11;
    rc = wsproto_frame_decode(in + pos, n - pos, 1 << 20, &f);
    CHECK_EQ_INT(rc, 6);
    CHECK_EQ_INT(f.opcode, WSPROTO_PING);
    CHECK(f.payload_len == 2);
    wsproto_unmask(in + pos + 6, 2, f.mask, 0);
    CHECK_EQ_MEM(in + pos + 6, 2, "Hi", 2);
    pos += 8;
    rc = wsproto_frame_decode(in + pos, n - pos, 1 << 20, &f);
    CHECK_EQ_INT(rc, 8);
    CHECK_EQ_INT(f.opcode, WSPROTO_BINARY);
    CHECK(f.payload_len == 126);
    wsproto_unmask(in + pos + 8, 126, f.mask, 0);
    int ok = 1;
    for (size_t i = 0; i < 126; i++)
        ok &= in[pos + 8 + i] == (unsigned char)i;
    CHECK(ok);
    free(in);
}

/* ---- wsproto_unmask -------------------------------------------------------------------- */

static void ref_unmask(unsigned char *p, size_t n, const unsigned char mask[4], uint64_t offset)
{
    for (size_t i = 0; i < n; i++)
        p[i] ^= mask[(offset + i) % 4];
}

static void test_unmask(void)
{
    enum { MAXN = 300, PAD = 16 };
    unsigned char *a = malloc(MAXN + 2 * PAD), *b = malloc(MAXN + 2 * PAD);
    unsigned char *c = malloc(MAXN + 2 * PAD);
    CHECK(a && b && c);
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return;
    }
    test_seed(0x6455);
    int bad = 0, bad_split = 0;
    for (size_t n = 0; n <= MAXN; n++) {
        for (uint64_t off = 0; off < 8; off++) {
            for (size_t align = 0; align < 8; align++) {
                unsigned char mask[4];
                uint64_t r = test_rand();
                memcpy(mask, &r, 4);
                for (size_t i = 0; i < MAXN + 2 * PAD; i++)
                    a[i] = b[i] = c[i] = (unsigned char)test_rand();
                /* large offsets: only offset % 4 matters */
                uint64_t o = (align & 1) ? off + ((uint64_t)test_rand() << 3) : off;
                ref_unmask(a + PAD + align, n, mask, o);
                wsproto_unmask(b + PAD + align, n, mask, o);
                size_t k = n ? (size_t)(test_rand() % (n + 1)) : 0;
                wsproto_unmask(c + PAD + align, k, mask, o);
                wsproto_unmask(c + PAD + align + k, n - k, mask, o + k);
                if (memcmp(a, b, MAXN + 2 * PAD) != 0) {
                    if (!bad++)
                        fprintf(stderr, "  unmask n %zu off %llu align %zu\n", n,
                                (unsigned long long)o, align);
                }
                if (memcmp(a, c, MAXN + 2 * PAD) != 0) {
                    if (!bad_split++)
                        fprintf(stderr, "  unmask split %zu+%zu off %llu align %zu\n", k, n - k,
                                (unsigned long long)o, align);
                }
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(bad_split, 0);

    /* exact-size heap blocks at every length: no read or write past n */
    for (size_t n = 0; n <= 64; n++) {
        unsigned char *p = malloc(n ? n : 1);
        memset(p, 0x11, n);
        wsproto_unmask(p, n, rfc_mask, n);
        int ok = 1;
        for (size_t i = 0; i < n; i++)
            ok &= p[i] == (0x11 ^ rfc_mask[(n + i) % 4]);
        CHECK(ok);
        free(p);
    }

    /* one large payload in uneven pieces */
    size_t big = (1 << 20) + 3;
    unsigned char *x = malloc(big), *y = malloc(big);
    CHECK(x && y);
    if (x && y) {
        for (size_t i = 0; i < big; i++)
            x[i] = y[i] = (unsigned char)(i * 131);
        ref_unmask(x, big, rfc_mask, 0);
        for (size_t at = 0; at < big;) {
            size_t take = 1 + (size_t)(test_rand() % 70000);
            if (take > big - at)
                take = big - at;
            wsproto_unmask(y + at, take, rfc_mask, at);
            at += take;
        }
        CHECK(memcmp(x, y, big) == 0);
    }
    free(x);
    free(y);
    free(a);
    free(b);
    free(c);
}

/* ---- wsproto_header_encode ------------------------------------------------------------- */

struct hdr_case {
    unsigned opcode;
    size_t len;
    size_t n;
    unsigned char bytes[10];
};

/* clang-format off */
static const struct hdr_case hdr_cases[] = {
    {WSPROTO_TEXT, 0, 2, {0x81, 0}},
    {WSPROTO_TEXT, 1, 2, {0x81, 1}},
    {WSPROTO_TEXT, 125, 2, {0x81, 125}},
    {WSPROTO_TEXT, 126, 4, {0x81, 126, 0x00, 0x7e}},
    {WSPROTO_BINARY, 127, 4, {0x82, 126, 0x00, 0x7f}},
    {WSPROTO_BINARY, 256, 4, {0x82, 126, 0x01, 0x00}},
    {WSPROTO_BINARY, 65535, 4, {0x82, 126, 0xff, 0xff}},
    {WSPROTO_BINARY, 65536, 10, {0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
    {WSPROTO_TEXT, 0x01020304, 10, {0x81, 127, 0, 0, 0, 0, 1, 2, 3, 4}},
    {WSPROTO_PONG, 0, 2, {0x8a, 0}},
    {WSPROTO_PONG, 125, 2, {0x8a, 125}},
    {WSPROTO_PING, 3, 2, {0x89, 3}},
    {WSPROTO_CLOSE, 2, 2, {0x88, 2}},
    {WSPROTO_CONT, 5, 2, {0x80, 5}},
#if SIZE_MAX > 0xffffffffu
    {WSPROTO_BINARY, (size_t)0x0102030405060708ull, 10, {0x82, 127, 1, 2, 3, 4, 5, 6, 7, 8}},
#endif
};
/* clang-format on */

static void test_header_encode(void)
{
    for (size_t i = 0; i < sizeof hdr_cases / sizeof hdr_cases[0]; i++) {
        const struct hdr_case *c = &hdr_cases[i];
        unsigned char *out = malloc(10); /* exact size */
        memset(out, 0xAA, 10);
        size_t n = wsproto_header_encode(out, c->opcode, c->len);
        CHECK_EQ_INT(n, c->n);
        if (n == c->n)
            CHECK(memcmp(out, c->bytes, n) == 0);
        if (n != c->n || memcmp(out, c->bytes, n) != 0)
            fprintf(stderr, "  header case %zu\n", i);
        free(out);
    }
}

/* ---- wsproto_close_encode / wsproto_close_code ----------------------------------------- */

/* Encode code+reason into an exact-size 127-byte block and check it is a close frame. */
static size_t close_frame(unsigned code, const char *reason, unsigned char **frame)
{
    unsigned char *out = malloc(127);
    memset(out, 0xAA, 127);
    size_t n = wsproto_close_encode(out, code, reason);
    CHECK(n >= 2 && n <= 127);
    CHECK_EQ_INT(out[0], 0x88);
    CHECK_EQ_INT(out[1], n - 2); /* unmasked, 7-bit length */
    *frame = out;
    return n;
}

static void test_close_encode(void)
{
    unsigned char *out;
    size_t n = close_frame(1000, "bye", &out);
    CHECK_EQ_INT(n, 7);
    CHECK(memcmp(out,
                 "\x88\x05\x03\xe8"
                 "bye",
                 7) == 0);
    free(out);

    n = close_frame(1000, "x", &out);
    CHECK_EQ_INT(n, 5);
    CHECK(memcmp(out, "\x88\x03\x03\xe8x", 5) == 0);
    free(out);

    n = close_frame(1001, "", &out);
    CHECK_EQ_INT(n, 4);
    CHECK(memcmp(out, "\x88\x02\x03\xe9", 4) == 0);
    free(out);

    /* no status: an empty payload, and the reason cannot go without one (§5.5.1) */
    n = close_frame(0, "", &out);
    CHECK_EQ_INT(n, 2);
    CHECK(memcmp(out, "\x88\x00", 2) == 0);
    free(out);
    n = close_frame(0, "ignored", &out);
    CHECK_EQ_INT(n, 2);
    CHECK(memcmp(out, "\x88\x00", 2) == 0);
    free(out);

    /* reasons up to 123 bytes fit whole; longer ones are cut to 123 */
    char reason[301];
    alphabet(reason, 300);
    for (size_t len = 120; len <= 300; len++) {
        reason[len] = '\0';
        n = close_frame(4000 + (unsigned)len, reason, &out);
        size_t want = len < 123 ? len : 123;
        CHECK_EQ_INT(n, 4 + want);
        CHECK_EQ_INT((out[2] << 8) | out[3], 4000 + len);
        CHECK(memcmp(out + 4, reason, want) == 0);
        free(out);
        reason[len] = 'x';
    }

    /* a UTF-8 reason is cut no longer than 123 bytes and stays a prefix of the reason */
    char utf8[301];
    for (size_t i = 0; i < 300; i += 2)
        memcpy(utf8 + i, "\xc3\xa9", 2); /* é */
    utf8[300] = '\0';
    n = close_frame(1011, utf8, &out);
    CHECK(n >= 4 && n <= 127);
    CHECK(memcmp(out + 4, utf8, n - 4) == 0);
    free(out);

    /* round trips */
    static const unsigned codes[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009,
                                     1010, 1011, 3000, 3999, 4000, 4999};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        n = close_frame(codes[i], "why", &out);
        CHECK_EQ_INT(n, 7);
        unsigned char *payload = (unsigned char *)test_dup_exact((const char *)out + 2, n - 2);
        CHECK_EQ_INT(wsproto_close_code(payload, n - 2), codes[i]);
        free(payload);
        free(out);
    }
    n = close_frame(0, "", &out);
    CHECK_EQ_INT(wsproto_close_code(out + 2, n - 2), 1005);
    free(out);
}

struct code_case {
    unsigned char in[4];
    size_t len;
    unsigned code;
};

/* clang-format off */
static const struct code_case code_cases[] = {
    {{0}, 0, 1005},               /* no status */
    {{0x03}, 1, 0},               /* one byte: invalid */
    {{0x03, 0xe8}, 2, 1000},
    {{0x03, 0xe8, 'o', 'k'}, 4, 1000},
    {{0x03, 0xe9}, 2, 1001},
    {{0x03, 0xea}, 2, 1002},
    {{0x03, 0xeb}, 2, 1003},
    {{0x03, 0xef}, 2, 1007},
    {{0x03, 0xf0}, 2, 1008},
    {{0x03, 0xf1}, 2, 1009},
    {{0x03, 0xf2}, 2, 1010},
    {{0x03, 0xf3}, 2, 1011},
    {{0x0b, 0xb8}, 2, 3000},
    {{0x0f, 0x9f}, 2, 3999},
    {{0x0f, 0xa0}, 2, 4000},
    {{0x13, 0x87}, 2, 4999},
    /* §7.4.1/§7.4.2: unused, reserved, or never sent on the wire */
    {{0x00, 0x00}, 2, 0},
    {{0x03, 0xe7}, 2, 0},         /* 999 */
    {{0x03, 0xec}, 2, 0},         /* 1004 */
    {{0x03, 0xed}, 2, 0},         /* 1005 */
    {{0x03, 0xee}, 2, 0},         /* 1006 */
    {{0x03, 0xf7}, 2, 0},         /* 1015 */
    {{0x03, 0xf8}, 2, 0},         /* 1016 */
    {{0x0b, 0xb7}, 2, 0},         /* 2999 */
    {{0x13, 0x88}, 2, 0},         /* 5000: past the ranges §7.4.2 defines */
    {{0xff, 0xff}, 2, 0},
};
/* clang-format on */

static void test_close_code(void)
{
    for (size_t i = 0; i < sizeof code_cases / sizeof code_cases[0]; i++) {
        const struct code_case *c = &code_cases[i];
        unsigned char *in = (unsigned char *)test_dup_exact((const char *)c->in, c->len);
        unsigned got = wsproto_close_code(in, c->len);
        CHECK_EQ_INT(got, c->code);
        if (got != c->code)
            fprintf(stderr, "  close code case %zu\n", i);
        free(in);
    }
}

int main(void)
{
    test_sha1();
    test_accept_key();
    test_head_socketio();
    test_head_prefixes_and_rest();
    test_head_table();
    test_head_fields();
    test_head_tokens();
    test_head_args();
    test_head_bounds();
    test_is_upgrade();
    test_frame_table();
    test_frame_opcodes();
    test_frame_stream();
    test_unmask();
    test_header_encode();
    test_close_encode();
    test_close_code();
    TEST_MAIN_END();
}
