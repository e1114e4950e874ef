/* sandbox: one capped, allow-listed Lua 5.4 VM for handlers. See sandbox.h.
 *
 * Shape of a VM: the real base table (the pruned _G plus our print, load, require,
 * setmetatable, collectgarbage and read-only proxies of the libraries) is reachable only as the
 * __index of the read-only base proxy; every chunk runs in its own empty strict _ENV whose
 * protected metatable points at that proxy. The registry keeps, under private light-userdata
 * keys, the env metatable, the require cache and loop guard, and ctx.functions. */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "sandbox.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>
#include <lualib.h>
#include <sodium.h>

#include "hostfn.h"
#include "log.h"
#include "sbpool.h"

struct sandbox {
    lua_State *L;
    size_t used; /* bytes the allocator has handed out and not taken back */
    size_t cap;  /* refuse growth past this unless suspended */
    int cap_off; /* sandbox_cap_suspend */
    struct sandbox_host host;
    struct sbpool *pool; /* small freed blocks, handed out again */
    char *lua_dir; /* may be NULL */
    char *handlers_dir;
    void *user;
};

/* Registry keys: their addresses are the identities. */
static const char env_mt_key;    /* the strict _ENV metatable */
static const char loaded_key;    /* require cache: name -> module value */
static const char loading_key;   /* require loop guard: name -> true while loading */
static const char functions_key; /* ctx.functions (read-only proxy) */

/* Bound on a require name; with the roots it also bounds the paths we build. */
#define REQUIRE_NAME_MAX 128

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

/* ---- allocator --------------------------------------------------------------------------- */

/* lua_Alloc: counts bytes in use; refuses growth past the cap (Lua then collects and retries
 * once, so oom may be told twice per failed allocation). Shrinking and freeing never fail.
 * Small blocks come from and go back to the state's sbpool. */
static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct sandbox *sb = ud;
    size_t old = ptr ? osize : 0; /* without ptr, osize is the object's type */
    void *p;

    if (nsize == 0) {
        sbpool_release(sb->pool, ptr, old);
        sb->used -= old;
        return NULL;
    }
    if (nsize > old && !sb->cap_off && (sb->used > sb->cap || nsize - old > sb->cap - sb->used)) {
        if (sb->host.oom)
            sb->host.oom(sb->host.ud);
        return NULL;
    }
    p = ptr ? sbpool_resize(sb->pool, ptr, old, nsize) : sbpool_alloc(sb->pool, nsize);
    if (!p) {
        if (nsize <= old)
            return ptr; /* a failed shrink: the old block still fits */
        return NULL;
    }
    sb->used = sb->used - old + nsize;
    return p;
}

static int sb_panic(lua_State *L)
{
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(no message)";
    char esc[256];

    log_write(LOG_ERROR, "lua panic", "\"error\":\"%s\"", log_escape(msg, esc, sizeof esc));
    return 0; /* Lua aborts */
}

/* ---- read-only proxies and strict environments ------------------------------------------ */

static int ro_newindex(lua_State *L)
{
    return luaL_error(L, "attempt to modify read-only table");
}

/* Iterator over the real table (upvalue 1); the proxy passed as state is ignored, so the real
 * table never reaches Lua code. */
static int ro_next(lua_State *L)
{
    lua_settop(L, 2);
    if (lua_next(L, lua_upvalueindex(1)))
        return 2;
    return 0;
}

static int ro_pairs(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1)); /* ro_next bound to the real table */
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int ro_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, lua_upvalueindex(1)));
    return 1;
}

