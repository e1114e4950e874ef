/* runtime.c: the lifecycle of sync requests over a generation of handler VMs.
 *
 * A request is a small state machine driven by step(): each Lua call (server handler, hook,
 * client handler per recipient) runs in the request's own coroutine, whose body is a C entry
 * function that builds ctx inside the coroutine (so every Lua error, memory errors included,
 * comes back through lua_resume). A call that sleeps waits on the runtime's timer wheel; a
 * call that used up its time slice yields from the count hook and waits in the ready queue, so
 * the loop serves other clients in between. When the CPU budget is spent (or the VM's
 * allocator refused memory for this request) the hook fires at every instruction and yields
 * the coroutine out for good: a yield cannot be caught by the handler's pcall, and the
 * coroutine is then reset, never resumed. */
#include "runtime.h"

#include <errno.h>
#include <lauxlib.h>
#include <sodium.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "envelope.h"
#include "jtext.h"
#include "log.h"
#include "luajson.h"
#include "ratelimit.h"
#include "routes.h"
#include "rt_gen.h"
#include "rt_req.h"
#include "sandbox.h"
#include "schema.h"
#include "session.h"
#include "sio.h"
#include "timer.h"

#define HOOK_COUNT 10000     /* instructions between checks of the slice and the budget */
#define SLICE_NS 5000000ull  /* a running handler yields to the loop after 5 ms */
#define STALL_NS 50000000ull /* … and is stopped after 50 ms where it cannot yield */
#define MAX_LUA_DEPTH 4000   /* call-stack depth of a handler */
#define RECEIVER_MAX 256
#define CB_MAX 256

uint64_t rt_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
#define mono_ns rt_mono_ns

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static void step(struct rt_req *req);

/* ---- scheduling ---- */

void rt_ready_push(struct rt_req *req)
{
    if (req->queued)
        return;
    req->queued = 1;
    req->ready_next = NULL;
    if (req->rt->ready_tail)
        req->rt->ready_tail->ready_next = req;
    else
        req->rt->ready_head = req;
    req->rt->ready_tail = req;
}

static void ready_remove(struct rt_req *req)
{
    if (!req->queued)
        return;
    struct runtime *rt = req->rt;
    struct rt_req **pp = &rt->ready_head, *prev = NULL;
    while (*pp && *pp != req) {
        prev = *pp;
        pp = &(*pp)->ready_next;
    }
    if (*pp) {
        *pp = req->ready_next;
        if (rt->ready_tail == req)
            rt->ready_tail = prev;
    }
    req->queued = 0;
}

static void rearm(struct runtime *rt)
{
    if (!rt->host.wake)
        return;
    uint64_t in = runtime_next_in(rt);
    if (in != UINT64_MAX)
        rt->host.wake(rt->host.ud, in);
}

uint64_t runtime_next_in(struct runtime *rt)
{
    if (rt->ready_head)
        return 0;
    return timer_next_in(rt->wheel, mono_ns() / 1000000u);
}

static void on_timer(struct timer_node *n, void *ud)
{
    (void)ud;
    struct rt_req *req = CONTAINER_OF(n, struct rt_req, timer);
    req->sleeping = 0;
    req->act = ACT_RESUME;
    rt_ready_push(req);
}

