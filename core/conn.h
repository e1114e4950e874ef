/* conn: the table of live client connections and the Engine.IO v4 transport around them.
 * A connection is one Engine.IO session: created by the polling handshake or a direct
 * WebSocket, possibly upgraded from polling to WebSocket, and identified everywhere else by a
 * 64-bit id (slot | generation << 32) so nothing outside this module holds a pointer to it.
 * Owns: each connection's bounded send queue, heartbeats and handshake/session timers (one
 * shared timer wheel), the polling GET/POST exchange, WebSocket reassembly and batched raw
 * writes. Uses libwebsockets, eio, sio, sendq, timer, room (membership cleanup) and hands each
 * Socket.IO packet to events. */
#ifndef LUCKYSYNC_CONN_H
#define LUCKYSYNC_CONN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct lws;
struct lws_context;
struct buf;
struct config;
struct room_registry;
struct fanout;
struct timer_wheel;
struct conn;
struct conn_table;

/* Per-wsi user data (lws allocates per_session_data_size bytes for every wsi of our
 * protocol; zeroed per HTTP transaction). Kept small: it exists for every socket. */
struct conn_pss {
    uint64_t conn_id;
    unsigned char kind; /* enum pss_kind in conn_int.h */
    unsigned char status_sent;
    unsigned short http_status;
    char *body; /* POST body being received (malloc'd) or response to send */
    size_t body_len, body_cap;
    void *ext; /* http_sync's request state */
};

struct session;

/* A verified session (see session.h). */
struct conn_table *conn_table_new(const struct config *cfg, struct room_registry *rooms,
                                  uint64_t now_ms);
void conn_table_free(struct conn_table *t);
/* The fanout engine the table created over `rooms`, delivering into connection queues. */
struct fanout *conn_table_fanout(struct conn_table *t);
struct room_registry *conn_table_rooms(struct conn_table *t);
const struct config *conn_table_config(struct conn_table *t);
/* The per-session remembered rooms (re-joined on reconnect). */
struct srooms *conn_table_srooms(struct conn_table *t);
/* Attach the lws context (NULL detaches it before the context is destroyed). */
void conn_table_set_context(struct conn_table *t, struct lws_context *ctx);
/* The handler runtime that `sync` events go to (borrowed; NULL: none). */
struct runtime;
void conn_table_set_runtime(struct conn_table *t, struct runtime *rt);
struct runtime *conn_table_runtime(struct conn_table *t);
/* Queue packet for every live connection (devError broadcasts). */
void conn_table_broadcast(struct conn_table *t, struct buf *packet);
/* Advance the timer wheel; called by the server's periodic tick. */
void conn_table_tick(struct conn_table *t, uint64_t now_ms);
/* With deferred flush on, frames for a WebSocket connection are not written as they are queued
 * but by conn_table_flush, which the server calls once per loop pass after the input has been
 * processed: one write per connection per pass. Off (the default), each connection asks lws for
 * a writeable callback. */
void conn_table_set_deferred_flush(struct conn_table *t, int on);
void conn_table_flush(struct conn_table *t);
unsigned conn_table_count(const struct conn_table *t);
/* Close every connection (shutdown). */
void conn_table_close_all(struct conn_table *t, const char *reason);

/* lws entry points for paths under /socket.io/ (HTTP long-polling) and for every WebSocket
 * of the protocol. Return what the lws callback should return. */
int conn_http_request(struct conn_table *t, struct lws *wsi, struct conn_pss *pss,
                      const char *uri);
int conn_http_body(struct conn_table *t, struct lws *wsi, struct conn_pss *pss, const void *in,
                   size_t len);
int conn_http_body_done(struct conn_table *t, struct lws *wsi, struct conn_pss *pss);
int conn_http_writeable(struct conn_table *t, struct lws *wsi, struct conn_pss *pss);
void conn_http_closed(struct conn_table *t, struct lws *wsi, struct conn_pss *pss);
/* The callbacks of the WebSocket transport (wsock) into the table: pass the table as their
 * ud. Upgrades (Origin, EIO, transport, sid), messages, drained sockets, closes. */
