/* rt_sync: a sync request's entry, its answers, and cancel.
 *
 * runtime_sync checks the envelope, the route name, the receiver, the payload size, auth,
 * the rate limit, room membership and the input schema before a request starts (the sender is
 * answered with the error code otherwise), and sends the request's cancel id first on the
 * progress channel. The answers to the sender (sync-<i> and the ack: errors, the success
 * envelope) and the recipients' frame text are written here, as is the user table handlers
 * see. runtime_cancel and runtime_conn_closed cancel requests in flight. */
#include "runtime.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "envelope.h"
#include "jtext.h"
#include "ratelimit.h"
#include "routes.h"
#include "rt_gen.h"
#include "rt_req.h"
#include "schema.h"
#include "session.h"
#include "sio.h"
#include "syncenv.h"
#include "timer.h"

#define RECEIVER_MAX 256
#define CB_MAX 256

/* ---- answers ---- */

static void send_frame(struct runtime *rt, uint64_t conn, struct buf *b)
{
    if (b)
        rt->host.send(rt->host.ud, conn, b);
}

/* Answer the sender (env stolen) on sync-<i> and by ack. */
void rt_answer(struct rt_req *req, json_t *env)
{
    struct buf *ev = NULL, *ack = NULL;
    if (req->answered) { /* cancelled: request.aborted went out already */
        json_decref(env);
        return;
    }
    req->answered = 1;
    if (env && envelope_frames("sync", req->ri, req->ack_id, env, &ev, &ack) == 0) {
        send_frame(req->rt, req->sender, ev);
        send_frame(req->rt, req->sender, ack);
    }
    buf_unref(ev);
    buf_unref(ack);
    json_decref(env);
}

void rt_answer_error(struct rt_req *req, const char *code, json_t *params)
{
    json_t *env = envelope_error(code, NULL);
    if (params)
        json_object_set_new(env, "errorParams", params);
    rt_answer(req, env);
}

static json_t *param(const char *key, json_t *value)
{
    return json_pack("[{s:s, s:o}]", "key", key, "value", value);
}

static int append_message(struct jtext_buf *b, const char *a, const char *wire, const char *c);

/* The recipients' frame text, serialised once: {"cb":…,"fullName":…,"status":"success",
 * "serverOutput":…,"clientOutput":{},"message":"<wire> sync success"}. NULL on failure. */
void rt_text_done(struct runtime *rt)
{
    if (rt->text.cap > RT_TEXT_KEEP)
        jtext_buf_close(&rt->text);
    rt->text.len = 0;
}

const char *rt_fanout_text(struct rt_req *req, size_t *len)
{
    const char *cb = req->cb ? req->cb : req->route->wire, *wire = req->route->wire;
    struct jtext_buf *tb = &req->rt->text, b = *tb;
    b.len = 0;
    static const char k_full[] = ",\"fullName\":", k_so[] = ",\"status\":\"success\",\"serverOutput\":",
                      k_msg[] = ",\"clientOutput\":{},\"message\":";
    size_t wl = strlen(wire);
    /* the envelope around the result is a few names long: one block for all of it */
    int rc = jtext_buf_reserve(&b, (req->result_text ? req->result_len : 0) + 3 * wl + 192);
    rc = rc ? rc : jtext_buf_append(&b, "{\"cb\":", 6);
    rc = rc ? rc : jtext_string_append(&b, cb, strlen(cb));
    rc = rc ? rc : jtext_buf_append(&b, k_full, sizeof k_full - 1);
    rc = rc ? rc : jtext_string_append(&b, wire, wl);
    rc = rc ? rc : jtext_buf_append(&b, k_so, sizeof k_so - 1);
    if (req->result_text && req->so_end > req->so_start)
        rc = rc ? rc : jtext_buf_append(&b, req->result_text + req->so_start,
                                        req->so_end - req->so_start);
    else if (req->result_text)
        rc = rc ? rc : jtext_buf_append(&b, req->result_text, req->result_len);
    else
        rc = rc ? rc : jtext_dump_append(&b, req->server_output);
    rc = rc ? rc : jtext_buf_append(&b, k_msg, sizeof k_msg - 1);
    rc = rc ? rc : append_message(&b, "", wire, " sync success");
    rc = rc ? rc : jtext_buf_append(&b, "}", 1);
    *tb = b; /* the block may have moved */
    if (rc) {
        rt_text_done(req->rt);
        return NULL;
    }
    *len = b.len;
    return b.data;
}

