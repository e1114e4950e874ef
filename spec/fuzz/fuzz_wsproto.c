/* fuzz_wsproto.c: libFuzzer target for the RFC 6455 codec (core/wsproto.c): the request head
 * parser and its lookups, then the input as a stream of client frames (header decode, unmask),
 * the accept key and the close frame codec.
 * Build: clang -fsanitize=fuzzer,address -Icore core/wsproto.c spec/fuzz/fuzz_wsproto.c
 * The input is copied to an exact-size heap block so any read past size is reported. Besides
 * memory errors it checks invariants: borrowed pointers stay in the input, a decoded header
 * fits the bytes left and obeys §5.2–§5.5 and max_payload, unmasking agrees with a byte-by-byte
 * reference whether done at once or in two pieces, and close frames round-trip. */
#include "wsproto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* p[0..n) lies inside in[0..size). */
static int inside(const char *p, size_t n, const char *in, size_t size)
{
    return p && p >= in && p <= in + size && n <= (size_t)(in + size - p);
}

static void check_value(const char *v, size_t n, const char *in, size_t size)
{
    if (v && !inside(v, n, in, size))
        abort();
    if (v && n && (v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        abort(); /* values come without surrounding blanks */
}

static void check_arg(const struct wsproto_head *h, const char *name)
{
    static const size_t caps[] = {0, 1, 8, 256};
    char out[256];
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        char *buf = malloc(caps[i] ? caps[i] : 1); /* exact size: writes past cap are caught */
        if (!buf)
            return;
        int rc = wsproto_head_arg(h, name, buf, caps[i]);
        if (rc < -2 || (rc >= 0 && ((size_t)rc >= caps[i] || buf[rc] != '\0')))
            abort();
        if (rc >= 0 && i > 0) {
            /* a smaller buffer never gets a different answer than a larger one */
            int big = wsproto_head_arg(h, name, out, sizeof out);
            if (big != rc || memcmp(out, buf, (size_t)rc) != 0)
                abort();
        }
        free(buf);
    }
    if (!h->query && wsproto_head_arg(h, name, out, sizeof out) != -1)
        abort();
}

static void check_head(const char *in, size_t size)
{
    struct wsproto_head h;
    int rc = wsproto_head_parse(in, size, &h);
    if (rc == WSPROTO_HEAD_MORE) {
        if (size >= WSPROTO_HEAD_MAX + 1)
            abort(); /* over the bound without a blank line */
        return;
    }
    if (rc != WSPROTO_HEAD_DONE) {
        if (rc != WSPROTO_HEAD_BAD && rc != WSPROTO_HEAD_TOO_LARGE)
            abort();
        return;
    }
    if (h.len < 4 || h.len > size || h.len > WSPROTO_HEAD_MAX ||
        memcmp(in + h.len - 4, "\r\n\r\n", 4) != 0 || h.nheaders > WSPROTO_HEADERS_MAX)
        abort();
    if (!inside(h.method, h.method_len, in, h.len) || !h.method_len ||
        !inside(h.target, h.target_len, in, h.len) || !h.target_len ||
        !inside(h.path, h.path_len, h.target, h.target_len) || h.minor < 0)
        abort();
    if (h.query) {
        if (!inside(h.query, h.query_len, in, h.len) || h.query <= h.target || h.query[-1] != '?' ||
            h.path_len + 1 + h.query_len != h.target_len)
            abort();
    } else if (h.path_len != h.target_len || h.query_len != 0) {
        abort();
    }
    for (size_t i = 0; i < h.nheaders; i++) {
        const struct wsproto_header *hd = &h.headers[i];
        if (!inside(hd->name, hd->name_len, in, h.len) || !hd->name_len)
            abort();
        check_value(hd->value, hd->value_len, in, h.len);
        if (!hd->value)
            abort();
    }

    static const char *names[] = {"Upgrade", "connection", "Sec-WebSocket-Key", "HOST", "x"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n = 12345;
        const char *v = wsproto_head_header(&h, names[i], &n);
        check_value(v, n, in, h.len);
        int t = wsproto_head_has_token(&h, names[i], "upgrade");
        if ((t != 0 && t != 1) || (t && !v))
            abort();
        if (v && n == 7 && wsproto_head_has_token(&h, names[i], "UPGRADE") != t)
            abort();
    }
    int up = wsproto_is_upgrade(&h);
    if (up != 0 && up != 1)
        abort();
    if (up && (h.method_len != 3 || memcmp(h.method, "GET", 3) != 0))
        abort();

    static const char *args[] = {"EIO", "sid", "transport", "a", "b", "ab"};
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++)
        check_arg(&h, args[i]);

    size_t klen;
    const char *key = wsproto_head_header(&h, "sec-websocket-key", &klen);
    if (key) {
        char accept[29];
        int arc = wsproto_accept_key(key, klen, accept);
        if (arc != 0 && arc != -1)
            abort();
        if (arc == 0 && (klen != 24 || accept[28] != '\0' || strlen(accept) != 28))
            abort();
    }
}

