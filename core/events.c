/* events.c: Socket.IO CONNECT and the LuckySync room/session events (see WIRE.md). */
#include "events.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "conn.h"
#include "envelope.h"
#include "jtext.h"
#include "log.h"
#include "room.h"
#include "runtime.h"
#include "session.h"
#include "sio.h"
#include "srooms.h"
#include "syncenv.h"

const char EVENTS_CLIENT_DISCONNECT[] = "client disconnected";

#define ROOM_NAME_CAP 1100 /* implicit names: prefix + ids bounded by the token size */

struct buf *events_event_frame(const char *name, const char *json, size_t json_len)
{
    return sio_event_encode(name, strlen(name), json, json_len, -1);
}

int events_session_room(char *out, size_t cap, const char *session_id)
{
    int n = snprintf(out, cap, "%cs:%s", EVENTS_IMPLICIT_PREFIX, session_id);
    return (n < 0 || (size_t)n >= cap) ? -1 : n;
}

int events_user_room(char *out, size_t cap, const char *user_id)
{
    int n = snprintf(out, cap, "%cu:%s", EVENTS_IMPLICIT_PREFIX, user_id);
    return (n < 0 || (size_t)n >= cap) ? -1 : n;
}

/* ---- answers ---- */

/* Send the envelope (stolen) as `<prefix>-<i>` and, with an ack id, as the Socket.IO ack. */
static void answer(struct conn_table *t, struct conn *c, const char *prefix, const json_t *ri,
                   int64_t ack_id, json_t *env)
{
    struct buf *ev = NULL, *ack = NULL;
    if (env && envelope_frames(prefix, ri, ack_id, env, &ev, &ack) == 0) {
        if (ev)
            conn_send(t, c, ev);
        if (ack)
            conn_send(t, c, ack);
    }
    buf_unref(ev);
    buf_unref(ack);
    json_decref(env);
}

static json_t *error_env(const char *code)
{
    return envelope_error(code, NULL);
}

/* ---- rooms ---- */

static int is_implicit(const char *name)
{
    return name[0] == EVENTS_IMPLICIT_PREFIX;
}

static json_t *explicit_rooms(struct conn_table *t, struct conn *c)
{
    struct room_registry *r = conn_table_rooms(t);
    json_t *arr = json_array();
    size_t n = room_member_room_count(r, conn_id(c));
    for (size_t i = 0; i < n; i++) {
        const char *name;
        size_t len;
        if (room_member_room(r, conn_id(c), i, &name, &len) == 0 && !is_implicit(name))
            json_array_append_new(arr, json_stringn(name, len));
    }
    return arr;
}

static size_t explicit_count(struct conn_table *t, struct conn *c, const char **oldest,
                             size_t *oldest_len)
{
    struct room_registry *r = conn_table_rooms(t);
    size_t n = room_member_room_count(r, conn_id(c)), count = 0;
    *oldest = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *name;
        size_t len;
        if (room_member_room(r, conn_id(c), i, &name, &len) == 0 && !is_implicit(name)) {
            if (!count) {
                *oldest = name;
                *oldest_len = len;
            }
            count++;
        }
    }
    return count;
}

/* Trim and check a client-chosen room name: 1..max_room_name bytes, no control characters.
 * Returns 0 and the trimmed slice, or -1. */
static int room_name_check(const struct config *cfg, const char *s, size_t len, const char **out,
                           size_t *out_len)
{
    while (len && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' ||
                   s[len - 1] == '\r'))
        len--;
    if (len == 0 || len > cfg->max_room_name)
        return -1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return -1;
    *out = s;
    *out_len = len;
    return 0;
}

/* Join with the per-socket FIFO cap: joining one more than max_rooms_per_socket leaves the
 * oldest explicit room first. */