/* Append "<a><wire><c>" as one quoted JSON string (the success messages). */
static int append_message(struct jtext_buf *b, const char *a, const char *wire, const char *c)
{
    char msg[ROUTES_KEY_MAX + 64];
    size_t al = strlen(a), wl = strlen(wire), cl = strlen(c);
    if (al + wl + cl >= sizeof msg)
        return -EINVAL;
    memcpy(msg, a, al);
    memcpy(msg + al, wire, wl);
    memcpy(msg + al + wl, c, cl);
    return jtext_string_append(b, msg, al + wl + cl);
}

/* The success answer, written as text around one dump of the handler's result:
 * {"status":"success","message":"sync <wire> success","result":…}. */
void rt_answer_success(struct rt_req *req)
{
    if (req->answered)
        return;
    struct jtext_buf *tb = &req->rt->text, b = *tb;
    b.len = 0;
    static const char head[] = "{\"status\":\"success\",\"message\":", k_res[] = ",\"result\":";
    int rc = jtext_buf_reserve(&b, (req->result_text ? req->result_len : 0) + 128);
    rc = rc ? rc : jtext_buf_append(&b, head, sizeof head - 1);
    rc = rc ? rc : append_message(&b, "sync ", req->route->wire, " success");
    rc = rc ? rc : jtext_buf_append(&b, k_res, sizeof k_res - 1);
    if (req->result_text)
        rc = rc ? rc : jtext_buf_append(&b, req->result_text, req->result_len);
    else
        rc = rc ? rc : jtext_dump_append(&b, req->result);
    rc = rc ? rc : jtext_buf_append(&b, "}", 1);
    *tb = b; /* the block may have moved */
    if (rc) {
        rt_text_done(req->rt);
        rt_answer_error(req, "server.unavailable", NULL);
        return;
    }
    req->answered = 1;
    struct buf *ev = NULL, *ack = NULL;
    if (envelope_frames_text("sync", req->ri, req->ack_id, b.data, b.len, &ev, &ack) == 0) {
        send_frame(req->rt, req->sender, ev);
        send_frame(req->rt, req->sender, ack);
    }
    buf_unref(ev);
    buf_unref(ack);
    rt_text_done(req->rt);
}

/* ---- users ---- */

static json_t *user_json(const struct session *s)
{
    if (!s)
        return NULL;
    json_t *roles = json_object_get(s->claims, "roles");
    json_t *name = json_object_get(s->claims, "name");
    json_t *u = json_pack("{s:s, s:s, s:o, s:O}", "id", s->user_id, "session", s->session_id,
                          "roles", json_is_array(roles) ? json_incref(roles) : json_array(),
                          "claims", s->claims);
    if (u && json_is_string(name)) /* absent (nil in Lua) unless the token names the user */
        json_object_set(u, "name", name);
    return u;
}

json_t *rt_user_of(struct runtime *rt, uint64_t conn)
{
    return user_json(rt->host.session(rt->host.ud, conn));
}

static int has_roles(const struct session *s, const struct rt_route *r)
{
    json_t *roles = json_object_get(s->claims, "roles");
    for (size_t i = 0; i < r->nroles; i++) {
        int found = 0;
        size_t j;
        json_t *v;
        json_array_foreach(roles, j, v) found |= json_is_string(v) &&
                                                 strcmp(json_string_value(v), r->roles[i]) == 0;
        if (!found)
            return 0;
    }
    return 1;
}

/* ---- entry ---- */

/* A random RFC 4122 version 4 UUID in out (37 bytes), without printf on the request path. */
/* A random (version 4) UUID. The bytes come from libsodium's CSPRNG, one block per 256 ids
 * instead of one getrandom() call per request. */
static void uuid_v4(struct runtime *rt, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[16];
    if (rt->rnd_pos + sizeof r > sizeof rt->rnd) {
        randombytes_buf(rt->rnd, sizeof rt->rnd);
        rt->rnd_pos = 0;
    }
    memcpy(r, rt->rnd + rt->rnd_pos, sizeof r);
    sodium_memzero(rt->rnd + rt->rnd_pos, sizeof r);
    rt->rnd_pos += sizeof r;
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[r[i] >> 4];
        *o++ = hex[r[i] & 15];
    }
    *o = '\0';
}

/* A sync request's fields, from a json_t envelope or from syncenv: strings borrowed and not
 * NUL-terminated (NULL: absent or not a string); data either a json_t or checked JSON text. */
struct sync_in {
    const char *name, *receiver, *cb;
    size_t name_len, receiver_len, cb_len;
    const json_t *data;    /* any JSON value, or NULL */
    const char *data_text; /* or: a data object's JSON text */
    size_t data_len;
    int ignore_self;
};

static void sync_start(struct runtime *rt, struct rt_req *req, const struct sync_in *in,
                       size_t raw_len);