void sandbox_push_readonly(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_createtable(L, 0, 0); /* the proxy: stays empty */
    lua_createtable(L, 0, 5);
    lua_pushvalue(L, idx);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ro_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pushvalue(L, idx);
    lua_pushcclosure(L, ro_next, 1);
    lua_pushcclosure(L, ro_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushvalue(L, idx);
    lua_pushcclosure(L, ro_len, 1);
    lua_setfield(L, -2, "__len");
    lua_setmetatable(L, -2);
}

static int strict_newindex(lua_State *L)
{
    const char *name = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";

    /* luaL_error's level 1 is the Lua code doing the assignment. */
    return luaL_error(L, "assignment to undeclared global '%s' (use a local)", name);
}

/* Push a fresh strict _ENV. Raises memory errors. */
static void push_env(lua_State *L)
{
    lua_createtable(L, 0, 0);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &env_mt_key);
    lua_setmetatable(L, -2);
}

/* Make the function on top use the table at env_idx as its _ENV (first upvalue). */
static void set_env(lua_State *L, int env_idx)
{
    lua_pushvalue(L, env_idx);
    if (!lua_setupvalue(L, -2, 1))
        lua_pop(L, 1);
}

/* ---- loading source --------------------------------------------------------------------- */

struct file_reader {
    FILE *f;
    char buf[4096];
};

static const char *read_file(lua_State *L, void *ud, size_t *size)
{
    struct file_reader *r = ud;

    (void)L;
    *size = fread(r->buf, 1, sizeof r->buf, r->f);
    return *size ? r->buf : NULL;
}

/* Load an open file as text with chunkname (with its '@') and close it. Pushes the function or
 * an error message; returns the lua_load status. Never raises, so the FILE cannot leak. */
static int load_stream(lua_State *L, FILE *f, const char *chunkname)
{
    struct file_reader *r = malloc(sizeof *r);
    int status;

    if (!r) {
        fclose(f);
        lua_pushliteral(L, "not enough memory"); /* interned at state creation */
        return LUA_ERRMEM;
    }
    r->f = f;
    status = lua_load(L, read_file, r, chunkname, "t");
    if (status == LUA_OK && ferror(f)) {
        lua_pop(L, 1);
        lua_pushfstring(L, "%s: read error", chunkname + 1);
        status = LUA_ERRFILE;
    }
    fclose(f);
    free(r);
    return status;
}

/* ---- base functions --------------------------------------------------------------------- */

/* load(chunk [, chunkname [, mode [, env]]]): text only whatever mode says; without env the
 * chunk gets a fresh strict _ENV, never the real globals. Returns fn or nil, message. */
#define LOAD_READER_SLOT 6

static const char *load_reader(lua_State *L, void *ud, size_t *size)
{
    (void)ud;
    luaL_checkstack(L, 2, "too many nested functions");
    lua_pushvalue(L, 1);
    lua_call(L, 0, 1);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        *size = 0;
        return NULL;
    }
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "reader function must return a string");
    lua_replace(L, LOAD_READER_SLOT); /* anchored while the parser reads it */
    return lua_tolstring(L, LOAD_READER_SLOT, size);
}

static int sb_load(lua_State *L)
{
    size_t len;
    const char *s = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &len) : NULL;
    const char *name = luaL_optstring(L, 2, "=(load)");
    int status;

    if (!s)
        luaL_checktype(L, 1, LUA_TFUNCTION);
    if (lua_isnone(L, 4)) {
        lua_settop(L, 4);
        push_env(L);
    } else {
        lua_settop(L, 4);
        lua_pushvalue(L, 4);
    }
    lua_pushnil(L); /* LOAD_READER_SLOT */
    if (s)
        status = luaL_loadbufferx(L, s, len, name, "t");
    else
        status = lua_load(L, load_reader, NULL, name, "t");
    if (status != LUA_OK) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    set_env(L, 5);
    return 1;
}

/* setmetatable as in lbaselib, but refusing a metatable with a __gc field: finalizers run with
 * hooks off, at any later point (even inside lua_close), so the deadline could not stop them.
 * A placeholder __gc set before and replaced after is refused too (Lua marks the object at
 * setmetatable time, reading the field raw, as we do). */
static int sb_setmetatable(lua_State *L)
{
    int t = lua_type(L, 2);

    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
        return luaL_error(L, "cannot change a protected metatable");
    if (t == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: __gc metamethods are not allowed");
        lua_pop(L, 1);
    }
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 1;
}

