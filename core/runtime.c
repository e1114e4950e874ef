/* runtime.c: the runtime object and the lifecycle of sync requests over a generation of
 * handler VMs.
 *
 * A request is a small state machine driven by rt_step(): the server handler, the preSyncFanout
 * hook, the success answer, then the fanout (one frame for every recipient, in slices) or the
 * client handler per recipient, the postSyncFanout hook, and onError for every handler failure.
 * A request waits on the runtime's timer wheel (sleep) or in its ready queue (a spent time
 * slice, the next slice of recipients); runtime_poll drives both. Also here: creating,
 * reloading and freeing the runtime, and the `check` and `types` commands.
 *
 * Running one Lua call in the request's coroutine is rt_call.c; a request's entry checks, its
 * answers and cancel are rt_sync.c; the stream primitives are rt_stream.c. */
#include "runtime.h"

#include <errno.h>
#include <lauxlib.h>
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
#include "ratelimit.h"
#include "routes.h"
#include "rt_gen.h"
#include "rt_req.h"
#include "sandbox.h"
#include "schema.h"
#include "sio.h"
#include "timer.h"

uint64_t rt_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
#define mono_ns rt_mono_ns

#define CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

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

void rt_rearm(struct runtime *rt)
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
        rt_step(req);
        if (last)
            break;
    }
    rt_rearm(rt);
}

/* ---- request lifetime ---- */

struct rt_req *rt_req_new(struct runtime *rt, uint64_t conn, int64_t ack_id)
{
    struct rt_req *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
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
    struct rt_req **b = &rt->by_sender[rt_sender_bucket(conn)];
    req->sender_next = *b;
    if (*b)
        (*b)->sender_pprev = &req->sender_next;
    req->sender_pprev = b;
    *b = req;
    rt->inflight++;
    return req;
}

void rt_req_free(struct rt_req *req)
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
    *req->sender_pprev = req->sender_next;
    if (req->sender_next)
        req->sender_next->sender_pprev = req->sender_pprev;
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
    free(req->data_text);
    json_decref(req->ri);
    json_decref(req->user);
    json_decref(req->result);
    free(req->result_text);
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
        rt_call_start(req, ST_ON_ERROR);
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
        rt_answer_error(req, kill_code(req), NULL);
        fail(req, "server", kill_code(req));
        return;
    }
    if (req->out == OUT_ERROR) {
        rt_answer_error(req, "sync.serverExecutionFailed", NULL);
        fail(req, "server", req->out_error ? req->out_error : "error");
        return;
    }
    if (req->out == OUT_BADVALUE) {
        rt_answer_error(req, "sync.invalidServerResponse", NULL);
        fail(req, "server", req->out_error ? req->out_error : "bad return value");
        return;
    }
    if (req->result_text) { /* the text path (rt_call.c): a success, nothing else looks at it */
        rt_stream_flush_all(req);
        begin_fanout(req);
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
        rt_answer(req, env);
        req->act = ACT_FINISH;
        return;
    }
    if (!json_is_object(r) || !status || strcmp(status, "success") != 0) {
        rt_answer_error(req, "sync.invalidServerResponse", NULL);
        fail(req, "server", "the server handler must return {status = \"success\" | \"error\", …}");
        return;
    }
    rt_stream_flush_all(req);
    req->result = json_incref(r);
    json_t *so = json_object_get(r, "serverOutput");
    req->server_output = json_incref(so ? so : r);
    if (req->gen->has_hook[RT_HOOK_PRE_FANOUT]) {
        rt_call_start(req, ST_PRE_FANOUT);
        return;
    }
    begin_fanout(req);
}

static void pre_fanout_done(struct rt_req *req)
{
    if (req->out != OUT_OK) {
        /* A failing hook aborts the fanout: the change is committed, but we cannot know the
         * hook would have allowed it. */
        rt_answer_error(req, req->out == OUT_KILLED ? kill_code(req) : "sync.serverExecutionFailed",
                        NULL);
        fail(req, "preSyncFanout", req->out_error ? req->out_error : kill_code(req));
        return;
    }
    json_t *r = req->out_value;
    if (json_is_object(r) && json_is_true(json_object_get(r, "stop"))) {
        const char *code = json_string_value(json_object_get(r, "errorCode"));
        rt_answer(req, envelope_error(code && *code ? code : "sync.fanoutAborted",
                                      json_string_value(json_object_get(r, "message"))));
        req->act = ACT_FINISH;
        return;
    }
    begin_fanout(req);
}

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

static void begin_fanout(struct rt_req *req)
{
    struct runtime *rt = req->rt;
    rt_answer_success(req);
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
    const char *text = rt_fanout_text(req, &tl);
    if (text) {
        req->frame = sio_event_encode("sync", 4, text, tl, -1);
        rt_text_done(rt);
    }
    req->act = req->frame ? ACT_FANOUT : ACT_FINISH;
}

static void after_fanout(struct rt_req *req)
{
    if (req->gen->has_hook[RT_HOOK_POST_FANOUT]) {
        rt_call_start(req, ST_POST_FANOUT);
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
        rt_call_start(req, ST_ON_ERROR);
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
        req->recipient = rt_user_of(rt, to);
        if (!rt->host.is_member(rt->host.ud, to, req->receiver, strlen(req->receiver)))
            continue; /* left or gone since the snapshot */
        rt_call_start(req, ST_CLIENT);
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
void rt_step(struct rt_req *req)
{
    size_t budget = req->rt->cfg->sync_fanout_slice_size;
    for (;;) {
        switch (req->act) {
        case ACT_START:
            rt_call_start(req, ST_SERVER);
            break;
        case ACT_RESUME:
            rt_call_resume(req, 0);
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
            rt_req_free(req);
            return;
        case ACT_WAIT:
            return;
        }
        if (req->queued || req->act == ACT_WAIT)
            return;
    }
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
    rt->gen = rt_load_gen(rt, err, errlen);
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
        rt_req_free(rt->all);
    rt_gen_unref(rt->gen);
    timer_wheel_free(rt->wheel);
    ratelimit_free(rt->rl);
    jtext_buf_close(&rt->text);
    free(rt->lua_dir);
    free(rt);
}

int runtime_reload(struct runtime *rt)
{
    char err[8192];
    struct rt_gen *g = rt_load_gen(rt, err, sizeof err);
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
    struct rt_gen *g = rt_load_gen(&rt, err, sizeof err);
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
    struct rt_gen *g = rt_load_gen(&rt, err, sizeof err);
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
