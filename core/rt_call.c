/* rt_call: running one Lua call of a sync request, and the roomJoin hook.
 *
 * Each Lua call (server handler, hook, client handler per recipient) runs in the request's own
 * coroutine, whose body is a C entry function that builds ctx inside the coroutine (so every
 * Lua error, memory errors included, comes back through lua_resume). A call that sleeps waits
 * on the runtime's timer wheel; a call that used up its time slice yields from the count hook
 * and waits in the ready queue, so the loop serves other clients in between. When the CPU
 * budget is spent (or the VM's allocator refused memory for this request) the hook fires at
 * every instruction and yields the coroutine out for good: a yield cannot be caught by the
 * handler's pcall, and the coroutine is then reset, never resumed.
 *
 * Also here: the sandbox host callbacks a generation's VMs are loaded with (sleep, oom, route),
 * the VM and coroutines of a request, and the roomJoin hook (a short synchronous call outside
 * any request). The stages that start calls and read their outcome are runtime.c. */
#include <lauxlib.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "jtext.h"
#include "log.h"
#include "luajson.h"
#include "routes.h"
#include "rt_gen.h"
#include "rt_req.h"
#include "sandbox.h"
#include "timer.h"

#define HOOK_COUNT 10000     /* instructions between checks of the slice and the budget */
#define SLICE_NS 5000000ull  /* a running handler yields to the loop after 5 ms */
#define STALL_NS 50000000ull /* … and is stopped after 50 ms where it cannot yield */
#define MAX_LUA_DEPTH 4000   /* call-stack depth of a handler */

struct rt_req *rt_current(lua_State *L)
{
    struct sandbox *sb = sandbox_of(L);
    struct rt_vm *vm = sb ? sandbox_user(sb) : NULL;
    return vm ? vm->running : NULL;
}

/* ---- sandbox host callbacks ---- */

static const char *host_route(void *ud, lua_State *L)
{
    (void)L;
    struct runtime *rt = ud;
    return rt->running ? rt->running->route->key : NULL;
}

static int host_sleep(void *ud, lua_State *L, lua_Integer ms)
{
    struct runtime *rt = ud;
    struct rt_req *req = rt->running;
    if (!req || L != req->co)
        return luaL_error(L, "sleep: only the handler's own coroutine may sleep");
    if (ms < 0 || ms > 3600000)
        return luaL_error(L, "sleep: ms must be between 0 and 3600000");
    if (!lua_isyieldable(L))
        return luaL_error(L, "sleep: cannot sleep here (inside a metamethod or C callback)");
    if (req->cancelled)
        return luaL_error(L, "request.aborted");
    req->sleeping = 1;
    /* never early: the wheel fires once floor(now) reaches the rounded-up deadline */
    timer_schedule(rt->wheel, &req->timer, (rt_mono_ns() + 999999u) / 1000000u + (uint64_t)ms);
    return lua_yieldk(L, 0, 0, rt_sleep_k);
}

static void hook(lua_State *L, lua_Debug *ar);

static void host_oom(void *ud)
{
    struct runtime *rt = ud;
    struct rt_req *req = rt->running;
    if (req && req->kill == KILL_NONE) {
        req->kill = KILL_OOM;
        lua_sethook(req->co, hook, LUA_MASKCOUNT, 1);
    }
}

/* The count hook: time slice, CPU budget, stack depth, and the kill of a request. */
static void hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct sandbox *sb = sandbox_of(L);
    struct rt_vm *vm = sb ? sandbox_user(sb) : NULL;
    struct rt_req *req = vm ? vm->running : NULL;
    if (!req)
        return;
    if (req->kill == KILL_NONE) {
        uint64_t now = rt_mono_ns();
        uint64_t budget = (uint64_t)req->rt->cfg->sync_cpu_budget_ms * 1000000ull;
        if (req->cpu_used_ns + (now - req->slice_start_ns) > budget) {
            req->kill = KILL_TIMEOUT;
        } else {
            lua_Debug deep;
            if (lua_getstack(L, MAX_LUA_DEPTH, &deep))
                luaL_error(L, "stack depth limit (%d calls) reached", MAX_LUA_DEPTH);
            if (now - req->slice_start_ns > SLICE_NS) {
                if (L == req->co && lua_isyieldable(L)) {
                    lua_yield(L, 0);
                    return;
                }
                /* Spinning where it cannot be paused (a coroutine the handler made, a callback
                 * from C such as a sort comparator): the loop would stall, so it gets a short
                 * grace and is then stopped. */
                if (now - req->slice_start_ns > STALL_NS)
                    req->kill = KILL_TIMEOUT;
                else
                    return;
            } else {
                return;
            }
        }
    }
    /* Killed: fire at every instruction of this and the request's coroutine until gone. */
    lua_sethook(L, hook, LUA_MASKCOUNT, 1);
    if (L != req->co)
        lua_sethook(req->co, hook, LUA_MASKCOUNT, 1);
    if (L == req->co && lua_isyieldable(L)) {
        lua_yield(L, 0);
        return;
    }
    luaL_error(L, req->kill == KILL_OOM ? "sync.outOfMemory" : "sync.timeout");
}

