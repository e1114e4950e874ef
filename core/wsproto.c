/* wsproto.c: RFC 6455 server-side codec: request head, accept key, client frame headers,
 * unmasking and server control frames. No I/O, no allocation. */
#include "wsproto.h"

#include <string.h>

/* ---- request head (RFC 9112 §2–§5, strict: CRLF line ends, no folded lines) ---- */

static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static int same_ci(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* The end of the head (just past its blank line), 0 when not within buf[0..len). */
static size_t head_end(const char *buf, size_t len)
{
    for (size_t i = 3; i < len; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
            return i + 1;
    return 0;
}

static int parse_request_line(const char *p, size_t n, struct wsproto_head *h)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i >= n || p[i] != ' ')
        return -1;
    h->method = p;
    h->method_len = i;
    size_t t = ++i;
    while (i < n && p[i] != ' ') {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c == 0x7f)
            return -1;
        i++;
    }
    if (i == t || i >= n)
        return -1;
    h->target = p + t;
    h->target_len = i - t;
    i++;
    if (n - i != 8 || memcmp(p + i, "HTTP/1.", 7) != 0 || p[i + 7] < '0' || p[i + 7] > '9')
        return -1;
    h->minor = p[i + 7] - '0';
    const char *q = memchr(h->target, '?', h->target_len);
    h->path = h->target;
    h->path_len = q ? (size_t)(q - h->target) : h->target_len;
    h->query = q ? q + 1 : NULL;
    h->query_len = q ? h->target_len - h->path_len - 1 : 0;
    return 0;
}

static int parse_header_line(const char *p, size_t n, struct wsproto_header *hd)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i >= n || p[i] != ':')
        return -1;
    hd->name = p;
    hd->name_len = i++;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    size_t v = i, end = i;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return -1;
        if (c != ' ' && c != '\t')
            end = i + 1;
    }
    hd->value = p + v;
    hd->value_len = end - v;
    return 0;
}

int wsproto_head_parse(const char *buf, size_t len, struct wsproto_head *head)
{
    size_t scan = len < WSPROTO_HEAD_MAX ? len : WSPROTO_HEAD_MAX;
    size_t end = head_end(buf, scan);
    if (!end)
        return len >= WSPROTO_HEAD_MAX ? WSPROTO_HEAD_TOO_LARGE : WSPROTO_HEAD_MORE;
    memset(head, 0, sizeof *head);
    head->len = end;
    size_t pos = 0, lines = 0;
    while (pos < end - 2) { /* each line up to its CRLF; the final blank line ends the loop */
        const char *cr = memchr(buf + pos, '\r', end - pos);
        size_t n = (size_t)(cr - (buf + pos));
        if (cr[1] != '\n' || memchr(buf + pos, '\n', n))
            return WSPROTO_HEAD_BAD; /* a bare CR or LF inside a line */
        if (lines == 0) {
            if (parse_request_line(buf + pos, n, head))
                return WSPROTO_HEAD_BAD;
        } else {
            if (head->nheaders == WSPROTO_HEADERS_MAX)
                return WSPROTO_HEAD_TOO_LARGE;
            if (parse_header_line(buf + pos, n, &head->headers[head->nheaders]))
                return WSPROTO_HEAD_BAD;
            head->nheaders++;
        }
        lines++;
        pos += n + 2;
    }
    return lines ? WSPROTO_HEAD_DONE : WSPROTO_HEAD_BAD;
}

const char *wsproto_head_header(const struct wsproto_head *head, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < head->nheaders; i++) {
        const struct wsproto_header *hd = &head->headers[i];
        if (same_ci(hd->name, hd->name_len, name, nlen)) {
            *len = hd->value_len;
            return hd->value;
        }
    }
    *len = 0;
    return NULL;
}

int wsproto_head_has_token(const struct wsproto_head *head, const char *name, const char *token)
{
    size_t tlen = strlen(token), nlen = strlen(name);
    for (size_t i = 0; i < head->nheaders; i++) {
        const struct wsproto_header *hd = &head->headers[i];
        if (!same_ci(hd->name, hd->name_len, name, nlen))
            continue;
        const char *p = hd->value, *end = hd->value + hd->value_len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *s = p;
            while (p < end && *p != ',')
                p++;
            const char *e = p;
            while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if (same_ci(s, (size_t)(e - s), token, tlen))
                return 1;
        }
    }
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