static int sb_collectgarbage(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, "collect");

    if (strcmp(opt, "count") != 0)
        return luaL_error(L, "collectgarbage: option not allowed");
    lua_pushnumber(L, (lua_Number)lua_gc(L, LUA_GCCOUNT, 0) +
                          (lua_Number)lua_gc(L, LUA_GCCOUNTB, 0) / 1024);
    return 1;
}

/* ---- require ---------------------------------------------------------------------------- */

/* ^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$ */
static int valid_module_name(const char *s, size_t len)
{
    int at_start = 1;

    if (len == 0 || len > REQUIRE_NAME_MAX || strlen(s) != len)
        return 0;
    for (; *s; s++) {
        char c = *s;
        int alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';

        if (c == '.') {
            if (at_start)
                return 0;
            at_start = 1;
        } else if (alpha || (!at_start && c >= '0' && c <= '9')) {
            at_start = 0;
        } else {
            return 0;
        }
    }
    return !at_start;
}

/* Find the first of <lua_dir>/<rel>.lua, <lua_dir>/<rel>/init.lua, <handlers_dir>/<rel>.lua
 * that is a regular file: its path goes to path[PATH_MAX] and its chunkname ("@lua/...",
 * "@handlers/...") is pushed. Returns 0, or -1 (nothing pushed) if there is none. May raise a
 * memory error (nothing is open yet). */
static int find_module(lua_State *L, const struct sandbox *sb, const char *rel, char *path)
{
    const struct {
        const char *root, *fmt, *chunkname;
    } cands[] = {
        {sb->lua_dir, "%s/%s.lua", "@lua/%s.lua"},
        {sb->lua_dir, "%s/%s/init.lua", "@lua/%s/init.lua"},
        {sb->handlers_dir, "%s/%s.lua", "@handlers/%s.lua"},
    };

    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        struct stat st;
        int n;

        if (!cands[i].root)
            continue;
        n = snprintf(path, PATH_MAX, cands[i].fmt, cands[i].root, rel);
        if (n < 0 || n >= PATH_MAX || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        lua_pushfstring(L, cands[i].chunkname, rel);
        return 0;
    }
    return -1;
}

/* require(name): a module from lua_dir or handlers_dir, loaded as text in its own strict _ENV,
 * run once per VM and cached (a module that raises is not). Nesting is bounded by Lua's C
 * stack limit (LUAI_MAXCCALLS). A module may not yield while it loads. */
static int sb_require(lua_State *L)
{
    struct sandbox *sb = sandbox_of(L);
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    char rel[REQUIRE_NAME_MAX + 1], path[PATH_MAX];
    FILE *f;
    int status;

    lua_settop(L, 1);
    if (!valid_module_name(name, len))
        return luaL_error(L, "require: invalid module name '%s'", name);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &loaded_key);  /* 2 */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &loading_key); /* 3 */
    lua_pushvalue(L, 1);
    if (lua_rawget(L, 2) != LUA_TNIL)
        return 1;
    lua_pop(L, 1);
    lua_pushvalue(L, 1);
    if (lua_rawget(L, 3) != LUA_TNIL)
        return luaL_error(L, "require: loop: module '%s' is already loading", name);
    lua_pop(L, 1);

    for (size_t i = 0; i <= len; i++)
        rel[i] = name[i] == '.' ? '/' : name[i];
    push_env(L); /* 4; everything that may raise happens before the file is open */
    if (find_module(L, sb, rel, path) < 0) /* chunkname at 5 */
        return luaL_error(L, "require: module '%s' not found", name);
    f = fopen(path, "rb");
    if (!f)
        return luaL_error(L, "require '%s': cannot open %s", name, lua_tostring(L, 5) + 1);
    status = load_stream(L, f, lua_tostring(L, 5)); /* 6 */
    if (status != LUA_OK)
        return luaL_error(L, "require '%s': %s", name, lua_tostring(L, 6));
    set_env(L, 4);

    lua_pushvalue(L, 1);
    lua_pushboolean(L, 1);
    lua_rawset(L, 3);
    lua_pushvalue(L, 1);
    status = lua_pcall(L, 1, 1, 0); /* module(name) */
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    lua_rawset(L, 3); /* the key exists: clearing it cannot allocate */
    if (status != LUA_OK)
        return lua_error(L);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, 1);
    lua_pushvalue(L, -2);
    lua_rawset(L, 2);
    return 1;
}

