/* conn.c: the connection table and the Engine.IO v4 transports (polling and WebSocket).
 *
 * Lifetime: a connection is created by a handshake (polling GET without sid, or a WebSocket
 * without sid) and lives in a slot of the table. conn_close() removes its room membership at
 * once, unlinks its sid and marks it closing; the struct itself is freed when no wsi refers
 * to it any more (WebSocket: in the CLOSED callback after an async kill; polling: at once,
 * since the held GET finds the id gone and answers with a close packet). Every wsi stores
 * only the connection id, never the pointer.
 *
 * Writes: frames sit in the connection's send queue as shared bufs holding Engine.IO packet
 * text. A WebSocket writeable callback frames every queued packet (RFC 6455 header by hand)
 * into one scratch buffer and sends it with a single LWS_WRITE_RAW; a held polling GET
 * answers with the queued packets joined by the record separator (engine.io-protocol v4,
 * "HTTP long-polling"). */
#include "conn.h"

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
#include "srooms.h"
#include "session.h"
#include "timer.h"

enum pss_kind { PSS_NONE = 0, PSS_POLL_GET, PSS_POLL_POST, PSS_RESPONSE, PSS_WS };
enum transport { T_POLLING = 0, T_WS = 1, T_VIRTUAL = 2 };

#define SID_LEN 20
#define WS_BATCH_BYTES (64 * 1024)
#define HEADER_ROOM 1024
#define MAX_POLL_PACKETS 1024

struct conn {
    uint64_t id;
    struct conn *sid_next; /* sid hash chain */
    struct lws *ws;        /* WebSocket (probing or upgraded) */
    struct lws *poll;      /* held polling GET */
    struct sendq q;
    struct timer_node hb;  /* next ping, or the pong deadline */
    struct timer_node aux; /* handshake timeout, then session expiry and grace */
    struct session *session;
    char *hs_token; /* token from handshake headers, until CONNECT */
    char *peer;     /* virtual connections: the client's address */
    char *rx;       /* WebSocket message being reassembled */
    size_t rx_len;
    unsigned char transport;
    unsigned sio_connected : 1, probe_pending : 1, noop_pending : 1, ping_outstanding : 1,
        closing : 1, expired : 1, in_sid_map : 1, close_pending : 1, upgrading : 1,
        ws_write_asked : 1, /* a WebSocket writeable callback is already on its way */
        ws_dirty : 1,       /* listed in the table's flush list */
        rx_listed : 1,      /* listed in the table's read-more list */
        rx_seen : 1;        /* a WebSocket message arrived since the flag was cleared */
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
    /* Read more (conn_table_read_more): WebSocket connections that received during this
     * pass and may have more bytes waiting; at most one entry per slot. */
    uint64_t *readers;
    unsigned nreaders;
    int deferred;
};

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
static void conn_destroy(struct conn_table *t, struct conn *c);

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
    t->readers = malloc(t->nslots * sizeof *t->readers);
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
    if (!t->slots || !t->gens || !t->free_slots || !t->pending || !t->dirty || !t->readers ||
        !t->sid_buckets || !t->wheel || !t->fanout ||
        !t->srooms || !t->ping || !t->noop || !t->close_pkt)
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
    free(t->readers);
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

static struct conn *lookup(struct conn_table *t, uint64_t id)
{
    uint32_t slot = (uint32_t)(id & 0xffffffffu);
    if (slot == 0 || slot > t->nslots)
        return NULL;
    struct conn *c = t->slots[slot - 1];
    return (c && c->id == id) ? c : NULL;
}

struct conn *conn_get(struct conn_table *t, uint64_t id)
{
    struct conn *c = lookup(t, id);
    return (c && !c->closing && !c->close_pending) ? c : NULL;
}