static int join_capped(struct conn_table *t, struct conn *c, const char *name, size_t len)
{
    const struct config *cfg = conn_table_config(t);
    struct room_registry *r = conn_table_rooms(t);
    if (room_is_member(r, conn_id(c), name, len))
        return 0;
    const char *oldest;
    size_t oldest_len = 0;
    while (explicit_count(t, c, &oldest, &oldest_len) >= cfg->max_rooms_per_socket && oldest) {
        char copy[1024];
        size_t n = oldest_len < sizeof copy ? oldest_len : sizeof copy - 1;
        memcpy(copy, oldest, n);
        room_leave(r, conn_id(c), copy, n);
    }
    int rc = room_join(r, conn_id(c), name, len);
    return rc < 0 ? rc : 0;
}

static void join_implicit(struct conn_table *t, struct conn *c, int join)
{
    struct session *s = conn_session(c);
    if (!s)
        return;
    char name[ROOM_NAME_CAP];
    struct room_registry *r = conn_table_rooms(t);
    int n = events_session_room(name, sizeof name, s->session_id);
    if (n > 0)
        join ? room_join(r, conn_id(c), name, (size_t)n) : room_leave(r, conn_id(c), name, (size_t)n);
    n = events_user_room(name, sizeof name, s->user_id);
    if (n > 0)
        join ? room_join(r, conn_id(c), name, (size_t)n) : room_leave(r, conn_id(c), name, (size_t)n);
}

static void rejoin_session_rooms(struct conn_table *t, struct conn *c)
{
    struct session *s = conn_session(c);
    if (!s)
        return;
    char *const *names;
    size_t n = srooms_list(conn_table_srooms(t), s->session_id, &names);
    for (size_t i = 0; i < n; i++)
        join_capped(t, c, names[i], strlen(names[i]));
}

static int may_join(const struct config *cfg, struct conn *c, const char **code)
{
    if (cfg->room_policy != CONFIG_ROOM_LOGGED_IN)
        return 1; /* anyone; or the roomJoin hook decides per room (room_allowed) */
    if (!conn_session(c)) {
        *code = "auth.required";
        return 0;
    }
    return 1;
}

/* rooms.policy = "hook": the project's roomJoin hook decides. */
static int room_allowed(struct conn_table *t, struct conn *c, const char *name, size_t len,
                        const char **code)
{
    if (conn_table_config(t)->room_policy != CONFIG_ROOM_HOOK)
        return 1;
    struct runtime *rt = conn_table_runtime(t);
    *code = "room.forbidden";
    return rt ? runtime_room_allowed(rt, conn_id(c), name, len, code) : 0;
}

static void on_join_leave(struct conn_table *t, struct conn *c, const json_t *arg, int64_t ack,
                          int join)
{
    const char *prefix = join ? "joinRoom" : "leaveRoom";
    const json_t *ri = json_object_get(arg, "responseIndex");
    if (!json_is_number(ri) && ack < 0)
        return; /* no way to answer: ignored, as the reference server does */
    const struct config *cfg = conn_table_config(t);
    const char *code = NULL;
    if (!may_join(cfg, c, &code)) {
        answer(t, c, prefix, ri, ack, error_env(code));
        return;
    }
    const json_t *g = json_object_get(arg, "group");
    const char *name;
    size_t len;
    if (!json_is_string(g) ||
        room_name_check(cfg, json_string_value(g), json_string_length(g), &name, &len) != 0) {
        answer(t, c, prefix, ri, ack, error_env("room.invalidName"));
        return;
    }
    struct session *s = conn_session(c);
    struct room_registry *r = conn_table_rooms(t);
    if (join && !room_allowed(t, c, name, len, &code)) {
        answer(t, c, prefix, ri, ack, error_env(code));
        return;
    }
    if (join) {
        if (join_capped(t, c, name, len) != 0) {
            answer(t, c, prefix, ri, ack, error_env("server.unavailable"));
            return;
        }
        if (s)
            srooms_add(conn_table_srooms(t), s->session_id, name, len);
    } else {
        room_leave(r, conn_id(c), name, len);
        if (s)
            srooms_remove(conn_table_srooms(t), s->session_id, name, len);
    }
    json_t *env = json_pack("{s:s, s:o}", "status", "success", "rooms", explicit_rooms(t, c));
    answer(t, c, prefix, ri, ack, env);
}