void runtime_sync(struct runtime *rt, uint64_t conn, const json_t *payload, int64_t ack_id,
                  size_t raw_len)
{
    struct rt_req *req = rt_req_new(rt, conn, ack_id);
    if (!req)
        return;

    if (!json_is_object(payload)) {
        /* Not an object: answered on the plain `sync` event (reference §2.1). */
        json_t *env = envelope_error("sync.invalidRequest", NULL);
        char *text = jtext_dump(env, NULL);
        if (text) {
            struct buf *b = sio_event_encode("sync", 4, text, strlen(text), -1);
            send_frame(rt, conn, b);
            buf_unref(b);
            free(text);
        }
        json_decref(env);
        if (ack_id >= 0)
            rt_answer_error(req, "sync.invalidRequest", NULL);
        rt_req_free(req);
        return;
    }
    req->ri = json_incref(json_object_get(payload, "responseIndex"));
    const json_t *name = json_object_get(payload, "name");
    const json_t *recv = json_object_get(payload, "receiver");
    const json_t *cb = json_object_get(payload, "cb");
    struct sync_in in = {
        .name = json_string_value(name),
        .name_len = json_string_length(name),
        .receiver = json_string_value(recv),
        .receiver_len = json_string_length(recv),
        .cb = json_string_value(cb),
        .cb_len = json_string_length(cb),
        .data = json_object_get(payload, "data"),
        .ignore_self = json_is_true(json_object_get(payload, "ignoreSelf")),
    };
    sync_start(rt, req, &in, raw_len);
}

void runtime_sync_env(struct runtime *rt, uint64_t conn, const struct syncenv *env,
                      int64_t ack_id, size_t raw_len)
{
    struct rt_req *req = rt_req_new(rt, conn, ack_id);
    if (!req)
        return;
    req->ri = json_incref(env->ri);
    struct sync_in in = {
        .name = env->name,
        .name_len = env->name_len,
        .receiver = env->receiver,
        .receiver_len = env->receiver_len,
        .cb = env->cb,
        .cb_len = env->cb_len,
        .data_text = env->data,
        .data_len = env->data_len,
        .ignore_self = env->ignore_self,
    };
    sync_start(rt, req, &in, raw_len);
}

