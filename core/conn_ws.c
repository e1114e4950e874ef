/* conn_ws.c: the Engine.IO v4 WebSocket transport of the conn module: the upgrade filter,
 * direct WebSocket sessions and the upgrade from polling (2probe/3probe/5), message
 * reassembly bounded by maxPayload, batched raw writes (RFC 6455 headers by hand, one
 * LWS_WRITE_RAW per batch), and the per-loop-pass hooks: deferred flush and read-more. Uses
 * the table and connection fields through conn_int.h. */
#include "conn.h"
#include "conn_int.h"

#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "eio.h"
#include "log.h"
#include "sendq.h"

#define WS_BATCH_BYTES (64 * 1024)

/* ---- WebSocket ---- */

int conn_ws_filter(struct conn_table *t, struct lws *wsi)
{
    char arg[64];
    if (!conn_origin_allowed(t->cfg, wsi))
        return 1;
    const char *eio = lws_get_urlarg_by_name(wsi, "EIO=", arg, sizeof arg);
    if (!eio || strcmp(eio, "4") != 0)
        return 1;
    const char *tr = lws_get_urlarg_by_name(wsi, "transport=", arg, sizeof arg);
    if (!tr || strcmp(tr, "websocket") != 0)
        return 1;
    return 0;
}

int conn_ws_established(struct conn_table *t, struct lws *wsi, struct conn_pss *pss)
{
    char arg[64];
    memset(pss, 0, sizeof *pss);
    pss->kind = PSS_WS;
    const char *sid = lws_get_urlarg_by_name(wsi, "sid=", arg, sizeof arg);
    if (sid) {
        struct conn *c = conn_sid_find(t, sid);
        if (!c || c->closing || c->ws || c->transport != T_POLLING)
            return -1;
        c->ws = wsi;
        pss->conn_id = c->id;
        return 0;
    }
    struct conn *c = conn_create(t, T_WS);
    if (!c) {
        LOG_W("connection refused", "\"reason\":\"max connections\"");
        return -1;
    }
    c->ws = wsi;
    pss->conn_id = c->id;
    conn_capture_token(c, wsi);
    char open[256];
    int n = eio_open_encode(open, sizeof open, c->sid, t->cfg->ping_interval_ms,
                            t->cfg->ping_timeout_ms, t->cfg->max_payload, 0);
    struct buf *b = n > 0 ? buf_from(open, (size_t)n) : NULL;
    if (!b)
        return -1;
    conn_send(t, c, b);
    buf_unref(b);
    LOG_D("conn opened", "\"conn\":\"%s\",\"transport\":\"websocket\"", c->sid);
    return 0;
}

/* A whole WebSocket message from the client. */
static int ws_message(struct conn_table *t, struct conn *c, struct lws *wsi, const char *p,
                      size_t len)
{
    if (c->transport == T_POLLING) {
        /* Upgrade (engine.io-protocol v4 "Upgrade"): 2probe → 3probe, then 5. */
        if (len == 6 && memcmp(p, "2probe", 6) == 0) {
            /* The client pauses polling before it sends 5: release its held GET with a noop
             * (and answer any GET during the upgrade the same way), or it waits for the next
             * ping (engine.io's server does the same). */
            c->probe_pending = 1;
            c->upgrading = 1;
            c->noop_pending = 1;
            if (c->poll)
                lws_callback_on_writable(c->poll);
            lws_callback_on_writable(wsi);
            return 0;
        }
        if (len == 1 && p[0] == '5') {
            c->transport = T_WS;
            c->upgrading = 0;
            if (c->poll) {
                c->noop_pending = 1;
                lws_callback_on_writable(c->poll);
            }
            if (sendq_count(&c->q))
                lws_callback_on_writable(wsi);
            return 0;
        }
        conn_close(t, c, "unexpected packet during upgrade");
        return -1;
    }
    return conn_on_packet(t, c, p, len);
}

int conn_ws_receive(struct conn_table *t, struct lws *wsi, struct conn_pss *pss, const void *in,
                    size_t len)
{
    struct conn *c = conn_get(t, pss->conn_id);
    if (!c)
        return -1;
    if (t->deferred) {
        c->rx_seen = 1;
        if (!c->rx_listed && c->ws == wsi) {
            c->rx_listed = 1;
            t->readers[t->nreaders++] = c->id;
        }
    }
    if (lws_frame_is_binary(wsi)) {
        conn_close(t, c, "binary frames are not supported");
        return -1;
    }
    int first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
    size_t remaining = lws_remaining_packet_payload(wsi);
    if (first && final && remaining == 0 && !c->rx) {
        if (len > t->cfg->max_payload) {
            conn_close(t, c, "message over maxPayload");
            return -1;
        }
        return ws_message(t, c, wsi, in, len) ? -1 : 0;
    }
    /* Reassembly buffer: exists only while a message is incomplete, bounded by maxPayload. */
    if (c->rx_len + len > t->cfg->max_payload) {
        conn_close(t, c, "message over maxPayload");
        return -1;
    }
    char *nb = realloc(c->rx, c->rx_len + len + 1);
    if (!nb) {
        conn_close(t, c, "out of memory");
        return -1;
    }
    c->rx = nb;
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (!(final && remaining == 0))
        return 0;
    char *msg = c->rx;
    size_t mlen = c->rx_len;
    c->rx = NULL;
    c->rx_len = 0;
    int rc = ws_message(t, c, wsi, msg, mlen);
    free(msg);
    return rc ? -1 : 0;
}

