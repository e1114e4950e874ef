/* test_sandbox: the handler sandbox (core/sandbox.c, core/hostfn.c) driven by real Lua code:
 * what handlers may use, what they may not reach, the memory cap, require, load errors and
 * isolation between chunks. Fixtures are written to a mkdtemp directory (lua/, handlers/). */
#ifndef _GNU_SOURCE
#define _XOPEN_SOURCE 700
#endif
#include "sandbox.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>

#include "log.h"
#include "testlib.h"

#define MB (1024u * 1024u)

static char root[64];
static char lua_dir[128], handlers_dir[128];
static char dumped[256]; /* a precompiled chunk from the real luaL_dump */
static size_t dumped_len;

/* ---- host callbacks --------------------------------------------------------------------- */

struct host_state {
    int oom_calls;
    lua_Integer slept_ms;
    int sleeps;
};

static const char *test_route(void *ud, lua_State *L)
{
    (void)ud;
    (void)L;
    return "board/\"test\"/v1";
}

static int test_sleep(void *ud, lua_State *L, lua_Integer ms)
{
    struct host_state *hs = ud;

    hs->slept_ms = ms;
    hs->sleeps++;
    return lua_yield(L, 0);
}

static void test_oom(void *ud)
{
    ((struct host_state *)ud)->oom_calls++;
}

static struct sandbox *new_sandbox(size_t cap, struct host_state *hs)
{
    struct sandbox_host host = {test_route, test_sleep, test_oom, hs};
    char err[256];
    struct sandbox *sb = sandbox_new(cap, lua_dir, handlers_dir, &host, err, sizeof err);

    if (!sb)
        fprintf(stderr, "sandbox_new: %s\n", err);
    return sb;
}

/* ---- running code ----------------------------------------------------------------------- */

/* Run `body` as function(F, ARG) ... end, F being ctx.functions and ARG an optional string.
 * Returns the first result as text ("nil", "true", the string, the number), or "ERR: <msg>".
 * The stack is checked to be balanced. */
static const char *evx(struct sandbox *sb, const char *body, const char *arg, size_t arglen)
{
    static char out[1024];
    lua_State *L = sandbox_state(sb);
    int top = lua_gettop(L);
    char src[4096], err[512];

    snprintf(src, sizeof src, "return function(F, ARG) %s\nend", body);
    if (sandbox_load_buffer(sb, src, strlen(src), "spec", err, sizeof err) != 0) {
        snprintf(out, sizeof out, "ERR: %s", err);
        CHECK_EQ_INT(lua_gettop(L), top);
        return out;
    }
    sandbox_push_functions(sb);
    if (arg)
        lua_pushlstring(L, arg, arglen);
    else
        lua_pushnil(L);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        snprintf(out, sizeof out, "ERR: %s",
                 lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(non-string error)");
    } else if (lua_type(L, -1) == LUA_TBOOLEAN) {
        snprintf(out, sizeof out, "%s", lua_toboolean(L, -1) ? "true" : "false");
    } else if (lua_isnil(L, -1)) {
        snprintf(out, sizeof out, "nil");
    } else if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
        snprintf(out, sizeof out, "%s", lua_tostring(L, -1));
    } else {
        snprintf(out, sizeof out, "<%s>", luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    CHECK_EQ_INT(lua_gettop(L), top);
    return out;
}

static const char *ev(struct sandbox *sb, const char *body)
{
    return evx(sb, body, NULL, 0);
}

/* The code must fail with a message containing `want`, and the VM must still run code. */
#define CHECK_ERR(sb, body, want) check_err(sb, body, want, __LINE__)
static void check_err(struct sandbox *sb, const char *body, const char *want, int line)
{
    const char *r = ev(sb, body);
    int ok = strncmp(r, "ERR: ", 5) == 0 && strstr(r, want) != NULL;

    CHECK(ok);
    if (!ok)
        fprintf(stderr, "  line %d: %s\n  got: %s\n  want an error with: %s\n", line, body, r,
                want);
    CHECK_EQ_STR(ev(sb, "return ('still'):upper() .. #'ok'"), "STILL2");
}

#define CHECK_EV(sb, body, want) check_ev(sb, body, want, __LINE__)
static void check_ev(struct sandbox *sb, const char *body, const char *want, int line)
{
    const char *r = ev(sb, body);

    CHECK_EQ_STR(r, want);
    if (strcmp(r, want) != 0)
        fprintf(stderr, "  line %d: %s\n", line, body);
}

/* ---- fixtures --------------------------------------------------------------------------- */

static void write_file(const char *rel, const char *data, size_t len)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", root, rel);
    f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    fwrite(data, 1, len, f);
    fclose(f);
}

