/* http_sync.c: POST /sync/… over the runtime, as JSON or SSE. */
#include "http_sync.h"

#include <errno.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "conn.h"
#include "envelope.h"
#include "jtext.h"
#include "log.h"
#include "runtime.h"
#include "session.h"

#define KIND_BODY 20 /* pss kinds of this module (conn.c uses small numbers) */
#define KIND_WAIT 21
#define NAME_MAX_LEN 300
#define HEADER_ROOM 1024

struct hs_req {
    char name[NAME_MAX_LEN];
    char *body;
    size_t len, cap;
    int sse, opened, done;
    char *token;
    char *out; /* response bytes waiting for the writeable callback (after LWS_PRE) */
    size_t out_len, out_cap;
};

int http_sync_owns(const struct conn_pss *pss)
{
    return pss->kind == KIND_BODY || pss->kind == KIND_WAIT;
}

static void hs_free(struct hs_req *r)
{
    if (!r)
        return;
    free(r->body);
    free(r->token);
    free(r->out);
    free(r);
}

static int respond_error(struct lws *wsi, struct conn_pss *pss, const char *code)
{
    json_t *env = envelope_error(code, NULL);
    char *text = env ? jtext_dump(env, NULL) : NULL;
    int status = envelope_http_status(code);
    json_decref(env);
    int rc = conn_http_respond(wsi, pss, (unsigned)status, text ? text : "{}");
    free(text);
    return rc;
}

static int wants_sse(struct lws *wsi)
{
    char accept[256], arg[16];
    if (lws_hdr_copy(wsi, accept, sizeof accept, WSI_TOKEN_HTTP_ACCEPT) > 0 &&
        strstr(accept, "text/event-stream"))
        return 1;
    const char *v = lws_get_urlarg_by_name(wsi, "stream=", arg, sizeof arg);
    return v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

int http_sync_request(struct conn_table *t, struct lws *wsi, struct conn_pss *pss,
                      const char *uri)
{
    const struct config *cfg = conn_table_config(t);
    memset(pss, 0, sizeof *pss);
    if (!conn_origin_allowed(cfg, wsi))
        return respond_error(wsi, pss, "auth.forbidden");
    if (lws_hdr_total_length(wsi, WSI_TOKEN_OPTIONS_URI) > 0)
        return conn_http_respond(wsi, pss, 204, "");
    if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) <= 0)
        return respond_error(wsi, pss, "sync.methodNotAllowed");
    size_t ulen = strlen(uri);
    if (ulen <= 6 || ulen + 1 >= NAME_MAX_LEN)
        return respond_error(wsi, pss, "sync.invalidName");
    char cl[32];
    if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
        return respond_error(wsi, pss, "sync.invalidRequest"); /* chunked bodies: refused */
    unsigned long long want = strtoull(cl, NULL, 10);
    if (want > cfg->max_payload)
        return respond_error(wsi, pss, "sync.payloadTooLarge");
    struct hs_req *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    snprintf(r->name, sizeof r->name, "%s", uri + 1); /* "sync/board/moveCard/v1" */
    r->sse = wants_sse(wsi);
    r->cap = (size_t)want;
    r->body = malloc(r->cap + 1);
    char auth[8192];
    size_t tl = 0;
    if (lws_hdr_copy(wsi, auth, sizeof auth, WSI_TOKEN_HTTP_AUTHORIZATION) > 0) {
        const char *tok = session_token_from_authorization(auth, &tl);
        if (tok)
            r->token = strndup(tok, tl);
    }
    if (!r->body) {
        hs_free(r);
        return -1;
    }
    pss->ext = r;
    pss->kind = KIND_BODY;
    if (want == 0) /* no body callbacks will come */
        return http_sync_body_done(t, wsi, pss);
    return 0;
}

int http_sync_body(struct conn_table *t, struct lws *wsi, struct conn_pss *pss, const void *in,
                   size_t len)
{
    (void)t;
    (void)wsi;
    struct hs_req *r = pss->ext;
    if (pss->kind != KIND_BODY || !r)
        return 0;
    if (r->len + len > r->cap)
        return -1;
    memcpy(r->body + r->len, in, len);
    r->len += len;
    return 0;
}