static void on_get_joined(struct conn_table *t, struct conn *c, const json_t *arg, int64_t ack)
{
    const json_t *ri = json_object_get(arg, "responseIndex");
    const char *code = NULL;
    if (!may_join(conn_table_config(t), c, &code)) {
        json_t *env = error_env(code);
        json_object_set_new(env, "rooms", json_array());
        answer(t, c, "getJoinedRooms", ri, ack, env);
        return;
    }
    answer(t, c, "getJoinedRooms", ri, ack,
           json_pack("{s:s, s:o}", "status", "success", "rooms", explicit_rooms(t, c)));
}

/* ---- sessions ---- */

/* Verify a token into a session. Returns 0, or a jwt error (negative). */
static int verify(struct conn_table *t, const char *token, size_t len, struct session **out)
{
    const struct config *cfg = conn_table_config(t);
    return session_from_token(cfg->keys, token, len, (int64_t)time(NULL), cfg->jwt_leeway_s, out);
}

static void on_update_session(struct conn_table *t, struct conn *c, const json_t *arg,
                              int64_t ack)
{
    const json_t *ri = json_object_get(arg, "responseIndex");
    const json_t *tok = json_object_get(arg, "token");
    if (!json_is_string(tok)) {
        answer(t, c, "updateSession", ri, ack, error_env("auth.invalidToken"));
        return;
    }
    struct session *s = NULL;
    int rc = verify(t, json_string_value(tok), json_string_length(tok), &s);
    if (rc != 0) {
        answer(t, c, "updateSession", ri, ack, error_env(session_error_code(rc)));
        return;
    }
    join_implicit(t, c, 0);
    conn_set_session(t, c, s);
    join_implicit(t, c, 1);
    rejoin_session_rooms(t, c);
    answer(t, c, "updateSession", ri, ack, json_pack("{s:s}", "status", "success"));
}

static void send_connect_error(struct conn_table *t, struct conn *c, const char *message)
{
    struct buf *b = sio_connect_error_encode(message, NULL);
    if (b) {
        conn_send(t, c, b);
        buf_unref(b);
    }
}

static int on_connect(struct conn_table *t, struct conn *c, const struct sio_packet *pk,
                      const char **reason)
{
    if (pk->nsp_len != 1 || pk->nsp[0] != '/') {
        send_connect_error(t, c, "Invalid namespace");
        return 0;
    }
    if (conn_sio_connected(c)) {
        *reason = "duplicate Socket.IO CONNECT";
        return -1;
    }
    json_t *auth = NULL;
    if (pk->data_len) {
        auth = jtext_load(pk->data, pk->data_len, NULL);
        if (!json_is_object(auth)) {
            json_decref(auth);
            *reason = "invalid CONNECT payload";
            return -1;
        }
    }
    const char *token = NULL;
    size_t token_len = 0;
    const json_t *jt = json_object_get(auth, "token");
    if (json_is_string(jt) && json_string_length(jt)) {
        token = json_string_value(jt);
        token_len = json_string_length(jt);
    } else if (conn_handshake_token(c)) {
        token = conn_handshake_token(c);
        token_len = strlen(token);
    }
    struct session *s = NULL;
    if (token) {
        int rc = verify(t, token, token_len, &s);
        if (rc != 0) {
            const char *code = session_error_code(rc);
            LOG_I("connect refused", "\"code\":\"%s\",\"detail\":\"%s\"", code,
                  json_string_value(json_object_get(auth, "token")) ? "auth payload" : "header");
            json_decref(auth);
            send_connect_error(t, c, code);
            return 0;
        }
    }
    json_decref(auth);
    conn_clear_handshake_token(c);
    char sid[24];
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char rnd[20];
    randombytes_buf(rnd, sizeof rnd);
    for (int i = 0; i < 20; i++)
        sid[i] = a[rnd[i] & 63];
    sid[20] = '\0';
    conn_set_sio_connected(c, sid);
    conn_set_session(t, c, s);
    join_implicit(t, c, 1);
    rejoin_session_rooms(t, c);
    struct buf *b = sio_connect_ok_encode(sid);
    if (b) {
        conn_send(t, c, b);
        buf_unref(b);
    }
    LOG_D("socket connected", "\"user\":\"%s\"", s ? s->user_id : "");
    return 0;
}

