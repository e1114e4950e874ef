/* rt_gen.c: loading a generation of handlers into VMs. */
#include "rt_gen.h"

#include <errno.h>
#include <stdarg.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "routes.h"
#include "schema.h"

static const char *hook_names[RT_HOOK_COUNT] = {"preSyncFanout", "postSyncFanout", "onError",
                                                "roomJoin"};

/* Append one problem line to err. */
static void problem(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(char *err, size_t errlen, const char *fmt, ...)
{
    size_t used = strlen(err);
    if (used + 2 >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + used, errlen - used - 1, fmt, ap);
    va_end(ap);
    used = strlen(err);
    if (used + 1 < errlen) {
        err[used] = '\n';
        err[used + 1] = '\0';
    }
}

static int read_file(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > 8u << 20) { /* a handler file over 8 MB is a mistake */
                free(buf);
                fclose(f);
                return -EFBIG;
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return -ENOMEM;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *text = buf;
    *len = n;
    return 0;
}

/* ---- loading modules into one VM (protected) ---- */

struct load_args {
    struct rt_gen *g;
    struct rt_vm *vm;
    char *err;
    size_t errlen;
    int first; /* extract metadata from this VM */
};

static int check_module(lua_State *L, const char *chunk, int is_server, char *err, size_t errlen)
{
    if (!lua_istable(L, -1)) {
        problem(err, errlen, "%s:1: a handler file must return a table", chunk);
        return -1;
    }
    lua_pushstring(L, "main");
    lua_rawget(L, -2);
    int ok = lua_isfunction(L, -1);
    lua_pop(L, 1);
    if (!ok) {
        problem(err, errlen, "%s:1: the returned table needs a `main` function", chunk);
        return -1;
    }
    if (!is_server)
        return 0;
    static const char *known[] = {"main", "auth", "input", "rateLimit", "allowNonMember",
                                  "description", NULL};
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        int found = 0;
        if (lua_type(L, -2) == LUA_TSTRING)
            for (int i = 0; known[i]; i++)
                found |= strcmp(lua_tostring(L, -2), known[i]) == 0;
        if (!found) {
            problem(err, errlen, "%s:1: unknown field `%s` in the returned table", chunk,
                    lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?");
            lua_pop(L, 2);
            return -1;
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* Metadata of a server module at the top of L into r. */
static int extract_meta(lua_State *L, struct rt_route *r, const char *chunk, char *err,
                        size_t errlen)
{
    int m = lua_gettop(L);
    r->rate_limit = -1;
    lua_pushstring(L, "auth");
    lua_rawget(L, m);
    if (lua_istable(L, -1)) {
        lua_pushstring(L, "login");
        lua_rawget(L, -2);
        r->login = lua_toboolean(L, -1);
        lua_pop(L, 1);
        lua_pushstring(L, "roles");
        lua_rawget(L, -2);
        if (lua_istable(L, -1)) {
            size_t n = lua_rawlen(L, -1);
            r->roles = calloc(n ? n : 1, sizeof *r->roles);
            for (size_t i = 0; r->roles && i < n; i++) {
                lua_rawgeti(L, -1, (lua_Integer)i + 1);
                if (lua_type(L, -1) == LUA_TSTRING)
                    r->roles[r->nroles++] = strdup(lua_tostring(L, -1));
                lua_pop(L, 1);
            }
            if (r->nroles)
                r->login = 1; /* roles imply a login */
        } else if (!lua_isnil(L, -1)) {
            problem(err, errlen, "%s:1: auth.roles must be a list of strings", chunk);
        }
        lua_pop(L, 1);
    } else if (!lua_isnil(L, -1)) {
        problem(err, errlen, "%s:1: auth must be a table", chunk);
    }
    lua_pop(L, 1);

    lua_pushstring(L, "input");
    lua_rawget(L, m);
    if (lua_istable(L, -1)) {
        char serr[256];
        r->input = schema_compile(L, lua_gettop(L), serr, sizeof serr);
        if (!r->input)
            problem(err, errlen, "%s:1: %s", chunk, serr);
    } else if (!lua_isnil(L, -1)) {
        problem(err, errlen, "%s:1: input must be a table", chunk);
    }
    lua_pop(L, 1);

    lua_pushstring(L, "rateLimit");
    lua_rawget(L, m);
    if (lua_isboolean(L, -1) && !lua_toboolean(L, -1))
        r->rate_limit = 0;
    else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0 && lua_tointeger(L, -1) < 1000000)
        r->rate_limit = (int)lua_tointeger(L, -1);
    else if (!lua_isnil(L, -1))
        problem(err, errlen, "%s:1: rateLimit must be a positive integer or false", chunk);
    lua_pop(L, 1);

    lua_pushstring(L, "allowNonMember");
    lua_rawget(L, m);
    r->allow_non_member = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return 0;
}

static int load_one(lua_State *L, struct load_args *a, struct rt_src *src, int is_server,
                    struct rt_route *r, const char *field)
{
    char e[1024];
    if (!src->text)
        return 0;
    if (sandbox_load_buffer(a->vm->sb, src->text, src->len, src->chunk, e, sizeof e) != 0) {
        problem(a->err, a->errlen, "%s", e);
        return -1;
    }
    if (check_module(L, src->chunk, is_server, a->err, a->errlen) != 0) {
        lua_pop(L, 1);
        return -1;
    }
    if (is_server && a->first)
        extract_meta(L, r, src->chunk, a->err, a->errlen);
    lua_setfield(L, -2, field);
    return 0;
}

static int load_all(lua_State *L)
{
    struct load_args *a = lua_touserdata(L, 1);
    struct rt_gen *g = a->g;
    lua_settop(L, 0);
    lua_createtable(L, 0, (int)g->nroutes);
    int routes = lua_gettop(L);
    for (size_t i = 0; i < g->nroutes; i++) {
        lua_createtable(L, 0, 2);
        load_one(L, a, &g->srv[i], 1, &g->routes[i], "server");
        load_one(L, a, &g->cli[i], 0, &g->routes[i], "client");
        lua_setfield(L, routes, g->routes[i].key);
    }
    a->vm->routes_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    a->vm->hooks_ref = LUA_NOREF;
    if (g->hooks.text) {
        char e[1024];
        if (sandbox_load_buffer(a->vm->sb, g->hooks.text, g->hooks.len, g->hooks.chunk, e,
                                sizeof e) != 0) {
            problem(a->err, a->errlen, "%s", e);
        } else if (!lua_istable(L, -1)) {
            problem(a->err, a->errlen, "%s:1: _hooks.lua must return a table", g->hooks.chunk);
            lua_pop(L, 1);
        } else {
            for (int h = 0; h < RT_HOOK_COUNT; h++) {
                lua_pushstring(L, hook_names[h]);
                lua_rawget(L, -2);
                int t = lua_type(L, -1);
                if (t == LUA_TFUNCTION)
                    g->has_hook[h] = a->first ? 1 : g->has_hook[h];
                else if (t != LUA_TNIL)
                    problem(a->err, a->errlen, "%s:1: %s must be a function", g->hooks.chunk,
                            hook_names[h]);
                lua_pop(L, 1);
            }
            a->vm->hooks_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        }
    }
    return 0;
}

#define LOAD_BUDGET_NS 2000000000ull /* loading every handler into one VM */

static unsigned long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/* A handler file that loops at top level must not hang the loop: past the deadline the hook
 * raises at every instruction until the load gives up. */
static void load_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct sandbox *sb = sandbox_of(L);
    struct rt_vm *vm = sb ? sandbox_user(sb) : NULL;
    if (!vm || mono_ns() < vm->load_deadline_ns)
        return;
    lua_sethook(L, load_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "loading took longer than %d ms (a loop at the top level?)",
               (int)(LOAD_BUDGET_NS / 1000000));
}

static struct rt_vm *vm_build(struct rt_gen *g, int first, char *err, size_t errlen)
{
    char e[512];
    struct rt_vm *vm = calloc(1, sizeof *vm);
    if (!vm) {
        problem(err, errlen, "out of memory");
        return NULL;
    }
    vm->gen = g;
    vm->routes_ref = vm->hooks_ref = LUA_NOREF;
    vm->sb = sandbox_new(g->mem_cap, g->lua_dir, g->handlers_dir, &g->host, e, sizeof e);
    if (!vm->sb) {
        problem(err, errlen, "cannot create a Lua VM: %s", e);
        free(vm);
        return NULL;
    }
    sandbox_set_user(vm->sb, vm);
    lua_State *L = sandbox_state(vm->sb);
    struct load_args a = {.g = g, .vm = vm, .err = err, .errlen = errlen, .first = first};
    size_t before = strlen(err);
    vm->load_deadline_ns = mono_ns() + LOAD_BUDGET_NS;
    lua_sethook(L, load_hook, LUA_MASKCOUNT, 10000);
    lua_pushcfunction(L, load_all);
    lua_pushlightuserdata(L, &a);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        problem(err, errlen, "loading handlers: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_sethook(L, NULL, 0, 0);
    if (strlen(err) != before) {
        sandbox_free(vm->sb);
        free(vm);
        return NULL;
    }
    lua_gc(L, LUA_GCCOLLECT);
    return vm;
}

static void vm_free(struct rt_vm *vm)
{
    if (!vm)
        return;
    sandbox_free(vm->sb);
    free(vm);
}

static void route_clear(struct rt_route *r)
{
    free(r->key);
    free(r->wire);
    for (size_t i = 0; i < r->nroles; i++)
        free(r->roles[i]);
    free(r->roles);
    schema_free(r->input);
    free(r->server_chunk);
    free(r->client_chunk);
}

static void gen_free(struct rt_gen *g)
{
    for (size_t i = 0; g->vms && i < g->nvms; i++)
        vm_free(g->vms[i]);
    free(g->vms);
    for (size_t i = 0; i < g->nretired; i++)
        vm_free(g->retired[i]);
    free(g->retired);
    for (size_t i = 0; i < g->nroutes; i++) {
        route_clear(&g->routes[i]);
        free(g->srv[i].chunk);
        free(g->srv[i].text);
        free(g->cli[i].chunk);
        free(g->cli[i].text);
    }
    free(g->routes);
    free(g->srv);
    free(g->cli);
    free(g->hooks.chunk);
    free(g->hooks.text);
    free(g->lua_dir);
    free(g->handlers_dir);
    free(g);
}

static int load_src(struct rt_src *s, const char *path, const char *chunk, char *err,
                    size_t errlen)
{
    if (!path)
        return 0;
    s->chunk = strdup(chunk);
    int rc = read_file(path, &s->text, &s->len);
    if (rc != 0 || !s->chunk) {
        problem(err, errlen, "%s:1: cannot read: %s", chunk, strerror(rc ? -rc : ENOMEM));
        return -1;
    }
    return 0;
}

struct rt_gen *rt_gen_load(const char *handlers_dir, const char *lua_dir, size_t nvms,
                           size_t mem_cap, const struct sandbox_host *host, char *err,
                           size_t errlen)
{
    static unsigned next_id = 1; /* generation numbers only label logs */
    struct route_list list;
    char e[512];
    err[0] = '\0';
    if (routes_scan(handlers_dir, &list, e, sizeof e) != 0) {
        problem(err, errlen, "%s", e);
        return NULL;
    }
    struct rt_gen *g = calloc(1, sizeof *g);
    if (!g)
        goto oom;
    g->id = next_id++;
    g->refs = 1;
    g->mem_cap = mem_cap;
    g->host = *host;
    g->handlers_dir = strdup(handlers_dir);
    g->lua_dir = lua_dir ? strdup(lua_dir) : NULL;
    g->nroutes = list.count;
    g->routes = calloc(list.count ? list.count : 1, sizeof *g->routes);
    g->srv = calloc(list.count ? list.count : 1, sizeof *g->srv);
    g->cli = calloc(list.count ? list.count : 1, sizeof *g->cli);
    g->nvms = nvms ? nvms : 1;
    g->vms = calloc(g->nvms, sizeof *g->vms);
    if (!g->handlers_dir || !g->routes || !g->srv || !g->cli || !g->vms)
        goto oom;
    for (size_t i = 0; i < list.count; i++) {
        const struct route_files *f = &list.items[i];
        struct rt_route *r = &g->routes[i];
        r->key = strdup(f->key);
        size_t wl = strlen(f->key) + 6;
        r->wire = malloc(wl);
        if (!r->key || !r->wire)
            goto oom;
        snprintf(r->wire, wl, "sync/%s", f->key);
        r->has_server = f->server_path != NULL;
        r->has_client = f->client_path != NULL;
        r->rate_limit = -1;
        r->server_chunk = f->server_chunk ? strdup(f->server_chunk) : NULL;
        r->client_chunk = f->client_chunk ? strdup(f->client_chunk) : NULL;
        load_src(&g->srv[i], f->server_path, f->server_chunk, err, errlen);
        load_src(&g->cli[i], f->client_path, f->client_chunk, err, errlen);
        if (!r->has_server)
            problem(err, errlen, "%s:1: a client file needs its server file (%s)",
                    f->client_chunk, f->key);
    }
    if (list.hooks_path)
        load_src(&g->hooks, list.hooks_path, "handlers/_hooks.lua", err, errlen);
    routes_free(&list);
    if (err[0])
        goto fail;
    for (size_t i = 0; i < g->nvms; i++) {
        g->vms[i] = vm_build(g, i == 0, err, errlen);
        if (!g->vms[i])
            goto fail;
    }
    return g;
oom:
    problem(err, errlen, "out of memory");
    routes_free(&list);
fail:
    if (g)
        gen_free(g);
    return NULL;
}

void rt_gen_ref(struct rt_gen *g)
{
    g->refs++;
}

void rt_gen_unref(struct rt_gen *g)
{
    if (g && --g->refs == 0) {
        LOG_D("handler generation freed", "\"generation\":%u", g->id);
        gen_free(g);
    }
}

const struct rt_route *rt_gen_find(const struct rt_gen *g, const char *key)
{
    size_t lo = 0, hi = g->nroutes;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(key, g->routes[mid].key);
        if (c == 0)
            return &g->routes[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}


void rt_gen_repair(struct rt_gen *g)
{
    for (size_t i = 0; i < g->nvms; i++) {
        struct rt_vm *vm = g->vms[i];
        if (!vm || !vm->broken)
            continue;
        struct rt_vm **nr = NULL;
        if (vm->inflight) {
            nr = realloc(g->retired, (g->nretired + 1) * sizeof *nr);
            if (!nr)
                continue;
            g->retired = nr;
        }
        char err[2048] = "";
        struct rt_vm *fresh = vm_build(g, 0, err, sizeof err);
        if (!fresh) {
            LOG_E("cannot rebuild a Lua VM", "\"error\":\"%.200s\"", err);
            continue;
        }
        LOG_W("Lua VM replaced", "\"generation\":%u,\"vm\":%zu,\"busy\":%u", g->id, i,
              vm->inflight);
        if (vm->inflight) {
            vm->retired = 1;
            g->retired[g->nretired++] = vm;
        } else {
            vm_free(vm);
        }
        g->vms[i] = fresh;
    }
}

void rt_gen_vm_left(struct rt_gen *g, struct rt_vm *vm)
{
    vm->inflight--;
    if (!vm->retired || vm->inflight)
        return;
    for (size_t i = 0; i < g->nretired; i++) {
        if (g->retired[i] == vm) {
            g->retired[i] = g->retired[--g->nretired];
            vm_free(vm);
            return;
        }
    }
}

struct rt_vm *rt_gen_pick_vm(struct rt_gen *g)
{
    rt_gen_repair(g);
    struct rt_vm *best = NULL;
    for (size_t i = 0; i < g->nvms; i++) {
        struct rt_vm *vm = g->vms[i];
        if (vm && !vm->broken && (!best || vm->inflight < best->inflight))
            best = vm;
    }
    return best;
}

void rt_vm_push_module(struct rt_vm *vm, lua_State *L, const char *key, int which)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->routes_ref);
    lua_pushstring(L, key);
    lua_rawget(L, -2);
    if (lua_istable(L, -1)) {
        lua_pushstring(L, which ? "client" : "server");
        lua_rawget(L, -2);
    } else {
        lua_pushnil(L);
    }
    lua_replace(L, -3);
    lua_pop(L, 1);
}

void rt_vm_push_hook(struct rt_vm *vm, lua_State *L, enum rt_hook h)
{
    if (vm->hooks_ref == LUA_NOREF) {
        lua_pushnil(L);
        return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->hooks_ref);
    lua_pushstring(L, hook_names[h]);
    lua_rawget(L, -2);
    lua_replace(L, -2);
}
