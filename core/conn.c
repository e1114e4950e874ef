/* conn.c: the connection table and what both Engine.IO transports share: slots, ids and
 * sids, creating and closing connections, the send queue and write requests, virtual
 * connections (HTTP sync), heartbeat and session timers, Socket.IO state accessors and the
 * handling of one inbound Engine.IO packet. The transports live beside it: conn_poll.c (HTTP
 * long-polling, origin/CORS) and conn_ws.c (WebSocket over wsock, deferred flush); all
 * three share struct conn and struct conn_table through conn_int.h.
 *
 * Lifetime: a connection is created by a handshake (polling GET without sid, or a WebSocket
 * without sid) and lives in a slot of the table. conn_close() removes its room membership at
 * once, unlinks its sid and marks it closing; the struct itself is freed when no socket
 * refers to it any more (WebSocket: when wsock reports the close at the end of the loop
 * pass; polling: at once, since the held GET finds the id gone and answers with a close
 * packet). Every wsi and wsock stores only the connection id, never the pointer.
 *
 * Writes: frames sit in the connection's send queue as shared bufs holding Engine.IO packet
 * text. At the end of a loop pass every queued packet of a WebSocket is framed (RFC 6455
 * header by hand) and sent with a single wsock_sendv (headers and short packets copied into
 * one scratch buffer, long ones sent from their shared buf); a held polling GET
 * answers with the queued packets joined by the record separator (engine.io-protocol v4,
 * "HTTP long-polling"). */
#include "conn.h"
#include "conn_int.h"

#include <errno.h>
#include <libwebsockets.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "eio.h"
#include "events.h"
#include "fanout.h"
#include "log.h"
#include "room.h"
#include "runtime.h"
#include "sendq.h"
#include "session.h"
#include "srooms.h"
#include "timer.h"
#include "wsock.h"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#define CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static void hb_fire(struct timer_node *n, void *ud);
static void aux_fire(struct timer_node *n, void *ud);
static int deliver(void *ud, room_member_t m, struct buf *frame);

/* ---- table ---- */

struct conn_table *conn_table_new(const struct config *cfg, struct room_registry *rooms,
                                  uint64_t now)
{
    struct conn_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    (void)now;
    t->cfg = cfg;
    t->rooms = rooms;
    t->nslots = cfg->max_connections;
    t->slots = calloc(t->nslots, sizeof *t->slots);
    t->gens = calloc(t->nslots, sizeof *t->gens);
    t->free_slots = malloc(t->nslots * sizeof *t->free_slots);
    t->pending = malloc(t->nslots * sizeof *t->pending);
    /* twice the slots: a connection flushed early in a pass can be listed again by a close
     * later in the same pass; past the bound want_write falls back to a writeable callback */
    t->dirty_cap = t->nslots * 2;
    t->dirty = malloc(t->dirty_cap * sizeof *t->dirty);
    size_t nb = 64;
    while (nb < t->nslots)
        nb <<= 1;
    t->sid_buckets = calloc(nb, sizeof *t->sid_buckets);
    t->sid_mask = nb - 1;
    t->wheel = timer_wheel_new(now_ms(), 100, 1024);
    t->fanout = fanout_new(rooms, deliver, t);
    t->srooms = srooms_new((size_t)cfg->max_connections * 2, cfg->max_rooms_per_socket);
    t->ping = buf_from("2", 1);
    t->noop = buf_from("6", 1);
    t->close_pkt = buf_from("1", 1);
    if (!t->slots || !t->gens || !t->free_slots || !t->pending || !t->dirty || !t->sid_buckets ||
        !t->wheel || !t->fanout || !t->srooms || !t->ping || !t->noop || !t->close_pkt)
        goto fail;
    for (unsigned i = 0; i < t->nslots; i++)
        t->free_slots[i] = t->nslots - 1 - i;
    t->nfree = t->nslots;
    return t;
fail:
    conn_table_free(t);
    return NULL;
}

