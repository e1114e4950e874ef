/* eio: the Engine.IO protocol 4 codec (no I/O). Packet types, the polling payload format
 * (packets joined by the record separator 0x1e), the open packet, and the server-to-client
 * WebSocket frame header used when several packets leave in one raw write.
 * Spec: https://github.com/socketio/engine.io-protocol (v4). */
#ifndef LUCKYSYNC_EIO_H
#define LUCKYSYNC_EIO_H

#include <stddef.h>

enum eio_type {
    EIO_OPEN = 0,
    EIO_CLOSE = 1,
    EIO_PING = 2,
    EIO_PONG = 3,
    EIO_MESSAGE = 4,
    EIO_UPGRADE = 5,
    EIO_NOOP = 6,
};

#define EIO_RECORD_SEP '\x1e'

/* Decode one text packet p[0..len): *type gets the type, *data and *dlen the rest (borrowed from
 * p). Returns 0, or -EINVAL for an empty packet, an unknown type digit, or a base64 binary
 * packet ('b' prefix, refused by this server). */
int eio_decode(const char *p, size_t len, enum eio_type *type, const char **data, size_t *dlen);

/* Split a polling POST body into packets on 0x1e and call cb for each (borrowed slices). Stops
 * and returns the callback's value when it returns non-zero; returns -EINVAL when the body
 * is empty or holds an empty packet; else 0. At most max_packets packets (-E2BIG beyond). */
typedef int (*eio_packet_cb)(void *ud, const char *p, size_t len);
int eio_payload_split(const char *body, size_t len, size_t max_packets, eio_packet_cb cb,
                      void *ud);

/* Write the open packet `0{"sid":…,"upgrades":[…],"pingInterval":…,"pingTimeout":…,
 * "maxPayload":…}` into out (NUL-terminated). upgrades is ["websocket"] when allow_upgrade,
 * else []. Returns its length, or -ENOSPC when cap is too small. */
int eio_open_encode(char *out, size_t cap, const char *sid, unsigned ping_interval_ms,
                    unsigned ping_timeout_ms, size_t max_payload, int allow_upgrade);

/* Header of an unmasked, final, text WebSocket frame (RFC 6455 §5.2) for payload_len bytes.
 * Writes 2, 4 or 10 bytes into out and returns how many. */
size_t eio_ws_header(unsigned char out[10], size_t payload_len);

#endif