/* xpcall(f, msgh, ...) whose message handler runs after the failing call has unwound. Lua's
 * own calls the handler from inside the error, with hooks off while the error came from a count
 * hook: a looping handler would then run forever. Without the debug library a handler cannot
 * look at the failing stack anyway, so running it afterwards loses nothing. Yieldable. */
static int xpcall_after(lua_State *L, int status, lua_KContext k)
{
    (void)L;
    (void)status;
    (void)k;
    return 2; /* false, msgh(err) */
}

static int xpcall_done(lua_State *L, int status, lua_KContext k)
{
    (void)k;
    if (status == LUA_OK || status == LUA_YIELD) {
        lua_pushboolean(L, 1);
        lua_replace(L, 1); /* msgh → true */
        return lua_gettop(L);
    }
    /* [msgh, err] */
    lua_pushboolean(L, 0);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_callk(L, 1, 1, 0, xpcall_after);
    return xpcall_after(L, LUA_OK, 0);
}

static int sb_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    lua_remove(L, 1);
    lua_insert(L, 2); /* [msgh, f, args…] */
    int status = lua_pcallk(L, n - 2, LUA_MULTRET, 0, 0, xpcall_done);
    return xpcall_done(L, status, 0);
}

/* ---- setup ------------------------------------------------------------------------------ */

static const char *const base_allowed[] = {
    "assert",   "error",    "ipairs", "next",     "pairs",  "pcall",
    "rawequal", "rawlen",   "rawget", "select",   "getmetatable",
    "tonumber", "tostring", "type",   "_VERSION", NULL,
};

static int is_allowed(const char *name)
{
    for (const char *const *p = base_allowed; *p; p++)
        if (strcmp(*p, name) == 0)
            return 1;
    return 0;
}

/* Remove from the table at idx every key not in base_allowed (clearing fields during
 * lua_next is allowed). */
static void prune_base(lua_State *L, int idx)
{
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING || !is_allowed(lua_tostring(L, -1))) {
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, idx);
        }
    }
}

/* Open a library with luaL_requiref, drop `drop` from it (may be NULL) and store a read-only
 * proxy of it in the real base at base_idx. */
static void open_lib(lua_State *L, int base_idx, const char *name, lua_CFunction open,
                     const char *drop)
{
    luaL_requiref(L, name, open, 0);
    if (drop) {
        lua_pushnil(L);
        lua_setfield(L, -2, drop);
    }
    sandbox_push_readonly(L, -1);
    lua_setfield(L, base_idx, name);
    lua_pop(L, 1);
}

/* The safe subset of os, copied from the real library, which is then dropped. */
static void open_os(lua_State *L, int base_idx)
{
    static const char *const keep[] = {"time", "clock", "date"};

    luaL_requiref(L, "os", luaopen_os, 0);
    lua_createtable(L, 0, 3);
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        lua_getfield(L, -2, keep[i]);
        lua_setfield(L, -2, keep[i]);
    }
    sandbox_push_readonly(L, -1);
    lua_setfield(L, base_idx, "os");
    lua_pop(L, 2);
}

static void set_fn(lua_State *L, int idx, const char *name, lua_CFunction f)
{
    lua_pushcfunction(L, f);
    lua_setfield(L, idx, name);
}