static void run_pending_closes(lws_sorted_usec_list_t *sul)
{
    struct conn_table *t = lws_container_of(sul, struct conn_table, pending_sul);
    while (t->npending) {
        struct conn *c = lookup(t, t->pending[--t->npending]);
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

static struct conn *sid_find(struct conn_table *t, const char *sid)
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
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char r[SID_LEN];
    randombytes_buf(r, sizeof r);
    for (int i = 0; i < SID_LEN; i++)
        out[i] = a[r[i] & 63];
    out[SID_LEN] = '\0';
}

static struct conn *conn_create(struct conn_table *t, enum transport tr)
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
    while (sid_find(t, c->sid));
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

static void conn_destroy(struct conn_table *t, struct conn *c)
{
    uint32_t slot = (uint32_t)(c->id & 0xffffffffu) - 1;
    detach(t, c);
    if (c->ws_dirty) /* rare: a connection that dies with frames not yet flushed */
        for (unsigned i = 0; i < t->ndirty; i++)
            if (t->dirty[i] == c->id)
                t->dirty[i] = 0;
    if (c->rx_listed)
        for (unsigned i = 0; i < t->nreaders; i++)
            if (t->readers[i] == c->id)
                t->readers[i] = 0;
    sendq_close(&c->q);
    session_free(c->session);
    free(c->hs_token);
    free(c->peer);
    free(c->rx);
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
              "\"conn\":\"%s\",\"reason\":\"%s\"", c->sid,
              log_escape(reason, esc, sizeof esc));
    detach(t, c);
    if (c->ws)
        lws_set_timeout(c->ws, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
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
        if (c->ws && !c->ws_write_asked) {
            c->ws_write_asked = 1;
            lws_callback_on_writable(c->ws);
        }
    } else if (c->poll) {
        lws_callback_on_writable(c->poll);
    }
}

int conn_send(struct conn_table *t, struct conn *c, struct buf *packet)
{
    if (c->closing || c->close_pending)
        return -EPIPE;
    int rc = sendq_push(&c->q, packet, t->cfg->send_queue_max_frames,
                        t->cfg->send_queue_max_bytes);
    if (rc == -ENOBUFS) {
        LOG_W("slow consumer", "\"conn\":\"%s\",\"queuedFrames\":%u,\"queuedBytes\":%zu",
              c->sid, sendq_count(&c->q), sendq_bytes(&c->q));
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

static int scratch_reserve(struct conn_table *t, size_t need)
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
static int on_packet(struct conn_table *t, struct conn *c, const char *p, size_t len)
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

static void capture_token(struct conn *c, struct lws *wsi)
{
    char hdr[8192];
    size_t n = 0;
    const char *tok = NULL;
    if (lws_hdr_copy(wsi, hdr, sizeof hdr, WSI_TOKEN_HTTP_AUTHORIZATION) > 0)
        tok = session_token_from_authorization(hdr, &n);
    if (!tok && lws_hdr_copy(wsi, hdr, sizeof hdr, WSI_TOKEN_HTTP_COOKIE) > 0)
        tok = session_token_from_cookie(hdr, &n);
    if (tok) {
        c->hs_token = malloc(n + 1);
        if (c->hs_token) {
            memcpy(c->hs_token, tok, n);
            c->hs_token[n] = '\0';
        }
    }
}

/* ---- origin / CORS ---- */

int conn_origin_allowed(const struct config *cfg, struct lws *wsi)
{
    char origin[512];
    int n = lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN);
    if (n <= 0 || cfg->allowed_origins_count == 0)
        return 1;
    for (size_t i = 0; i < cfg->allowed_origins_count; i++)
        if (strcmp(cfg->allowed_origins[i], origin) == 0)
            return 1;
    return 0;
}

static int cors_headers(struct lws *wsi, const char *saved, unsigned char **p, unsigned char *end)
{
    char origin[512];
    int n = saved ? (int)strlen(saved) : lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN);
    if (saved && n < (int)sizeof origin)
        memcpy(origin, saved, (size_t)n + 1);
    if (n <= 0 || n >= (int)sizeof origin)
        return 0;
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-origin:",
                                    (const unsigned char *)origin, n, p, end) ||
        lws_add_http_header_by_name(wsi,
                                    (const unsigned char *)"access-control-allow-credentials:",
                                    (const unsigned char *)"true", 4, p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"vary:",
                                    (const unsigned char *)"Origin", 6, p, end))
        return -1;
    return 0;
}

int conn_add_cors_headers(struct lws *wsi, unsigned char **p, unsigned char *end)
{
    return cors_headers(wsi, NULL, p, end);
}