void conn_table_free(struct conn_table *t)
{
    if (!t)
        return;
    for (unsigned i = 0; t->slots && i < t->nslots; i++)
        if (t->slots[i])
            conn_destroy(t, t->slots[i]);
    fanout_free(t->fanout);
    srooms_free(t->srooms);
    timer_wheel_free(t->wheel);
    buf_unref(t->ping);
    buf_unref(t->noop);
    buf_unref(t->close_pkt);
    free(t->slots);
    free(t->gens);
    free(t->free_slots);
    free(t->pending);
    free(t->dirty);
    free(t->sid_buckets);
    free(t->scratch);
    free(t);
}

struct fanout *conn_table_fanout(struct conn_table *t)
{
    return t->fanout;
}

struct room_registry *conn_table_rooms(struct conn_table *t)
{
    return t->rooms;
}

void conn_table_set_runtime(struct conn_table *t, struct runtime *rt)
{
    t->rt = rt;
}

struct runtime *conn_table_runtime(struct conn_table *t)
{
    return t->rt;
}

void conn_table_broadcast(struct conn_table *t, struct buf *packet)
{
    for (unsigned i = 0; i < t->nslots; i++)
        if (t->slots[i] && !t->slots[i]->closing && t->slots[i]->sio_connected)
            conn_send(t, t->slots[i], packet);
}

struct srooms *conn_table_srooms(struct conn_table *t)
{
    return t->srooms;
}

const struct config *conn_table_config(struct conn_table *t)
{
    return t->cfg;
}

void conn_table_set_context(struct conn_table *t, struct lws_context *ctx)
{
    if (!ctx && t->ctx)
        lws_sul_cancel(&t->pending_sul);
    t->ctx = ctx;
}

void conn_table_tick(struct conn_table *t, uint64_t now)
{
    (void)now;
    timer_advance(t->wheel, now_ms(), t);
}

unsigned conn_table_count(const struct conn_table *t)
{
    return t->live;
}

void conn_table_close_all(struct conn_table *t, const char *reason)
{
    for (unsigned i = 0; i < t->nslots; i++)
        if (t->slots[i] && !t->slots[i]->closing)
            conn_close(t, t->slots[i], reason);
}

struct conn *conn_lookup(struct conn_table *t, uint64_t id)
{
    uint32_t slot = (uint32_t)(id & 0xffffffffu);
    if (slot == 0 || slot > t->nslots)
        return NULL;
    struct conn *c = t->slots[slot - 1];
    return (c && c->id == id) ? c : NULL;
}

struct conn *conn_get(struct conn_table *t, uint64_t id)
{
    struct conn *c = conn_lookup(t, id);
    return (c && !c->closing && !c->close_pending) ? c : NULL;
}

static void run_pending_closes(lws_sorted_usec_list_t *sul)
{
    struct conn_table *t = lws_container_of(sul, struct conn_table, pending_sul);
    while (t->npending) {
        struct conn *c = conn_lookup(t, t->pending[--t->npending]);
        if (c && c->close_pending) {
            c->close_pending = 0;
            conn_close(t, c, c->close_reason);
        }
    }
}

void conn_close_later(struct conn_table *t, struct conn *c, const char *reason)
{
    if (c->closing || c->close_pending)
        return;
    c->close_pending = 1;
    c->close_reason = reason;
    t->pending[t->npending++] = c->id; /* at most one entry per live slot */
    if (t->ctx)
        lws_sul_schedule(t->ctx, 0, &t->pending_sul, run_pending_closes, 1);
}

uint64_t conn_id(const struct conn *c)
{
    return c->id;
}

size_t conn_queued_bytes(const struct conn *c)
{
    return sendq_bytes(&c->q);
}

static size_t sid_hash(const char *sid)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *sid; sid++)
        h = (h ^ (unsigned char)*sid) * 1099511628211ULL;
    return (size_t)h;
}

struct conn *conn_sid_find(struct conn_table *t, const char *sid)
{
    for (struct conn *c = t->sid_buckets[sid_hash(sid) & t->sid_mask]; c; c = c->sid_next)
        if (strcmp(c->sid, sid) == 0)
            return c;
    return NULL;
}

