/* testing_core.c: the Lua C module `luckysync_testing` behind lua/luckysync/testing.lua. It runs
 * the real runtime (the same sandboxed VM pool, schema validation and lifecycle the server
 * uses) inside a busted process, with a fake transport: the sender and the room members are
 * connection ids whose frames are recorded instead of written to sockets.
 *
 * Built as a loadable module that takes the Lua API from the interpreter that loads it (the
 * runtime's VMs are created by the same Lua code, never mixed with another copy). */
#include <errno.h>
#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "jwt.h"
#include "log.h"
#include "luajson.h"
#include "runtime.h"
#include "session.h"

#define MT "luckysync.testing.app"
#define MAX_CONNS 10000

struct fconn {
    uint64_t id;
    struct session *s;
    json_t *events; /* [{event, payload}] */
    int member;
};

struct app {
    struct config cfg;
    struct runtime *rt;
    struct fconn *conns; /* conns[0] is the sender */
    size_t nconns;
    char *room;
    json_t *hooks;
};

static struct fconn *find(struct app *a, uint64_t id)
{
    if (id == 0 || id > a->nconns)
        return NULL;
    return &a->conns[id - 1];
}

static int h_send(void *ud, uint64_t conn, struct buf *packet)
{
    struct app *a = ud;
    struct fconn *c = find(a, conn);
    if (!c)
        return -ENOENT;
    const char *p = buf_cdata(packet);
    size_t n = buf_len(packet);
    /* Engine.IO message "4" + Socket.IO "2" event or "3<id>" ack: record events only. */
    if (n < 3 || p[0] != '4' || p[1] != '2')
        return 0;
    json_t *arr = json_loadb(p + 2, n - 2, 0, NULL);
    if (json_is_array(arr) && json_is_string(json_array_get(arr, 0)))
        json_array_append_new(c->events,
                              json_pack("{s:O, s:O}", "event", json_array_get(arr, 0), "payload",
                                        json_array_get(arr, 1) ? json_array_get(arr, 1)
                                                               : json_null()));
    json_decref(arr);
    return 0;
}

static int h_is_member(void *ud, uint64_t conn, const char *room, size_t len)
{
    struct app *a = ud;
    struct fconn *c = find(a, conn);
    return c && c->member && a->room && strlen(a->room) == len && memcmp(a->room, room, len) == 0;
}

static int h_members(void *ud, const char *room, size_t len, uint64_t **out, size_t *n)
{
    struct app *a = ud;
    *out = NULL;
    *n = 0;
    if (!a->room || strlen(a->room) != len || memcmp(a->room, room, len) != 0)
        return 0;
    *out = malloc((a->nconns ? a->nconns : 1) * sizeof **out);
    if (!*out)
        return -ENOMEM;
    for (size_t i = 0; i < a->nconns; i++)
        if (a->conns[i].member)
            (*out)[(*n)++] = a->conns[i].id;
    return 0;
}

static const struct session *h_session(void *ud, uint64_t conn)
{
    struct fconn *c = find(ud, conn);
    return c ? c->s : NULL;
}

static void h_wake(void *ud, uint64_t delay)
{
    (void)ud;
    (void)delay;
}

static void h_hook(void *ud, const char *name, const char *route, const json_t *result,
                   long recipients)
{
    struct app *a = ud;
    json_t *h = json_pack("{s:s, s:s}", "name", name, "route", route);
    if (result)
        json_object_set(h, "result", (json_t *)result);
    if (recipients >= 0)
        json_object_set_new(h, "recipientCount", json_integer(recipients));
    json_array_append_new(a->hooks, h);
}

static void clear_conns(struct app *a)
{
    for (size_t i = 0; i < a->nconns; i++) {
        session_free(a->conns[i].s);
        json_decref(a->conns[i].events);
    }
    free(a->conns);
    a->conns = NULL;
    a->nconns = 0;
    free(a->room);
    a->room = NULL;
    json_decref(a->hooks);
    a->hooks = NULL;
}