/* ---- dispatch ---- */

int events_on_packet(struct conn_table *t, struct conn *c, const char *p, size_t len,
                     const char **reason)
{
    struct sio_packet pk;
    if (sio_decode(p, len, &pk) != 0) {
        *reason = "malformed Socket.IO packet";
        return -1;
    }
    switch (pk.type) {
    case SIO_CONNECT:
        return on_connect(t, c, &pk, reason);
    case SIO_DISCONNECT:
        *reason = EVENTS_CLIENT_DISCONNECT;
        return -1;
    case SIO_EVENT:
        break;
    case SIO_ACK:
        return 0; /* this server never asks clients for acks */
    case SIO_BINARY_EVENT:
    case SIO_BINARY_ACK:
        *reason = "binary attachments are not supported";
        return -1;
    default:
        *reason = "unexpected Socket.IO packet type";
        return -1;
    }
    if (!conn_sio_connected(c)) {
        *reason = "event before Socket.IO CONNECT";
        return -1;
    }
    if (pk.nsp_len != 1 || pk.nsp[0] != '/')
        return 0;
    struct runtime *rt = conn_table_runtime(t);
    struct syncenv env;
    if (rt && syncenv_read(pk.data, pk.data_len, &env) == 0) {
        /* the common `sync` request: no json_t tree (syncenv.h) */
        runtime_sync_env(rt, conn_id(c), &env, pk.ack_id, pk.data_len);
        syncenv_clear(&env);
        return 0;
    }
    json_error_t jerr;
    json_t *arr = jtext_load(pk.data, pk.data_len, &jerr);
    if (!json_is_array(arr) || !json_is_string(json_array_get(arr, 0))) {
        json_decref(arr);
        *reason = "invalid event JSON";
        return -1;
    }
    const char *name = json_string_value(json_array_get(arr, 0));
    json_t *arg = json_array_get(arr, 1);
    if (!json_is_object(arg)) {
        /* WIRE.md: every LuckySync event carries one object; anything else is ignored
         * (a `sync` with a non-object is answered by the runtime). */
        if (strcmp(name, "sync") != 0) {
            json_decref(arr);
            return 0;
        }
    }
    if (strcmp(name, "joinRoom") == 0)
        on_join_leave(t, c, arg, pk.ack_id, 1);
    else if (strcmp(name, "leaveRoom") == 0)
        on_join_leave(t, c, arg, pk.ack_id, 0);
    else if (strcmp(name, "getJoinedRooms") == 0)
        on_get_joined(t, c, arg, pk.ack_id);
    else if (strcmp(name, "updateSession") == 0)
        on_update_session(t, c, arg, pk.ack_id);
    else if (strcmp(name, "syncCancel") == 0) {
        const char *cb = json_string_value(json_object_get(arg, "cb"));
        if (rt && cb && *cb)
            runtime_cancel(rt, conn_id(c), cb);
    } else if (strcmp(name, "sync") == 0) {
        if (rt)
            runtime_sync(rt, conn_id(c), arg ? arg : json_null(), pk.ack_id, pk.data_len);
        else
            answer(t, c, "sync", json_object_get(arg, "responseIndex"), pk.ack_id,
                   error_env("sync.notFound"));
    }
    else
    {
        char esc[160];
        LOG_D("unknown event ignored", "\"event\":\"%s\"", log_escape(name, esc, sizeof esc));
    }
    json_decref(arr);
    return 0;
}

void events_on_close(struct conn_table *t, struct conn *c)
{
    (void)t;
    (void)c;
}
