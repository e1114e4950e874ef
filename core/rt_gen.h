/* rt_gen: one generation of handler code — the routes' metadata (auth, compiled input
 * schema, rate limit, membership rule) and a pool of sandboxed VMs, each holding every
 * handler module. Private to the runtime (runtime.c, rt_call.c, rt_sync.c and rt_gen.c). A
 * generation is reference-counted: the runtime holds one reference for the current generation
 * and every request in flight holds one, so a hot reload frees the old code when its last
 * request ends. */
#ifndef LUCKYSYNC_RT_GEN_H
#define LUCKYSYNC_RT_GEN_H

#include <lua.h>
#include <stddef.h>

#include "sandbox.h"

struct schema;
struct runtime;
struct room_call;
struct rt_req;

struct rt_route {
    char *key;  /* "board/moveCard/v1" */
    char *wire; /* "sync/board/moveCard/v1" */
    int has_server, has_client;
    int login;   /* auth.login */
    char **roles; /* auth.roles: every one required */
    size_t nroles;
    struct schema *input; /* NULL: any table */
    int rate_limit;       /* -1: config default, 0: off, > 0 per minute */
    int allow_non_member;
    char *server_chunk, *client_chunk;
};

struct rt_vm {
    struct sandbox *sb;
    struct rt_gen *gen;
    int routes_ref;     /* registry: key → {server = module, client = module} */
    int hooks_ref;      /* registry: hooks table, or LUA_NOREF */
    unsigned inflight;  /* requests assigned to this VM */
    struct rt_req *running; /* the request being resumed right now */
    int broken;         /* over its cap after a full collection: replace it */
    int retired;        /* replaced while requests still ran in it: freed after the last */
    unsigned long long load_deadline_ns; /* while loading: a top-level loop is cut here */
    struct room_call *room_call; /* the roomJoin hook running synchronously, if any */
    /* finished coroutines kept for the next requests (registry refs), at most RT_VM_SPARE */
    int spare_ref[64];
    lua_State *spare_co[64];
    unsigned nspare;
};
#define RT_VM_SPARE 64

enum rt_hook {
    RT_HOOK_PRE_FANOUT,
    RT_HOOK_POST_FANOUT,
    RT_HOOK_ON_ERROR,
    RT_HOOK_ROOM_JOIN,
    RT_HOOK_COUNT
};

struct rt_src {
    char *chunk; /* "handlers/board/_sync/moveCard_server_v1.lua" */
    char *text;
    size_t len;
};

struct rt_gen {
    unsigned id;
    int refs;
    struct rt_route *routes; /* sorted by key */
    size_t nroutes;
    struct rt_src *srv, *cli; /* per route; text NULL when the file is absent */
    struct rt_src hooks;      /* text NULL when there is no _hooks.lua */
    int has_hook[RT_HOOK_COUNT];
    struct rt_vm **vms;
    size_t nvms;
    struct rt_vm **retired; /* replaced VMs still running requests */
    size_t nretired;
    /* what a VM needs to be rebuilt */
    size_t mem_cap;
    char *lua_dir, *handlers_dir;
    struct sandbox_host host;
};

/* Read and compile every handler under handlers_dir into a new generation with nvms VMs.
 * Problems are appended to err as "file:line: message" lines; returns NULL when there is any.
 * host is the sandbox host every VM gets (its ud is typically the runtime). */
struct rt_gen *rt_gen_load(const char *handlers_dir, const char *lua_dir, size_t nvms,
                           size_t mem_cap, const struct sandbox_host *host, char *err,
                           size_t errlen);
void rt_gen_ref(struct rt_gen *g);
/* Drop a reference; frees the generation and its VMs on the last one. */
void rt_gen_unref(struct rt_gen *g);

const struct rt_route *rt_gen_find(const struct rt_gen *g, const char *key);
/* The least loaded healthy VM (rebuilding broken idle ones first). NULL if none can be built. */
struct rt_vm *rt_gen_pick_vm(struct rt_gen *g);
/* Replace broken VMs: at once when idle; a busy one is retired (its requests finish there)
 * and a fresh VM takes its slot. */
void rt_gen_repair(struct rt_gen *g);
/* A request left vm: frees a retired VM after its last request. */
void rt_gen_vm_left(struct rt_gen *g, struct rt_vm *vm);

/* Push the module of a route's server (which = 0) or client (1) file, or a hook function
 * (rt_gen_push_hook), onto L (the VM's main state or a coroutine of it). Push nil when absent.
 * They allocate (key strings): call them only where Lua errors are caught (a coroutine). */
void rt_vm_push_module(struct rt_vm *vm, lua_State *L, const char *key, int which);
void rt_vm_push_hook(struct rt_vm *vm, lua_State *L, enum rt_hook h);

#endif