/* A user table {id=…, session=…, name=…, roles={…}, …} at idx → session (NULL for nil). */
static struct session *user_session(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx) || (lua_isboolean(L, idx) && !lua_toboolean(L, idx)))
        return NULL;
    luaL_checktype(L, idx, LUA_TTABLE);
    char err[256];
    json_t *claims = NULL;
    if (luajson_from_lua(L, idx, 32, &claims, err, sizeof err) != 0 || !json_is_object(claims))
        luaL_error(L, "user: %s", err);
    const char *id = json_string_value(json_object_get(claims, "id"));
    if (!id) {
        json_decref(claims);
        luaL_error(L, "user: id (a string) is required");
    }
    struct session *s = calloc(1, sizeof *s);
    s->user_id = strdup(id);
    const char *sid = json_string_value(json_object_get(claims, "session"));
    char buf[300];
    snprintf(buf, sizeof buf, "s-%s", id);
    s->session_id = strdup(sid ? sid : buf);
    json_object_set_new(claims, "sub", json_string(id));
    json_object_del(claims, "id");
    json_object_del(claims, "session");
    s->claims = claims;
    return s;
}

static int opt_int(lua_State *L, int t, const char *k, lua_Integer def)
{
    lua_getfield(L, t, k);
    lua_Integer v = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : def;
    lua_pop(L, 1);
    return (int)v;
}

/* core.new{ handlers = "handlers", lua = "lua", config = {cpuBudgetMs=…, …} } */
static int l_new(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    struct app *a = lua_newuserdatauv(L, sizeof *a, 0);
    memset(a, 0, sizeof *a);
    luaL_setmetatable(L, MT);
    if (config_init(&a->cfg) != 0)
        return luaL_error(L, "out of memory");
    log_set_level(LOG_ERROR);
    lua_getfield(L, 1, "handlers");
    free(a->cfg.handlers_dir);
    a->cfg.handlers_dir = strdup(luaL_optstring(L, -1, "handlers"));
    lua_pop(L, 1);
    lua_getfield(L, 1, "lua");
    const char *lua_dir = lua_tostring(L, -1);
    a->cfg.lua_dir = lua_dir ? strdup(lua_dir) : NULL;
    lua_pop(L, 1);
    lua_getfield(L, 1, "config");
    if (lua_istable(L, -1)) {
        int t = lua_gettop(L);
        a->cfg.sync_cpu_budget_ms = (unsigned)opt_int(L, t, "cpuBudgetMs", 2000);
        a->cfg.sync_vm_pool_size = (unsigned)opt_int(L, t, "vmPoolSize", 1);
        a->cfg.sync_vm_memory_cap = (size_t)opt_int(L, t, "vmMemoryCapMb", 64) << 20;
        a->cfg.sync_rate_limit = (unsigned)opt_int(L, t, "rateLimit", 600);
        a->cfg.sync_fanout_slice_size = (unsigned)opt_int(L, t, "fanoutSliceSize", 512);
        a->cfg.sync_max_payload = (size_t)opt_int(L, t, "maxPayload", 262144);
    } else {
        a->cfg.sync_vm_pool_size = 1;
    }
    lua_pop(L, 1);
    struct runtime_host host = {.send = h_send,
                                .is_member = h_is_member,
                                .members = h_members,
                                .session = h_session,
                                .wake = h_wake,
                                .hook_called = h_hook,
                                .ud = a};
    char err[8192];
    a->rt = runtime_new(&a->cfg, a->cfg.lua_dir, &host, err, sizeof err);
    if (!a->rt)
        return luaL_error(L, "loading handlers failed:\n%s", err);
    return 1;
}

static struct app *check_app(lua_State *L)
{
    struct app *a = luaL_checkudata(L, 1, MT);
    if (!a->rt)
        luaL_error(L, "app is closed");
    return a;
}

static void push_events(lua_State *L, const json_t *events, const char *only)
{
    lua_newtable(L);
    size_t i, k = 0;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "event"));
        if (only && strcmp(name, only) != 0)
            continue;
        if (only)
            luajson_push(L, json_object_get(e, "payload"), 64);
        else
            luajson_push(L, e, 64);
        lua_rawseti(L, -2, (lua_Integer)++k);
    }
}

/* app:call{ route=, data=, user=, receiver=, members={user|false,…}, ignoreSelf=,
 *           senderInRoom=true, cb=, timeoutMs=10000 } */