void runtime_poll(struct runtime *rt)
{
    timer_advance(rt->wheel, mono_ns() / 1000000u, rt);
    /* Only what was ready when we started: a request that yields again waits for the next
     * loop turn, so sockets are served between slices. */
    struct rt_req *tail = rt->ready_tail;
    while (rt->ready_head) {
        struct rt_req *req = rt->ready_head;
        rt->ready_head = req->ready_next;
        if (!rt->ready_head)
            rt->ready_tail = NULL;
        req->queued = 0;
        int last = req == tail;
        step(req);
        if (last)
            break;
    }
    rearm(rt);
}

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
    timer_schedule(rt->wheel, &req->timer, (mono_ns() + 999999u) / 1000000u + (uint64_t)ms);
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
        uint64_t now = mono_ns();
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
        lua_pushstring(L, "data");
        push_json(L, req->data);
        lua_rawset(L, -3);
        set_str(L, "receiver", req->receiver);
        set_str(L, "route", req->route->key);
        rt_stream_push_ctx(L, req);
        if (req->stage == ST_SERVER) {
            lua_pushstring(L, "user");
            push_json(L, req->user);
            lua_rawset(L, -3);
        } else {
            lua_pushstring(L, "sender");
            push_json(L, req->user);
            lua_rawset(L, -3);
            lua_pushstring(L, "recipient");
            push_json(L, req->recipient);
            lua_rawset(L, -3);
            lua_pushstring(L, "serverOutput");
            push_json(L, req->server_output);
            lua_rawset(L, -3);
        }
    } else {
        enum rt_hook h = req->stage == ST_PRE_FANOUT    ? RT_HOOK_PRE_FANOUT
                         : req->stage == ST_POST_FANOUT ? RT_HOOK_POST_FANOUT
                                                        : RT_HOOK_ON_ERROR;
        rt_vm_push_hook(vm, L, h);
        lua_createtable(L, 0, 8);
        set_str(L, "route", req->route->key);
        set_str(L, "receiver", req->receiver);
        lua_pushstring(L, "user");
        push_json(L, req->user);
        lua_rawset(L, -3);
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
            lua_pushstring(L, "data");
            push_json(L, req->data);
            lua_rawset(L, -3);
            lua_pushstring(L, "serverOutput");
            push_json(L, req->server_output);
            lua_rawset(L, -3);
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

static void call_outcome(struct rt_req *req, enum outcome out)
{
    req->out = out;
    json_decref(req->out_value);
    req->out_value = NULL;
    free(req->out_error);
    req->out_error = NULL;
    if (out == OUT_OK) {
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

static void resume(struct rt_req *req, int nargs)
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
    req->slice_start_ns = mono_ns();
    req->cpu_start_ns = cpu_ns();
    lua_sethook(req->co, hook, LUA_MASKCOUNT, req->kill ? 1 : HOOK_COUNT);
    int nres = 0;
    int st = lua_resume(req->co, NULL, nargs, &nres);
    req->cpu_used_ns += cpu_ns() - req->cpu_start_ns;
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

static void start_call(struct rt_req *req, enum stage st)
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
    resume(req, 1);
}

/* ---- answers ---- */

static void send_frame(struct runtime *rt, uint64_t conn, struct buf *b)
{
    if (b)
        rt->host.send(rt->host.ud, conn, b);
}

/* Answer the sender (env stolen) on sync-<i> and by ack. */
static void answer(struct rt_req *req, json_t *env)
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

static void answer_error(struct rt_req *req, const char *code, json_t *params)
{
    json_t *env = envelope_error(code, NULL);
    if (params)
        json_object_set_new(env, "errorParams", params);
    answer(req, env);
}

static json_t *param(const char *key, json_t *value)
{
    return json_pack("[{s:s, s:o}]", "key", key, "value", value);
}

/* ---- request lifetime ---- */

static void req_free(struct rt_req *req)
{
    struct runtime *rt = req->rt;
    ready_remove(req);
    timer_cancel(&req->timer);
    if (req->prev)
        req->prev->next = req->next;
    else
        rt->all = req->next;
    if (req->next)
        req->next->prev = req->prev;
    rt->inflight--;
    rt_stream_release(req);
    if (req->co) {
        struct rt_vm *vm = req->vm;
        lua_settop(req->co, 0);
        lua_sethook(req->co, NULL, 0, 0);
        if (vm->nspare < RT_VM_SPARE && !vm->broken && !vm->retired) {
            vm->spare_co[vm->nspare] = req->co;
            vm->spare_ref[vm->nspare++] = req->co_ref;
        } else {
            luaL_unref(sandbox_state(vm->sb), LUA_REGISTRYINDEX, req->co_ref);
        }
    }
    if (req->vm)
        rt_gen_vm_left(req->gen, req->vm); /* may free a retired VM: last use of req->vm */
    json_decref(req->data);
    json_decref(req->ri);
    json_decref(req->user);
    json_decref(req->result);
    json_decref(req->server_output);
    json_decref(req->recipient);
    json_decref(req->out_value);
    free(req->out_error);
    free(req->fail_msg);
    free(req->receiver);
    free(req->cb);
    free(req->recips);
    buf_unref(req->frame);
    if (req->gen)
        rt_gen_unref(req->gen);
    free(req);
}

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
static int attach_vm(struct rt_req *req)
{
    struct rt_vm *vm = rt_gen_pick_vm(req->gen);
    if (!vm || attach_co(req, vm) != 0)
        return -1;
    req->vm = vm;
    vm->inflight++;
    return 0;
}

/* onError for a failure at `stage`, then finish. */
static void fail(struct rt_req *req, const char *stage, const char *msg)
{
    char esc[600];
    if (req->cancelled && strstr(msg, "request.aborted")) {
        /* the expected end of a cancelled request, not a handler failure */
        LOG_I("request cancelled", "\"route\":\"%s\"", req->route->key);
        req->act = ACT_FINISH;
        return;
    }
    LOG_E("handler failed", "\"route\":\"%s\",\"stage\":\"%s\",\"error\":\"%s\"",
          req->route ? req->route->key : "", stage, log_escape(msg, esc, sizeof esc));
    if (req->gen->has_hook[RT_HOOK_ON_ERROR] && req->vm && req->stage != ST_ON_ERROR) {
        req->fail_stage = stage;
        free(req->fail_msg);
        req->fail_msg = strdup(msg);
        start_call(req, ST_ON_ERROR);
        return;
    }
    req->act = ACT_FINISH;
}

static const char *kill_code(const struct rt_req *req)
{
    return req->kill == KILL_OOM ? "sync.outOfMemory" : "sync.timeout";
}

/* ---- stages ---- */

static void begin_fanout(struct rt_req *req);

static void server_done(struct rt_req *req)
{
    if (req->out == OUT_KILLED) {
        answer_error(req, kill_code(req), NULL);
        fail(req, "server", kill_code(req));
        return;
    }
    if (req->out == OUT_ERROR) {
        answer_error(req, "sync.serverExecutionFailed", NULL);
        fail(req, "server", req->out_error ? req->out_error : "error");
        return;
    }
    if (req->out == OUT_BADVALUE) {
        answer_error(req, "sync.invalidServerResponse", NULL);
        fail(req, "server", req->out_error ? req->out_error : "bad return value");
        return;
    }
    json_t *r = req->out_value;
    const char *status = json_string_value(json_object_get(r, "status"));
    if (status && strcmp(status, "error") == 0) {
        const char *code = json_string_value(json_object_get(r, "errorCode"));
        json_t *env = envelope_error(code && *code ? code : "sync.invalidServerResponse",
                                     json_string_value(json_object_get(r, "message")));
        json_t *params = json_object_get(r, "errorParams");
        if (json_is_array(params))
            json_object_set(env, "errorParams", params);
        json_t *hs = json_object_get(r, "httpStatus");
        if (json_is_integer(hs) && json_integer_value(hs) >= 400 && json_integer_value(hs) < 600)
            json_object_set(env, "httpStatus", hs);
        answer(req, env);
        req->act = ACT_FINISH;
        return;
    }
    if (!json_is_object(r) || !status || strcmp(status, "success") != 0) {
        answer_error(req, "sync.invalidServerResponse", NULL);
        fail(req, "server", "the server handler must return {status = \"success\" | \"error\", …}");
        return;
    }
    rt_stream_flush_all(req);
    req->result = json_incref(r);
    json_t *so = json_object_get(r, "serverOutput");
    req->server_output = json_incref(so ? so : r);
    if (req->gen->has_hook[RT_HOOK_PRE_FANOUT]) {
        start_call(req, ST_PRE_FANOUT);
        return;
    }
    begin_fanout(req);
}

static void pre_fanout_done(struct rt_req *req)
{
    if (req->out != OUT_OK) {
        /* A failing hook aborts the fanout: the change is committed, but we cannot know the
         * hook would have allowed it. */
        answer_error(req, req->out == OUT_KILLED ? kill_code(req) : "sync.serverExecutionFailed",
                     NULL);
        fail(req, "preSyncFanout", req->out_error ? req->out_error : kill_code(req));
        return;
    }
    json_t *r = req->out_value;
    if (json_is_object(r) && json_is_true(json_object_get(r, "stop"))) {
        const char *code = json_string_value(json_object_get(r, "errorCode"));
        answer(req, envelope_error(code && *code ? code : "sync.fanoutAborted",
                                   json_string_value(json_object_get(r, "message"))));
        req->act = ACT_FINISH;
        return;
    }
    begin_fanout(req);
}

static json_t *user_of(struct runtime *rt, uint64_t conn);
static void after_fanout(struct rt_req *req);

/* "<a><b><c>" as a new jansson string (the success messages; no printf per request). */
static json_t *join_string(const char *a, const char *b, const char *c)
{
    size_t al = strlen(a), bl = strlen(b), cl = strlen(c);
    char *t = malloc(al + bl + cl + 1);
    if (!t)
        return NULL;
    memcpy(t, a, al);
    memcpy(t + al, b, bl);
    memcpy(t + al + bl, c, cl + 1);
    json_t *j = json_stringn(t, al + bl + cl);
    free(t);
    return j;
}

static int append_message(struct jtext_buf *b, const char *a, const char *wire, const char *c);

/* The recipients' frame text, serialised once: {"cb":…,"fullName":…,"status":"success",
 * "serverOutput":…,"clientOutput":{},"message":"<wire> sync success"}. NULL on failure. */
static char *fanout_text(const struct rt_req *req, size_t *len)
{
    const char *cb = req->cb ? req->cb : req->route->wire, *wire = req->route->wire;
    struct jtext_buf b;
    jtext_buf_init(&b);
    static const char k_full[] = ",\"fullName\":", k_so[] = ",\"status\":\"success\",\"serverOutput\":",
                      k_msg[] = ",\"clientOutput\":{},\"message\":";
    size_t wl = strlen(wire);
    int rc = jtext_buf_append(&b, "{\"cb\":", 6);
    rc = rc ? rc : jtext_string_append(&b, cb, strlen(cb));
    rc = rc ? rc : jtext_buf_append(&b, k_full, sizeof k_full - 1);
    rc = rc ? rc : jtext_string_append(&b, wire, wl);
    rc = rc ? rc : jtext_buf_append(&b, k_so, sizeof k_so - 1);
    rc = rc ? rc : jtext_dump_append(&b, req->server_output);
    rc = rc ? rc : jtext_buf_append(&b, k_msg, sizeof k_msg - 1);
    rc = rc ? rc : append_message(&b, "", wire, " sync success");
    rc = rc ? rc : jtext_buf_append(&b, "}", 1);
    if (rc) {
        jtext_buf_close(&b);
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
static void answer_success(struct rt_req *req)
{
    if (req->answered)
        return;
    struct jtext_buf b;
    jtext_buf_init(&b);
    static const char head[] = "{\"status\":\"success\",\"message\":", k_res[] = ",\"result\":";
    int rc = jtext_buf_append(&b, head, sizeof head - 1);
    rc = rc ? rc : append_message(&b, "sync ", req->route->wire, " success");
    rc = rc ? rc : jtext_buf_append(&b, k_res, sizeof k_res - 1);
    rc = rc ? rc : jtext_dump_append(&b, req->result);
    rc = rc ? rc : jtext_buf_append(&b, "}", 1);
    if (rc) {
        jtext_buf_close(&b);
        answer_error(req, "server.unavailable", NULL);
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
    jtext_buf_close(&b);
}

static void begin_fanout(struct rt_req *req)
{
    struct runtime *rt = req->rt;
    answer_success(req);
    uint64_t *all = NULL;
    size_t n = 0;
    if (rt->host.members(rt->host.ud, req->receiver, strlen(req->receiver), &all, &n) != 0)
        n = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!(req->ignore_self && all[i] == req->sender))
            all[k++] = all[i];
    req->recips = all;
    req->nrecips = k;
    req->next_recip = 0;
    if (req->route->has_client) {
        req->act = ACT_CLIENT_NEXT;
        return;
    }
    if (k == 0) { /* nobody to deliver to: no frame to build */
        after_fanout(req);
        return;
    }
    /* No client file: one frame for everyone, serialised once. */
    size_t tl = 0;
    char *text = fanout_text(req, &tl);
    if (text) {
        req->frame = sio_event_encode("sync", 4, text, tl, -1);
        free(text);
    }
    req->act = req->frame ? ACT_FANOUT : ACT_FINISH;
}

static void after_fanout(struct rt_req *req)
{
    if (req->gen->has_hook[RT_HOOK_POST_FANOUT]) {
        start_call(req, ST_POST_FANOUT);
        return;
    }
    req->act = ACT_FINISH;
}

static void fanout_slice(struct rt_req *req)
{
    size_t slice = req->rt->cfg->sync_fanout_slice_size;
    size_t end = req->next_recip + slice;
    if (end > req->nrecips)
        end = req->nrecips;
    for (; req->next_recip < end; req->next_recip++)
        if (req->rt->host.send(req->rt->host.ud, req->recips[req->next_recip], req->frame) == 0)
            req->delivered++;
    if (req->next_recip < req->nrecips) {
        req->act = ACT_FANOUT;
        rt_ready_push(req);
        req->act = ACT_FANOUT;
        return;
    }
    after_fanout(req);
}

static void client_done(struct rt_req *req)
{
    struct runtime *rt = req->rt;
    uint64_t to = req->recips[req->next_recip - 1];
    json_t *frame = NULL;
    const char *wire = req->route->wire, *cb = req->cb ? req->cb : wire;
    if (req->out == OUT_OK) {
        json_t *r = req->out_value;
        const char *status = json_string_value(json_object_get(r, "status"));
        if (status && strcmp(status, "skip") == 0) {
            req->act = ACT_CLIENT_NEXT;
            return;
        }
        if (status && strcmp(status, "success") == 0) {
            json_t *co = json_object_get(r, "clientOutput");
            const char *msg = json_string_value(json_object_get(r, "message"));
            frame = json_pack("{s:s, s:s, s:s, s:O, s:o, s:s}", "cb", cb, "fullName", wire,
                              "status", "success", "serverOutput", req->server_output,
                              "clientOutput", co ? json_incref(co) : json_object(), "message",
                              msg ? msg : "");
            if (frame && !msg)
                json_object_set_new(frame, "message", join_string("", wire, " sync success"));
        } else if (status && strcmp(status, "error") == 0) {
            const char *code = json_string_value(json_object_get(r, "errorCode"));
            frame = json_pack("{s:s, s:s, s:s, s:s}", "cb", cb, "fullName", wire, "status",
                              "error", "errorCode", code && *code ? code : "sync.clientRejected");
            json_t *params = json_object_get(r, "errorParams");
            if (frame && json_is_array(params))
                json_object_set(frame, "errorParams", params);
        } else {
            frame = json_pack("{s:s, s:s, s:s, s:s}", "cb", cb, "fullName", wire, "status",
                              "error", "errorCode", "sync.invalidClientResponse");
        }
    } else {
        const char *code = req->out == OUT_KILLED     ? kill_code(req)
                           : req->out == OUT_BADVALUE ? "sync.invalidClientResponse"
                                                      : "sync.clientExecutionFailed";
        frame = json_pack("{s:s, s:s, s:s, s:s}", "cb", cb, "fullName", wire, "status", "error",
                          "errorCode", code);
        char esc[600];
        LOG_E("client handler failed",
              "\"route\":\"%s\",\"recipient\":%llu,\"error\":\"%s\"", req->route->key,
              (unsigned long long)to,
              log_escape(req->out_error ? req->out_error : code, esc, sizeof esc));
    }
    if (frame) {
        char *text = jtext_dump(frame, NULL);
        if (text) {
            struct buf *b = sio_event_encode("sync", 4, text, strlen(text), -1);
            if (b && rt->host.send(rt->host.ud, to, b) == 0)
                req->delivered++;
            buf_unref(b);
            free(text);
        }
        json_decref(frame);
    }
    req->act = ACT_CLIENT_NEXT;
    if (req->out != OUT_OK && req->gen->has_hook[RT_HOOK_ON_ERROR]) {
        /* onError hears about client-file failures too, then the recipients go on */
        req->client_error_pending = 1;
        req->fail_stage = "client";
        free(req->fail_msg);
        req->fail_msg = strdup(req->out_error ? req->out_error
                               : req->out == OUT_KILLED ? kill_code(req)
                                                        : "error");
        start_call(req, ST_ON_ERROR);
    }
}

static void client_next(struct rt_req *req, size_t *budget)
{
    struct runtime *rt = req->rt;
    while (req->next_recip < req->nrecips) {
        if (*budget == 0) {
            req->act = ACT_CLIENT_NEXT;
            rt_ready_push(req);
            return;
        }
        (*budget)--;
        uint64_t to = req->recips[req->next_recip++];
        json_decref(req->recipient);
        req->recipient = user_of(rt, to);
        if (!rt->host.is_member(rt->host.ud, to, req->receiver, strlen(req->receiver)))
            continue; /* left or gone since the snapshot */
        start_call(req, ST_CLIENT);
        return;
    }
    after_fanout(req);
}

static void observe_hook(struct rt_req *req)
{
    static const char *names[] = {[ST_PRE_FANOUT] = "preSyncFanout",
                                  [ST_POST_FANOUT] = "postSyncFanout",
                                  [ST_ON_ERROR] = "onError"};
    struct runtime *rt = req->rt;
    if (!rt->host.hook_called || req->stage == ST_SERVER || req->stage == ST_CLIENT)
        return;
    rt->host.hook_called(rt->host.ud, names[req->stage], req->route->key,
                         req->out == OUT_OK ? req->out_value : NULL,
                         req->stage == ST_POST_FANOUT ? (long)req->delivered : -1);
}

static void stage_done(struct rt_req *req)
{
    observe_hook(req);
    switch (req->stage) {
    case ST_SERVER:
        server_done(req);
        break;
    case ST_PRE_FANOUT:
        pre_fanout_done(req);
        break;
    case ST_CLIENT:
        client_done(req);
        break;
    case ST_POST_FANOUT:
        if (req->out != OUT_OK)
            LOG_W("postSyncFanout hook failed", "\"route\":\"%s\"", req->route->key);
        req->act = ACT_FINISH;
        break;
    case ST_ON_ERROR:
        if (req->out != OUT_OK)
            LOG_W("onError hook failed", "\"route\":\"%s\"", req->route->key);
        req->act = req->client_error_pending ? ACT_CLIENT_NEXT : ACT_FINISH;
        req->client_error_pending = 0;
        break;
    }
}

/* Drive req until it waits or ends. */
static void step(struct rt_req *req)
{
    size_t budget = req->rt->cfg->sync_fanout_slice_size;
    for (;;) {
        switch (req->act) {
        case ACT_START:
            start_call(req, ST_SERVER);
            break;
        case ACT_RESUME:
            resume(req, 0);
            break;
        case ACT_DONE:
            stage_done(req);
            break;
        case ACT_FANOUT:
            if (req->queued)
                return;
            fanout_slice(req);
            if (req->queued)
                return;
            break;
        case ACT_CLIENT_NEXT:
            client_next(req, &budget);
            if (req->queued)
                return;
            break;
        case ACT_FINISH:
            req_free(req);
            return;
        case ACT_WAIT:
            return;
        }
        if (req->queued || req->act == ACT_WAIT)
            return;
    }
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

static json_t *user_of(struct runtime *rt, uint64_t conn)
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
/* A random (version 4) UUID. The bytes come from libsodium's CSPRNG, one block per 32 ids
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

void runtime_sync(struct runtime *rt, uint64_t conn, const json_t *payload, int64_t ack_id,
                  size_t raw_len)
{
    const struct config *cfg = rt->cfg;
    struct rt_req *req = calloc(1, sizeof *req);
    if (!req)
        return;
    req->rt = rt;
    req->sender = conn;
    req->ack_id = ack_id;
    req->act = ACT_START;
    timer_node_init(&req->timer, on_timer);
    req->gen = rt->gen;
    rt_gen_ref(req->gen);
    req->next = rt->all;
    if (rt->all)
        rt->all->prev = req;
    rt->all = req;
    rt->inflight++;

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
            answer_error(req, "sync.invalidRequest", NULL);
        req_free(req);
        return;
    }
    req->ri = json_incref(json_object_get(payload, "responseIndex"));
    const json_t *name = json_object_get(payload, "name");
    const json_t *data = json_object_get(payload, "data");
    const json_t *recv = json_object_get(payload, "receiver");
    const json_t *cb = json_object_get(payload, "cb");
    req->ignore_self = json_is_true(json_object_get(payload, "ignoreSelf"));
    if (json_is_string(cb) && json_string_length(cb) && json_string_length(cb) <= CB_MAX)
        req->cb = strdup(json_string_value(cb));
    char key[ROUTES_KEY_MAX];
    const char *code = NULL;
    json_t *params = NULL;
    if (!json_is_string(name) || !json_is_object(data)) {
        code = "sync.invalidRequest";
    } else if (routes_parse_name(json_string_value(name), json_string_length(name), key,
                                 sizeof key) < 0) {
        code = "sync.invalidName";
        params = param("name", json_string(json_string_value(name)));
    } else if (!(req->route = rt_gen_find(req->gen, key))) {
        code = "sync.notFound";
        params = param("name", json_string(json_string_value(name)));
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
        size_t rl = json_is_string(recv) ? json_string_length(recv) : 0;
        const char *rs = json_is_string(recv) ? json_string_value(recv) : "";
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
        if (!dl) {
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
            unsigned wait = ratelimit_hit(rt->rl, rkey, (unsigned)limit, mono_ns() / 1000000u);
            if (wait) {
                code = "sync.rateLimitExceeded";
                params = param("seconds", json_integer(wait));
            }
        }
    }
    if (!code && !req->route->allow_non_member &&
        !rt->host.is_member(rt->host.ud, conn, req->receiver, strlen(req->receiver)))
        code = "sync.notRoomMember";
    if (!code && req->route->input) {
        char field[256];
        const char *reason = "type";
        if (schema_validate(req->route->input, data, field, sizeof field, &reason) != 0) {
            code = "sync.invalidInput";
            params = json_pack("[{s:s, s:s}, {s:s, s:s}]", "key", "field", "value", field, "key",
                               "reason", "value", reason);
        }
    }
    if (!code && attach_vm(req) != 0)
        code = "server.unavailable";
    if (code) {
        answer_error(req, code, params);
        req_free(req);
        rearm(rt);
        return;
    }
    req->data = json_incref((json_t *)data); /* shared, never modified */
    req->user = user_json(s);
    step(req);
    rearm(rt);
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
    if (rc && mono_ns() > rc->deadline) {
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
    lua_pushstring(L, "user");
    push_json(L, rc->user);
    lua_rawset(L, -3);
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
                           .user = user_of(rt, conn), .deadline = mono_ns() + ROOM_HOOK_NS};
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

static void cancel(struct rt_req *req, int tell_sender)
{
    if (req->cancelled)
        return;
    if (tell_sender)
        answer_error(req, "request.aborted", NULL);
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
    for (struct rt_req *r = rt->all; r; r = r->next)
        if (r->sender == conn)
            cancel(r, 0);
    rearm(rt);
}

void runtime_cancel(struct runtime *rt, uint64_t conn, const char *cancel_id)
{
    for (struct rt_req *r = rt->all; r; r = r->next)
        if (r->sender == conn && r->cancel_id[0] && strcmp(r->cancel_id, cancel_id) == 0) {
            cancel(r, 1);
            break;
        }
    rearm(rt);
}

/* ---- lifetime ---- */

static char *default_lua_dir(const char *handlers)
{
    char real[PATH_MAX];
    if (!realpath(handlers, real))
        return NULL;
    char *slash = strrchr(real, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    size_t n = strlen(real) + 5;
    char *dir = malloc(n);
    if (dir)
        snprintf(dir, n, "%s/lua", real);
    struct stat st;
    if (dir && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
        free(dir);
        return NULL;
    }
    return dir;
}

static struct rt_gen *load_gen(struct runtime *rt, char *err, size_t errlen)
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

struct runtime *runtime_new(const struct config *cfg, const char *lua_dir,
                            const struct runtime_host *host, char *err, size_t errlen)
{
    struct runtime *rt = calloc(1, sizeof *rt);
    if (!rt) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    rt->cfg = cfg;
    rt->host = *host;
    rt->lua_dir = lua_dir ? strdup(lua_dir) : default_lua_dir(cfg->handlers_dir);
    rt->wheel = timer_wheel_new(mono_ns() / 1000000u, 1, 1024);
    rt->rl = ratelimit_new(100000);
    rt->rnd_pos = sizeof rt->rnd;
    if (!rt->wheel || !rt->rl) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    rt->gen = load_gen(rt, err, errlen);
    if (!rt->gen)
        goto fail;
    LOG_I("handlers loaded", "\"routes\":%zu,\"vms\":%zu,\"generation\":%u", rt->gen->nroutes,
          rt->gen->nvms, rt->gen->id);
    return rt;
fail:
    runtime_free(rt);
    return NULL;
}

void runtime_free(struct runtime *rt)
{
    if (!rt)
        return;
    while (rt->all)
        req_free(rt->all);
    rt_gen_unref(rt->gen);
    timer_wheel_free(rt->wheel);
    ratelimit_free(rt->rl);
    free(rt->lua_dir);
    free(rt);
}

int runtime_reload(struct runtime *rt)
{
    char err[8192];
    struct rt_gen *g = load_gen(rt, err, sizeof err);
    if (!g) {
        char esc[2048];
        LOG_E("handler reload failed; the previous version stays live", "\"error\":\"%s\"",
              log_escape(err, esc, sizeof esc));
        if (rt->host.dev_error) {
            /* first problem line: "file:line: message" */
            char file[512] = "", *nl = strchr(err, '\n');
            if (nl)
                *nl = '\0';
            /* The innermost location: "handlers/a.lua:2: require 'm': lua/m.lua:5: …" names
             * lua/m.lua:5. */
            const char *c = NULL;
            for (const char *p = strstr(err, ".lua:"); p; p = strstr(p + 1, ".lua:"))
                if (p[5] >= '0' && p[5] <= '9')
                    c = p;
            int line = 0;
            const char *msg = err;
            if (c) {
                const char *startf = c;
                while (startf > err && startf[-1] != ' ' && startf[-1] != '\'' &&
                       startf[-1] != '"')
                    startf--;
                size_t fl = (size_t)(c - startf) + 4;
                if (fl < sizeof file) {
                    memcpy(file, startf, fl);
                    file[fl] = '\0';
                }
                line = (int)strtol(c + 5, NULL, 10);
                const char *m = strchr(c + 5, ':');
                msg = m ? m + 1 + (m[1] == ' ') : err;
            }
            rt->host.dev_error(rt->host.ud, file, line, msg);
        }
        return -1;
    }
    struct rt_gen *old = rt->gen;
    rt->gen = g;
    LOG_I("handlers reloaded", "\"routes\":%zu,\"generation\":%u", g->nroutes, g->id);
    rt_gen_unref(old);
    return 0;
}

int runtime_check(const struct config *cfg, const char *lua_dir, FILE *out)
{
    struct runtime_host host = {0};
    char err[16384];
    struct runtime rt = {.cfg = cfg, .host = host};
    rt.lua_dir = lua_dir ? strdup(lua_dir) : default_lua_dir(cfg->handlers_dir);
    struct rt_gen *g = load_gen(&rt, err, sizeof err);
    int problems = 0;
    if (!g) {
        fputs(err, out);
        for (const char *p = err; *p; p++)
            problems += *p == '\n';
        if (!problems)
            problems = 1;
    } else {
        fprintf(out, "ok: %zu routes\n", g->nroutes);
        rt_gen_unref(g);
    }
    free(rt.lua_dir);
    return problems;
}

int runtime_typescript(const struct config *cfg, const char *lua_dir, FILE *out)
{
    char err[16384];
    struct runtime rt = {.cfg = cfg};
    rt.lua_dir = lua_dir ? strdup(lua_dir) : default_lua_dir(cfg->handlers_dir);
    struct rt_gen *g = load_gen(&rt, err, sizeof err);
    free(rt.lua_dir);
    if (!g) {
        fputs(err, stderr);
        return -1;
    }
    fputs("// Generated by `luckysync types`: the sync routes and their input types.\n"
          "export interface SyncRoutes {\n",
          out);
    for (size_t i = 0; i < g->nroutes; i++) {
        char *ts = g->routes[i].input ? schema_to_typescript(g->routes[i].input) : NULL;
        fprintf(out, "  \"%s\": { input: %s };\n", g->routes[i].wire,
                ts ? ts : "Record<string, unknown>");
        free(ts);
    }
    fputs("}\nexport type SyncRouteName = keyof SyncRoutes;\n", out);
    rt_gen_unref(g);
    return 0;
}

unsigned runtime_inflight(const struct runtime *rt)
{
    return rt->inflight;
}

unsigned runtime_generation(const struct runtime *rt)
{
    return rt->gen ? rt->gen->id : 0;
}
