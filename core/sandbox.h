/* sandbox: one sandboxed Lua 5.4 VM for handlers. A byte-counting allocator with a cap; only
 * the libraries string, table, math, utf8, coroutine and a safe os subset (time, clock, date);
 * every chunk loaded from source only ("t" mode) with its own strict _ENV over a read-only,
 * allow-listed base; `require` limited to modules under the project's lua/ folder and the
 * handlers folder, loaded from source and cached per VM; the host functions table
 * (ctx.functions: json, log, now, uuid, sleep, hash, hmac). No libwebsockets, no I/O besides
 * reading handler and module files. */
#ifndef LUCKYSYNC_SANDBOX_H
#define LUCKYSYNC_SANDBOX_H

#include <lua.h>
#include <stddef.h>

struct sandbox;

/* What the VM pool supplies to the host functions. All callbacks run on the loop thread
 * with L being the running coroutine. */
struct sandbox_host {
    /* The route of the request running in L ("board/moveCard/v1"), for log tags; may return
     * NULL outside a request. */
    const char *(*route)(void *ud, lua_State *L);
    /* ctx.functions.sleep(ms): arrange to resume L after ms and return lua_yield(L, 0)'s
     * value; or raise a Lua error (outside a request, nested coroutine, bad ms). */
    int (*sleep)(void *ud, lua_State *L, lua_Integer ms);
    /* Called by the allocator when it refuses an allocation (the cap is reached). */
    void (*oom)(void *ud);
    void *ud;
};

/* Create a VM. mem_cap: bytes (the allocator refuses beyond it); lua_dir and handlers_dir:
 * absolute roots for `require` (lua_dir may be NULL). host is copied. NULL with err. */
struct sandbox *sandbox_new(size_t mem_cap, const char *lua_dir, const char *handlers_dir,
                            const struct sandbox_host *host, char *err, size_t errlen);
void sandbox_free(struct sandbox *sb);

lua_State *sandbox_state(struct sandbox *sb);
/* The sandbox of a state or of any of its coroutines (O(1), lua_getextraspace). */
struct sandbox *sandbox_of(lua_State *L);
/* Free slot for the owner (the VM pool). */
void sandbox_set_user(struct sandbox *sb, void *user);
void *sandbox_user(const struct sandbox *sb);

size_t sandbox_mem_used(const struct sandbox *sb);
size_t sandbox_mem_cap(const struct sandbox *sb);
/* Temporarily lift (1) or restore (0) the cap, for host work that must not fail midway. */
void sandbox_cap_suspend(struct sandbox *sb, int suspend);

/* Load and run a file (source only) in a fresh strict _ENV; on success push the chunk's first
 * return value and return 0. chunkname is what errors show (e.g. the path relative to the
 * project, "handlers/board/_sync/moveCard_server_v1.lua"). On failure return -1 with
 * "chunkname:line: message" in err; the stack is unchanged. Runs protected. */
int sandbox_load_file(struct sandbox *sb, const char *path, const char *chunkname, char *err,
                      size_t errlen);
/* The same from a buffer. */
int sandbox_load_buffer(struct sandbox *sb, const char *src, size_t len, const char *chunkname,
                        char *err, size_t errlen);

/* Push the shared read-only ctx.functions table of this VM (needs one free stack slot;
 * never raises). */
void sandbox_push_functions(struct sandbox *sb);

/* Addition: push a read-only proxy of the table at idx (borrowed; the proxy keeps it alive):
 * reads go to it, writes raise "attempt to modify read-only table", pairs() and # see it, and
 * getmetatable() gives false. Only rawget/next on the proxy see nothing (rawset is not in the
 * sandbox). Used for the libraries, the base and ctx.functions; the VM pool may use it for ctx.
 * Raises a Lua memory error: call it where Lua is on the C stack (protected). */
void sandbox_push_readonly(lua_State *L, int idx);

/* Notes for hosts:
 * - The registry's globals (LUA_RIDX_GLOBALS) is the read-only base proxy: lua_getglobal works,
 *   lua_setglobal raises. Give handlers data through arguments (ctx), not globals.
 * - setmetatable refuses metatables with a __gc field (finalizers run with hooks off, so a
 *   deadline could not stop them); collectgarbage only answers "count".
 * - require caches per VM in the registry. A module may not yield while it loads (it runs
 *   under lua_pcall, which also keeps the loop guard sound): a time-slicing hook must check
 *   lua_isyieldable(L) before yielding, or the load fails with a yield error.
 * - sandbox_load_* run on the main state with no hook: a chunk that loops at load time is not
 *   stopped here; set a deadline hook around the call if handler files are untrusted. */

#endif
