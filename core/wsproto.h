/* wsproto: the server side of RFC 6455 as a codec, no I/O. Reads an HTTP/1.1 request head
 * (request line, headers, query arguments) so the transport can tell a WebSocket upgrade from
 * plain HTTP, computes Sec-WebSocket-Accept (SHA-1 and base64, RFC 6455 §4.2.2), decodes client
 * frame headers with the checks of §5.2–§5.5, unmasks payloads, and encodes the control
 * frames a server sends (close, pong). Used by wsock (the WebSocket transport). */
#ifndef LUCKYSYNC_WSPROTO_H
#define LUCKYSYNC_WSPROTO_H

#include <stddef.h>
#include <stdint.h>

/* Bounds of a request head: its bytes (request line and headers) and its header lines. */
#define WSPROTO_HEAD_MAX 8192
#define WSPROTO_HEADERS_MAX 64

struct wsproto_header {
    const char *name, *value; /* borrowed from the head's text, not NUL-terminated */
    size_t name_len, value_len;
};

/* A parsed request head. Every pointer borrows the text given to wsproto_head_parse. */
struct wsproto_head {
    const char *method, *target, *path, *query; /* query: after '?', or NULL */
    size_t method_len, target_len, path_len, query_len;
    int minor; /* HTTP/1.<minor> */
    struct wsproto_header headers[WSPROTO_HEADERS_MAX];
    size_t nheaders;
    size_t len; /* bytes of the head, its closing blank line included */
};

enum wsproto_head_result {
    WSPROTO_HEAD_DONE = 0,      /* a whole head: *head filled */
    WSPROTO_HEAD_MORE = 1,      /* no blank line yet and under the bound: read more */
    WSPROTO_HEAD_BAD = -1,      /* not an HTTP/1.x request head (400) */
    WSPROTO_HEAD_TOO_LARGE = -2 /* over WSPROTO_HEAD_MAX or WSPROTO_HEADERS_MAX (431) */
};

/* Parse the request head at the start of buf[0..len) (what has been read so far; bytes after
 * the head are left alone). Returns an enum wsproto_head_result. */
int wsproto_head_parse(const char *buf, size_t len, struct wsproto_head *head);

/* The value of the first header named name (case-insensitive), without surrounding blanks;
 * NULL when absent. *len gets its length. */
const char *wsproto_head_header(const struct wsproto_head *head, const char *name, size_t *len);

/* 1 when the header named name is a comma-separated list holding token (case-insensitive),
 * as `Connection: keep-alive, Upgrade` holds `upgrade`. */
int wsproto_head_has_token(const struct wsproto_head *head, const char *name, const char *token);

/* Copy the percent-decoded value of query argument name (e.g. "sid") into out, NUL-terminated.
 * Returns its length, -1 when absent, -2 when it does not fit in cap (or is malformed). */
int wsproto_head_arg(const struct wsproto_head *head, const char *name, char *out, size_t cap);

/* 1 when the head asks for a WebSocket upgrade at all: GET with `Upgrade: websocket`. */
int wsproto_is_upgrade(const struct wsproto_head *head);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2): base64(SHA-1(key + GUID)),
 * 28 characters and a NUL into out. Returns 0, or -1 when key is not the base64 of 16 bytes. */
int wsproto_accept_key(const char *key, size_t key_len, char out[29]);

/* SHA-1 (FIPS 180-4) of data[0..len) into md. */
void wsproto_sha1(const void *data, size_t len, unsigned char md[20]);

enum wsproto_opcode {
    WSPROTO_CONT = 0x0,
    WSPROTO_TEXT = 0x1,
    WSPROTO_BINARY = 0x2,
    WSPROTO_CLOSE = 0x8,
    WSPROTO_PING = 0x9,
    WSPROTO_PONG = 0xA,
};

/* A client frame's header. */
struct wsproto_frame {
    unsigned opcode; /* enum wsproto_opcode */
    int fin;
    unsigned char mask[4];
    uint64_t payload_len;
    size_t header_len; /* 6, 8 or 14: client frames are always masked */
};

enum wsproto_frame_result {
    WSPROTO_FRAME_MORE = 0,      /* the header is not complete yet */
    WSPROTO_FRAME_PROTOCOL = -1, /* unmasked, reserved bits, unknown opcode, a control frame
                                    fragmented or over 125 bytes, a non-minimal length: 1002 */
    WSPROTO_FRAME_TOO_BIG = -2,  /* payload over max_payload: 1009 */
};

/* Decode the frame header at p[0..len). Returns its length (> 0) with *f filled, or an enum
 * wsproto_frame_result. max_payload bounds the payload of one frame. */
int wsproto_frame_decode(const unsigned char *p, size_t len, uint64_t max_payload,
                         struct wsproto_frame *f);

/* Unmask p[0..n) in place with mask, p[0] being byte `offset` of the frame's payload. */
void wsproto_unmask(unsigned char *p, size_t n, const unsigned char mask[4], uint64_t offset);

/* Header of an unmasked server frame with FIN set (RFC 6455 §5.2): 2, 4 or 10 bytes into out.
 * Returns how many. */
size_t wsproto_header_encode(unsigned char out[10], unsigned opcode, size_t payload_len);

/* A close frame with status code and reason (truncated to fit the 125-byte control payload)
 * into out. code 0 sends no status. Returns the frame's length (at most 127). */
size_t wsproto_close_encode(unsigned char out[127], unsigned code, const char *reason);

/* The status code of a received close frame's payload: 1005 when it has none, 0 when the
 * payload is invalid (one byte, or a code a peer must not send: RFC 6455 §7.4). */
unsigned wsproto_close_code(const unsigned char *payload, size_t len);

#endif
