/* rt_stream.c: the stream primitives of ctx (stream, broadcastStream, streamTo,
 * streamToUsers, cancelled), ctx.functions.flushPressure and createStreamThrottle.
 *
 * Every primitive is a light C function that finds its request through the VM's running
 * request, so nothing per request is allocated for them and a function a handler kept after
 * its request ended acts on whichever request calls it, never on a freed one. Payloads are
 * serialised once per audience; every chunk goes through the same per-connection send queues
 * as the final answer, in call order, so order is kept per audience and chunks arrive before
 * the answer. */
#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "envelope.h"
#include "jtext.h"
#include "log.h"
#include "luajson.h"
#include "rt_gen.h"
#include "rt_req.h"
#include "sandbox.h"
#include "sio.h"

#define PRESSURE_POLL_MS 10
#define PRESSURE_STALL_NS 5000000000ull /* a member holding a stream back longer is dropped */
#define PRESSURE_SAMPLE 32 /* room members measured by flushPressure */
#define STREAM_TARGETS_MAX 1000
#define THROTTLE_HOOK_NS 50000000ull

struct rt_throttle {
    struct timer_node timer;
    struct rt_throttle *next; /* in the request's list */
    struct rt_req *req;       /* NULL once the request ended */
    char *buf;
    size_t len, cap;
    unsigned flush_ms, flush_chars;
    int self_ref, emit_ref; /* registry refs while the timer is armed */
};

#define THROTTLE_MT "luckysync.throttle"

static struct rt_req *need_req(lua_State *L, const char *what)
{
    struct rt_req *req = rt_current(L);
    if (!req)
        luaL_error(L, "%s: only inside a request", what);
    return req;
}

/* The payload argument as a JSON object ({} for nil). Raises on anything else. */
static json_t *payload_arg(lua_State *L, int idx, const char *what)
{
    if (lua_isnoneornil(L, idx))
        return json_object();
    if (!lua_istable(L, idx))
        luaL_error(L, "%s: the payload must be a table", what);
    json_t *j = NULL;
    char err[256];
    if (luajson_from_lua(L, idx, LUAJSON_MAX_DEPTH, &j, err, sizeof err) != 0)
        luaL_error(L, "%s: %s", what, err);
    if (!json_is_object(j)) {
        json_decref(j);
        luaL_error(L, "%s: the payload must be a table with string keys", what);
    }
    return j;
}

/* `sync` frame {...payload, cb, fullName, status:"stream"} (envelope keys win). */
static struct buf *stream_frame(struct rt_req *req, json_t *payload)
{
    const char *wire = req->route->wire;
    json_object_set_new(payload, "cb", json_string(req->cb ? req->cb : wire));
    json_object_set_new(payload, "fullName", json_string(wire));
    json_object_set_new(payload, "status", json_string("stream"));
    char *text = jtext_dump(payload, NULL);
    struct buf *b = text ? sio_event_encode("sync", 4, text, strlen(text), -1) : NULL;
    free(text);
    return b;
}

static int l_stream(lua_State *L)
{
    struct rt_req *req = need_req(L, "stream");
    struct runtime *rt = req->rt;
    json_t *p = payload_arg(L, 1, "stream");
    struct buf *b = NULL;
    if (req->stage == ST_CLIENT) { /* the client file: to this recipient only */
        b = stream_frame(req, p);
        if (b)
            rt->host.send(rt->host.ud, req->recips[req->next_recip - 1], b);
    } else if (req->stage == ST_SERVER && !req->cancelled) {
        char name[128];
        if (envelope_answer_name(name, sizeof name, "sync-progress", req->ri) == 0) {
            char *text = jtext_dump(p, NULL);
            if (text)
                b = sio_event_encode(name, strlen(name), text, strlen(text), -1);
            free(text);
            if (b)
                rt->host.send(rt->host.ud, req->sender, b);
        }
    }
    buf_unref(b);
    json_decref(p);
    return 0;
}