/* Frames the probe answer and as many queued packets as fit in one batch into the scratch
 * buffer and sends them with one RAW write. Returns -1 when the write failed. */
static int ws_write_batch(struct conn_table *t, struct conn *c, struct lws *wsi)
{
    size_t off = LWS_PRE;
    if (conn_scratch_reserve(t, LWS_PRE + 16))
        return -1;
    if (c->probe_pending) {
        c->probe_pending = 0;
        off += eio_ws_header(t->scratch + off, 6);
        memcpy(t->scratch + off, "3probe", 6);
        off += 6;
    }
    unsigned n = 0;
    if (c->transport == T_WS) {
        unsigned count = sendq_count(&c->q);
        while (n < count) {
            struct buf *b = sendq_peek(&c->q, n);
            size_t need = off + 10 + buf_len(b);
            if (n && need - LWS_PRE > WS_BATCH_BYTES)
                break;
            if (conn_scratch_reserve(t, need))
                return -1;
            off += eio_ws_header(t->scratch + off, buf_len(b));
            memcpy(t->scratch + off, buf_cdata(b), buf_len(b));
            off += buf_len(b);
            n++;
        }
    }
    if (off == LWS_PRE)
        return 0;
    if (lws_write(wsi, t->scratch + LWS_PRE, off - LWS_PRE, LWS_WRITE_RAW) < 0)
        return -1;
    sendq_pop(&c->q, n);
    return 0;
}

static void ask_writeable(struct conn *c)
{
    if (!c->ws_write_asked) {
        c->ws_write_asked = 1;
        lws_callback_on_writable(c->ws);
    }
}

int conn_ws_writeable(struct conn_table *t, struct lws *wsi, struct conn_pss *pss)
{
    struct conn *c = conn_lookup(t, pss->conn_id);
    if (c && c->ws == wsi)
        c->ws_write_asked = 0;
    if (!c || c->closing)
        return -1;
    if (c->ws != wsi)
        return -1;
    if (ws_write_batch(t, c, wsi))
        return -1;
    if (sendq_count(&c->q) && c->transport == T_WS)
        ask_writeable(c);
    return 0;
}

/* lws reads at most rx_buffer_size bytes (limits.wsReadBytes: 256 by default, for the memory
 * per connection) per readiness event, so a client with 16 requests in its socket would get
 * one of them served per loop pass. A connection that received something in this pass is serviced again, as if readable,
 * while each read still yields a message: the requests of a burst are all processed in one
 * pass and their answers leave in one write. Bounded per connection and pass; whatever is
 * left is read on the next pass, as lws would. */
#define READ_MORE_MAX 64

void conn_table_read_more(struct conn_table *t)
{
    for (unsigned i = 0; i < t->nreaders; i++) {
        uint64_t id = t->readers[i];
        for (int k = 0; id && k < READ_MORE_MAX; k++) {
            struct conn *c = conn_lookup(t, id);
            if (!c || c->closing || !c->ws || !c->rx_seen)
                break;
            c->rx_seen = 0;
            struct lws_pollfd pfd = {.fd = lws_get_socket_fd(c->ws),
                                     .events = LWS_POLLIN,
                                     .revents = LWS_POLLIN};
            if (pfd.fd < 0 || lws_service_fd(t->ctx, &pfd) < 0)
                break;
        }
        struct conn *c = id ? conn_lookup(t, id) : NULL;
        if (c) {
            c->rx_listed = 0;
            c->rx_seen = 0;
        }
    }
    t->nreaders = 0;
}

void conn_table_set_deferred_flush(struct conn_table *t, int on)
{
    t->deferred = on ? 1 : 0;
}

/* One write per connection per loop pass, made outside lws's writeable callback so the event
 * loop's write interest is not switched on and off for every frame. Write interest is asked
 * for only when the kernel did not take everything (lws holds the rest) or a batch was full. */
void conn_table_flush(struct conn_table *t)
{
    for (unsigned i = 0; i < t->ndirty; i++) {
        struct conn *c = t->dirty[i] ? conn_lookup(t, t->dirty[i]) : NULL;
        if (!c)
            continue;
        c->ws_dirty = 0;
        if (c->closing || !c->ws || c->transport != T_WS || c->ws_write_asked)
            continue;
        if (lws_partial_buffered(c->ws)) {
            ask_writeable(c);
            continue;
        }
        if (ws_write_batch(t, c, c->ws)) {
            conn_close(t, c, "write failed");
            continue;
        }
        if (sendq_count(&c->q) || lws_partial_buffered(c->ws))
            ask_writeable(c);
    }
    t->ndirty = 0;
}

void conn_ws_closed(struct conn_table *t, struct lws *wsi, struct conn_pss *pss)
{
    struct conn *c = conn_lookup(t, pss->conn_id);
    pss->conn_id = 0;
    if (!c || c->ws != wsi)
        return;
    c->ws = NULL;
    if (c->closing || c->transport == T_WS) {
        if (!c->closing)
            LOG_D("conn closed", "\"conn\":\"%s\",\"reason\":\"transport closed\"", c->sid);
        conn_destroy(t, c);
        return;
    }
    c->upgrading = 0; /* a failed upgrade probe: the polling transport goes on */
}