int wsproto_head_arg(const struct wsproto_head *head, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    const char *p = head->query, *end = head->query ? head->query + head->query_len : NULL;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ne = eq ? eq : pe;
        if ((size_t)(ne - p) == nlen && memcmp(p, name, nlen) == 0) {
            size_t o = 0;
            for (const char *v = eq ? eq + 1 : pe; v < pe; v++) {
                int c = (unsigned char)*v;
                if (c == '%') {
                    int hi = v + 2 < pe ? hexval(v[1]) : -1, lo = hi >= 0 ? hexval(v[2]) : -1;
                    if (lo < 0)
                        return -2;
                    c = hi * 16 + lo;
                    v += 2;
                }
                if (o + 1 >= cap)
                    return -2;
                out[o++] = (char)c;
            }
            if (cap == 0)
                return -2;
            out[o] = '\0';
            return (int)o;
        }
        p = amp ? amp + 1 : end;
    }
    return -1;
}

int wsproto_is_upgrade(const struct wsproto_head *head)
{
    return head->method_len == 3 && memcmp(head->method, "GET", 3) == 0 &&
           wsproto_head_has_token(head, "upgrade", "websocket");
}

/* ---- SHA-1 (FIPS 180-4 §6.1) and the accept key ---- */

static uint32_t rol(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const unsigned char *b)
{
    uint32_t w[80];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)b[4 * t] << 24 | (uint32_t)b[4 * t + 1] << 16 |
               (uint32_t)b[4 * t + 2] << 8 | (uint32_t)b[4 * t + 3];
    for (int t = 16; t < 80; t++)
        w[t] = rol(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4];
    for (int t = 0; t < 80; t++) {
        uint32_t f, k;
        if (t < 20) {
            f = (bb & c) | (~bb & d);
            k = 0x5a827999u;
        } else if (t < 40) {
            f = bb ^ c ^ d;
            k = 0x6ed9eba1u;
        } else if (t < 60) {
            f = (bb & c) | (bb & d) | (c & d);
            k = 0x8f1bbcdcu;
        } else {
            f = bb ^ c ^ d;
            k = 0xca62c1d6u;
        }
        uint32_t tmp = rol(a, 5) + f + e + k + w[t];
        e = d;
        d = c;
        c = rol(bb, 30);
        bb = a;
        a = tmp;
    }
    h[0] += a;
    h[1] += bb;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void wsproto_sha1(const void *data, size_t len, unsigned char md[20])
{
    uint32_t h[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u, 0xc3d2e1f0u};
    const unsigned char *p = data;
    size_t left = len;
    for (; left >= 64; left -= 64, p += 64)
        sha1_block(h, p);
    unsigned char tail[128];
    memset(tail, 0, sizeof tail);
    if (left)
        memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tl = left < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tl - 1 - i] = (unsigned char)(bits >> (8 * i));
    sha1_block(h, tail);
    if (tl == 128)
        sha1_block(h, tail + 64);
    for (int i = 0; i < 5; i++) {
        md[4 * i] = (unsigned char)(h[i] >> 24);
        md[4 * i + 1] = (unsigned char)(h[i] >> 16);
        md[4 * i + 2] = (unsigned char)(h[i] >> 8);
        md[4 * i + 3] = (unsigned char)h[i];
    }
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int wsproto_accept_key(const char *key, size_t key_len, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    /* 16 bytes: 22 characters whose last carries 2 bits and 4 zero bits, then "==" */
    if (key_len != 24 || key[22] != '=' || key[23] != '=' || !strchr("AQgw", key[21]))
        return -1;
    for (size_t i = 0; i < 22; i++)
        if (!key[i] || !strchr(B64, key[i]))
            return -1;
    char in[24 + sizeof guid - 1];
    memcpy(in, key, 24);
    memcpy(in + 24, guid, sizeof guid - 1);
    unsigned char md[21];
    wsproto_sha1(in, sizeof in, md);
    md[20] = 0;
    size_t o = 0;
    for (size_t i = 0; i < 21; i += 3) {
        uint32_t v = (uint32_t)md[i] << 16 | (uint32_t)md[i + 1] << 8 | md[i + 2];
        out[o++] = B64[(v >> 18) & 63];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = B64[(v >> 6) & 63];
        out[o++] = B64[v & 63];
    }
    out[27] = '='; /* 20 bytes: 27 characters and one pad */
    out[28] = '\0';
    return 0;
}