static void write_text(const char *rel, const char *text)
{
    write_file(rel, text, strlen(text));
}

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    (void)ud;
    if (dumped_len + sz > sizeof dumped)
        return 1;
    memcpy(dumped + dumped_len, p, sz);
    dumped_len += sz;
    return 0;
}

/* A binary chunk made by the real Lua (a plain state, not a sandbox). */
static void make_dump(void)
{
    lua_State *L = luaL_newstate();

    CHECK_EQ_INT(luaL_loadstring(L, "return 42"), LUA_OK);
    CHECK_EQ_INT(lua_dump(L, dump_writer, NULL, 1), 0);
    lua_close(L);
    CHECK(dumped_len > 4 && dumped[0] == '\x1b');
}

static void make_fixtures(void)
{
    char d[200];

    strcpy(root, "/tmp/test_sandbox.XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(lua_dir, sizeof lua_dir, "%s/lua", root);
    snprintf(handlers_dir, sizeof handlers_dir, "%s/handlers", root);
    mkdir(lua_dir, 0700);
    mkdir(handlers_dir, 0700);
    snprintf(d, sizeof d, "%s/pkg", lua_dir);
    mkdir(d, 0700);
    snprintf(d, sizeof d, "%s/board", handlers_dir);
    mkdir(d, 0700);

    write_text("lua/mod.lua", "local M = { n = 0 }\n"
                              "function M.inc() M.n = M.n + 1 return M.n end\n"
                              "return M\n");
    write_text("lua/pkg/init.lua", "return { name = 'pkg', arg = ... }\n");
    write_text("handlers/board/util.lua", "return { twice = function(x) return 2 * x end }\n");
    write_text("lua/loopa.lua", "return require('loopb')\n");
    write_text("lua/loopb.lua", "return require('loopa')\n");
    write_text("lua/state.lua", "return { n = 0 }\n");
    write_text("lua/flaky.lua", "local st = require('state')\n"
                                "st.n = st.n + 1\n"
                                "if st.n == 1 then error('first time fails') end\n"
                                "return { loads = st.n }\n");
    write_text("lua/syn.lua", "local x = 1\nlocal = 2\n");
    write_text("lua/glob.lua", "local ok = true\nleaked = ok\nreturn {}\n");
    write_text("lua/nothing.lua", "local _ = 1\n");
    write_text("outside.lua", "return {}\n");
    write_file("lua/binmod.lua", dumped, dumped_len);

    write_text("handlers/x.lua", "local M = {}\n"
                                 "function M.f()\n"
                                 "  return 1 +\n"
                                 "end\n"
                                 "return M\n");
    write_text("handlers/y.lua", "local M = {}\n"
                                 "error('boom at load')\n"
                                 "return M\n");
    write_text("handlers/z.lua", "error({})\n");
    write_text("handlers/ok.lua", "local M = {}\n"
                                  "function M.handle(a) return a + 1 end\n"
                                  "return M\n");
    write_file("handlers/bin.lua", dumped, dumped_len);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_fixtures(void)
{
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Run fn with stderr captured into buf. */
static void capture_stderr(void (*fn)(struct sandbox *), struct sandbox *sb, char *buf,
                           size_t buflen)
{
    char path[160];
    int fd, saved;
    ssize_t n;

    snprintf(path, sizeof path, "%s/stderr.txt", root);
    fflush(stderr);
    saved = dup(2);
    fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    dup2(fd, 2);
    fn(sb);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    n = read(fd, buf, buflen - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_allowed(struct sandbox *sb)
{
    CHECK_EV(sb, "return string.format('%d-%s', 3, ('x'):upper())", "3-X");
    CHECK_EV(sb, "return ('a,b'):gsub(',', ';')", "a;b");
    CHECK_EV(sb, "local t = {3, 1, 2} table.sort(t) return table.concat(t, ',')", "1,2,3");
    CHECK_EV(sb, "return math.max(1, 5) + math.floor(2.5)", "7");
    CHECK_EV(sb, "return math.type(1 << 62)", "integer");
    CHECK_EV(sb, "return utf8.char(233) == '\\u{e9}' and utf8.len('\\u{e9}x')", "2");
    CHECK_EV(sb,
             "local co = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) "
             "return b * 2 end) return co(1) + co(10)",
             "22");
    CHECK_EV(sb,
             "return math.type(os.time()) == 'integer' and type(os.clock()) == 'number' and "
             "os.date('!%Y-%m-%d', 0)",
             "1970-01-01");
    CHECK_EV(sb,
             "local n, up = 0, false for k, v in pairs(string) do n = n + 1 "
             "up = up or k == 'upper' end return n > 10 and up",
             "true");
    CHECK_EV(sb, "local _, s = pairs(string) return s == string", "true");
    CHECK_EV(sb, "local n = 0 for _ in pairs(os) do n = n + 1 end return n", "3");
    CHECK_EV(sb, "return select('#', 1, 2, 3) + rawlen({1}) + #table.pack(1, 2)", "6");
    CHECK_EV(sb, "return pcall(error, 'e', 0)", "false");
    CHECK_EV(sb, "return xpcall(function() error('x') end, function(m) return 'h:' .. m end)",
             "false");
    CHECK_EV(sb, "return type(collectgarbage('count'))", "number");
    CHECK_EV(sb, "return setmetatable({}, {__index = function() return 5 end}).z", "5");
    CHECK_EV(sb, "return getmetatable(setmetatable({}, {__metatable = 'locked'}))", "locked");
    CHECK_EV(sb, "return load('return 1 + ...')(41)", "42");
    CHECK_EV(sb, "return load('return string')() == string", "true");
    CHECK_EV(sb, "return load('return _ENV')() ~= _ENV", "true");
    CHECK_EV(sb,
             "local parts = {'return ', '7'} local i = 0 "
             "return load(function() i = i + 1 return parts[i] end)()",
             "7");
    CHECK_EV(sb, "return load('return x', 'c', 't', {x = 'own env'})()", "own env");
    CHECK_EV(sb, "return load('return 3', 'c', 'b')()", "3"); /* mode is forced to "t" */
    CHECK_EV(sb, "return _VERSION", "Lua 5.4");
    CHECK_EV(sb, "print('printed', 1, nil) return true", "true");
}

static void test_functions(struct sandbox *sb)
{
    CHECK_EV(sb, "return F.json.encode({a = 9007199254740993})", "{\"a\":9007199254740993}");
    CHECK_EV(sb, "return math.type(F.json.decode('3'))", "integer");
    CHECK_EV(sb, "return F.json.decode('9223372036854775807') == math.maxinteger", "true");
    CHECK_EV(sb, "return F.json.decode('null') == F.json.null", "true");
    CHECK_EV(sb, "return F.json.encode(setmetatable({}, F.json.array_mt))", "[]");
    CHECK_ERR(sb, "return F.json.decode('{')", "json.decode");
    CHECK_EV(sb,
             "local u = F.uuid() return #u == 36 and u:match('^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x"
             "%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$') ~= nil and u ~= F.uuid()",
             "true");
    CHECK_EV(sb, "return F.hash('abc')",
             "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK_EV(sb, "return F.hash('abc', 'sha256') == F.hash('abc')", "true");
    CHECK_EV(sb, "return F.hash('abc', 'blake2b')",
             "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
    CHECK_ERR(sb, "return F.hash('abc', 'md5')", "unknown algorithm");
    CHECK_ERR(sb, "return F.hash()", "bad argument #1");
    CHECK_EV(sb, "return F.hmac('Jefe', 'what do ya want for nothing?')",
             "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* RFC 4231 test case 6: a key longer than the block size. */
    CHECK_EV(sb,
             "return F.hmac(('\\xaa'):rep(131), "
             "'Test Using Larger Than Block-Size Key - Hash Key First')",
             "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    CHECK_EV(sb, "local t = F.now() return math.type(t) == 'integer' and t > 1600000000000",
             "true");
    CHECK_ERR(sb, "F.log.info('x', 5)", "table or nil");
    CHECK_ERR(sb, "F.log.info('x', {1, 2})", "string keys");
    CHECK_ERR(sb, "F.log.info('x', {f = print})", "cannot encode function");
    CHECK_EV(sb, "F.log.info('no fields') F.log.debug('hidden') return true", "true");
    /* The table and its json and log members are read-only. */
    CHECK_ERR(sb, "F.now = nil", "read-only");
    CHECK_ERR(sb, "F.json.encode = nil", "read-only");
    CHECK_ERR(sb, "F.log.info = print", "read-only");
    CHECK_ERR(sb, "F.json.array_mt.x = 1", "read-only");
    CHECK_EV(sb, "return getmetatable(F)", "false");
    CHECK_EV(sb, "local n = 0 for _ in pairs(F) do n = n + 1 end return n", "7");
    CHECK_ERR(sb, "F.sleep(-1)", "negative");
}

static void log_calls(struct sandbox *sb)
{
    CHECK_EV(sb, "F.log.info('hello \"q\"', {a = 1, s = 'x\"y\\n'}) return true", "true");
    CHECK_EV(sb, "F.log.warn(42) return true", "true");
    CHECK_EV(sb, "F.log.error('big', {s = ('x'):rep(5000)}) return true", "true");
}

static void print_calls(struct sandbox *sb)
{
    CHECK_EV(sb, "print('a', 1, nil) return true", "true");
}

static void test_log(struct sandbox *sb)
{
    char buf[16384];
    enum log_level saved = log_get_level();

    log_set_level(LOG_INFO);
    capture_stderr(log_calls, sb, buf, sizeof buf);
    CHECK(strstr(buf, "\"level\":\"info\",\"msg\":\"hello \\\"q\\\"\"") != NULL);
    CHECK(strstr(buf, "\"route\":\"board/\\\"test\\\"/v1\"") != NULL);
    CHECK(strstr(buf, "\"fields\":{\"a\":1,\"s\":\"x\\\"y\\n\"}}") != NULL);
    CHECK(strstr(buf, "\"level\":\"warn\",\"msg\":\"42\"") != NULL);
    CHECK(strstr(buf, "\"msg\":\"big\",\"route\":\"board/\\\"test\\\"/v1\","
                      "\"fields_truncated\":5008}") != NULL);
    log_set_level(LOG_DEBUG);
    capture_stderr(print_calls, sb, buf, sizeof buf);
    CHECK(strstr(buf, "\"level\":\"debug\",\"msg\":\"a\\u00091\\u0009nil\"") != NULL);
    log_set_level(saved);
}

static void test_sleep_and_threads(struct sandbox *sb, struct host_state *hs)
{
    lua_State *L = sandbox_state(sb);
    int top = lua_gettop(L), nres = 0;
    char err[256];
    lua_State *co;

    const char *src = "return function(F) return 'woke:' .. F.sleep(25) end";

    CHECK_EQ_INT(sandbox_load_buffer(sb, src, strlen(src), "sleeper", err, sizeof err), 0);
    co = lua_newthread(L);
    CHECK(sandbox_of(co) == sb);
    CHECK(sandbox_of(L) == sb);
    lua_pushvalue(L, -2);
    lua_xmove(L, co, 1);
    sandbox_push_functions(sb);
    lua_xmove(L, co, 1);
    CHECK_EQ_INT(lua_resume(co, L, 1, &nres), LUA_YIELD);
    CHECK_EQ_INT(hs->sleeps, 1);
    CHECK_EQ_INT(hs->slept_ms, 25);
    lua_pop(co, nres);
    lua_pushliteral(co, "now");
    CHECK_EQ_INT(lua_resume(co, L, 1, &nres), LUA_OK);
    CHECK_EQ_INT(nres, 1);
    CHECK_EQ_STR(lua_tostring(co, -1), "woke:now");
    lua_settop(L, top);

    /* Outside a coroutine the host's lua_yield fails as a plain Lua error. */
    CHECK_ERR(sb, "return F.sleep(1)", "yield");

    int marker;
    sandbox_set_user(sb, &marker);
    CHECK(sandbox_user(sb) == &marker);
}

static void test_refused(struct sandbox *sb)
{
    static const char *const absent[] = {
        "io",        "debug",       "package",    "dofile",         "loadfile",     "loadstring",
        "rawset",    "string.dump", "os.execute", "os.exit",        "os.getenv",    "os.remove",
        "os.rename", "os.tmpname",  "_G",         "warn",           "module",       "newproxy",
        "unpack",    "setfenv",     "getfenv",    "require.loaded", "string.gfind", NULL,
    };
    char body[128];

    for (const char *const *p = absent; *p; p++) {
        if (strcmp(*p, "require.loaded") == 0)
            continue; /* require is a C function: indexing it is an error, checked below */
        snprintf(body, sizeof body, "return %s", *p);
        CHECK_EV(sb, body, "nil");
    }
    CHECK_ERR(sb, "return require.loaded", "attempt to index");
    CHECK_ERR(sb, "os.execute('true')", "attempt to call a nil value");
    CHECK_ERR(sb, "io.open('/etc/passwd')", "attempt to index a nil value");
    CHECK_ERR(sb, "collectgarbage('stop')", "collectgarbage: option not allowed");
    CHECK_ERR(sb, "collectgarbage()", "collectgarbage: option not allowed");
    CHECK_ERR(sb, "collectgarbage('collect')", "collectgarbage: option not allowed");
    CHECK_EV(sb, "return getmetatable('')", "false");
    CHECK_ERR(sb, "return getmetatable('').__index", "attempt to index a boolean");
    CHECK_ERR(sb, "string.upper = nil", "spec:1: attempt to modify read-only table");
    CHECK_EV(sb, "return string.upper('a')", "A");
    CHECK_ERR(sb, "string.evil = function() end", "read-only");
    CHECK_ERR(sb, "table.insert(string, 1)", "read-only");
    CHECK_ERR(sb, "math.pi = 3", "read-only");
    CHECK_ERR(sb, "os.execute = function() end", "read-only");
    CHECK_ERR(sb, "coroutine.wrap = nil", "read-only");
    CHECK_ERR(sb, "utf8.x = 1", "read-only");
    CHECK_ERR(sb, "setmetatable(string, {})", "protected metatable");
    CHECK_EV(sb, "return getmetatable(string)", "false");
    CHECK_EV(sb, "return rawget(string, 'upper')", "nil");
    CHECK_EV(sb, "return next(string)", "nil");
    /* _ENV tricks */
    CHECK_ERR(sb, "_ENV.x = 1", "assignment to undeclared global 'x'");
    CHECK_ERR(sb, "x = 1", "spec:1: assignment to undeclared global 'x'");
    CHECK_ERR(sb, "function g() end", "undeclared global 'g'");
    CHECK_ERR(sb, "setmetatable(_ENV, nil)", "protected metatable");
    CHECK_ERR(sb, "setmetatable(_ENV, {__newindex = rawset})", "protected metatable");
    CHECK_EV(sb, "return getmetatable(_ENV)", "false");
    CHECK_EV(sb, "return rawget(_ENV, 'string')", "nil");
    CHECK_ERR(sb, "load('y = 1')()", "undeclared global 'y'");
    CHECK_EV(sb, "local _ENV = {s = string} return s.upper('ok')", "OK");
    CHECK_EV(sb, "local t = {} setmetatable(t, nil) return true", "true");
    /* finalizers: refused outright, also as a placeholder filled in later */
    CHECK_ERR(sb, "setmetatable({}, {__gc = function() while true do end end})", "__gc");
    CHECK_ERR(sb, "local mt = {__gc = true} setmetatable({}, mt)", "__gc");
    /* a binary chunk, from the real luaL_dump */
    CHECK_EQ_STR(
        evx(sb, "local f, e = load(ARG) return tostring(f) .. ' ' .. e", dumped, dumped_len),
        "nil attempt to load a binary chunk (mode is 't')");
    CHECK(strcmp(evx(sb, "local f, e = load(ARG, 'bin', 'b') return f", dumped, dumped_len),
                 "nil") == 0);
    CHECK(strcmp(evx(sb, "return load(ARG, 'bin', 'bt', {})", dumped, dumped_len), "nil") == 0);
    CHECK(strcmp(evx(sb,
                     "local i = 0 return load(function() i = i + 1 if i == 1 then "
                     "return ARG end end)",
                     dumped, dumped_len),
                 "nil") == 0);
    CHECK(strcmp(evx(sb, "return (load(ARG))", dumped, dumped_len), "nil") == 0);
    /* a deep recursion fails and the VM goes on */
    CHECK_EV(sb, "local function f() return 1 + f() end return (pcall(f))", "false");
}

static void test_require(struct sandbox *sb)
{
    CHECK_EV(sb, "return require('mod') == require('mod') and require('mod').inc()", "1");
    CHECK_EV(sb, "return require('mod').inc()", "2"); /* same instance across chunks */
    CHECK_EV(sb, "return require('pkg').name .. ':' .. require('pkg').arg", "pkg:pkg");
    CHECK_EV(sb, "return require('board.util').twice(21)", "42");
    CHECK_EV(sb, "return require('board.util') == require('board.util')", "true");
    CHECK_EV(sb, "return require('nothing')", "true");
    CHECK_ERR(sb, "require('../x')", "invalid module name");
    CHECK_ERR(sb, "require('a/b')", "invalid module name");
    CHECK_ERR(sb, "require('a..b')", "invalid module name");
    CHECK_ERR(sb, "require('.a')", "invalid module name");
    CHECK_ERR(sb, "require('a.')", "invalid module name");
    CHECK_ERR(sb, "require('1a')", "invalid module name");
    CHECK_ERR(sb, "require('')", "invalid module name");
    CHECK_ERR(sb, "require('a\\0b')", "invalid module name");
    CHECK_ERR(sb, "require(('a'):rep(200))", "invalid module name");
    CHECK_ERR(sb, "require('os')", "module 'os' not found");
    CHECK_ERR(sb, "require('io')", "module 'io' not found");
    CHECK_ERR(sb, "require('string')", "not found");
    CHECK_ERR(sb, "require('outside')", "module 'outside' not found");
    CHECK_ERR(sb, "require('board')", "not found"); /* a directory, not a module */
    CHECK_ERR(sb, "require('binmod')", "attempt to load a binary chunk");
    CHECK_ERR(sb, "require('loopa')", "require: loop");
    CHECK_ERR(sb, "require('loopa')", "require: loop"); /* the guard was cleared */
    CHECK_ERR(sb, "require('syn')", "lua/syn.lua:2:");
    CHECK_ERR(sb, "require('glob')", "lua/glob.lua:2: assignment to undeclared global 'leaked'");
    /* a module that raises is not cached: the second try runs it again */
    CHECK_ERR(sb, "require('flaky')", "lua/flaky.lua:3: first time fails");
    CHECK_EV(sb, "return require('flaky').loads", "2");
    CHECK_EV(sb, "return require('flaky').loads", "2");
    /* the cache is not reachable from Lua */
    CHECK_EV(sb, "return package", "nil");
}

static void test_memory(void)
{
    struct host_state hs = {0};
    struct sandbox *sb = new_sandbox(16 * MB, &hs);
    char err[256];
    const char *big = "return string.rep('x', 1 << 30)";
    lua_State *L;
    int top;

    CHECK(sb != NULL);
    if (!sb)
        return;
    L = sandbox_state(sb);
    top = lua_gettop(L);
    CHECK_EQ_INT(sandbox_mem_cap(sb), 16 * MB);
    CHECK(sandbox_mem_used(sb) > 0 && sandbox_mem_used(sb) < 16 * MB);
    CHECK_EQ_INT(sandbox_load_buffer(sb, big, strlen(big), "big", err, sizeof err), -1);
    CHECK_EQ_STR(err, "big: not enough memory");
    CHECK_EQ_INT(lua_gettop(L), top);
    CHECK(hs.oom_calls > 0);
    CHECK_EV(sb, "return 1 + 1", "2");
    CHECK_EV(sb, "local ok, e = pcall(string.rep, 'x', 1 << 30) return tostring(ok) .. ' ' .. e",
             "false not enough memory");
    CHECK_ERR(sb, "local t = {} for i = 1, 1e8 do t[i] = i end", "not enough memory");
    CHECK_ERR(sb, "local t = {} for i = 1, 1e6 do t[i] = ('%d'):format(i):rep(10) end",
              "not enough memory");
    CHECK(sandbox_mem_used(sb) > 0 && sandbox_mem_used(sb) <= 16 * MB);

    /* Suspending the cap lets host work through; restoring it bounds Lua again. */
    sandbox_cap_suspend(sb, 1);
    CHECK_EV(sb, "return #string.rep('x', 20 << 20)", "20971520");
    sandbox_cap_suspend(sb, 0);
    CHECK_EV(sb, "return #string.rep('y', 1000)", "1000");
    CHECK(sandbox_mem_used(sb) <= 16 * MB);
    sandbox_free(sb);

    /* Setup under caps too small: NULL with a message, never an abort (ASan sees leaks). */
    int failed = 0, made = 0;
    for (size_t cap = 0; cap <= 256 * 1024; cap += 4096 + 17) {
        struct sandbox_host host = {NULL, NULL, NULL, NULL};

        err[0] = '\0';
        sb = sandbox_new(cap, NULL, handlers_dir, &host, err, sizeof err);
        if (sb) {
            made++;
            CHECK_EV(sb, "return ('ok'):upper()", "OK");
            sandbox_free(sb);
        } else {
            failed++;
            CHECK(err[0] != '\0');
        }
    }
    CHECK(failed > 0);
    CHECK(made > 0);
}

static void test_load(struct sandbox *sb)
{
    lua_State *L = sandbox_state(sb);
    int top = lua_gettop(L);
    char err[512], path[256];

    snprintf(path, sizeof path, "%s/x.lua", handlers_dir);
    CHECK_EQ_INT(sandbox_load_file(sb, path, "handlers/x.lua", err, sizeof err), -1);
    CHECK(strncmp(err, "handlers/x.lua:4:", 17) == 0);
    if (strncmp(err, "handlers/x.lua:4:", 17) != 0)
        fprintf(stderr, "  got: %s\n", err);
    CHECK_EQ_INT(lua_gettop(L), top);

    snprintf(path, sizeof path, "%s/y.lua", handlers_dir);
    CHECK_EQ_INT(sandbox_load_file(sb, path, "handlers/y.lua", err, sizeof err), -1);
    CHECK_EQ_STR(err, "handlers/y.lua:2: boom at load");
    CHECK_EQ_INT(lua_gettop(L), top);

    snprintf(path, sizeof path, "%s/z.lua", handlers_dir);
    CHECK_EQ_INT(sandbox_load_file(sb, path, "handlers/z.lua", err, sizeof err), -1);
    CHECK_EQ_STR(err, "handlers/z.lua: (error object is a table value)");

    snprintf(path, sizeof path, "%s/missing.lua", handlers_dir);
    CHECK_EQ_INT(sandbox_load_file(sb, path, "handlers/missing.lua", err, sizeof err), -1);
    CHECK(strstr(err, "handlers/missing.lua: cannot open") == err);

    snprintf(path, sizeof path, "%s/bin.lua", handlers_dir);
    CHECK_EQ_INT(sandbox_load_file(sb, path, "handlers/bin.lua", err, sizeof err), -1);
    CHECK_EQ_STR(err, "handlers/bin.lua: attempt to load a binary chunk (mode is 't')");
    CHECK_EQ_INT(sandbox_load_buffer(sb, dumped, dumped_len, "dumped", err, sizeof err), -1);
    CHECK(strstr(err, "binary chunk") != NULL);
    CHECK_EQ_INT(lua_gettop(L), top);

    snprintf(path, sizeof path, "%s/ok.lua", handlers_dir);
    CHECK_EQ_INT(sandbox_load_file(sb, path, "handlers/ok.lua", err, sizeof err), 0);
    CHECK_EQ_INT(lua_gettop(L), top + 1);
    CHECK_EQ_INT(lua_getfield(L, -1, "handle"), LUA_TFUNCTION);
    lua_pushinteger(L, 41);
    CHECK_EQ_INT(lua_pcall(L, 1, 1, 0), LUA_OK);
    CHECK_EQ_INT(lua_tointeger(L, -1), 42);
    lua_settop(L, top);

    CHECK_EQ_INT(sandbox_load_buffer(sb, "local a = 1", 11, "empty", err, sizeof err), 0);
    CHECK(lua_isnil(L, -1));
    lua_settop(L, top);
    CHECK_EQ_INT(sandbox_load_buffer(sb, "error(7)", 8, "num", err, sizeof err), -1);
    CHECK_EQ_STR(err, "num: 7"); /* Lua positions string messages only */
    CHECK_EQ_INT(sandbox_load_buffer(sb, "error('bare', 0)", 16, "bare", err, sizeof err), -1);
    CHECK_EQ_STR(err, "bare: bare");
}

static void test_isolation(struct sandbox *sb)
{
    const char *a = "pcall(function() string.upper = function() return 'hacked' end end)\n"
                    "pcall(function() shared = 1 end)\n"
                    "pcall(function() table.concat = nil end)\n"
                    "pcall(setmetatable, _ENV, {__index = function() return 'leak' end})\n"
                    "pcall(function() require('mod').inc = nil end)\n"
                    "local secret = 42\n"
                    "return function() return secret end\n";
    const char *b = "return string.upper('a') == 'A' and shared == nil and secret == nil and\n"
                    "  table.concat({1}) == '1' and anything == nil\n";
    lua_State *L = sandbox_state(sb);
    int top = lua_gettop(L);
    char err[256];

    CHECK_EQ_INT(sandbox_load_buffer(sb, a, strlen(a), "handlers/a.lua", err, sizeof err), 0);
    CHECK_EQ_INT(lua_pcall(L, 0, 1, 0), LUA_OK);
    CHECK_EQ_INT(lua_tointeger(L, -1), 42);
    lua_settop(L, top);
    CHECK_EQ_INT(sandbox_load_buffer(sb, b, strlen(b), "handlers/b.lua", err, sizeof err), 0);
    CHECK(lua_toboolean(L, -1));
    lua_settop(L, top);
    /* Host code sees the same read-only base through the registry's globals. */
    CHECK_EQ_INT(lua_getglobal(L, "string"), LUA_TTABLE);
    CHECK_EQ_INT(lua_getglobal(L, "shared"), LUA_TNIL);
    lua_settop(L, top);
}

static void test_no_host(void)
{
    char err[256];
    struct sandbox *sb = sandbox_new(8 * MB, NULL, NULL, NULL, err, sizeof err);

    CHECK(sb != NULL);
    if (!sb)
        return;
    CHECK_ERR(sb, "F.sleep(10)", "sleep: not available");
    CHECK_ERR(sb, "require('mod')", "not found");
    CHECK_EV(sb, "F.log.info('no route') return true", "true");
    sandbox_free(sb);
}

int main(void)
{
    struct host_state hs = {0};
    struct sandbox *sb;

    make_dump();
    make_fixtures();
    sb = new_sandbox(64 * MB, &hs);
    CHECK(sb != NULL);
    if (sb) {
        test_allowed(sb);
        test_functions(sb);
        test_log(sb);
        test_sleep_and_threads(sb, &hs);
        test_refused(sb);
        test_require(sb);
        test_load(sb);
        test_isolation(sb);
        sandbox_free(sb);
    }
    test_memory();
    test_no_host();
    remove_fixtures();
    TEST_MAIN_END();
}
