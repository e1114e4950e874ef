/* conn_poll.c: the Engine.IO v4 HTTP long-polling transport of the conn module: the
 * handshake GET, held GETs answered with the queued packets joined by the record separator,
 * POSTed payloads, immediate HTTP responses for any route, and the Origin/CORS policy shared
 * with other HTTP routes (engine.io-protocol v4, "HTTP long-polling"). Uses the table and
 * connection fields through conn_int.h. */
#include "conn.h"
#include "conn_int.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "eio.h"
#include "log.h"
#include "sendq.h"

#define HEADER_ROOM 1024
#define MAX_POLL_PACKETS 1024

/* ---- origin / CORS ---- */

int conn_origin_text_allowed(const struct config *cfg, const char *origin, size_t len)
{
    if (!origin || len == 0 || cfg->allowed_origins_count == 0)
        return 1;
    for (size_t i = 0; i < cfg->allowed_origins_count; i++)
        if (strlen(cfg->allowed_origins[i]) == len &&
            memcmp(cfg->allowed_origins[i], origin, len) == 0)
            return 1;
    return 0;
}

int conn_origin_allowed(const struct config *cfg, struct lws *wsi)
{
    char origin[512];
    int n = lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN);
    if (n <= 0)
        return 1;
    return conn_origin_text_allowed(cfg, origin, (size_t)n);
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
        conn_capture_token(c, wsi);
        char open[256];
        int n = eio_open_encode(open, sizeof open, c->sid, t->cfg->ping_interval_ms,
                                t->cfg->ping_timeout_ms, t->cfg->max_payload, 1);
        LOG_D("conn opened", "\"conn\":\"%s\",\"transport\":\"polling\"", c->sid);
        return n < 0 ? -1 : conn_http_respond(wsi, pss, 200, open);
    }
    struct conn *c = conn_sid_find(t, sid);
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
    int rc = conn_on_packet(args[0], args[1], p, len);
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
        if (conn_scratch_reserve(t, LWS_PRE + HEADER_ROOM + pss->body_len + 1))
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
    struct conn *c = conn_lookup(t, pss->conn_id);
    const char *ctype = "text/plain; charset=UTF-8";
    /* a held poll's headers are gone: answer CORS from the Origin saved when it was held */
    const char *saved = pss->status_sent == 2 ? (pss->body ? pss->body : "") : NULL;
    pss->kind = PSS_NONE;
    if (!c || c->closing) {
        if (c && c->poll == wsi)
            c->poll = NULL;
        if (conn_scratch_reserve(t, LWS_PRE + HEADER_ROOM + 1))
            return -1;
        t->scratch[LWS_PRE + HEADER_ROOM] = '1';
        return write_http_o(t, wsi, 200, ctype, 1, saved);
    }
    c->poll = NULL;
    if (c->noop_pending) {
        c->noop_pending = 0;
        if (conn_scratch_reserve(t, LWS_PRE + HEADER_ROOM + 1))
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
    if (conn_scratch_reserve(t, LWS_PRE + HEADER_ROOM + total + 1))
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
        struct conn *c = conn_lookup(t, pss->conn_id);
        if (c && c->poll == wsi)
            c->poll = NULL;
    }
    free(pss->body);
    pss->body = NULL;
    pss->kind = PSS_NONE;
}