/* ---- frames (RFC 6455 §5) ---- */

int wsproto_frame_decode(const unsigned char *p, size_t len, uint64_t max_payload,
                         struct wsproto_frame *f)
{
    if (len < 1)
        return WSPROTO_FRAME_MORE;
    unsigned op = p[0] & 0x0f;
    if (p[0] & 0x70)
        return WSPROTO_FRAME_PROTOCOL; /* no extension was negotiated */
    if (!(op <= WSPROTO_BINARY || (op >= WSPROTO_CLOSE && op <= WSPROTO_PONG)))
        return WSPROTO_FRAME_PROTOCOL;
    int fin = p[0] >> 7;
    if ((op & 8) && !fin)
        return WSPROTO_FRAME_PROTOCOL; /* §5.5: control frames are not fragmented */
    if (len < 2)
        return WSPROTO_FRAME_MORE;
    if (!(p[1] & 0x80))
        return WSPROTO_FRAME_PROTOCOL; /* §5.1: a client masks every frame */
    unsigned l7 = p[1] & 0x7f;
    if ((op & 8) && l7 > 125)
        return WSPROTO_FRAME_PROTOCOL;
    uint64_t plen;
    size_t hl;
    if (l7 == 126) {
        if (len < 4)
            return WSPROTO_FRAME_MORE;
        plen = (uint64_t)p[2] << 8 | p[3];
        if (plen < 126)
            return WSPROTO_FRAME_PROTOCOL; /* §5.2: the minimal number of bytes */
        hl = 8;
    } else if (l7 == 127) {
        if (len < 10)
            return WSPROTO_FRAME_MORE;
        plen = 0;
        for (int i = 2; i < 10; i++)
            plen = plen << 8 | p[i];
        if ((plen >> 63) || plen < 65536)
            return WSPROTO_FRAME_PROTOCOL;
        hl = 14;
    } else {
        plen = l7;
        hl = 6;
    }
    if (plen > max_payload)
        return WSPROTO_FRAME_TOO_BIG;
    if (len < hl)
        return WSPROTO_FRAME_MORE;
    f->opcode = op;
    f->fin = fin;
    memcpy(f->mask, p + hl - 4, 4);
    f->payload_len = plen;
    f->header_len = hl;
    return (int)hl;
}

void wsproto_unmask(unsigned char *p, size_t n, const unsigned char mask[4], uint64_t offset)
{
    unsigned char m[8];
    for (int i = 0; i < 8; i++)
        m[i] = mask[(offset + (uint64_t)i) & 3];
    uint64_t mw;
    memcpy(&mw, m, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= mw;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++)
        p[i] ^= m[i & 7];
}

size_t wsproto_header_encode(unsigned char out[10], unsigned opcode, size_t payload_len)
{
    out[0] = (unsigned char)(0x80 | (opcode & 0x0f));
    if (payload_len < 126) {
        out[1] = (unsigned char)payload_len;
        return 2;
    }
    if (payload_len <= 0xffff) {
        out[1] = 126;
        out[2] = (unsigned char)(payload_len >> 8);
        out[3] = (unsigned char)payload_len;
        return 4;
    }
    uint64_t n = (uint64_t)payload_len & 0x7fffffffffffffffULL; /* §5.2: top bit 0 */
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (unsigned char)(n >> (56 - 8 * i));
    return 10;
}

size_t wsproto_close_encode(unsigned char out[127], unsigned code, const char *reason)
{
    if (!code) {
        out[0] = 0x80 | WSPROTO_CLOSE;
        out[1] = 0;
        return 2;
    }
    size_t rlen = reason ? strlen(reason) : 0;
    if (rlen > 123)
        rlen = 123;
    out[0] = 0x80 | WSPROTO_CLOSE;
    out[1] = (unsigned char)(2 + rlen);
    out[2] = (unsigned char)(code >> 8);
    out[3] = (unsigned char)code;
    if (rlen)
        memcpy(out + 4, reason, rlen);
    return 4 + rlen;
}

unsigned wsproto_close_code(const unsigned char *payload, size_t len)
{
    if (len == 0)
        return 1005;
    if (len == 1)
        return 0;
    unsigned code = (unsigned)payload[0] << 8 | payload[1];
    if ((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
        (code >= 3000 && code <= 4999))
        return code;
    return 0;
}