/* Build the VM: runs under lua_pcall, so a memory error makes sandbox_new fail cleanly. */
static int setup(lua_State *L)
{
    struct sandbox *sb = sandbox_of(L);
    int base;

    luaL_requiref(L, LUA_GNAME, luaopen_base, 0);
    base = lua_gettop(L);
    prune_base(L, base);
    set_fn(L, base, "setmetatable", sb_setmetatable);
    set_fn(L, base, "collectgarbage", sb_collectgarbage);
    set_fn(L, base, "load", sb_load);
    set_fn(L, base, "xpcall", sb_xpcall);
    set_fn(L, base, "require", sb_require);
    hostfn_push_print(L, &sb->host);
    lua_setfield(L, base, "print");

    open_lib(L, base, LUA_STRLIBNAME, luaopen_string, "dump");
    open_lib(L, base, LUA_TABLIBNAME, luaopen_table, NULL);
    open_lib(L, base, LUA_MATHLIBNAME, luaopen_math, NULL);
    open_lib(L, base, LUA_UTF8LIBNAME, luaopen_utf8, NULL);
    open_lib(L, base, LUA_COLIBNAME, luaopen_coroutine, NULL);
    open_os(L, base);

    /* ("x"):upper() keeps working through the string metatable, but getmetatable("") no
     * longer hands out the real string table. */
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);

    /* The base proxy replaces the real globals everywhere (LUA_RIDX_GLOBALS included). */
    sandbox_push_readonly(L, base);
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, strict_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &env_mt_key);
    lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);

    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &loaded_key);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &loading_key);

    hostfn_push_functions(L, &sb->host);
    sandbox_push_readonly(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &functions_key);
    lua_pop(L, 1);

    /* Forget package.loaded: it held the real _G, os and library tables. */
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}

static char *dup_or_null(const char *s, int *failed)
{
    char *d;

    if (!s)
        return NULL;
    d = strdup(s);
    if (!d)
        *failed = 1;
    return d;
}

struct sandbox *sandbox_new(size_t mem_cap, const char *lua_dir, const char *handlers_dir,
                            const struct sandbox_host *host, char *err, size_t errlen)
{
    struct sandbox *sb;
    int failed = 0;
    int status;

    if (sodium_init() < 0) {
        set_err(err, errlen, "sandbox: libsodium failed to initialise");
        return NULL;
    }
    sb = calloc(1, sizeof *sb);
    if (!sb) {
        set_err(err, errlen, "sandbox: out of memory");
        return NULL;
    }
    sb->cap = mem_cap;
    if (host)
        sb->host = *host;
    sb->lua_dir = dup_or_null(lua_dir, &failed);
    sb->handlers_dir = dup_or_null(handlers_dir, &failed);
    if (failed) {
        set_err(err, errlen, "sandbox: out of memory");
        goto fail;
    }
    sb->pool = sbpool_new();
    if (!sb->pool) {
        set_err(err, errlen, "sandbox: out of memory");
        goto fail;
    }
    sb->L = lua_newstate(sb_alloc, sb);
    if (!sb->L) {
        set_err(err, errlen, "sandbox: not enough memory for a Lua state (cap too low?)");
        goto fail;
    }
    /* First thing: every coroutine created later copies the main thread's extra space. */
    *(struct sandbox **)lua_getextraspace(sb->L) = sb;
    lua_atpanic(sb->L, sb_panic);

    lua_pushcfunction(sb->L, setup);
    status = lua_pcall(sb->L, 0, 0, 0);
    if (status != LUA_OK) {
        const char *msg = lua_type(sb->L, -1) == LUA_TSTRING ? lua_tostring(sb->L, -1) : "?";

        if (err && errlen)
            snprintf(err, errlen, "sandbox: setup failed: %s", msg);
        goto fail;
    }
    return sb;

fail:
    sandbox_free(sb);
    return NULL;
}

void sandbox_free(struct sandbox *sb)
{
    if (!sb)
        return;
    if (sb->L)
        lua_close(sb->L); /* the allocator still needs sb */
    sbpool_free(sb->pool);
    free(sb->lua_dir);
    free(sb->handlers_dir);
    free(sb);
}