int http_sync_body_done(struct conn_table *t, struct lws *wsi, struct conn_pss *pss)
{
    struct hs_req *r = pss->ext;
    if (pss->kind != KIND_BODY || !r)
        return 0;
    const struct config *cfg = conn_table_config(t);
    json_t *body = jtext_load(r->body, r->len, NULL);
    if (!json_is_object(body)) {
        json_decref(body);
        pss->ext = NULL;
        hs_free(r);
        return respond_error(wsi, pss, "sync.invalidRequest");
    }
    struct session *s = NULL;
    if (r->token) {
        int rc = session_from_token(cfg->keys, r->token, strlen(r->token), (int64_t)time(NULL),
                                    cfg->jwt_leeway_s, &s);
        if (rc != 0) {
            json_decref(body);
            pss->ext = NULL;
            hs_free(r);
            return respond_error(wsi, pss, session_error_code(rc));
        }
    }
    struct runtime *rt = conn_table_runtime(t);
    struct conn *c = rt ? conn_open_virtual(t, wsi) : NULL;
    if (!c) {
        session_free(s);
        json_decref(body);
        pss->ext = NULL;
        hs_free(r);
        return respond_error(wsi, pss, "server.unavailable");
    }
    conn_set_session(t, c, s);
    char ip[64];
    lws_get_peer_simple(wsi, ip, sizeof ip);
    conn_set_peer(c, ip);
    json_t *data = json_object_get(body, "data");
    json_t *payload = json_pack("{s:s, s:O, s:O, s:b, s:i}", "name", r->name, "data",
                                data ? data : json_object(), "receiver",
                                json_object_get(body, "receiver") ? json_object_get(body, "receiver")
                                                                  : json_null(),
                                "ignoreSelf", json_is_true(json_object_get(body, "ignoreSelf")),
                                "responseIndex", 1);
    json_t *cb = json_object_get(body, "cb");
    if (payload && json_is_string(cb))
        json_object_set(payload, "cb", cb);
    json_decref(body);
    size_t raw_len = r->len;
    free(r->body);
    r->body = NULL;
    pss->kind = KIND_WAIT;
    pss->conn_id = conn_id(c);
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    runtime_sync(rt, conn_id(c), payload ? payload : json_null(), -1, raw_len);
    json_decref(payload);
    return 0;
}

static int out_append(struct hs_req *r, const char *a, size_t n)
{
    if (r->out_len + n > r->out_cap) {
        size_t cap = r->out_cap ? r->out_cap : 4096;
        while (cap < r->out_len + n)
            cap *= 2;
        char *nb = realloc(r->out, LWS_PRE + HEADER_ROOM + cap);
        if (!nb)
            return -1;
        r->out = nb;
        r->out_cap = cap;
    }
    memcpy(r->out + LWS_PRE + HEADER_ROOM + r->out_len, a, n);
    r->out_len += n;
    return 0;
}

static int sse_event(struct hs_req *r, const char *event, const char *json)
{
    return out_append(r, "event: ", 7) || out_append(r, event, strlen(event)) ||
           out_append(r, "\ndata: ", 7) || out_append(r, json, strlen(json)) ||
           out_append(r, "\n\n", 2);
}