struct rt_gen *rt_load_gen(struct runtime *rt, char *err, size_t errlen)
{
    struct sandbox_host sh = {
        .route = host_route, .sleep = host_sleep, .oom = host_oom, .ud = rt};
    char real[PATH_MAX];
    if (!realpath(rt->cfg->handlers_dir, real)) {
        snprintf(err, errlen, "%s: handlers folder not found", rt->cfg->handlers_dir);
        return NULL;
    }
    return rt_gen_load(real, rt->lua_dir, rt->cfg->sync_vm_pool_size, rt->cfg->sync_vm_memory_cap,
                       &sh, err, errlen);
}

/* ---- the coroutine body ---- */

static int push_json(lua_State *L, const json_t *v)
{
    if (!v) {
        lua_pushnil(L);
        return 0;
    }
    if (luajson_push(L, v, LUAJSON_MAX_DEPTH) != 0)
        return luaL_error(L, "value too deep for Lua");
    return 0;
}

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (v) {
        lua_pushstring(L, v);
        lua_setfield(L, -2, k);
    }
}

/* ctx[k] = v (a JSON value, pushed as Lua) on the table at the top of L. */
static void set_json(lua_State *L, const char *k, const json_t *v)
{
    lua_pushstring(L, k);
    push_json(L, v);
    lua_rawset(L, -3);
}

/* ctx.data: from its tree, or straight from its text. */
static void set_data(lua_State *L, const struct rt_req *req)
{
    lua_pushliteral(L, "data");
    if (req->data)
        push_json(L, req->data);
    else if (!req->data_text)
        lua_pushnil(L);
    else if (luajson_push_text(L, req->data_text, req->data_len, LUAJSON_MAX_DEPTH) != 0)
        luaL_error(L, "value too deep for Lua");
    lua_rawset(L, -3);
}

static int entry_k(lua_State *L, int status, lua_KContext k)
{
    (void)status;
    (void)k;
    lua_settop(L, 1); /* one result */
    return 1;
}

/* Runs inside the request's coroutine: find the function, build its argument, call it. */
static int entry(lua_State *L)
{
    struct rt_req *req = lua_touserdata(L, 1);
    lua_settop(L, 0);
    struct rt_vm *vm = req->vm;
    if (req->stage == ST_SERVER || req->stage == ST_CLIENT) {
        rt_vm_push_module(vm, L, req->route->key, req->stage == ST_CLIENT);
        if (!lua_istable(L, -1))
            return luaL_error(L, "route module missing");
        lua_pushstring(L, "main");
        lua_rawget(L, -2);
        lua_replace(L, -2);
        lua_createtable(L, 0, 8);
        set_data(L, req);
        set_str(L, "receiver", req->receiver);
        set_str(L, "route", req->route->key);
        rt_stream_push_ctx(L, req);
        if (req->stage == ST_SERVER) {
            set_json(L, "user", req->user);
        } else {
            set_json(L, "sender", req->user);
            set_json(L, "recipient", req->recipient);
            set_json(L, "serverOutput", req->server_output);
        }
    } else {
        enum rt_hook h = req->stage == ST_PRE_FANOUT    ? RT_HOOK_PRE_FANOUT
                         : req->stage == ST_POST_FANOUT ? RT_HOOK_POST_FANOUT
                                                        : RT_HOOK_ON_ERROR;
        rt_vm_push_hook(vm, L, h);
        lua_createtable(L, 0, 8);
        set_str(L, "route", req->route->key);
        set_str(L, "receiver", req->receiver);
        set_json(L, "user", req->user);
        if (req->stage == ST_ON_ERROR) {
            set_str(L, "stage", req->fail_stage);
            set_str(L, "error", req->fail_msg);
            const char *uid = json_string_value(json_object_get(req->user, "id"));
            set_str(L, "userId", uid);
            /* file and line, from "handlers/x.lua:12: message" */
            const char *m = req->fail_msg ? req->fail_msg : "";
            const char *c1 = strstr(m, ".lua:");
            if (c1) {
                lua_pushlstring(L, m, (size_t)(c1 - m) + 4);
                lua_setfield(L, -2, "file");
                lua_pushinteger(L, strtol(c1 + 5, NULL, 10));
                lua_setfield(L, -2, "line");
            }
        } else {
            set_data(L, req);
            set_json(L, "serverOutput", req->server_output);
            if (req->stage == ST_POST_FANOUT) {
                lua_pushinteger(L, (lua_Integer)req->delivered);
                lua_setfield(L, -2, "recipientCount");
            }
        }
    }
    lua_callk(L, 1, 1, 0, entry_k);
    return entry_k(L, LUA_OK, 0);
}

