/* wsock: the server's TCP listener and its WebSocket connections (RFC 6455), on the libuv loop
 * libwebsockets also runs on. It accepts, reads each new connection's HTTP request head and
 * answers a WebSocket upgrade itself; any other request goes to libwebsockets' HTTP server
 * with the bytes already read. A WebSocket is read into one buffer shared by every connection
 * (no receive buffer per connection: an idle one holds none), its frames are checked and
 * unmasked (wsproto), fragmented messages reassembled (bounded), pings answered and closes
 * completed; what the owner writes goes out with one send, and what the kernel does not take
 * is kept until the socket drains. Uses wsproto, libuv and libwebsockets (adoption only).
 * Connections are handed to the owner through callbacks with a 64-bit user value. */
#ifndef LUCKYSYNC_WSOCK_H
#define LUCKYSYNC_WSOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <uv.h>

struct lws_vhost;
struct wsproto_head;
struct wsock_server;
struct wsock;

#define WSOCK_GONE 1006 /* RFC 6455 §7.1.5: closed without a close frame */

struct wsock_callbacks {
    /* A WebSocket upgrade request for ws (head borrowed for the call). Return 0 to accept, or
     * the HTTP status of the refusal (400, 403, 404, 503…) with *body a static JSON body or
     * NULL. While it runs, what is sent on ws waits and leaves after the 101 answer. */
    int (*upgrade)(void *ud, struct wsock *ws, const struct wsproto_head *head, const char **body);
    /* A whole text message (borrowed for the call). */
    void (*message)(void *ud, struct wsock *ws, uint64_t user, const char *p, size_t len);
    /* What wsock_send kept back has all left: the owner may write again. */
    void (*drained)(void *ud, struct wsock *ws, uint64_t user);
    /* ws is gone: the last callback for ws, made from wsock_server_reap; ws must not be used
     * after it. code tells why: the status of our close frame for a protocol violation (1002,
     * 1003 binary, 1009 too big), the peer's close code, WSOCK_GONE when the connection ended
     * without a close frame, or the code given to wsock_close. */
    void (*closed)(void *ud, struct wsock *ws, uint64_t user, unsigned code);
};

struct wsock_options {
    const char *host;         /* IPv4 address to listen on */
    int port;                 /* 0: any free port (wsock_server_port tells) */
    size_t max_message;       /* bound of one message, reassembled or not (limits.maxPayload) */
    size_t read_bytes;        /* the shared read buffer (limits.wsReadBytes) */
    uint64_t head_timeout_ms; /* bound on reading a request head (limits.handshakeTimeoutMs) */
    unsigned max_heads;       /* connections reading their head at once; past it, accepting
                                 pauses (the rest wait in the listen backlog) */
    size_t max_output;        /* bound of the output kept back per connection */
};

/* Listen on opt->host:opt->port and serve on loop. cb and ud are borrowed for the server's
 * life. Returns 0, -EADDRINUSE, -EINVAL (bad address) or another -errno. */
int wsock_server_new(uv_loop_t *loop, const struct wsock_options *opt,
                     const struct wsock_callbacks *cb, void *ud, struct wsock_server **out);
/* Close every connection (closed callbacks included), stop listening and free the server.
 * The loop must run again afterwards for libuv to release the handles. */
void wsock_server_free(struct wsock_server *s);
/* Where plain HTTP requests go (borrowed; NULL: they are answered 503). */
void wsock_server_set_http(struct wsock_server *s, struct lws_vhost *vh);
int wsock_server_port(const struct wsock_server *s);
/* Make the closed callbacks that are due and release sockets that finished closing. Call
 * once per loop pass. */
void wsock_server_reap(struct wsock_server *s);
/* Time out request heads and lingering closes; resume accepting after running out of file
 * descriptors. Call periodically (100 ms). */
void wsock_server_tick(struct wsock_server *s);

void wsock_set_user(struct wsock *ws, uint64_t user);
uint64_t wsock_user(const struct wsock *ws);

/* Send data (already framed: the owner builds server frames) on ws. What the kernel does not
 * take is copied and kept, in order, until the socket drains (then the drained callback).
 * Returns 0, or -EPIPE when ws is closed or closing (nothing is sent). */
int wsock_send(struct wsock *ws, const void *data, size_t len);
/* The most pieces one wsock_sendv takes. */
#define WSOCK_IOV_MAX 64
/* wsock_send of iov[0..n) as one byte sequence, with one sendmsg: the pieces are read during
 * the call only (what is kept back is copied). -EINVAL when n is not 1..WSOCK_IOV_MAX. */
int wsock_sendv(struct wsock *ws, const struct iovec *iov, int n);
/* Bytes kept back by wsock_send, not yet taken by the kernel. */
size_t wsock_pending(const struct wsock *ws);
/* Close ws with a close frame (code 1000 when 0): reading stops at once, the closed callback
 * follows from wsock_server_reap. Idempotent. */
void wsock_close(struct wsock *ws, unsigned code);

#endif