static void sid_unlink(struct conn_table *t, struct conn *c)
{
    if (!c->in_sid_map)
        return;
    struct conn **pp = &t->sid_buckets[sid_hash(c->sid) & t->sid_mask];
    while (*pp && *pp != c)
        pp = &(*pp)->sid_next;
    if (*pp)
        *pp = c->sid_next;
    c->in_sid_map = 0;
}

/* Random 120-bit Engine.IO sid, base64url. */
static void make_sid(char out[SID_LEN + 1])
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char r[SID_LEN];
    randombytes_buf(r, sizeof r);
    for (int i = 0; i < SID_LEN; i++)
        out[i] = a[r[i] & 63];
    out[SID_LEN] = '\0';
}

struct conn *conn_create(struct conn_table *t, enum transport tr)
{
    if (!t->nfree)
        return NULL;
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    uint32_t slot = t->free_slots[--t->nfree];
    t->gens[slot]++;
    c->id = ((uint64_t)t->gens[slot] << 32) | (uint64_t)(slot + 1);
    t->slots[slot] = c;
    t->live++;
    c->transport = (unsigned char)tr;
    sendq_init(&c->q);
    timer_node_init(&c->hb, hb_fire);
    timer_node_init(&c->aux, aux_fire);
    do
        make_sid(c->sid);
    while (conn_sid_find(t, c->sid));
    size_t b = sid_hash(c->sid) & t->sid_mask;
    c->sid_next = t->sid_buckets[b];
    t->sid_buckets[b] = c;
    c->in_sid_map = 1;
    uint64_t now = now_ms();
    timer_schedule(t->wheel, &c->hb, now + t->cfg->ping_interval_ms);
    timer_schedule(t->wheel, &c->aux, now + t->cfg->handshake_timeout_ms);
    return c;
}

/* The part of closing that must happen at once: no more membership, no more requests, no
 * way to reach it by sid, no timers. Idempotent. */
static void detach(struct conn_table *t, struct conn *c)
{
    if (!c->closing) {
        c->closing = 1;
        events_on_close(t, c);
        room_leave_all(t->rooms, c->id);
        if (t->rt)
            runtime_conn_closed(t->rt, c->id);
    }
    sid_unlink(t, c);
    timer_cancel(&c->hb);
    timer_cancel(&c->aux);
}

void conn_destroy(struct conn_table *t, struct conn *c)
{
    uint32_t slot = (uint32_t)(c->id & 0xffffffffu) - 1;
    detach(t, c);
    if (c->ws_dirty) /* rare: a connection that dies with frames not yet flushed */
        for (unsigned i = 0; i < t->ndirty; i++)
            if (t->dirty[i] == c->id)
                t->dirty[i] = 0;
    sendq_close(&c->q);
    session_free(c->session);
    free(c->hs_token);
    free(c->peer);
    if (c->poll && c->transport != T_VIRTUAL)
        lws_callback_on_writable(c->poll); /* it answers with a close packet */
    t->slots[slot] = NULL;
    t->free_slots[t->nfree++] = slot;
    t->live--;
    free(c);
}

void conn_close(struct conn_table *t, struct conn *c, const char *reason)
{
    if (c->closing)
        return;
    c->close_pending = 0;
    char esc[256];
    log_write(c->transport == T_VIRTUAL ? LOG_DEBUG : LOG_INFO, "conn closed",
              "\"conn\":\"%s\",\"reason\":\"%s\"", c->sid, log_escape(reason, esc, sizeof esc));
    detach(t, c);
    if (c->ws)
        wsock_close(c->ws, 0); /* its closed callback destroys c */
    else
        conn_destroy(t, c);
}

/* ---- sending ---- */

static void want_write(struct conn_table *t, struct conn *c)
{
    if (t->deferred && c->transport == T_WS && c->ws && (c->ws_dirty || t->ndirty < t->dirty_cap)) {
        /* written by conn_table_flush once the loop pass has processed its input */
        if (!c->ws_dirty) {
            c->ws_dirty = 1;
            t->dirty[t->ndirty++] = c->id;
        }
        return;
    }
    if (c->transport == T_VIRTUAL) {
        if (c->poll)
            lws_callback_on_writable(c->poll);
    } else if (c->transport == T_WS) {
        /* once per loop pass: each request re-arms write interest in the event loop */
        if (c->ws)
            conn_ws_write(t, c);
    } else if (c->poll) {
        lws_callback_on_writable(c->poll);
    }
}