/* ---- HTTP long-polling ---- */

int conn_http_respond(struct lws *wsi, struct conn_pss *pss, unsigned status, const char *body)
{
    size_t n = strlen(body);
    free(pss->body);
    pss->body = malloc(n + 1);
    if (!pss->body)
        return -1;
    memcpy(pss->body, body, n + 1);
    pss->body_len = n;
    pss->http_status = (unsigned short)status;
    pss->kind = PSS_RESPONSE;
    lws_callback_on_writable(wsi);
    return 0;
}

static int eio_error(struct lws *wsi, struct conn_pss *pss, unsigned status, int code,
                     const char *msg)
{
    char body[128];
    snprintf(body, sizeof body, "{\"code\":%d,\"message\":\"%s\"}", code, msg);
    return conn_http_respond(wsi, pss, status, body);
}

/* Write status + headers + body in one HTTP_FINAL write from the scratch buffer, whose
 * payload already sits at scratch + LWS_PRE + HEADER_ROOM. */
static int write_http_o(struct conn_table *t, struct lws *wsi, unsigned status,
                        const char *ctype, size_t body_len, const char *saved_origin)
{
    unsigned char *start = t->scratch + LWS_PRE;
    unsigned char *p = start, *end = start + HEADER_ROOM;
    if (lws_add_http_common_headers(wsi, status, ctype, body_len, &p, end) ||
        cors_headers(wsi, saved_origin, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) ||
        lws_finalize_http_header(wsi, &p, end))
        return -1;
    size_t hlen = (size_t)(p - start);
    memmove(p, start + HEADER_ROOM, body_len);
    if (lws_write(wsi, start, hlen + body_len, LWS_WRITE_HTTP_FINAL) < 0)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int write_http(struct conn_table *t, struct lws *wsi, unsigned status, const char *ctype,
                      size_t body_len)
{
    return write_http_o(t, wsi, status, ctype, body_len, NULL);
}

int conn_http_request(struct conn_table *t, struct lws *wsi, struct conn_pss *pss,
                      const char *uri)
{
    (void)uri;
    char arg[64];
    memset(pss, 0, sizeof *pss);
    int is_post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
    int is_options = lws_hdr_total_length(wsi, WSI_TOKEN_OPTIONS_URI) > 0;
    if (!conn_origin_allowed(t->cfg, wsi)) {
        char body[] = "{\"code\":3,\"message\":\"Bad request\"}";
        return conn_http_respond(wsi, pss, 403, body);
    }
    if (is_options)
        return conn_http_respond(wsi, pss, 204, "");
    const char *eio = lws_get_urlarg_by_name(wsi, "EIO=", arg, sizeof arg);
    if (!eio || strcmp(eio, "4") != 0)
        return eio_error(wsi, pss, 400, 5, "Unsupported protocol version");
    const char *tr = lws_get_urlarg_by_name(wsi, "transport=", arg, sizeof arg);
    if (!tr || strcmp(tr, "polling") != 0)
        return eio_error(wsi, pss, 400, 0, "Transport unknown");
    const char *sid = lws_get_urlarg_by_name(wsi, "sid=", arg, sizeof arg);
    if (!sid) {
        if (is_post)
            return eio_error(wsi, pss, 400, 1, "Session ID unknown");
        struct conn *c = conn_create(t, T_POLLING);
        if (!c) {
            LOG_W("connection refused", "\"reason\":\"max connections\"");
            return eio_error(wsi, pss, 503, 3, "Server full");
        }
        capture_token(c, wsi);
        char open[256];
        int n = eio_open_encode(open, sizeof open, c->sid, t->cfg->ping_interval_ms,
                                t->cfg->ping_timeout_ms, t->cfg->max_payload, 1);
        LOG_D("conn opened", "\"conn\":\"%s\",\"transport\":\"polling\"", c->sid);
        return n < 0 ? -1 : conn_http_respond(wsi, pss, 200, open);
    }
    struct conn *c = sid_find(t, sid);
    if (!c || c->closing)
        return eio_error(wsi, pss, 400, 1, "Session ID unknown");
    if (c->transport != T_POLLING)
        return eio_error(wsi, pss, 400, 3, "Bad request");
    pss->conn_id = c->id;
    if (is_post) {
        char cl[32];
        if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
            return eio_error(wsi, pss, 411, 3, "Content-Length required");
        unsigned long long want = strtoull(cl, NULL, 10);
        if (want == 0 || want > t->cfg->max_payload) {
            conn_close(t, c, "polling payload too large");
            return eio_error(wsi, pss, 413, 3, "Payload too large");
        }
        pss->kind = PSS_POLL_POST;
        pss->body_cap = (size_t)want;
        pss->body = malloc(pss->body_cap);
        return pss->body ? 0 : -1;
    }
    if (c->poll) {
        conn_close(t, c, "overlapping polling GET");
        return eio_error(wsi, pss, 400, 3, "Bad request");
    }
    pss->kind = PSS_POLL_GET;
    c->poll = wsi;
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    if (c->upgrading)
        c->noop_pending = 1; /* a poll during the upgrade ends at once */
    if (sendq_count(&c->q) || c->noop_pending) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    /* Held: give the header table back to lws's small pool (else a few hundred waiting polls
     * would starve every other HTTP request); keep the Origin for the CORS answer. */
    char origin[512];
    if (lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) > 0)
        pss->body = strdup(origin); /* freed with the transaction (conn_http_closed) */
    pss->status_sent = 2;           /* headers detached */
    lws_http_headers_detach(wsi);
    return 0;
}