static int l_broadcast(lua_State *L)
{
    struct rt_req *req = need_req(L, "broadcastStream");
    json_t *p = payload_arg(L, 1, "broadcastStream");
    if (req->stage == ST_SERVER && !req->cancelled && req->rt->host.broadcast) {
        struct buf *b = stream_frame(req, p);
        if (b)
            req->rt->host.broadcast(req->rt->host.ud, req->receiver, strlen(req->receiver), b);
        req->broadcasted = 1;
        buf_unref(b);
    }
    json_decref(p);
    return 0;
}

/* streamTo / streamToUsers: a string or a list of strings; duplicates and empty entries are
 * dropped (every socket gets one copy). */
static int stream_to(lua_State *L, int users)
{
    const char *what = users ? "streamToUsers" : "streamTo";
    struct rt_req *req = need_req(L, what);
    const char *ids[STREAM_TARGETS_MAX];
    size_t n = 0;
    if (lua_type(L, 1) == LUA_TSTRING) {
        ids[n++] = lua_tostring(L, 1);
    } else if (lua_istable(L, 1)) {
        size_t len = lua_rawlen(L, 1);
        if (len > STREAM_TARGETS_MAX)
            return luaL_error(L, "%s: at most %d targets", what, STREAM_TARGETS_MAX);
        for (size_t i = 1; i <= len; i++) {
            lua_rawgeti(L, 1, (lua_Integer)i);
            const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
            lua_pop(L, 1); /* the string stays anchored in the table */
            if (!s || !*s)
                continue;
            int dup = 0;
            for (size_t j = 0; j < n && !dup; j++)
                dup = strcmp(ids[j], s) == 0;
            if (!dup)
                ids[n++] = s;
        }
    } else {
        return luaL_error(L, "%s: targets must be a string or a list of strings", what);
    }
    json_t *p = payload_arg(L, 2, what);
    struct runtime *rt = req->rt;
    if (n && req->stage == ST_SERVER && !req->cancelled) {
        struct buf *b = stream_frame(req, p);
        for (size_t i = 0; b && i < n; i++) {
            if (users && rt->host.to_user)
                rt->host.to_user(rt->host.ud, ids[i], b);
            else if (!users && rt->host.to_session)
                rt->host.to_session(rt->host.ud, ids[i], b);
        }
        buf_unref(b);
    }
    json_decref(p);
    return 0;
}

static int l_stream_to(lua_State *L)
{
    return stream_to(L, 0);
}

static int l_stream_to_users(lua_State *L)
{
    return stream_to(L, 1);
}

static int l_cancelled(lua_State *L)
{
    struct rt_req *req = rt_current(L);
    lua_pushboolean(L, req && req->cancelled);
    return 1;
}

/* ---- flushPressure ---- */

/* 1 while a connection of the audience has more than the threshold queued. One that stays
 * over it for PRESSURE_STALL_NS is disconnected as a slow consumer, so a stuck reader cannot
 * hold the stream back for everyone (the others go on). */
static int over_pressure(struct rt_req *req)
{
    struct runtime *rt = req->rt;
    if (!rt->host.queued)
        return 0;
    uint64_t limit = req->pressure_threshold;
    int stalled = req->pressure_since_ns &&
                  rt_mono_ns() - req->pressure_since_ns > PRESSURE_STALL_NS && rt->host.drop;
    int over = 0;
    if (rt->host.queued(rt->host.ud, req->sender) > limit) {
        if (stalled)
            rt->host.drop(rt->host.ud, req->sender, "stream backpressure: reader stalled");
        else
            over = 1;
    }
    if (req->broadcasted && rt->host.members) {
        uint64_t *m = NULL;
        size_t n = 0;
        if (rt->host.members(rt->host.ud, req->receiver, strlen(req->receiver), &m, &n) == 0)
            for (size_t i = 0; i < n && i < PRESSURE_SAMPLE; i++) {
                if (rt->host.queued(rt->host.ud, m[i]) <= limit)
                    continue;
                if (stalled)
                    rt->host.drop(rt->host.ud, m[i], "stream backpressure: reader stalled");
                else
                    over = 1;
            }
        free(m);
    }
    if (!over)
        req->pressure_since_ns = 0;
    else if (!req->pressure_since_ns)
        req->pressure_since_ns = rt_mono_ns();
    return over;
}

