/* sio: the Socket.IO protocol 5 (Socket.IO v4) packet codec (no I/O). Decodes the packet
 * inside an Engine.IO message and builds outgoing packets around already-encoded JSON, never
 * re-parsing it. Outgoing packets are returned as bufs holding the full Engine.IO message text
 * (leading "4"), ready for any transport. Spec: https://github.com/socketio/socket.io-protocol */
#ifndef LUCKYSYNC_SIO_H
#define LUCKYSYNC_SIO_H

#include <stddef.h>
#include <stdint.h>

struct buf;

enum sio_type {
    SIO_CONNECT = 0,
    SIO_DISCONNECT = 1,
    SIO_EVENT = 2,
    SIO_ACK = 3,
    SIO_CONNECT_ERROR = 4,
    SIO_BINARY_EVENT = 5,
    SIO_BINARY_ACK = 6,
};

struct sio_packet {
    enum sio_type type;
    const char *nsp; /* namespace, borrowed; "/" when absent */
    size_t nsp_len;
    int64_t ack_id;  /* -1 when absent */
    unsigned attachments; /* binary types only */
    const char *data; /* JSON payload text, borrowed; NULL/0 when absent */
    size_t data_len;
};

/* Decode a Socket.IO packet (the data of an Engine.IO message). Pointers borrow from p.
 * Returns 0, or -EINVAL when malformed (bad type, bad attachment count, ack id overflow,
 * unterminated namespace, payload not starting with '[' or '{' where one is required). */
int sio_decode(const char *p, size_t len, struct sio_packet *out);

/* 42["<name>",<json>] (json may be NULL for no argument). name is raw text, JSON-escaped here.
 * With ack_id >= 0 the packet requests an ack: 42<id>[…]. NULL on allocation failure. */
struct buf *sio_event_encode(const char *name, size_t name_len, const char *json, size_t json_len,
                             int64_t ack_id);
/* 43<id>[<json>] */
struct buf *sio_ack_encode(int64_t ack_id, const char *json, size_t json_len);
/* 40{"sid":"<sid>"} */
struct buf *sio_connect_ok_encode(const char *sid);
/* 44{"message":"<message>"} or with data: 44{"message":"…","data":<data_json>} */
struct buf *sio_connect_error_encode(const char *message, const char *data_json);
/* 41 */
struct buf *sio_disconnect_encode(void);

/* Append the JSON string literal for s[0..len) (quotes included) to out; returns bytes needed
 * (like snprintf: when > cap nothing useful was written). Escapes per RFC 8259. */
size_t sio_json_quote(char *out, size_t cap, const char *s, size_t len);

#endif
