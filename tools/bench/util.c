/* util.c: clocks, allocation-free JSON scanning, SHA-1 and base64 (for the WebSocket
 * handshake: RFC 6455 §4.2.2 `Sec-WebSocket-Accept`), and a small PRNG. See bench.h. */
#include <string.h>
#include <time.h>

#include "bench.h"

uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint32_t xorshift32(uint32_t *state)
{
    uint32_t x = *state ? *state : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

/* ---- JSON scanning: enough for frames whose shape we know; never allocates ---- */

const char *json_find(const char *s, size_t n, const char *key)
{
    /* The first `"key":` in s: jump from quote to quote with memchr (a 1 KB payload string
     * without quotes is skipped in one call; memmem cost the generator a third of its core). */
    size_t kl = strlen(key);
    const char *p = s, *end = s + n;
    while (p < end && (p = memchr(p, '"', (size_t)(end - p))) != NULL) {
        /* the first byte and the closing quote inline: a memcmp call per quote cost the
         * generator 15 % of its core on 1 KB fanout frames */
        if ((size_t)(end - p) >= kl + 3 && p[1] == key[0] && p[kl + 1] == '"' &&
            p[kl + 2] == ':' && (kl == 1 || memcmp(p + 2, key + 1, kl - 1) == 0))
            return p + kl + 3;
        p++;
    }
    return NULL;
}

int json_int(const char *p, const char *end, int64_t *out)
{
    while (p < end && *p == ' ')
        p++;
    int neg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9')
        return -1;
    uint64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9')
        v = v * 10 + (uint64_t)(*p++ - '0');
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

const char *json_str(const char *p, const char *end, const char **str, size_t *len)
{
    if (p >= end || *p != '"')
        return NULL;
    const char *s = ++p;
    while (p < end) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q)
            return NULL;
        /* an escaped quote has an odd number of backslashes before it */
        size_t bs = 0;
        while (q - bs > s && q[-1 - (ptrdiff_t)bs] == '\\')
            bs++;
        if (bs % 2 == 0) {
            *str = s;
            *len = (size_t)(q - s);
            return q + 1;
        }
        p = q + 1;
    }
    return NULL;
}

const char *json_value_end(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
        p++;
    if (p >= end)
        return NULL;
    if (*p == '"') {
        const char *s;
        size_t n;
        return json_str(p, end, &s, &n);
    }
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            char c = *p;
            if (c == '"') {
                const char *s;
                size_t n;
                p = json_str(p, end, &s, &n);
                if (!p)
                    return NULL;
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return p + 1;
            }
            p++;
        }
        return NULL;
    }
    while (p < end && *p != ',' && *p != '}' && *p != ']')
        p++;
    return p;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long json_unescape(const char *s, size_t n, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n) {
            char e = s[++i];
            switch (e) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'u': {
                if (i + 4 >= n)
                    return -1;
                int v = 0;
                for (int k = 1; k <= 4; k++) {
                    int h = hexval(s[i + (size_t)k]);
                    if (h < 0)
                        return -1;
                    v = v * 16 + h;
                }
                i += 4;
                /* UTF-8 for the BMP; surrogate pairs are not expected in bench text */
                if (v < 0x80) {
                    c = (char)v;
                } else if (v < 0x800) {
                    if (o + 2 > cap)
                        return -1;
                    dst[o++] = (char)(0xc0 | (v >> 6));
                    c = (char)(0x80 | (v & 0x3f));
                } else {
                    if (o + 3 > cap)
                        return -1;
                    dst[o++] = (char)(0xe0 | (v >> 12));
                    dst[o++] = (char)(0x80 | ((v >> 6) & 0x3f));
                    c = (char)(0x80 | (v & 0x3f));
                }
                break;
            }
            default:
                c = e;
                break; /* \" \\ \/ */
            }
        }
        if (o >= cap)
            return -1;
        dst[o++] = c;
    }
    return (long)o;
}

/* ---- SHA-1 (FIPS 180-4), for Sec-WebSocket-Accept only ---- */

#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

static void sha1_block(uint32_t h[5], const unsigned char *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = ROL(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = ROL(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = ROL(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void sha1(const void *data, size_t len, unsigned char out[20])
{
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    const unsigned char *p = data;
    size_t left = len;
    while (left >= 64) {
        sha1_block(h, p);
        p += 64;
        left -= 64;
    }
    unsigned char tail[128] = {0};
    memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tl = left + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tl - 1 - (size_t)i] = (unsigned char)(bits >> (8 * i));
    sha1_block(h, tail);
    if (tl == 128)
        sha1_block(h, tail + 64);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(h[i] >> 8);
        out[4 * i + 3] = (unsigned char)h[i];
    }
}

void base64_encode(const unsigned char *in, size_t len, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
        out[o++] = a[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = i + 1 < len ? a[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
}

int ws_frame_len(const unsigned char *h, size_t avail, uint64_t *len, size_t *hl)
{
    if (avail < 2)
        return 0;
    *len = h[1] & 0x7f;
    *hl = 2;
    if (*len == 126) {
        if (avail < 4)
            return 0;
        *len = (uint64_t)h[2] << 8 | h[3];
        *hl = 4;
    } else if (*len == 127) {
        if (avail < 10)
            return 0;
        *len = 0;
        for (int i = 0; i < 8; i++)
            *len = *len << 8 | h[2 + i];
        *hl = 10;
    }
    return 1;
}