/* Walk in[pos..size) as client frames, unmasking every payload byte that is there. */
static void check_frames(unsigned char *in, size_t size, uint64_t max_payload)
{
    size_t pos = 0;
    unsigned frames = 0;
    while (pos < size && frames++ < 4096) {
        struct wsproto_frame f;
        size_t left = size - pos;
        int rc = wsproto_frame_decode(in + pos, left, max_payload, &f);
        if (rc == WSPROTO_FRAME_MORE) {
            if (left >= 14)
                abort(); /* the longest header is there */
            return;
        }
        if (rc < 0) {
            if (rc != WSPROTO_FRAME_PROTOCOL && rc != WSPROTO_FRAME_TOO_BIG)
                abort();
            return;
        }
        if ((size_t)rc != f.header_len || (size_t)rc > left || (rc != 6 && rc != 8 && rc != 14) ||
            f.payload_len > max_payload)
            abort();
        if (!(f.opcode <= WSPROTO_BINARY ||
              (f.opcode >= WSPROTO_CLOSE && f.opcode <= WSPROTO_PONG)))
            abort();
        if ((f.opcode & 8) && (!f.fin || f.payload_len > 125))
            abort();
        if ((rc == 6 && f.payload_len > 125) ||
            (rc == 8 && (f.payload_len < 126 || f.payload_len > 65535)) ||
            (rc == 14 && (f.payload_len < 65536 || f.payload_len >> 63)))
            abort(); /* minimal length encodings only */
        if (memcmp(f.mask, in + pos + rc - 4, 4) != 0)
            abort();
        pos += (size_t)rc;
        left -= (size_t)rc;

        size_t n = f.payload_len < left ? (size_t)f.payload_len : left;
        unsigned char *want = malloc(n ? n : 1);
        if (!want)
            return;
        for (size_t i = 0; i < n; i++)
            want[i] = in[pos + i] ^ f.mask[i % 4];
        size_t split = n ? (in[pos] + (size_t)frames) % (n + 1) : 0;
        wsproto_unmask(in + pos, split, f.mask, 0);
        wsproto_unmask(in + pos + split, n - split, f.mask, split);
        if (memcmp(in + pos, want, n) != 0)
            abort();
        free(want);

        if (f.opcode == WSPROTO_CLOSE && n == f.payload_len) {
            unsigned code = wsproto_close_code(in + pos, n);
            if (n == 0 ? code != 1005 : n == 1 ? code != 0 : (code && code < 1000))
                abort();
            if (code && n >= 2 && code != (unsigned)(in[pos] << 8 | in[pos + 1]))
                abort();
        }
        pos += n;
        if (n < f.payload_len)
            return; /* the rest of this payload has not arrived */
    }
}

/* A close frame from the input's first two bytes as code and the rest as reason. */
static void check_close(const uint8_t *data, size_t size)
{
    unsigned code = size >= 2 ? (unsigned)(data[0] << 8 | data[1]) : 0;
    size_t rlen = size > 2 ? size - 2 : 0;
    if (rlen > 300)
        rlen = 300;
    char reason[301];
    if (rlen)
        memcpy(reason, data + 2, rlen);
    reason[rlen] = '\0';
    unsigned char *out = malloc(127);
    if (!out)
        return;
    size_t n = wsproto_close_encode(out, code, reason);
    if (n < 2 || n > 127 || out[0] != 0x88 || out[1] != n - 2)
        abort();
    if (!code && n != 2)
        abort();
    if (code) {
        if (n < 4 || n - 4 > strlen(reason) || memcmp(out + 4, reason, n - 4) != 0)
            abort();
        if ((unsigned)(out[2] << 8 | out[3]) != (code & 0xffff))
            abort();
        unsigned back = wsproto_close_code(out + 2, n - 2);
        if (back && back != (code & 0xffff))
            abort();
        if (code >= 3000 && code <= 4999 && back != code)
            abort();
    }
    free(out);

    /* a server frame header for the input's length, and for a length 131 times that */
    for (size_t len = size, k = 0; k < 2; k++, len *= 131) {
        unsigned char hdr[10];
        unsigned op = size ? data[0] & 0x0f : WSPROTO_TEXT;
        size_t hn = wsproto_header_encode(hdr, op, len);
        if (hn != (len < 126 ? 2u : len <= 65535 ? 4u : 10u) || hdr[0] != (0x80 | op))
            abort();
        uint64_t got = hn == 2 ? hdr[1] : 0;
        for (size_t i = 2; i < hn; i++)
            got = got << 8 | hdr[i];
        if (got != len || (hn == 4 && hdr[1] != 126) || (hn == 10 && hdr[1] != 127))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = fuzz_copy(data, size);
    if (!in)
        return 0;
    check_head(in, size);

    /* the same bytes as frames, under a small and an unbounded max_payload; and what follows
     * a whole head, as a client pipelines its first frames after the upgrade request */
    check_frames((unsigned char *)in, size, 125);
    if (size)
        memcpy(in, data, size);
    check_frames((unsigned char *)in, size, UINT64_MAX);
    if (size)
        memcpy(in, data, size);
    struct wsproto_head h;
    if (wsproto_head_parse(in, size, &h) == WSPROTO_HEAD_DONE)
        check_frames((unsigned char *)in + h.len, size - h.len, 1 << 20);

    char accept[29];
    int arc = wsproto_accept_key(in, size, accept);
    if (arc != 0 && arc != -1)
        abort();
    unsigned char md[20];
    wsproto_sha1(in, size, md);
    check_close(data, size);
    free(in);
    return 0;
}