static int pressure_wait(lua_State *L, struct rt_req *req);

static int pressure_k(lua_State *L, int status, lua_KContext k)
{
    (void)status;
    (void)k;
    struct rt_req *req = rt_current(L);
    if (!req)
        return 0;
    if (req->cancelled)
        return luaL_error(L, "request.aborted");
    return pressure_wait(L, req);
}

static int pressure_wait(lua_State *L, struct rt_req *req)
{
    if (!over_pressure(req))
        return 0;
    if (L != req->co || !lua_isyieldable(L))
        return luaL_error(L, "flushPressure: only the handler's own coroutine may wait");
    req->sleeping = 1;
    timer_schedule(req->rt->wheel, &req->timer, rt_mono_ns() / 1000000u + PRESSURE_POLL_MS);
    return lua_yieldk(L, 0, 0, pressure_k);
}

/* flushPressure({thresholdBytes = n}?) */
static int l_flush_pressure(lua_State *L)
{
    struct rt_req *req = need_req(L, "flushPressure");
    if (req->cancelled)
        return luaL_error(L, "request.aborted");
    req->pressure_threshold = req->rt->cfg->sync_pressure_bytes;
    if (lua_istable(L, 1)) {
        lua_getfield(L, 1, "thresholdBytes");
        if (lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0)
            req->pressure_threshold = (uint64_t)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    return pressure_wait(L, req);
}

int rt_sleep_k(lua_State *L, int status, lua_KContext k)
{
    (void)status;
    (void)k;
    struct rt_req *req = rt_current(L);
    if (req && req->cancelled)
        return luaL_error(L, "request.aborted");
    return 0;
}

/* ---- throttle ---- */

static void throttle_disarm(lua_State *main, struct rt_throttle *t)
{
    timer_cancel(&t->timer);
    if (t->emit_ref != LUA_NOREF)
        luaL_unref(main, LUA_REGISTRYINDEX, t->emit_ref);
    if (t->self_ref != LUA_NOREF)
        luaL_unref(main, LUA_REGISTRYINDEX, t->self_ref);
    t->emit_ref = t->self_ref = LUA_NOREF;
}

/* Emit the buffer through the function at the top of L (popped): emit{chunk = text}. */
static void throttle_emit(lua_State *L, struct rt_throttle *t)
{
    if (!t->len) {
        lua_pop(L, 1);
        return;
    }
    lua_createtable(L, 0, 1);
    lua_pushlstring(L, t->buf, t->len);
    lua_setfield(L, -2, "chunk");
    t->len = 0;
    lua_call(L, 1, 0);
}

static struct rt_throttle *check_throttle(lua_State *L)
{
    return luaL_checkudata(L, 1, THROTTLE_MT);
}

static lua_State *main_state(lua_State *L)
{
    return sandbox_state(sandbox_of(L));
}

/* th:push(text, emit) */
static int l_th_push(lua_State *L)
{
    struct rt_throttle *t = check_throttle(L);
    size_t n;
    const char *text = luaL_optlstring(L, 2, "", &n);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    if (!n)
        return 0;
    if (t->len + n > t->cap) {
        size_t cap = t->cap ? t->cap : 64;
        while (cap < t->len + n)
            cap *= 2;
        if (cap > (8u << 20))
            return luaL_error(L, "throttle: more than 8 MB buffered");
        char *nb = realloc(t->buf, cap);
        if (!nb)
            return luaL_error(L, "not enough memory");
        t->buf = nb;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, text, n);
    t->len += n;
    if (t->len >= t->flush_chars) {
        throttle_disarm(main_state(L), t);
        lua_pushvalue(L, 3);
        throttle_emit(L, t);
        return 0;
    }
    if (!timer_pending(&t->timer) && t->flush_ms && t->req) {
        lua_State *main = main_state(L);
        lua_pushvalue(L, 3);
        lua_xmove(L, main, 1);
        t->emit_ref = luaL_ref(main, LUA_REGISTRYINDEX);
        lua_pushvalue(L, 1);
        lua_xmove(L, main, 1);
        t->self_ref = luaL_ref(main, LUA_REGISTRYINDEX);
        timer_schedule(t->req->rt->wheel, &t->timer, rt_mono_ns() / 1000000u + t->flush_ms);
    }
    return 0;
}

/* th:flush(emit) */
static int l_th_flush(lua_State *L)
{
    struct rt_throttle *t = check_throttle(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    throttle_disarm(main_state(L), t);
    lua_pushvalue(L, 2);
    throttle_emit(L, t);
    return 0;
}

static int l_th_reset(lua_State *L)
{
    struct rt_throttle *t = check_throttle(L);
    throttle_disarm(main_state(L), t);
    t->len = 0;
    return 0;
}

static void unlink_throttle(struct rt_throttle *t)
{
    if (!t->req)
        return;
    struct rt_throttle **pp = &t->req->throttles;
    while (*pp && *pp != t)
        pp = &(*pp)->next;
    if (*pp)
        *pp = t->next;
    t->req = NULL;
}

static int l_th_gc(lua_State *L)
{
    struct rt_throttle *t = check_throttle(L);
    timer_cancel(&t->timer);
    unlink_throttle(t);
    free(t->buf);
    t->buf = NULL;
    return 0;
}

/* A protected flush on the VM's main state (timer or end of request), bounded in time. */
struct flush_call {
    struct rt_throttle *t;
    uint64_t deadline;
};

static void flush_limit(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct rt_req *req = rt_current(L);
    if (req && rt_mono_ns() > req->slice_start_ns + THROTTLE_HOOK_NS) {
        lua_sethook(L, flush_limit, LUA_MASKCOUNT, 1);
        luaL_error(L, "throttle emit: time budget spent");
    }
}

static int flush_run(lua_State *L)
{
    struct rt_throttle *t = lua_touserdata(L, 1);
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->emit_ref);
    throttle_emit(L, t);
    return 0;
}

static void flush_now(struct rt_throttle *t)
{
    struct rt_req *req = t->req;
    if (!req || t->emit_ref == LUA_NOREF || !t->len) {
        if (req)
            throttle_disarm(sandbox_state(req->vm->sb), t);
        return;
    }
    struct runtime *rt = req->rt;
    lua_State *L = sandbox_state(req->vm->sb);
    struct rt_req *was = rt->running;
    rt->running = req;
    req->vm->running = req;
    uint64_t slice_was = req->slice_start_ns; /* the request's own slice, if one is open */
    req->slice_start_ns = rt_mono_ns();
    lua_sethook(L, flush_limit, LUA_MASKCOUNT, 1000);
    lua_pushcfunction(L, flush_run);
    lua_pushlightuserdata(L, t);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        char esc[512];
        LOG_W("stream throttle flush failed", "\"route\":\"%s\",\"error\":\"%s\"",
              req->route->key, log_escape(lua_tostring(L, -1), esc, sizeof esc));
        lua_pop(L, 1);
    }
    lua_sethook(L, NULL, 0, 0);
    req->slice_start_ns = slice_was;
    req->vm->running = NULL;
    rt->running = was;
    throttle_disarm(L, t);
}