/* ---- running a call ---- */

/* 1 if the table at the top of L has the string key "status" with the value "success". Raw
 * traversal: nothing is allocated and nothing can raise here, outside any protected call. */
static int is_success(lua_State *L)
{
    if (lua_type(L, -1) != LUA_TTABLE || !lua_checkstack(L, 3))
        return 0;
    int yes = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        size_t kl, vl;
        if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
            const char *k = lua_tolstring(L, -2, &kl), *v = lua_tolstring(L, -1, &vl);
            if (kl == 6 && memcmp(k, "status", 6) == 0) {
                yes = vl == 7 && memcmp(v, "success", 7) == 0;
                lua_pop(L, 2);
                break;
            }
        }
        lua_pop(L, 1);
    }
    return yes;
}

/* The text path: a successful server result of a route without a client file, when no
 * preSyncFanout/postSyncFanout hook will look at it, goes straight from Lua to JSON text (the
 * same bytes as through a json_t). 1 when taken; 0 leaves the result to luajson_from_lua,
 * which also words any error. */
static int text_result(struct rt_req *req)
{
    if (req->stage != ST_SERVER || req->route->has_client ||
        req->gen->has_hook[RT_HOOK_PRE_FANOUT] || req->gen->has_hook[RT_HOOK_POST_FANOUT] ||
        !is_success(req->co))
        return 0;
    struct jtext_buf b;
    jtext_buf_init(&b);
    size_t s0 = 0, s1 = 0;
    /* a result is often about as long as the request's data (an echo, an edit): one block
     * of that size instead of a chain of doublings */
    if (jtext_buf_reserve(&b, req->data_len + 256) != 0)
        return 0;
    if (luajson_append_text(req->co, -1, LUAJSON_MAX_DEPTH, &b, "serverOutput", &s0, &s1) != 0) {
        jtext_buf_close(&b);
        return 0;
    }
    free(req->result_text);
    req->result_text = b.data;
    req->result_len = b.len;
    req->so_start = s0;
    req->so_end = s1;
    return 1;
}

static void call_outcome(struct rt_req *req, enum outcome out)
{
    req->out = out;
    json_decref(req->out_value);
    req->out_value = NULL;
    free(req->out_error);
    req->out_error = NULL;
    if (out == OUT_OK && text_result(req)) {
        /* req->result_text holds it */
    } else if (out == OUT_OK) {
        char err[256];
        if (luajson_from_lua(req->co, -1, LUAJSON_MAX_DEPTH, &req->out_value, err, sizeof err) !=
            0) {
            /* not representable as JSON (a function, a cycle, a NaN…): a bad return shape */
            req->out = OUT_BADVALUE;
            size_t n = strlen(err) + 32;
            req->out_error = malloc(n);
            if (req->out_error)
                snprintf(req->out_error, n, "bad return value: %s", err);
            req->out_value = NULL;
        }
    } else if (out == OUT_ERROR) {
        const char *m = lua_tostring(req->co, -1);
        req->out_error = strdup(m ? m : "(error object is not a string)");
    }
    if (out == OUT_OK) {
        lua_settop(req->co, 0); /* finished normally: reusable as is */
    } else {
        /* Errored or killed while suspended: closing it would run its pending __close
         * handlers outside any limit (and Lua 5.4.4 leaves hooks off on a coroutine whose
         * hook raised), so it is dropped unclosed — unreferenced now, so a collection can
         * reclaim what it held — and never resumed again. */
        luaL_unref(sandbox_state(req->vm->sb), LUA_REGISTRYINDEX, req->co_ref);
        req->co = NULL;
    }
    req->act = ACT_DONE;
}