struct wsock_callbacks;
const struct wsock_callbacks *conn_ws_callbacks(void);

/* Queue an immediate HTTP response (status, body copied; JSON when it starts with '{') for
 * the writeable callback of any HTTP route. Returns 0 or -1. */
int conn_http_respond(struct lws *wsi, struct conn_pss *pss, unsigned status, const char *body);

/* Origin policy shared with other HTTP routes: 1 when the request's Origin is admitted (no
 * Origin header, an empty allow-list, or a listed origin). */
int conn_origin_allowed(const struct config *cfg, struct lws *wsi);
/* The same for an Origin header value (NULL or len 0: absent). */
int conn_origin_text_allowed(const struct config *cfg, const char *origin, size_t len);
/* Add CORS response headers for an admitted Origin. Returns 0 or -1 when out of space. */
int conn_add_cors_headers(struct lws *wsi, unsigned char **p, unsigned char *end);

/* --- used by events (Socket.IO layer) and later by the runtime --- */

/* Connection by id; NULL when gone or closing. Borrowed: valid until control returns to lws. */
struct conn *conn_get(struct conn_table *t, uint64_t id);
uint64_t conn_id(const struct conn *c);
/* Queue an Engine.IO packet (borrowed buf; the queue takes its own reference) and ask for a
 * write. Returns 0, or -ENOBUFS when the queue is over its bound (the connection is then
 * being closed as a slow consumer). */
int conn_send(struct conn_table *t, struct conn *c, struct buf *packet);
/* Bytes waiting in c's send queue. */
size_t conn_queued_bytes(const struct conn *c);
/* Close with a logged reason (static text): removes room membership at once; the struct is
 * freed once no wsi refers to it. Must not be called while a fanout iterates the registry. */
void conn_close(struct conn_table *t, struct conn *c, const char *reason);
/* The same on the next loop turn; safe anywhere (a slow consumer found during a fanout).
 * The connection stops taking frames at once. */
void conn_close_later(struct conn_table *t, struct conn *c, const char *reason);

/* A virtual connection for one HTTP sync request (http_sync): no Engine.IO session, no
 * heartbeat; what the runtime sends it is queued and drained by the HTTP writeable callback
 * of wsi. The caller sets its session. NULL when the table is full. */
struct conn *conn_open_virtual(struct conn_table *t, struct lws *wsi);
int conn_is_virtual(const struct conn *c);
/* The peer address of a virtual connection (rate limits of anonymous HTTP senders). */
void conn_set_peer(struct conn *c, const char *ip);
const char *conn_peer(const struct conn *c); /* NULL when unknown */
/* Pop the oldest queued packet (the caller owns the returned reference), or NULL. */
struct buf *conn_pop(struct conn *c);
/* The virtual connection's HTTP request is gone (closed by the client or answered). */
void conn_virtual_detach(struct conn_table *t, struct conn *c);

/* Socket.IO state of a connection. */
int conn_sio_connected(const struct conn *c);
void conn_set_sio_connected(struct conn *c, const char *sio_sid);
/* Token offered in the handshake (Authorization: Bearer or the luckysync_token cookie), or
 * NULL. Borrowed. */
const char *conn_handshake_token(const struct conn *c);
/* Drop the handshake token once used. */
void conn_clear_handshake_token(struct conn *c);
/* The session (NULL = anonymous). Borrowed. */
struct session *conn_session(const struct conn *c);
/* Replace the session (takes ownership of s, may be NULL); frees the old one. */
void conn_set_session(struct conn_table *t, struct conn *c, struct session *s);
/* Arm the session-expiry timer from the current session's exp (or cancel it). */
void conn_schedule_expiry(struct conn_table *t, struct conn *c);

#endif