/* The checks before a request starts, in order; the first that fails is the answer. */
static void sync_start(struct runtime *rt, struct rt_req *req, const struct sync_in *in,
                       size_t raw_len)
{
    const struct config *cfg = rt->cfg;
    uint64_t conn = req->sender;
    const json_t *data = in->data;
    json_t *data_tree = NULL; /* data_text parsed, for the input schema */
    req->ignore_self = in->ignore_self;
    if (in->cb && in->cb_len && in->cb_len <= CB_MAX)
        req->cb = strndup(in->cb, in->cb_len);
    char key[ROUTES_KEY_MAX];
    const char *code = NULL;
    json_t *params = NULL;
    if (!in->name || !(in->data_text || json_is_object(data))) {
        code = "sync.invalidRequest";
    } else if (routes_parse_name(in->name, in->name_len, key, sizeof key) < 0) {
        code = "sync.invalidName";
        params = param("name", json_stringn(in->name, in->name_len));
    } else if (!(req->route = rt_gen_find(req->gen, key))) {
        code = "sync.notFound";
        params = param("name", json_stringn(in->name, in->name_len));
    }
    if (!code) {
        /* The cancel id (issue: streaming) goes first on the progress channel. */
        char pname[128];
        uuid_v4(rt, req->cancel_id);
        if (envelope_answer_name(pname, sizeof pname, "sync-progress", req->ri) == 0) {
            char body[80] = "{\"__cancelId\":\"";
            size_t bl = strlen(body);
            memcpy(body + bl, req->cancel_id, 36);
            memcpy(body + bl + 36, "\"}", 3);
            bl += 38;
            struct buf *b = sio_event_encode(pname, strlen(pname), body, bl, -1);
            send_frame(rt, conn, b);
            buf_unref(b);
        }
    }
    if (!code) {
        size_t rl = in->receiver ? in->receiver_len : 0;
        const char *rs = in->receiver ? in->receiver : "";
        while (rl && *rs == ' ') {
            rs++;
            rl--;
        }
        while (rl && rs[rl - 1] == ' ')
            rl--;
        if (rl == 0 || rl > RECEIVER_MAX)
            code = "sync.missingReceiver";
        else if (!(req->receiver = strndup(rs, rl)))
            code = "server.unavailable";
    }
    if (!code) {
        /* The packet's size bounds the data's: cheap, and no second encoding. */
        size_t dl = raw_len;
        if (!dl && in->data_text) {
            dl = in->data_len;
        } else if (!dl) {
            char *dump = jtext_dump(data, NULL);
            dl = dump ? strlen(dump) : 0;
            free(dump);
        }
        if (dl > cfg->sync_max_payload)
            code = "sync.payloadTooLarge";
    }

    const struct session *s = rt->host.session(rt->host.ud, conn);
    if (!code && req->route->login && !s)
        code = "auth.required";
    if (!code && req->route->nroles && !has_roles(s, req->route))
        code = "auth.forbidden";
    if (!code) {
        int limit = req->route->rate_limit < 0 ? (int)cfg->sync_rate_limit : req->route->rate_limit;
        if (limit > 0) {
            char rkey[ROUTES_KEY_MAX + 300];
            if (s)
                snprintf(rkey, sizeof rkey, "u:%s|%s", s->user_id, req->route->key);
            else {
                char ck[80] = "";
                if (rt->host.client_key)
                    rt->host.client_key(rt->host.ud, conn, ck, sizeof ck);
                if (!ck[0]) { /* "c:<conn id>", the common case: no snprintf per request */
                    ck[0] = 'c';
                    ck[1] = ':';
                    envelope_format_u64(ck + 2, conn);
                }
                /* fits: ck < 80 bytes, a route key < ROUTES_KEY_MAX */
                size_t cl = strlen(ck), kl = strnlen(req->route->key, ROUTES_KEY_MAX - 1);
                memcpy(rkey, ck, cl);
                rkey[cl] = '|';
                memcpy(rkey + cl + 1, req->route->key, kl);
                rkey[cl + 1 + kl] = '\0';
            }
            unsigned wait = ratelimit_hit(rt->rl, rkey, (unsigned)limit, rt_mono_ns() / 1000000u);
            if (wait) {
                code = "sync.rateLimitExceeded";
                params = param("seconds", json_integer(wait));
            }
        }
    }
    if (!code && !req->route->allow_non_member &&
        !rt->host.is_member(rt->host.ud, conn, req->receiver, strlen(req->receiver)))
        code = "sync.notRoomMember";
    if (!code && req->route->input && in->data_text) {
        /* The schema validates a tree: build it from the text (checked already) */
        if (!(data_tree = jtext_load(in->data_text, in->data_len, NULL)))
            code = "server.unavailable";
        data = data_tree;
    }
    if (!code && req->route->input) {
        char field[256];
        const char *reason = "type";
        if (schema_validate(req->route->input, data, field, sizeof field, &reason) != 0) {
            code = "sync.invalidInput";
            params = json_pack("[{s:s, s:s}, {s:s, s:s}]", "key", "field", "value", field, "key",
                               "reason", "value", reason);
        }
    }
    if (!code && rt_attach_vm(req) != 0)
        code = "server.unavailable";
    if (!code && !data && !(req->data_text = malloc(in->data_len ? in->data_len : 1)))
        code = "server.unavailable";
    if (code) {
        json_decref(data_tree);
        rt_answer_error(req, code, params);
        rt_req_free(req);
        rt_rearm(rt);
        return;
    }
    if (data) { /* shared, never modified */
        req->data = data_tree ? data_tree : json_incref((json_t *)data);
    } else {
        memcpy(req->data_text, in->data_text, in->data_len);
        req->data_len = in->data_len;
    }
    req->user = user_json(s);
    rt_step(req);
    rt_rearm(rt);
}

static void cancel(struct rt_req *req, int tell_sender)
{
    if (req->cancelled)
        return;
    if (tell_sender)
        rt_answer_error(req, "request.aborted", NULL);
    req->cancelled = 1;
    req->answered = 1; /* the sender's answer is request.aborted (or it is gone) */
    if (req->act == ACT_WAIT && req->sleeping) {
        /* resume now: sleep and flushPressure raise request.aborted in the handler */
        timer_cancel(&req->timer);
        req->sleeping = 0;
        req->act = ACT_RESUME;
        rt_ready_push(req);
    }
}

void runtime_conn_closed(struct runtime *rt, uint64_t conn)
{
    /* A gone sender's requests are cancelled; they still fan out if the handler commits. */
    for (struct rt_req *r = rt->by_sender[rt_sender_bucket(conn)]; r; r = r->sender_next)
        if (r->sender == conn)
            cancel(r, 0);
    rt_rearm(rt);
}

void runtime_cancel(struct runtime *rt, uint64_t conn, const char *cancel_id)
{
    for (struct rt_req *r = rt->by_sender[rt_sender_bucket(conn)]; r; r = r->sender_next)
        if (r->sender == conn && r->cancel_id[0] && strcmp(r->cancel_id, cancel_id) == 0) {
            cancel(r, 1);
            break;
        }
    rt_rearm(rt);
}