int conn_send(struct conn_table *t, struct conn *c, struct buf *packet)
{
    if (c->closing || c->close_pending)
        return -EPIPE;
    int rc = sendq_push(&c->q, packet, t->cfg->send_queue_max_frames, t->cfg->send_queue_max_bytes);
    if (rc == -ENOBUFS) {
        LOG_W("slow consumer", "\"conn\":\"%s\",\"queuedFrames\":%u,\"queuedBytes\":%zu", c->sid,
              sendq_count(&c->q), sendq_bytes(&c->q));
        conn_close_later(t, c, "send queue over its bound (slow consumer)");
        return rc;
    }
    if (rc == 0)
        want_write(t, c);
    return rc;
}

static int deliver(void *ud, room_member_t m, struct buf *frame)
{
    struct conn_table *t = ud;
    struct conn *c = conn_get(t, m);
    if (!c)
        return -ENOENT;
    return conn_send(t, c, frame);
}

int conn_scratch_reserve(struct conn_table *t, size_t need)
{
    if (need <= t->scratch_cap)
        return 0;
    size_t cap = t->scratch_cap ? t->scratch_cap : 16384;
    while (cap < need)
        cap *= 2;
    unsigned char *p = realloc(t->scratch, cap);
    if (!p)
        return -ENOMEM;
    t->scratch = p;
    t->scratch_cap = cap;
    return 0;
}

/* ---- virtual connections (HTTP sync requests) ---- */

struct conn *conn_open_virtual(struct conn_table *t, struct lws *wsi)
{
    struct conn *c = conn_create(t, T_VIRTUAL);
    if (!c)
        return NULL;
    timer_cancel(&c->hb);
    timer_cancel(&c->aux);
    sid_unlink(t, c); /* not reachable through Engine.IO */
    c->sio_connected = 1;
    c->poll = wsi;
    return c;
}

int conn_is_virtual(const struct conn *c)
{
    return c->transport == T_VIRTUAL;
}

void conn_set_peer(struct conn *c, const char *ip)
{
    free(c->peer);
    c->peer = ip && *ip ? strdup(ip) : NULL;
}

const char *conn_peer(const struct conn *c)
{
    return c->peer;
}

struct buf *conn_pop(struct conn *c)
{
    struct buf *b = sendq_peek(&c->q, 0);
    if (!b)
        return NULL;
    buf_ref(b);
    sendq_pop(&c->q, 1);
    return b;
}

void conn_virtual_detach(struct conn_table *t, struct conn *c)
{
    c->poll = NULL;
    conn_close(t, c, "http request ended");
}

/* ---- timers ---- */

static void hb_fire(struct timer_node *n, void *ud)
{
    struct conn_table *t = ud;
    struct conn *c = CONTAINER_OF(n, struct conn, hb);
    if (c->ping_outstanding) {
        conn_close(t, c, "ping timeout");
        return;
    }
    c->ping_outstanding = 1;
    timer_schedule(t->wheel, &c->hb, now_ms() + t->cfg->ping_timeout_ms);
    conn_send(t, c, t->ping);
}

static void aux_fire(struct timer_node *n, void *ud)
{
    struct conn_table *t = ud;
    struct conn *c = CONTAINER_OF(n, struct conn, aux);
    if (!c->sio_connected) {
        conn_close(t, c, "handshake timeout");
        return;
    }
    if (!c->session)
        return;
    if (c->expired) {
        conn_close(t, c, "session expired");
        return;
    }
    c->expired = 1;
    char json[64];
    int n2 = snprintf(json, sizeof json, "{\"graceMs\":%u}", t->cfg->session_grace_ms);
    struct buf *b = events_event_frame("sessionExpired", json, (size_t)n2);
    timer_schedule(t->wheel, &c->aux, now_ms() + t->cfg->session_grace_ms);
    if (b) {
        conn_send(t, c, b);
        buf_unref(b);
    }
}

