/* conn_ws.c: the Engine.IO v4 WebSocket transport of the conn module, over wsock's sockets:
 * the upgrade request (Origin, EIO, transport, sid), direct WebSocket sessions and the upgrade
 * from polling (2probe/3probe/5), and batched writes (frame headers by hand, as many queued
 * packets as fit in one send), with the per-loop-pass deferred flush. Uses the table and
 * connection fields through conn_int.h. */
#include "conn.h"
#include "conn_int.h"

#include <libwebsockets.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "eio.h"
#include "log.h"
#include "sendq.h"
#include "wsock.h"
#include "wsproto.h"

#define WS_BATCH_BYTES (64 * 1024)
#define WS_REF_BYTES 512 /* packets this long are sent from their own buffer */

/* ---- WebSocket (wsock callbacks) ---- */

/* Refuse an upgrade the way Engine.IO's server does (a JSON error body). */
static int refuse(const char **body, int status, const char *text)
{
    *body = text;
    return status;
}

static int ws_upgrade(void *ud, struct wsock *ws, const struct wsproto_head *head,
                      const char **body)
{
    struct conn_table *t = ud;
    char arg[64];
    size_t olen = 0;
    const char *origin = wsproto_head_header(head, "origin", &olen);
    if (origin && !conn_origin_text_allowed(t->cfg, origin, olen))
        return refuse(body, 403, "{\"code\":3,\"message\":\"Bad request\"}");
    if (wsproto_head_arg(head, "EIO", arg, sizeof arg) != 1 || arg[0] != '4')
        return refuse(body, 400, "{\"code\":5,\"message\":\"Unsupported protocol version\"}");
    if (wsproto_head_arg(head, "transport", arg, sizeof arg) < 0 || strcmp(arg, "websocket") != 0)
        return refuse(body, 400, "{\"code\":0,\"message\":\"Transport unknown\"}");
    int sl = wsproto_head_arg(head, "sid", arg, sizeof arg);
    if (sl != -1) {
        struct conn *c = sl > 0 ? conn_sid_find(t, arg) : NULL;
        if (!c || c->closing || c->ws || c->transport != T_POLLING)
            return refuse(body, 400, "{\"code\":1,\"message\":\"Session ID unknown\"}");
        c->ws = ws;
        wsock_set_user(ws, c->id);
        return 0;
    }
    struct conn *c = conn_create(t, T_WS);
    if (!c) {
        LOG_W("connection refused", "\"reason\":\"max connections\"");
        return refuse(body, 503, "{\"code\":3,\"message\":\"Server full\"}");
    }
    c->ws = ws;
    wsock_set_user(ws, c->id);
    size_t alen = 0, klen = 0;
    const char *authz = wsproto_head_header(head, "authorization", &alen);
    const char *cookie = wsproto_head_header(head, "cookie", &klen);
    conn_capture_token_text(c, authz, alen, cookie, klen);
    char open[256];
    int n = eio_open_encode(open, sizeof open, c->sid, t->cfg->ping_interval_ms,
                            t->cfg->ping_timeout_ms, t->cfg->max_payload, 0);
    struct buf *b = n > 0 ? buf_from(open, (size_t)n) : NULL;
    if (!b) {
        c->ws = NULL;
        conn_destroy(t, c);
        return refuse(body, 503, NULL);
    }
    conn_send(t, c, b);
    buf_unref(b);
    LOG_D("conn opened", "\"conn\":\"%s\",\"transport\":\"websocket\"", c->sid);
    return 0;
}

static void ws_flush(struct conn_table *t, struct conn *c);

/* A whole WebSocket message from the client. */
static int ws_message(struct conn_table *t, struct conn *c, const char *p, size_t len)
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
            ws_flush(t, c);
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
                ws_flush(t, c);
            return 0;
        }
        conn_close(t, c, "unexpected packet during upgrade");
        return -1;
    }
    return conn_on_packet(t, c, p, len);
}

static void ws_on_message(void *ud, struct wsock *ws, uint64_t user, const char *p, size_t len)
{
    struct conn_table *t = ud;
    struct conn *c = conn_get(t, user);
    if (!c || c->ws != ws)
        return;
    ws_message(t, c, p, len);
}

/* One piece of a batch: a range of the scratch buffer (p NULL: the buffer may move while the
 * batch grows, so its offset), or a queued packet's own bytes. */
struct piece {
    const void *p;
    size_t off, len;
};

/* Close the scratch run [*run, off) as a piece. */
static void run_close(struct piece *pc, int *np, size_t *run, size_t off)
{
    if (off > *run)
        pc[(*np)++] = (struct piece){NULL, *run, off - *run};
    *run = off;
}

/* Frames the probe answer and as many queued packets as fit in one batch and sends them with
 * one write. Frame headers and short packets are copied into the scratch buffer; a packet of
 * WS_REF_BYTES or more (a fanout frame shared by its audience) goes out from its own buffer,
 * not copied again for each recipient. Returns -1 when the connection is gone. */