static void throttle_fire(struct timer_node *n, void *ud)
{
    (void)ud;
    struct rt_throttle *t = (struct rt_throttle *)(void *)n;
    flush_now(t);
}

/* createStreamThrottle{ flushEveryMs = 50, flushAtChars = 32 } */
static int l_create_throttle(lua_State *L)
{
    struct rt_req *req = need_req(L, "createStreamThrottle");
    const struct config *cfg = req->rt->cfg;
    unsigned every = cfg->sync_throttle_flush_ms, chars = cfg->sync_throttle_flush_chars;
    if (lua_istable(L, 1)) {
        lua_getfield(L, 1, "flushEveryMs");
        if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0 && lua_tointeger(L, -1) <= 600000)
            every = (unsigned)lua_tointeger(L, -1);
        else if (lua_isboolean(L, -1) && !lua_toboolean(L, -1))
            every = 0;
        lua_getfield(L, 1, "flushAtChars");
        if (lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0 && lua_tointeger(L, -1) <= 1000000)
            chars = (unsigned)lua_tointeger(L, -1);
        lua_pop(L, 2);
    }
    struct rt_throttle *t = lua_newuserdatauv(L, sizeof *t, 0);
    memset(t, 0, sizeof *t);
    timer_node_init(&t->timer, throttle_fire);
    t->flush_ms = every;
    t->flush_chars = chars;
    t->self_ref = t->emit_ref = LUA_NOREF;
    if (luaL_newmetatable(L, THROTTLE_MT)) {
        static const luaL_Reg m[] = {
            {"push", l_th_push}, {"flush", l_th_flush}, {"reset", l_th_reset}, {NULL, NULL}};
        luaL_newlib(L, m);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_th_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
    t->req = req;
    t->next = req->throttles;
    req->throttles = t;
    return 1;
}