static int attach_co(struct rt_req *req, struct rt_vm *vm);

/* A coroutine for the next call of req (a new one after an error or a kill). 0 or -1. */
static int fresh_co(struct rt_req *req)
{
    return req->co ? 0 : attach_co(req, req->vm);
}

static void fail_vm_requests(struct runtime *rt, struct rt_vm *vm, struct rt_req *except);

void rt_call_resume(struct rt_req *req, int nargs)
{
    struct runtime *rt = req->rt;
    struct rt_vm *vm = req->vm;
    /* The budget also counts slices that ended in a yield before the hook's first check
     * (a handler calling coroutine.yield or sleep(0) in a loop). */
    if (req->kill == KILL_NONE &&
        req->cpu_used_ns > (uint64_t)rt->cfg->sync_cpu_budget_ms * 1000000ull)
        req->kill = KILL_TIMEOUT;
    rt->running = req;
    vm->running = req;
    /* The budget counts the slices' elapsed monotonic time, as the hook does: a slice runs on
     * the loop's thread without blocking, so it is the handler's CPU time (plus any preemption
     * by other processes), read from the vDSO instead of a CLOCK_THREAD_CPUTIME_ID syscall. */
    req->slice_start_ns = rt_mono_ns();
    lua_sethook(req->co, hook, LUA_MASKCOUNT, req->kill ? 1 : HOOK_COUNT);
    int nres = 0;
    int st = lua_resume(req->co, NULL, nargs, &nres);
    req->cpu_used_ns += rt_mono_ns() - req->slice_start_ns;
    rt->running = NULL;
    vm->running = NULL;
    if (st == LUA_YIELD) {
        lua_pop(req->co, nres);
        if (req->kill) {
            call_outcome(req, OUT_KILLED);
        } else if (req->sleeping) {
            req->act = ACT_WAIT;
        } else {
            req->act = ACT_RESUME;
            rt_ready_push(req);
        }
    } else if (st == LUA_OK) {
        call_outcome(req, OUT_OK);
    } else {
        if (st == LUA_ERRMEM && !req->kill)
            req->kill = KILL_OOM;
        call_outcome(req, req->kill ? OUT_KILLED : OUT_ERROR);
    }
    if (req->kill == KILL_OOM) {
        lua_State *L = sandbox_state(vm->sb);
        lua_gc(L, LUA_GCCOLLECT);
        if (sandbox_mem_used(vm->sb) > sandbox_mem_cap(vm->sb) * 3 / 4) {
            LOG_W("Lua VM over its memory cap after a full collection; replacing it",
                  "\"memUsed\":%zu", sandbox_mem_used(vm->sb));
            vm->broken = 1;
            fail_vm_requests(rt, vm, req);
        }
    }
}

void rt_call_start(struct rt_req *req, enum stage st)
{
    req->stage = st;
    req->kill = KILL_NONE;
    req->cpu_used_ns = 0;
    if (fresh_co(req) != 0) {
        req->out = OUT_ERROR;
        free(req->out_error);
        req->out_error = strdup("no coroutine (out of memory)");
        req->act = ACT_DONE;
        return;
    }
    lua_settop(req->co, 0);
    lua_pushcfunction(req->co, entry);
    lua_pushlightuserdata(req->co, req);
    rt_call_resume(req, 1);
}

/* ---- coroutines and VMs ---- */

static int newthread(lua_State *L)
{
    lua_State *co = lua_newthread(L);
    (void)co;
    lua_pushvalue(L, -1);
    lua_insert(L, 1);
    lua_pushinteger(L, luaL_ref(L, LUA_REGISTRYINDEX));
    return 2;
}

/* A coroutine for req in vm (a spare one, or new). 0 or -1. */
static int attach_co(struct rt_req *req, struct rt_vm *vm)
{
    if (vm->nspare) {
        vm->nspare--;
        req->co = vm->spare_co[vm->nspare];
        req->co_ref = vm->spare_ref[vm->nspare];
        return 0;
    }
    lua_State *L = sandbox_state(vm->sb);
    lua_settop(L, 0);
    lua_pushcfunction(L, newthread);
    if (lua_pcall(L, 0, 2, 0) != LUA_OK) {
        lua_settop(L, 0);
        return -1;
    }
    req->co = lua_tothread(L, -2);
    req->co_ref = (int)lua_tointeger(L, -1);
    lua_settop(L, 0);
    return 0;
}