static int ws_write_batch(struct conn_table *t, struct conn *c)
{
    struct piece pc[WSOCK_IOV_MAX];
    int np = 0;
    size_t off = 0, run = 0, total = 0;
    if (conn_scratch_reserve(t, 16))
        return -1;
    if (c->probe_pending) {
        c->probe_pending = 0;
        off += eio_ws_header(t->scratch + off, 6);
        memcpy(t->scratch + off, "3probe", 6);
        off += 6;
        total = off;
    }
    unsigned n = 0;
    if (c->transport == T_WS) {
        unsigned count = sendq_count(&c->q);
        while (n < count) {
            struct buf *b = sendq_peek(&c->q, n);
            size_t bl = buf_len(b);
            int ref = bl >= WS_REF_BYTES;
            if (n && (total + 10 + bl > WS_BATCH_BYTES || np + 3 > WSOCK_IOV_MAX))
                break;
            if (conn_scratch_reserve(t, off + 10 + (ref ? 0 : bl)))
                return -1;
            off += eio_ws_header(t->scratch + off, bl);
            if (ref) {
                run_close(pc, &np, &run, off);
                pc[np++] = (struct piece){buf_cdata(b), 0, bl};
            } else {
                memcpy(t->scratch + off, buf_cdata(b), bl);
                off += bl;
            }
            total += 10 + bl;
            n++;
        }
    }
    if (np == 0) { /* all in the scratch buffer: one piece */
        if (off && wsock_send(c->ws, t->scratch, off) != 0)
            return -1;
        sendq_pop(&c->q, n);
        return 0;
    }
    run_close(pc, &np, &run, off);
    struct iovec iov[WSOCK_IOV_MAX];
    for (int i = 0; i < np; i++) {
        iov[i].iov_base = (void *)(uintptr_t)(pc[i].p ? pc[i].p : t->scratch + pc[i].off);
        iov[i].iov_len = pc[i].len;
    }
    if (wsock_sendv(c->ws, iov, np) != 0)
        return -1;
    sendq_pop(&c->q, n);
    return 0;
}

/* Write batches until the queue is empty or the kernel stops taking them (the drained
 * callback resumes). */
static void ws_flush(struct conn_table *t, struct conn *c)
{
    while (c->ws && !c->closing && !wsock_pending(c->ws)) {
        int more = c->probe_pending || (c->transport == T_WS && sendq_count(&c->q));
        if (!more)
            return;
        if (ws_write_batch(t, c) != 0)
            return; /* wsock closes it; the closed callback follows */
    }
}

void conn_ws_write(struct conn_table *t, struct conn *c)
{
    ws_flush(t, c);
}

static void ws_on_drained(void *ud, struct wsock *ws, uint64_t user)
{
    struct conn_table *t = ud;
    struct conn *c = conn_get(t, user);
    if (c && c->ws == ws)
        ws_flush(t, c);
}

void conn_table_set_deferred_flush(struct conn_table *t, int on)
{
    t->deferred = on ? 1 : 0;
}

/* One write per connection per loop pass, made once the pass has processed its input. */
void conn_table_flush(struct conn_table *t)
{
    for (unsigned i = 0; i < t->ndirty; i++) {
        struct conn *c = t->dirty[i] ? conn_lookup(t, t->dirty[i]) : NULL;
        if (!c)
            continue;
        c->ws_dirty = 0;
        if (c->closing || !c->ws || c->transport != T_WS)
            continue;
        ws_flush(t, c);
    }
    t->ndirty = 0;
}

/* The logged reason for a WebSocket that wsock closed. */
static const char *close_reason(unsigned code)
{
    switch (code) {
    case 1002:
        return "WebSocket protocol error";
    case 1003:
        return "binary frames are not supported";
    case 1008:
        return "WebSocket output over its bound";
    case 1009:
        return "message over maxPayload";
    case 1011:
        return "out of memory";
    default:
        return NULL;
    }
}

static void ws_on_closed(void *ud, struct wsock *ws, uint64_t user, unsigned code)
{
    struct conn_table *t = ud;
    struct conn *c = conn_lookup(t, user);
    if (!c || c->ws != ws)
        return;
    c->ws = NULL;
    if (c->closing || c->transport == T_WS) {
        const char *why = close_reason(code);
        if (!c->closing && why)
            LOG_I("conn closed", "\"conn\":\"%s\",\"reason\":\"%s\",\"code\":%u", c->sid, why,
                  code);
        else if (!c->closing)
            LOG_D("conn closed", "\"conn\":\"%s\",\"reason\":\"transport closed\",\"code\":%u",
                  c->sid, code);
        conn_destroy(t, c);
        return;
    }
    c->upgrading = 0; /* a failed upgrade probe: the polling transport goes on */
    c->probe_pending = 0;
}

static const struct wsock_callbacks ws_callbacks = {
    .upgrade = ws_upgrade,
    .message = ws_on_message,
    .drained = ws_on_drained,
    .closed = ws_on_closed,
};

const struct wsock_callbacks *conn_ws_callbacks(void)
{
    return &ws_callbacks;
}