void rt_stream_flush_all(struct rt_req *req)
{
    for (struct rt_throttle *t = req->throttles; t; t = t->next)
        if (t->len)
            flush_now(t);
}

void rt_stream_release(struct rt_req *req)
{
    lua_State *main = req->vm ? sandbox_state(req->vm->sb) : NULL;
    struct rt_throttle *t = req->throttles;
    while (t) {
        struct rt_throttle *next = t->next;
        timer_cancel(&t->timer);
        if (main)
            throttle_disarm(main, t);
        t->req = NULL;
        t->next = NULL;
        t = next;
    }
    req->throttles = NULL;
}

/* Registry keys of a VM's ctx metatable and ctx.functions metatable (built once per VM). */
static const char ctx_meta_key = 'c';
static const char fn_meta_key = 'f';

/* The VM's metatable for ctx.functions: __index holds flushPressure and createStreamThrottle,
 * over the VM's shared functions table. */
static void push_fn_meta(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &fn_meta_key) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_createtable(L, 0, 2); /* the metatable */
    lua_createtable(L, 0, 2); /* its __index: the per-request functions */
    lua_pushcfunction(L, l_flush_pressure);
    lua_setfield(L, -2, "flushPressure");
    lua_pushcfunction(L, l_create_throttle);
    lua_setfield(L, -2, "createStreamThrottle");
    lua_createtable(L, 0, 2);
    struct sandbox *sb = sandbox_of(L);
    sandbox_push_functions(sb);
    lua_xmove(sandbox_state(sb), L, 1);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &fn_meta_key);
}

/* The VM's ctx metatable: __index holds the stream primitives. */
static void push_ctx_meta(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &ctx_meta_key) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    static const luaL_Reg ctxfns[] = {{"stream", l_stream},
                                      {"broadcastStream", l_broadcast},
                                      {"streamTo", l_stream_to},
                                      {"streamToUsers", l_stream_to_users},
                                      {"cancelled", l_cancelled},
                                      {NULL, NULL}};
    lua_createtable(L, 0, 2);
    lua_createtable(L, 0, 5);
    luaL_setfuncs(L, ctxfns, 0);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ctx_meta_key);
}

/* Every function finds its request with rt_current, so one set per VM serves all its
 * requests: a request's ctx costs its own table and an empty ctx.functions table (a write to
 * ctx.functions stays in that request). */
void rt_stream_push_ctx(lua_State *L, struct rt_req *req)
{
    (void)req;
    push_ctx_meta(L);
    lua_setmetatable(L, -2);
    lua_createtable(L, 0, 0);
    push_fn_meta(L);
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "functions");
}
