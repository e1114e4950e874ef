/* conn_int.h: private to the conn module. Only core/conn.c, core/conn_poll.c and
 * core/conn_ws.c may include it; everything else sees connections through conn.h (an opaque
 * struct conn and ids). It holds the fields of a connection and of the table, and the few
 * helpers the table (conn.c) shares with the two transports (conn_poll.c, conn_ws.c). */
#ifndef LUCKYSYNC_CONN_INT_H
#define LUCKYSYNC_CONN_INT_H

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "sendq.h"
#include "timer.h"

struct wsock;

enum pss_kind { PSS_NONE = 0, PSS_POLL_GET, PSS_POLL_POST, PSS_RESPONSE, PSS_WS };
enum transport { T_POLLING = 0, T_WS = 1, T_VIRTUAL = 2 };

#define SID_LEN 20

struct conn {
    uint64_t id;
    struct conn *sid_next; /* sid hash chain */
    struct wsock *ws;      /* WebSocket (probing or upgraded) */
    struct lws *poll;      /* held polling GET */
    struct sendq q;
    struct timer_node hb;  /* next ping, or the pong deadline */
    struct timer_node aux; /* handshake timeout, then session expiry and grace */
    struct session *session;
    char *hs_token; /* token from handshake headers, until CONNECT */
    char *peer;     /* virtual connections: the client's address */
    unsigned char transport;
    unsigned sio_connected : 1, probe_pending : 1, noop_pending : 1, ping_outstanding : 1,
        closing : 1, expired : 1, in_sid_map : 1, close_pending : 1, upgrading : 1,
        ws_dirty : 1; /* listed in the table's flush list */
    const char *close_reason; /* static text, while close_pending */
    char sid[SID_LEN + 1];
    char sio_sid[SID_LEN + 1];
};

struct conn_table {
    const struct config *cfg;
    struct room_registry *rooms;
    struct fanout *fanout;
    struct timer_wheel *wheel;
    struct lws_context *ctx;
    struct conn **slots;   /* max_connections entries */
    uint32_t *gens;        /* generation per slot */
    uint32_t *free_slots;  /* stack of free slot indices */
    unsigned nfree, nslots, live;
    struct conn **sid_buckets;
    size_t sid_mask;
    struct srooms *srooms;
    struct runtime *rt;
    struct buf *ping, *noop, *close_pkt;
    unsigned char *scratch; /* one write buffer for the whole loop (single-threaded) */
    /* Closes requested where the registry must not change (inside a fanout): ids, at most
     * one per slot, run on the next loop turn. */
    uint64_t *pending;
    unsigned npending;
    lws_sorted_usec_list_t pending_sul;
    size_t scratch_cap;
    /* Deferred flush (conn_table_flush): WebSocket connections given frames during this loop
     * pass, at most one entry per slot; 0 marks an entry whose connection went away. */
    uint64_t *dirty;
    unsigned ndirty, dirty_cap;
    int deferred;
};

/* Connection by id, closing ones included (unlike conn_get); NULL when the slot is free or
 * reused. Borrowed. */
struct conn *conn_lookup(struct conn_table *t, uint64_t id);
/* Connection by Engine.IO sid, NULL when none. Borrowed. */
struct conn *conn_sid_find(struct conn_table *t, const char *sid);
/* A new connection in a free slot with a fresh sid and its handshake timers armed; NULL when
 * the table is full or out of memory. */
struct conn *conn_create(struct conn_table *t, enum transport tr);
/* Detach c (if not yet) and free it and its slot. */
void conn_destroy(struct conn_table *t, struct conn *c);
/* Grow the table's scratch write buffer to at least need bytes. Returns 0 or -ENOMEM. */
int conn_scratch_reserve(struct conn_table *t, size_t need);
/* One Engine.IO packet from either transport. Returns 0, 1 after an orderly close asked by
 * the client, or -1 after closing it for an error. */
int conn_on_packet(struct conn_table *t, struct conn *c, const char *p, size_t len);
/* Keep the token offered in wsi's handshake headers (Authorization, then cookie) in c. */
void conn_capture_token(struct conn *c, struct lws *wsi);
/* The same from header values (NULL when absent, not NUL-terminated). */
void conn_capture_token_text(struct conn *c, const char *authz, size_t alen, const char *cookie,
                             size_t clen);
/* Write c's queued WebSocket frames now, as far as the socket takes them. */
void conn_ws_write(struct conn_table *t, struct conn *c);

#endif