/* A VM (the least loaded) and a coroutine in it for req. 0 or -1. */
int rt_attach_vm(struct rt_req *req)
{
    struct rt_vm *vm = rt_gen_pick_vm(req->gen);
    if (!vm || attach_co(req, vm) != 0)
        return -1;
    req->vm = vm;
    vm->inflight++;
    return 0;
}

static void fail_vm_requests(struct runtime *rt, struct rt_vm *vm, struct rt_req *except)
{
    for (struct rt_req *r = rt->all; r; r = r->next) {
        if (r == except || r->vm != vm || r->act != ACT_WAIT)
            continue;
        /* A sleeping request of the broken VM: end its call as killed on the next turn. */
        timer_cancel(&r->timer);
        r->sleeping = 0;
        r->kill = KILL_OOM;
        r->act = ACT_RESUME; /* resuming with kill set yields out at the first instruction */
        rt_ready_push(r);
    }
}

/* ---- the roomJoin hook ---- */

#define ROOM_HOOK_NS 50000000ull

struct room_call {
    struct rt_vm *vm;
    const char *room;
    size_t len;
    json_t *user;
    uint64_t deadline;
    char code[128];
    int allowed;
};

static void room_hook_limit(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct sandbox *sb = sandbox_of(L);
    struct rt_vm *vm = sb ? sandbox_user(sb) : NULL;
    struct room_call *rc = vm ? vm->room_call : NULL;
    if (rc && rt_mono_ns() > rc->deadline) {
        lua_sethook(L, room_hook_limit, LUA_MASKCOUNT, 1);
        luaL_error(L, "roomJoin hook: time budget spent");
    }
}

static int room_hook_run(lua_State *L)
{
    struct room_call *rc = lua_touserdata(L, 1);
    lua_settop(L, 0);
    rt_vm_push_hook(rc->vm, L, RT_HOOK_ROOM_JOIN);
    if (!lua_isfunction(L, -1))
        return 0;
    lua_createtable(L, 0, 2);
    lua_pushlstring(L, rc->room, rc->len);
    lua_setfield(L, -2, "room");
    set_json(L, "user", rc->user);
    lua_call(L, 1, 1);
    if (lua_toboolean(L, -1) && !lua_istable(L, -1)) {
        rc->allowed = 1;
    } else if (lua_istable(L, -1)) {
        lua_pushstring(L, "errorCode");
        lua_rawget(L, -2);
        const char *c = lua_tostring(L, -1);
        if (c)
            snprintf(rc->code, sizeof rc->code, "%s", c);
    }
    return 0;
}

int runtime_room_allowed(struct runtime *rt, uint64_t conn, const char *room, size_t len,
                         const char **code)
{
    static char last_code[128];
    *code = "room.forbidden";
    if (!rt->gen->has_hook[RT_HOOK_ROOM_JOIN])
        return 0;
    struct rt_vm *vm = rt_gen_pick_vm(rt->gen);
    if (!vm)
        return 0;
    struct room_call rc = {.vm = vm, .room = room, .len = len,
                           .user = rt_user_of(rt, conn), .deadline = rt_mono_ns() + ROOM_HOOK_NS};
    lua_State *L = sandbox_state(vm->sb);
    vm->room_call = &rc;
    lua_sethook(L, room_hook_limit, LUA_MASKCOUNT, 1000);
    lua_settop(L, 0);
    lua_pushcfunction(L, room_hook_run);
    lua_pushlightuserdata(L, &rc);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        char esc[600];
        LOG_W("roomJoin hook failed", "\"error\":\"%s\"",
              log_escape(lua_tostring(L, -1), esc, sizeof esc));
        rc.allowed = 0;
    }
    lua_settop(L, 0);
    lua_sethook(L, NULL, 0, 0);
    vm->room_call = NULL;
    json_decref(rc.user);
    if (rc.code[0]) {
        snprintf(last_code, sizeof last_code, "%s", rc.code);
        *code = last_code;
    }
    return rc.allowed;
}