/* Turn the queued packets into response bytes; returns 1 when the final answer is in. */
static int collect(struct conn *c, struct hs_req *r, int *status)
{
    struct buf *b;
    while (!r->done && (b = conn_pop(c))) {
        const char *p = buf_cdata(b);
        size_t n = buf_len(b);
        json_t *arr = (n > 2 && p[0] == '4' && p[1] == '2') ? jtext_load(p + 2, n - 2, NULL)
                                                             : NULL;
        buf_unref(b);
        const char *ev = json_string_value(json_array_get(arr, 0));
        json_t *payload = json_array_get(arr, 1);
        if (ev && strcmp(ev, "sync-progress-1") == 0 && r->sse &&
            !json_object_get(payload, "__cancelId")) {
            char *text = jtext_dump(payload, NULL);
            if (text && !r->opened) {
                r->opened = 1;
                out_append(r, ": connected\n\n", 13);
            }
            if (text)
                sse_event(r, "stream", text);
            free(text);
        } else if (ev && strcmp(ev, "sync-1") == 0) {
            const char *st = json_string_value(json_object_get(payload, "status"));
            int ok = st && strcmp(st, "success") == 0;
            json_t *hs = json_object_get(payload, "httpStatus");
            /* once chunks went out the response is an event stream: 200 whatever the end */
            *status = (ok || (r->sse && r->opened)) ? 200
                      : json_is_integer(hs)        ? (int)json_integer_value(hs)
                                                   : 400;
            char *text = jtext_dump(payload, NULL);
            if (r->sse && (r->opened || ok)) {
                if (!r->opened) {
                    r->opened = 1;
                    out_append(r, ": connected\n\n", 13);
                }
                sse_event(r, ok ? "final" : "error", text ? text : "{}");
            } else {
                r->sse = 0; /* a refusal before any chunk is a plain JSON response */
                out_append(r, text ? text : "{}", text ? strlen(text) : 2);
            }
            free(text);
            r->done = 1;
        }
        json_decref(arr);
    }
    return r->done;
}

int http_sync_writeable(struct conn_table *t, struct lws *wsi, struct conn_pss *pss)
{
    struct hs_req *r = pss->ext;
    if (pss->kind != KIND_WAIT || !r)
        return 0;
    struct conn *c = conn_get(t, pss->conn_id);
    int status = 200;
    if (c)
        collect(c, r, &status);
    else if (!r->done)
        return -1; /* closed under us */
    if (!r->out_len && !(r->done && !r->sse && !r->opened))
        return 0;
    unsigned char *start = (unsigned char *)r->out + LWS_PRE;
    unsigned char *body = start + HEADER_ROOM;
    size_t hlen = 0;
    if (!pss->status_sent) {
        if (!r->out && out_append(r, "", 0))
            return -1;
        start = (unsigned char *)r->out + LWS_PRE;
        body = start + HEADER_ROOM;
        unsigned char *p = start, *end = start + HEADER_ROOM;
        int sse = r->sse && r->opened;
        if (lws_add_http_common_headers(wsi, (unsigned)status,
                                        sse ? "text/event-stream" : "application/json",
                                        sse ? LWS_ILLEGAL_HTTP_CONTENT_LEN : r->out_len, &p,
                                        end) ||
            conn_add_cors_headers(wsi, &p, end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                        (const unsigned char *)"no-cache, no-transform", 22, &p,
                                        end) ||
            (sse && lws_add_http_header_by_name(wsi, (const unsigned char *)"x-accel-buffering:",
                                                (const unsigned char *)"no", 2, &p, end)) ||
            lws_finalize_http_header(wsi, &p, end))
            return -1;
        hlen = (size_t)(p - start);
        memmove(body - hlen, start, hlen);
        pss->status_sent = 1;
    }
    int final = r->done;
    size_t n = hlen + r->out_len;
    if (lws_write(wsi, body - hlen, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < 0)
        return -1;
    r->out_len = 0;
    if (!final)
        return 0;
    if (c)
        conn_virtual_detach(t, c);
    int sse = r->sse;
    pss->kind = 0;
    pss->ext = NULL;
    hs_free(r);
    if (sse) /* EOF ends the event stream */
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

void http_sync_closed(struct conn_table *t, struct lws *wsi, struct conn_pss *pss)
{
    (void)wsi;
    struct hs_req *r = pss->ext;
    if (pss->kind == KIND_WAIT) {
        struct conn *c = conn_get(t, pss->conn_id);
        if (c)
            conn_virtual_detach(t, c); /* cancels the request (runtime_conn_closed) */
    }
    pss->ext = NULL;
    pss->kind = 0;
    hs_free(r);
}