int conn_http_body(struct conn_table *t, struct lws *wsi, struct conn_pss *pss, const void *in,
                   size_t len)
{
    (void)t;
    (void)wsi;
    if (pss->kind != PSS_POLL_POST)
        return 0;
    if (pss->body_len + len > pss->body_cap)
        return -1; /* more than Content-Length announced */
    memcpy(pss->body + pss->body_len, in, len);
    pss->body_len += len;
    return 0;
}

static int post_packet(void *ud, const char *p, size_t len)
{
    void **args = ud;
    int rc = on_packet(args[0], args[1], p, len);
    return rc < 0 ? 1 : rc > 0 ? 2 : 0;
}

int conn_http_body_done(struct conn_table *t, struct lws *wsi, struct conn_pss *pss)
{
    if (pss->kind != PSS_POLL_POST)
        return 0;
    struct conn *c = conn_get(t, pss->conn_id);
    char *body = pss->body;
    size_t len = pss->body_len;
    pss->body = NULL;
    if (!c) {
        free(body);
        return eio_error(wsi, pss, 400, 1, "Session ID unknown");
    }
    void *args[2] = {t, c};
    int rc = eio_payload_split(body, len, MAX_POLL_PACKETS, post_packet, args);
    free(body);
    if (rc == 2) /* the client closed the session */
        return conn_http_respond(wsi, pss, 200, "ok");
    if (rc != 0) { /* malformed payload, or a packet that closed the session */
        c = conn_get(t, pss->conn_id);
        if (c)
            conn_close(t, c, "malformed polling payload");
        return eio_error(wsi, pss, 400, 3, "Bad request");
    }
    return conn_http_respond(wsi, pss, 200, "ok");
}