lua_State *sandbox_state(struct sandbox *sb)
{
    return sb->L;
}

struct sandbox *sandbox_of(lua_State *L)
{
    return *(struct sandbox **)lua_getextraspace(L);
}

void sandbox_set_user(struct sandbox *sb, void *user)
{
    sb->user = user;
}

void *sandbox_user(const struct sandbox *sb)
{
    return sb->user;
}

size_t sandbox_mem_used(const struct sandbox *sb)
{
    return sb->used;
}

size_t sandbox_mem_cap(const struct sandbox *sb)
{
    return sb->cap;
}

void sandbox_cap_suspend(struct sandbox *sb, int suspend)
{
    sb->cap_off = suspend != 0;
}

/* ---- loading chunks --------------------------------------------------------------------- */

struct load_args {
    const char *path; /* a file, or else src/len */
    const char *src;
    size_t len;
    const char *chunkname;
};

/* Error objects become strings here (no traceback); memory errors never reach it. */
static int load_msgh(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TSTRING)
        return 1;
    if (lua_type(L, 1) == LUA_TNUMBER) {
        luaL_tolstring(L, 1, NULL);
        return 1;
    }
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    return 1;
}

/* Protected: compile the chunk (text only) in a fresh strict _ENV, run it, leave one result. */
static int load_chunk(lua_State *L)
{
    struct load_args *a = lua_touserdata(L, 1);
    const char *name;
    int status;

    push_env(L);                                    /* 2 */
    name = lua_pushfstring(L, "@%s", a->chunkname); /* 3 */
    if (a->path) {
        FILE *f = fopen(a->path, "rb");

        if (!f)
            return luaL_error(L, "%s: cannot open: %s", a->chunkname, strerror(errno));
        status = load_stream(L, f, name);
    } else {
        status = luaL_loadbufferx(L, a->src, a->len, name, "t");
    }
    if (status != LUA_OK)
        return lua_error(L);
    set_env(L, 2);
    lua_call(L, 0, 1);
    return 1;
}

static int run_load(struct sandbox *sb, struct load_args *a, char *err, size_t errlen)
{
    lua_State *L = sb->L;
    int top = lua_gettop(L);
    int status;
    const char *msg;
    size_t clen = strlen(a->chunkname);

    if (!lua_checkstack(L, 4)) {
        set_err(err, errlen, "not enough memory (Lua stack)");
        return -1;
    }
    lua_pushcfunction(L, load_msgh);
    lua_pushcfunction(L, load_chunk);
    lua_pushlightuserdata(L, a);
    status = lua_pcall(L, 1, 1, top + 1);
    if (status == LUA_OK) {
        lua_remove(L, top + 1);
        return 0;
    }
    msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "unknown error";
    if (err && errlen) {
        /* Positioned messages already start with the chunkname; add it to the others
         * ("not enough memory", a binary chunk, error(x, 0)). */
        if (strncmp(msg, a->chunkname, clen) == 0 && msg[clen] == ':')
            snprintf(err, errlen, "%s", msg);
        else
            snprintf(err, errlen, "%s: %s", a->chunkname, msg);
    }
    lua_settop(L, top);
    return -1;
}

int sandbox_load_file(struct sandbox *sb, const char *path, const char *chunkname, char *err,
                      size_t errlen)
{
    struct load_args a = {path, NULL, 0, chunkname ? chunkname : path};

    return run_load(sb, &a, err, errlen);
}

int sandbox_load_buffer(struct sandbox *sb, const char *src, size_t len, const char *chunkname,
                        char *err, size_t errlen)
{
    struct load_args a = {NULL, src, len, chunkname ? chunkname : "(buffer)"};

    return run_load(sb, &a, err, errlen);
}

void sandbox_push_functions(struct sandbox *sb)
{
    lua_rawgetp(sb->L, LUA_REGISTRYINDEX, &functions_key);
}