static int l_call(lua_State *L)
{
    struct app *a = check_app(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    clear_conns(a);
    lua_getfield(L, 2, "members");
    size_t nm = lua_istable(L, -1) ? lua_rawlen(L, -1) : 0;
    lua_pop(L, 1);
    if (nm + 1 > MAX_CONNS)
        return luaL_error(L, "too many members");
    a->conns = calloc(nm + 1, sizeof *a->conns);
    a->nconns = nm + 1;
    a->hooks = json_array();
    for (size_t i = 0; i < a->nconns; i++) {
        a->conns[i].id = i + 1;
        a->conns[i].events = json_array();
        a->conns[i].member = i > 0;
    }
    lua_getfield(L, 2, "user");
    a->conns[0].s = user_session(L, lua_gettop(L));
    lua_pop(L, 1);
    lua_getfield(L, 2, "senderInRoom");
    a->conns[0].member = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 2, "members");
    for (size_t i = 0; i < nm; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        a->conns[i + 1].s = user_session(L, lua_gettop(L));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_getfield(L, 2, "receiver");
    const char *room = luaL_optstring(L, -1, "room");
    a->room = strdup(room);
    lua_pop(L, 1);

    /* The request payload as the client would send it. */
    lua_newtable(L);
    int req = lua_gettop(L);
    lua_getfield(L, 2, "route");
    lua_setfield(L, req, "name");
    lua_getfield(L, 2, "data");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    lua_setfield(L, req, "data");
    lua_pushstring(L, room);
    lua_setfield(L, req, "receiver");
    lua_getfield(L, 2, "ignoreSelf");
    lua_setfield(L, req, "ignoreSelf");
    lua_getfield(L, 2, "cb");
    lua_setfield(L, req, "cb");
    lua_pushinteger(L, 1);
    lua_setfield(L, req, "responseIndex");
    json_t *payload = NULL;
    char err[256];
    if (luajson_from_lua(L, req, 64, &payload, err, sizeof err) != 0)
        return luaL_error(L, "call: %s", err);
    lua_pop(L, 1);
    int timeout_ms = opt_int(L, 2, "timeoutMs", 10000);

    runtime_sync(a->rt, 1, payload, -1, 0);
    json_decref(payload);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (runtime_inflight(a->rt) > 0) {
        runtime_poll(a->rt);
        uint64_t in = runtime_next_in(a->rt);
        if (in > 0 && in != UINT64_MAX) {
            struct timespec ts = {0, (long)(in > 5 ? 5 : in) * 1000000L};
            nanosleep(&ts, NULL);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long el = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (el > timeout_ms)
            return luaL_error(L, "call: the request did not finish within %d ms", timeout_ms);
    }

    lua_newtable(L);
    int res = lua_gettop(L);
    /* the sender's answer and progress */
    push_events(L, a->conns[0].events, "sync-1");
    lua_rawgeti(L, -1, 1);
    lua_setfield(L, res, "response");
    lua_pop(L, 1);
    push_events(L, a->conns[0].events, "sync-progress-1");
    lua_setfield(L, res, "progress");
    push_events(L, a->conns[0].events, "sync");
    lua_setfield(L, res, "self");
    push_events(L, a->conns[0].events, NULL);
    lua_setfield(L, res, "events");
    lua_newtable(L);
    for (size_t i = 1; i < a->nconns; i++) {
        lua_newtable(L);
        push_events(L, a->conns[i].events, "sync");
        lua_setfield(L, -2, "frames");
        push_events(L, a->conns[i].events, NULL);
        lua_setfield(L, -2, "events");
        lua_rawseti(L, -2, (lua_Integer)i);
    }
    lua_setfield(L, res, "recipients");
    luajson_push(L, a->hooks, 64);
    lua_setfield(L, res, "hooks");
    return 1;
}

static int l_reload(lua_State *L)
{
    struct app *a = check_app(L);
    lua_pushboolean(L, runtime_reload(a->rt) == 0);
    return 1;
}

static int l_close(lua_State *L)
{
    struct app *a = luaL_checkudata(L, 1, MT);
    runtime_free(a->rt);
    a->rt = NULL;
    clear_conns(a);
    if (a->cfg.keys)
        config_close(&a->cfg);
    return 0;
}

int luaopen_luckysync_testing(lua_State *L)
{
    static const luaL_Reg methods[] = {{"call", l_call},   {"reload", l_reload},
                                       {"close", l_close}, {"__gc", l_close},
                                       {NULL, NULL}};
    if (luaL_newmetatable(L, MT)) {
        luaL_setfuncs(L, methods, 0);
        lua_pushvalue(L, -1);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushcfunction(L, l_new);
    lua_setfield(L, -2, "new");
    return 1;
}