int conn_http_writeable(struct conn_table *t, struct lws *wsi, struct conn_pss *pss)
{
    if (pss->kind == PSS_RESPONSE) {
        const char *ctype = pss->body_len && pss->body[0] == '{' ? "application/json"
                                                                  : "text/plain; charset=UTF-8";
        if (scratch_reserve(t, LWS_PRE + HEADER_ROOM + pss->body_len + 1))
            return -1;
        memcpy(t->scratch + LWS_PRE + HEADER_ROOM, pss->body, pss->body_len);
        size_t n = pss->body_len;
        unsigned status = pss->http_status;
        free(pss->body);
        pss->body = NULL;
        pss->kind = PSS_NONE;
        return write_http(t, wsi, status, ctype, n);
    }
    if (pss->kind != PSS_POLL_GET)
        return 0;
    struct conn *c = lookup(t, pss->conn_id);
    const char *ctype = "text/plain; charset=UTF-8";
    /* a held poll's headers are gone: answer CORS from the Origin saved when it was held */
    const char *saved = pss->status_sent == 2 ? (pss->body ? pss->body : "") : NULL;
    pss->kind = PSS_NONE;
    if (!c || c->closing) {
        if (c && c->poll == wsi)
            c->poll = NULL;
        if (scratch_reserve(t, LWS_PRE + HEADER_ROOM + 1))
            return -1;
        t->scratch[LWS_PRE + HEADER_ROOM] = '1';
        return write_http_o(t, wsi, 200, ctype, 1, saved);
    }
    c->poll = NULL;
    if (c->noop_pending) {
        c->noop_pending = 0;
        if (scratch_reserve(t, LWS_PRE + HEADER_ROOM + 1))
            return -1;
        t->scratch[LWS_PRE + HEADER_ROOM] = '6';
        return write_http_o(t, wsi, 200, ctype, 1, saved);
    }
    /* engine.io-protocol v4: packets joined by 0x1e, at most maxPayload bytes per response
     * (always at least one packet). */
    size_t total = 0;
    unsigned n = 0, count = sendq_count(&c->q);
    while (n < count) {
        size_t add = buf_len(sendq_peek(&c->q, n)) + (n ? 1 : 0);
        if (n && total + add > t->cfg->max_payload)
            break;
        total += add;
        n++;
    }
    if (n == 0) { /* woken with nothing to send: hold again */
        c->poll = wsi;
        pss->kind = PSS_POLL_GET;
        return 0;
    }
    if (scratch_reserve(t, LWS_PRE + HEADER_ROOM + total + 1))
        return -1;
    unsigned char *o = t->scratch + LWS_PRE + HEADER_ROOM;
    for (unsigned i = 0; i < n; i++) {
        struct buf *b = sendq_peek(&c->q, i);
        if (i)
            *o++ = EIO_RECORD_SEP;
        memcpy(o, buf_cdata(b), buf_len(b));
        o += buf_len(b);
    }
    sendq_pop(&c->q, n);
    return write_http_o(t, wsi, 200, ctype, total, saved);
}

void conn_http_closed(struct conn_table *t, struct lws *wsi, struct conn_pss *pss)
{
    if (pss->kind == PSS_POLL_GET) {
        struct conn *c = lookup(t, pss->conn_id);
        if (c && c->poll == wsi)
            c->poll = NULL;
    }
    free(pss->body);
    pss->body = NULL;
    pss->kind = PSS_NONE;
}

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
        struct conn *c = sid_find(t, sid);
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
    capture_token(c, wsi);
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
    return on_packet(t, c, p, len);
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
    if (scratch_reserve(t, LWS_PRE + 16))
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
            if (scratch_reserve(t, need))
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
    struct conn *c = lookup(t, pss->conn_id);
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

/* lws reads at most rx_buffer_size bytes (256, for the memory per connection) per readiness
 * event, so a client with 16 requests in its socket would get one of them served per loop
 * pass. A connection that received something in this pass is serviced again, as if readable,
 * while each read still yields a message: the requests of a burst are all processed in one
 * pass and their answers leave in one write. Bounded per connection and pass; whatever is
 * left is read on the next pass, as lws would. */
#define READ_MORE_MAX 64

void conn_table_read_more(struct conn_table *t)
{
    for (unsigned i = 0; i < t->nreaders; i++) {
        uint64_t id = t->readers[i];
        for (int k = 0; id && k < READ_MORE_MAX; k++) {
            struct conn *c = lookup(t, id);
            if (!c || c->closing || !c->ws || !c->rx_seen)
                break;
            c->rx_seen = 0;
            struct lws_pollfd pfd = {.fd = lws_get_socket_fd(c->ws),
                                     .events = LWS_POLLIN,
                                     .revents = LWS_POLLIN};
            if (pfd.fd < 0 || lws_service_fd(t->ctx, &pfd) < 0)
                break;
        }
        struct conn *c = id ? lookup(t, id) : NULL;
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
        struct conn *c = t->dirty[i] ? lookup(t, t->dirty[i]) : NULL;
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
    struct conn *c = lookup(t, pss->conn_id);
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