void conn_schedule_expiry(struct conn_table *t, struct conn *c)
{
    c->expired = 0;
    if (!c->session || !c->session->exp) {
        timer_cancel(&c->aux);
        return;
    }
    int64_t left_s = c->session->exp - (int64_t)time(NULL);
    uint64_t left = left_s > 0 ? (uint64_t)left_s * 1000u : 0;
    timer_schedule(t->wheel, &c->aux, now_ms() + left);
}

/* ---- Socket.IO state accessors ---- */

int conn_sio_connected(const struct conn *c)
{
    return c->sio_connected;
}

void conn_set_sio_connected(struct conn *c, const char *sio_sid)
{
    c->sio_connected = 1;
    snprintf(c->sio_sid, sizeof c->sio_sid, "%s", sio_sid);
}

const char *conn_handshake_token(const struct conn *c)
{
    return c->hs_token;
}

void conn_clear_handshake_token(struct conn *c)
{
    free(c->hs_token);
    c->hs_token = NULL;
}

struct session *conn_session(const struct conn *c)
{
    return c->session;
}

void conn_set_session(struct conn_table *t, struct conn *c, struct session *s)
{
    session_free(c->session);
    c->session = s;
    if (c->transport != T_VIRTUAL)
        conn_schedule_expiry(t, c);
}

/* ---- inbound packets ---- */

/* One Engine.IO packet from either transport (engine.io-protocol v4 "Packet"). Returns 0,
 * 1 after an orderly close asked by the client, or -1 after closing it for an error. */
int conn_on_packet(struct conn_table *t, struct conn *c, const char *p, size_t len)
{
    enum eio_type type;
    const char *data;
    size_t dlen;
    if (eio_decode(p, len, &type, &data, &dlen) != 0) {
        conn_close(t, c, "malformed Engine.IO packet");
        return -1;
    }
    switch (type) {
    case EIO_PONG:
        if (c->ping_outstanding) {
            c->ping_outstanding = 0;
            timer_schedule(t->wheel, &c->hb, now_ms() + t->cfg->ping_interval_ms);
        }
        return 0;
    case EIO_MESSAGE: {
        const char *reason = NULL;
        if (events_on_packet(t, c, data, dlen, &reason) != 0) {
            conn_close(t, c, reason ? reason : "bad Socket.IO packet");
            return reason == EVENTS_CLIENT_DISCONNECT ? 1 : -1;
        }
        return c->closing ? -1 : 0;
    }
    case EIO_CLOSE:
        conn_close(t, c, "client closed");
        return 1;
    case EIO_NOOP:
    case EIO_PING: /* protocol 3 habit; harmless */
        return 0;
    default:
        conn_close(t, c, "unexpected Engine.IO packet type");
        return -1;
    }
}

void conn_capture_token_text(struct conn *c, const char *authz, size_t alen, const char *cookie,
                             size_t clen)
{
    char hdr[8192];
    size_t n = 0;
    const char *tok = NULL;
    if (authz && alen < sizeof hdr) {
        memcpy(hdr, authz, alen);
        hdr[alen] = '\0';
        tok = session_token_from_authorization(hdr, &n);
    }
    if (!tok && cookie && clen < sizeof hdr) {
        memcpy(hdr, cookie, clen);
        hdr[clen] = '\0';
        tok = session_token_from_cookie(hdr, &n);
    }
    if (tok) {
        c->hs_token = malloc(n + 1);
        if (c->hs_token) {
            memcpy(c->hs_token, tok, n);
            c->hs_token[n] = '\0';
        }
    }
}

void conn_capture_token(struct conn *c, struct lws *wsi)
{
    char authz[8192], cookie[8192];
    int an = lws_hdr_copy(wsi, authz, sizeof authz, WSI_TOKEN_HTTP_AUTHORIZATION);
    int cn = lws_hdr_copy(wsi, cookie, sizeof cookie, WSI_TOKEN_HTTP_COOKIE);
    conn_capture_token_text(c, an > 0 ? authz : NULL, an > 0 ? (size_t)an : 0,
                            cn > 0 ? cookie : NULL, cn > 0 ? (size_t)cn : 0);
}
