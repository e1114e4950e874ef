/* test_luajson: exact JSON <-> Lua 5.4 conversion (core/luajson.c) against a real Lua state. */
#include "luajson.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "jtext.h"
#include "testlib.h"

static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();

    luaL_openlibs(L);
    luaL_requiref(L, "json", luajson_open, 1); /* also a global, for the Lua-side checks */
    lua_pop(L, 1);
    return L;
}

/* Run a chunk; a failure is reported with its message. */
static int run(lua_State *L, const char *code)
{
    if (luaL_dostring(L, code) != LUA_OK) {
        fprintf(stderr, "lua error: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
        return 0;
    }
    return 1;
}

/* decode(in) then encode must give `want` exactly; the stack is left balanced. */
static void check_roundtrip(lua_State *L, const char *in, const char *want)
{
    char err[256];
    int top = lua_gettop(L);
    int rc = luajson_decode(L, in, strlen(in), LUAJSON_MAX_DEPTH, err, sizeof err);
    size_t len = 0;
    char *out;

    CHECK_EQ_INT(rc, 0);
    if (rc < 0) {
        fprintf(stderr, "  decode %s: %s\n", in, err);
        return;
    }
    out = luajson_encode(L, -1, LUAJSON_MAX_DEPTH, &len, err, sizeof err);
    CHECK(out != NULL);
    if (!out)
        fprintf(stderr, "  encode of %s: %s\n", in, err);
    else
        CHECK_EQ_MEM(out, len, want, strlen(want));
    free(out);
    lua_pop(L, 1);
    CHECK_EQ_INT(lua_gettop(L), top);
}

/* Decode `in` into the global `x`. */
static int decode_global(lua_State *L, const char *in)
{
    char err[256];
    int rc = luajson_decode(L, in, strlen(in), LUAJSON_MAX_DEPTH, err, sizeof err);

    if (rc < 0) {
        fprintf(stderr, "  decode %s: %s\n", in, err);
        return rc;
    }
    lua_setglobal(L, "x");
    return 0;
}

/* Evaluate `expr` and encode the result: NULL (err filled) on failure. Caller frees. */
static char *encode_expr(lua_State *L, const char *expr, unsigned depth, int *rc_out, char *err,
                         size_t errlen)
{
    char code[512];
    int top = lua_gettop(L);
    char *out;
    json_t *v = NULL;

    snprintf(code, sizeof code, "return %s", expr);
    if (luaL_dostring(L, code) != LUA_OK) {
        fprintf(stderr, "lua error: %s\n", lua_tostring(L, -1));
        lua_settop(L, top);
        snprintf(err, errlen, "lua error");
        *rc_out = -1;
        return NULL;
    }
    *rc_out = luajson_from_lua(L, -1, depth, &v, err, errlen);
    json_decref(v);
    out = luajson_encode(L, -1, depth, NULL, err, errlen);
    lua_settop(L, top);
    return out;
}

static void check_encode(lua_State *L, const char *expr, const char *want)
{
    char err[256];
    int rc;
    char *out = encode_expr(L, expr, LUAJSON_MAX_DEPTH, &rc, err, sizeof err);

    CHECK_EQ_INT(rc, 0);
    if (!out)
        fprintf(stderr, "  encode %s: %s\n", expr, err);
    CHECK_EQ_STR(out, want);
    free(out);
}

/* Encoding `expr` must fail with `want_rc` and an error message containing `want_msg`. */
static void check_encode_fails(lua_State *L, const char *expr, int want_rc, const char *want_msg)
{
    char err[256] = "";
    int rc;
    char *out = encode_expr(L, expr, LUAJSON_MAX_DEPTH, &rc, err, sizeof err);

    CHECK(out == NULL);
    free(out);
    CHECK_EQ_INT(rc, want_rc);
    CHECK(strstr(err, want_msg) != NULL);
    if (!strstr(err, want_msg))
        fprintf(stderr, "  encode %s: got \"%s\", want \"%s\"\n", expr, err, want_msg);
}

static void check_decode_fails(lua_State *L, const char *in, size_t len, int want_rc,
                               const char *want_msg)
{
    char err[256] = "";
    int top = lua_gettop(L);
    int rc = luajson_decode(L, in, len, LUAJSON_MAX_DEPTH, err, sizeof err);

    CHECK_EQ_INT(rc, want_rc);
    CHECK_EQ_INT(lua_gettop(L), top);
    CHECK(strstr(err, want_msg) != NULL);
    if (!strstr(err, want_msg))
        fprintf(stderr, "  decode %.40s: got \"%s\", want \"%s\"\n", in, err, want_msg);
}

static void test_integers(lua_State *L)
{
    char err[256];

    CHECK_EQ_INT(luajson_decode(L, "3", 1, LUAJSON_MAX_DEPTH, err, sizeof err), 0);
    CHECK(lua_isinteger(L, -1));
    CHECK_EQ_INT(lua_tointeger(L, -1), 3);
    lua_pop(L, 1);
    CHECK_EQ_INT(decode_global(L, "3"), 0);
    CHECK(run(L, "assert(math.type(x) == 'integer' and x == 3)"));

    check_roundtrip(L, "9007199254740993", "9007199254740993");
    check_roundtrip(L, "9223372036854775807", "9223372036854775807");
    check_roundtrip(L, "-9223372036854775808", "-9223372036854775808");
    check_roundtrip(L, "[0,-1,1,1234567890123456789]", "[0,-1,1,1234567890123456789]");
    check_roundtrip(L, "-0", "0");
    CHECK_EQ_INT(decode_global(L, "9007199254740993"), 0);
    CHECK(run(L, "assert(math.type(x) == 'integer' and x == 9007199254740993)\n"
                 "assert(x ~= 9007199254740992)"));
    CHECK_EQ_INT(decode_global(L, "[9223372036854775807,-9223372036854775808]"), 0);
    CHECK(run(L, "assert(x[1] == math.maxinteger and math.type(x[1]) == 'integer')\n"
                 "assert(x[2] == math.mininteger and math.type(x[2]) == 'integer')"));

    /* Lua integers encode exactly. */
    check_encode(L, "math.maxinteger", "9223372036854775807");
    check_encode(L, "math.mininteger", "-9223372036854775808");
    check_encode(L, "9007199254740993", "9007199254740993");
    check_encode(L, "{id = 1 << 62}", "{\"id\":4611686018427387904}");

    /* Beyond 64 bits jansson refuses rather than rounding. */
    check_decode_fails(L, "9223372036854775808", 19, -EINVAL, "too big integer");
}

static void test_reals(lua_State *L)
{
    check_roundtrip(L, "1.5", "1.5");
    check_roundtrip(L, "-2.25", "-2.25");
    check_roundtrip(L, "0.10000000000000001", "0.10000000000000001");
    check_roundtrip(L, "1.0000000000000001e+300", "1.0000000000000001e300"); /* jansson drops '+' */
    check_roundtrip(L, "2.5e-7", "2.4999999999999999e-7");
    check_roundtrip(L, "3.0", "3.0");
    check_roundtrip(L, "-0.0", "-0.0");
    check_roundtrip(L, "[1,1.0,2.5]", "[1,1.0,2.5]");

    /* Short forms come back in 17 digits but with the same value. */
    CHECK_EQ_INT(decode_global(L, "[0.1, 1e300, 1e-300, 5e-324, 1.7976931348623157e308]"), 0);
    CHECK(run(L, "local t = {0.1, 1e300, 1e-300, 5e-324, 1.7976931348623157e308}\n"
                 "for i, v in ipairs(t) do\n"
                 "  assert(math.type(x[i]) == 'float' and x[i] == v, i)\n"
                 "  local y = json.decode(json.encode(x[i]))\n"
                 "  assert(math.type(y) == 'float' and y == v, i)\n"
                 "end"));

    /* 3.0 keeps the float subtype both ways. */
    CHECK_EQ_INT(decode_global(L, "3.0"), 0);
    CHECK(run(L, "assert(math.type(x) == 'float' and x == 3)"));
    check_encode(L, "3.0", "3.0");
    check_encode(L, "3", "3");
    check_encode(L, "2^53", "9007199254740992.0");
    check_encode(L, "{1.0, 2, -0.0}", "[1.0,2,-0.0]");

    check_encode_fails(L, "0/0", -EINVAL, "cannot encode NaN");
    check_encode_fails(L, "{v = 1/0}", -EINVAL, "v: cannot encode infinity");
    check_encode_fails(L, "{-math.huge}", -EINVAL, "[1]: cannot encode infinity");
    check_decode_fails(L, "1e400", 5, -EINVAL, "real number overflow");
}

static void test_strings(lua_State *L)
{
    const char *in = "\"\\u00e9\\ud83d\\ude00\"";
    char err[256];
    size_t len;
    const char *s;

    CHECK_EQ_INT(luajson_decode(L, in, strlen(in), LUAJSON_MAX_DEPTH, err, sizeof err), 0);
    s = lua_tolstring(L, -1, &len);
    CHECK_EQ_MEM(s, len, "\xc3\xa9\xf0\x9f\x98\x80", 6);
    lua_pop(L, 1);
    /* Output is UTF-8, not \u escapes. */
    check_roundtrip(L, in, "\"\xc3\xa9\xf0\x9f\x98\x80\"");
    check_roundtrip(L, "\"a\\\"b\\\\c\\n\\u0001/\"", "\"a\\\"b\\\\c\\n\\u0001/\"");
    check_encode(L, "'caf\\u{e9}'", "\"caf\xc3\xa9\"");
    check_encode(L, "''", "\"\"");

    check_encode_fails(L, "'\\xff'", -EINVAL, "string is not valid UTF-8");
    check_encode_fails(L, "{s = 'ok\\xc0\\x80'}", -EINVAL, "s: string is not valid UTF-8");
    check_encode_fails(L, "{'\\xed\\xa0\\x80'}", -EINVAL, "[1]: string is not valid UTF-8");
    check_encode_fails(L, "'\\xe2\\x82'", -EINVAL, "not valid UTF-8");
    check_encode_fails(L, "'\\xf4\\x90\\x80\\x80'", -EINVAL, "not valid UTF-8");
    check_encode_fails(L, "'a\\0b'", -EINVAL, "string contains a NUL byte");
    check_encode_fails(L, "{['k\\xff'] = 1}", -EINVAL, "key is not valid UTF-8");

    check_decode_fails(L, "\"\\u0000\"", 8, -EINVAL, "\\u0000 is not allowed");
    check_decode_fails(L, "\"\\ud800\"", 8, -EINVAL, "invalid Unicode");
    check_decode_fails(L, "\"\xff\"", 3, -EINVAL, "unable to decode byte 0xff");
    check_decode_fails(L, "\"a\0b\"", 5, -EINVAL, "");
}

static void test_containers(lua_State *L)
{
    check_roundtrip(L, "[]", "[]");
    check_roundtrip(L, "{}", "{}");
    check_roundtrip(L, "{\"a\":[],\"b\":{},\"c\":[[],{}]}", "{\"a\":[],\"b\":{},\"c\":[[],{}]}");
    check_roundtrip(L, "[1,\"two\",true,false,{\"k\":\"v\"}]",
                    "[1,\"two\",true,false,{\"k\":\"v\"}]");
    /* String keys that look like numbers stay object keys. */
    check_roundtrip(L, "{\"1\":\"a\",\"2\":\"b\"}", "{\"1\":\"a\",\"2\":\"b\"}");
    /* Keys come out sorted whatever Lua's hash order. */
    check_encode(L, "{zeta = 1, alpha = 2, mid = {b = 1, a = 2}}",
                 "{\"alpha\":2,\"mid\":{\"a\":2,\"b\":1},\"zeta\":1}");

    check_encode(L, "{}", "{}");
    check_encode(L, "setmetatable({}, json.array_mt)", "[]");
    check_encode(L, "setmetatable({1, 2}, json.array_mt)", "[1,2]");
    check_encode(L, "{10, 20, 30}", "[10,20,30]");
    check_encode(L, "{[1] = 'a', [2] = 'b'}", "[\"a\",\"b\"]");
    check_encode(L, "{[2.0] = 'b', [1] = 'a'}", "[\"a\",\"b\"]"); /* 2.0 is normalised to 2 */
    check_encode(L, "true", "true");
    check_encode(L, "nil", "null");

    CHECK_EQ_INT(decode_global(L, "{\"a\":[],\"b\":{}}"), 0);
    CHECK(run(L, "assert(getmetatable(x.a) == json.array_mt and #x.a == 0)\n"
                 "assert(getmetatable(x.b) == nil and next(x.b) == nil)\n"
                 "x.a[1] = 5; x.b.k = 1\n"
                 "assert(json.encode(x) == '{\"a\":[5],\"b\":{\"k\":1}}')"));

    /* The marker is locked: a handler cannot change other handlers' arrays. */
    CHECK(run(L, "local ok, e = pcall(function() json.array_mt.__index = print end)\n"
                 "assert(not ok and e:find('read%-only'))\n"
                 "assert(getmetatable(json.array_mt) == false)\n"
                 "assert(not pcall(setmetatable, json.array_mt, nil))\n"
                 "assert(rawget(json.array_mt, '__index') == nil)"));

    check_encode_fails(L, "{1, 2, x = 1}", -EINVAL, "mixed or non-string keys");
    check_encode_fails(L, "{[1] = 1, [3] = 3}", -EINVAL, "mixed or non-string keys");
    check_encode_fails(L, "{[0] = 1}", -EINVAL, "mixed or non-string keys");
    check_encode_fails(L, "{[-1] = 1}", -EINVAL, "mixed or non-string keys (a number key)");
    check_encode_fails(L, "{[true] = 1}", -EINVAL, "mixed or non-string keys (a boolean key)");
    check_encode_fails(L, "{[1.5] = 1}", -EINVAL, "mixed or non-string keys");
    check_encode_fails(L, "{a = {b = {1, [5] = 2}}}", -EINVAL, "a.b: mixed or non-string keys");
    check_encode_fails(L, "setmetatable({x = 1}, json.array_mt)", -EINVAL,
                       "array has keys other than 1..n");
}

static void test_null(lua_State *L)
{
    check_roundtrip(L, "null", "null");
    check_roundtrip(L, "[1,null,3]", "[1,null,3]");
    check_roundtrip(L, "[null]", "[null]");
    check_roundtrip(L, "{\"a\":null,\"b\":[null,{\"c\":null}]}",
                    "{\"a\":null,\"b\":[null,{\"c\":null}]}");
    CHECK_EQ_INT(decode_global(L, "[1,null,3]"), 0);
    CHECK(run(L, "assert(#x == 3 and x[2] == json.null and type(json.null) == 'userdata')\n"
                 "assert(json.encode({json.null, a = nil}) == '[null]')\n"
                 "assert(json.encode({k = json.null}) == '{\"k\":null}')"));

    luajson_push_null(L);
    CHECK(luajson_is_null(L, -1));
    lua_pushlightuserdata(L, NULL);
    CHECK(!luajson_is_null(L, -1));
    lua_pop(L, 2);
    check_encode_fails(L, "{p = io.stdout}", -EINVAL, "p: cannot encode userdata");
}

static char *nested(unsigned n, const char *open, const char *close)
{
    size_t lo = strlen(open), lc = strlen(close);
    char *s = malloc(n * (lo + lc) + 2);
    size_t i, k = 0;

    for (i = 0; i < n; i++, k += lo)
        memcpy(s + k, open, lo);
    s[k++] = '1';
    for (i = 0; i < n; i++, k += lc)
        memcpy(s + k, close, lc);
    s[k] = '\0';
    return s;
}

static void test_depth(lua_State *L)
{
    char err[256];
    char *s;
    int top = lua_gettop(L);

    s = nested(60, "[", "]");
    check_roundtrip(L, s, s);
    free(s);
    s = nested(LUAJSON_MAX_DEPTH, "{\"k\":", "}");
    check_roundtrip(L, s, s);
    free(s);
    s = nested(LUAJSON_MAX_DEPTH + 1, "[", "]");
    check_decode_fails(L, s, strlen(s), -E2BIG, "nesting deeper than 64 levels");
    free(s);
    s = nested(200, "[", "]");
    check_decode_fails(L, s, strlen(s), -E2BIG, "nesting deeper than 64 levels");
    free(s);
    s = nested(100000, "[", "]"); /* jansson's own parser bound (2048) */
    check_decode_fails(L, s, strlen(s), -EINVAL, "maximum parsing depth");
    free(s);
    /* max_depth 0: scalars only. */
    CHECK_EQ_INT(luajson_decode(L, "7", 1, 0, err, sizeof err), 0);
    lua_pop(L, 1);
    CHECK_EQ_INT(luajson_decode(L, "[]", 2, 0, err, sizeof err), -E2BIG);
    CHECK_EQ_INT(lua_gettop(L), top);

    CHECK(run(L, "function nest(n) local t = {} ; local r = t\n"
                 "  for i = 2, n do t[1] = {} ; t = t[1] end ; return r end"));
    check_encode(L, "#json.encode(nest(60))", "120");
    check_encode(L, "#json.encode(nest(64))", "128");
    check_encode_fails(L, "nest(65)", -E2BIG, "nesting deeper than 64 levels");
    check_encode_fails(L, "nest(200)", -E2BIG, "nesting deeper than 64 levels (or a cycle)");
    check_encode_fails(L, "(function() local t = {} ; t.self = t ; return t end)()", -E2BIG,
                       "self.self.self");
    check_encode_fails(L, "(function() local t = {1} ; t[2] = t ; return {a = t} end)()", -E2BIG,
                       "a[2][2]");
    /* Very long paths are cut short, not overflowed. */
    check_encode_fails(L, "(function() local t = {} ; t.a_long_key_name_here = t ; return t end)()",
                       -E2BIG, "...: nesting deeper");
}

static void test_refused_values(lua_State *L)
{
    check_encode_fails(L, "{data = {items = {1, 2, function() end}}}", -EINVAL,
                       "data.items[3]: cannot encode function");
    check_encode_fails(L, "print", -EINVAL, "cannot encode function");
    check_encode_fails(L, "{co = coroutine.create(print)}", -EINVAL, "co: cannot encode thread");
    check_encode_fails(L, "{['a b'] = {f = print}}", -EINVAL,
                       "[\"a b\"].f: cannot encode function");
}

static void test_no_metamethods(lua_State *L)
{
    /* Raw access only: __pairs, __index, __len are never called, nor __newindex on decode. */
    check_encode(L, "setmetatable({a = 1}, {__pairs = error, __index = error, __len = error})",
                 "{\"a\":1}");
    check_encode(L, "setmetatable({}, {__index = function() return 1 end})", "{}");
    check_encode(L, "setmetatable({1, 2}, {__len = function() return 10 end})", "[1,2]");
}

static void test_large(lua_State *L)
{
    size_t n = 100000, k = 0, i, len = 0;
    char *text = malloc(n * 8 + 2), *out;
    char err[256];

    text[k++] = '[';
    for (i = 0; i < n; i++)
        k += (size_t)sprintf(text + k, "%s%zu", i ? "," : "", i * 7);
    text[k++] = ']';
    text[k] = '\0';
    CHECK_EQ_INT(luajson_decode(L, text, k, LUAJSON_MAX_DEPTH, err, sizeof err), 0);
    CHECK_EQ_INT(lua_rawlen(L, -1), n);
    lua_rawgeti(L, -1, 100000);
    CHECK_EQ_INT(lua_tointeger(L, -1), 99999 * 7);
    lua_pop(L, 1);
    out = luajson_encode(L, -1, LUAJSON_MAX_DEPTH, &len, err, sizeof err);
    CHECK(out != NULL);
    if (out)
        CHECK_EQ_MEM(out, len, text, k);
    free(out);
    lua_pop(L, 1);
    free(text);

    CHECK(run(L, "local t = {}\n"
                 "for i = 1, 100000 do t[i] = {id = i, v = i / 2} end\n"
                 "local s = json.encode(t)\n"
                 "local u = json.decode(s)\n"
                 "assert(#u == 100000 and u[100000].id == 100000)\n"
                 "assert(math.type(u[7].id) == 'integer' and math.type(u[8].v) == 'float')\n"
                 "assert(json.encode(u) == s)"));
}

static void test_decode_errors(lua_State *L)
{
    check_decode_fails(L, "{\"a\":1,\"a\":2}", 13, -EINVAL, "duplicate object key");
    check_decode_fails(L, "[1,2", 4, -EINVAL, "at byte");
    check_decode_fails(L, "[1] x", 5, -EINVAL, "end of file expected");
    check_decode_fails(L, "", 0, -EINVAL, "");
    check_decode_fails(L, "{'a':1}", 7, -EINVAL, "");
    check_decode_fails(L, "[NaN]", 5, -EINVAL, "");
    check_decode_fails(L, NULL, 0, -EINVAL, "no input");
    /* Text need not be NUL-terminated: only len bytes are read. */
    check_roundtrip(L, " [ 1 , 2 ] ", "[1,2]");
    {
        char err[64];

        CHECK_EQ_INT(luajson_decode(L, "[1]garbage", 3, LUAJSON_MAX_DEPTH, err, sizeof err), 0);
        lua_pop(L, 1);
    }
}

static void test_push_api(lua_State *L)
{
    json_t *v = json_pack("{s:I, s:[f, n, b], s:{}}", "id", (json_int_t)9007199254740993LL, "a",
                          3.0, 1, "o");
    json_t *back = NULL;
    char err[128];
    int top = lua_gettop(L);
    json_t *deep = json_array(), *cur = deep;
    int i;

    CHECK(v != NULL);
    CHECK_EQ_INT(luajson_push(L, v, LUAJSON_MAX_DEPTH), 0);
    CHECK_EQ_INT(lua_gettop(L), top + 1);
    CHECK_EQ_INT(luajson_from_lua(L, -1, LUAJSON_MAX_DEPTH, &back, err, sizeof err), 0);
    CHECK_EQ_INT(lua_gettop(L), top + 1);
    CHECK(back && json_equal(v, back));
    CHECK(back && json_is_integer(json_object_get(back, "id")));
    CHECK(back && json_is_real(json_array_get(json_object_get(back, "a"), 0)));
    json_decref(back);
    lua_pop(L, 1);
    CHECK_EQ_INT(luajson_push_protected(L, v, LUAJSON_MAX_DEPTH), 0);
    CHECK_EQ_INT(lua_gettop(L), top + 1);
    lua_pop(L, 1);
    json_decref(v);

    for (i = 0; i < 10; i++) {
        json_t *next = json_array();

        json_array_append_new(cur, next);
        cur = next;
    }
    CHECK_EQ_INT(luajson_push(L, deep, 5), -E2BIG);
    CHECK_EQ_INT(lua_gettop(L), top);
    CHECK_EQ_INT(luajson_push_protected(L, deep, 5), -E2BIG);
    CHECK_EQ_INT(lua_gettop(L), top);
    CHECK_EQ_INT(luajson_push_protected(L, deep, 11), 0);
    lua_pop(L, 1);
    json_decref(deep);

    /* from_lua on a bad value leaves *out NULL and the stack as it was. */
    lua_pushcfunction(L, luajson_open);
    back = (json_t *)1;
    CHECK_EQ_INT(luajson_from_lua(L, -1, 8, &back, err, sizeof err), -EINVAL);
    CHECK(back == NULL);
    CHECK_EQ_STR(err, "cannot encode function");
    lua_pop(L, 1);
    /* A tiny err buffer is truncated, not overrun; NULL err is accepted. */
    CHECK(run(L, "tmp = {a = {b = print}}"));
    lua_getglobal(L, "tmp");
    CHECK_EQ_INT(luajson_from_lua(L, -1, 8, &back, err, 5), -EINVAL);
    CHECK_EQ_STR(err, "a.b:");
    CHECK_EQ_INT(luajson_from_lua(L, -1, 8, &back, NULL, 0), -EINVAL);
    lua_pop(L, 1);
    CHECK_EQ_INT(lua_gettop(L), top);
}

static void test_module(lua_State *L)
{
    CHECK(run(L,
              "local j = json\n"
              "assert(j.encode({1, 2, {a = 'b'}}) == '[1,2,{\"a\":\"b\"}]')\n"
              "local v = j.decode('{\"n\":9223372036854775807,\"f\":0.5,\"e\":[],\"z\":null}')\n"
              "assert(v.n == math.maxinteger and math.type(v.n) == 'integer')\n"
              "assert(v.f == 0.5 and v.z == j.null)\n"
              "assert(j.encode(v) == '{\"e\":[],\"f\":0.5,\"n\":9223372036854775807,\"z\":null}')\n"
              "local ok, e = pcall(j.decode, '{\"a\":1,\"a\":2}')\n"
              "assert(not ok and e:find('^json.decode: duplicate object key'), e)\n"
              "ok, e = pcall(j.decode, '[1,')\n"
              "assert(not ok and e:find('^json.decode: '), e)\n"
              "ok, e = pcall(j.decode, 42)\n" /* a number is accepted as a string by Lua */
              "assert(ok and e == 42)\n"
              "ok, e = pcall(j.decode, {})\n"
              "assert(not ok and e:find('string expected'), e)\n"
              "ok, e = pcall(j.encode, {data = {items = {1, 2, print}}})\n"
              "assert(not ok and e == 'json.encode: data.items[3]: cannot encode function', e)\n"
              "ok, e = pcall(j.encode)\n"
              "assert(not ok and e:find('value expected'), e)\n"
              "ok, e = pcall(j.encode, {1, x = 2})\n"
              "assert(not ok and e:find('mixed or non%-string keys'), e)\n"
              "local t = {} ; t[1] = t\n"
              "ok, e = pcall(j.encode, t)\n"
              "assert(not ok and e:find('nesting deeper'), e)\n"
              "assert(j.decode('\"\\\\u00e9\"') == '\\u{e9}')\n"
              "assert(j.encode(j.decode('[]')) == '[]' and j.encode(j.decode('{}')) == '{}')"));
}

/* ---- memory errors: a state whose allocator refuses past a cap ----------------------- */

static void test_out_of_memory(void)
{
    struct test_cap c = {0, 4u << 20};
    lua_State *L = lua_newstate(test_cap_alloc, &c);
    size_t n = 400000, k = 0, i;
    char *text = malloc(n * 2 + 2);
    char err[256];
    int top, rc;

    luaL_openlibs(L);
    luaL_requiref(L, "json", luajson_open, 1);
    lua_pop(L, 1);
    top = lua_gettop(L);
    text[k++] = '[';
    for (i = 0; i < n; i++) {
        if (i)
            text[k++] = ',';
        text[k++] = '1';
    }
    text[k++] = ']';
    text[k] = '\0';

    rc = luajson_decode(L, text, k, LUAJSON_MAX_DEPTH, err, sizeof err);
    CHECK_EQ_INT(rc, -ENOMEM);
    CHECK_EQ_STR(err, "out of memory");
    CHECK_EQ_INT(lua_gettop(L), top);
    /* The state is still usable, and the module raises a catchable error. */
    lua_pushlstring(L, text, k);
    lua_setglobal(L, "big");
    CHECK(run(L, "local ok, e = pcall(json.decode, big)\n"
                 "assert(not ok and e == 'not enough memory', e)\n"
                 "big = nil ; collectgarbage()\n"
                 /* small in Lua (one shared string), 5 MB as JSON: the copy into Lua fails */
                 "local s, t = string.rep('x', 10000), {}\n"
                 "for i = 1, 500 do t[i] = s end\n"
                 "ok, e = pcall(json.encode, t)\n"
                 "assert(not ok and e == 'not enough memory', e)\n"
                 "t = nil ; collectgarbage()\n"
                 "assert(json.encode(json.decode('[1,2]')) == '[1,2]')"));
    lua_close(L);
    free(text);
}

/* luajson_append_text must write exactly what jtext_dump_append writes for the json_t
 * luajson_from_lua builds, and fail exactly where it fails. `code` leaves one value on the
 * stack (it is a chunk returning it). */
static void check_text_same(lua_State *L, const char *code)
{
    int top = lua_gettop(L);
    if (luaL_dostring(L, code) != LUA_OK) {
        fprintf(stderr, "lua error: %s\n", lua_tostring(L, -1));
        CHECK(0);
        lua_settop(L, top);
        return;
    }
    json_t *v = NULL;
    char err[256];
    int rc_tree = luajson_from_lua(L, -1, LUAJSON_MAX_DEPTH, &v, err, sizeof err);
    struct jtext_buf want, got;
    jtext_buf_init(&want);
    jtext_buf_init(&got);
    jtext_buf_append(&got, "<", 1); /* appends after what is there */
    jtext_buf_append(&want, "<", 1);
    if (rc_tree == 0 && jtext_dump_append(&want, v) != 0)
        rc_tree = -EINVAL;
    size_t ms = 1, me = 1;
    int rc_text = luajson_append_text(L, -1, LUAJSON_MAX_DEPTH, &got, "serverOutput", &ms, &me);
    CHECK_EQ_INT(rc_text == 0, rc_tree == 0);
    if (rc_tree == 0 && rc_text == 0) {
        CHECK_EQ_MEM(got.data, got.len, want.data, want.len);
        json_t *so = json_is_object(v) ? json_object_get(v, "serverOutput") : NULL;
        if (so) {
            struct jtext_buf one;
            jtext_buf_init(&one);
            jtext_dump_append(&one, so);
            CHECK(me > ms);
            CHECK_EQ_MEM(got.data + ms, me - ms, one.data, one.len);
            jtext_buf_close(&one);
        } else {
            CHECK(ms == 0 && me == 0);
        }
    }
    if (rc_text != 0)
        CHECK_EQ_INT((int)got.len, 1); /* left as it was */
    CHECK_EQ_INT(lua_gettop(L), top + 1);
    json_decref(v);
    jtext_buf_close(&want);
    jtext_buf_close(&got);
    lua_settop(L, top);
}

static void test_append_text(lua_State *L)
{
    static const char *const cases[] = {
        "return {status = 'success', serverOutput = {t = 1732530000123456, s = 42, pad = 'xx'}}",
        "return {status = 'success', serverOutput = 'plain'}",
        "return {status = 'success'}",
        "return {status = 'success', serverOutput = {}, extra = {1, 2, 3}}",
        "return {a = {b = {c = {1.5, -0.0, 1e300, 5e-324, 0.1, 3.0, -2^63, 2^53}}}}",
        "return {math.maxinteger, math.mininteger, 0, -1}",
        "return setmetatable({}, json.array_mt)",
        "return {}",
        "return {s = 'quote \" backslash \\\\ ctrl \\1\\31 tab \\t nl \\n del \\127 utf8 \\u{e9}\\u{1F600}'}",
        "return {['k\\n\"'] = json.null, t = true, f = false}",
        "return {serverOutput = {serverOutput = 1}, x = {serverOutput = 2}}",
        "return 'a top-level string'",
        "return 42",
        "return 1.25",
        "return json.null",
        /* refused: both ways */
        "return {f = function() end}",
        "return {x = 0/0}",
        "return {x = 1/0}",
        "return {[1] = 1, [3] = 3}",
        "return {1, 2, x = 3}",
        "return {s = 'bad \\255 utf8'}",
        "return {s = 'nul \\0 byte'}",
        "return {[true] = 1}",
        "return {['\\255'] = 1}",
        "local t = {} t.self = t return t",
        "local t = {} for i = 1, 70 do t = {t} end return t",
        "return setmetatable({a = 1}, json.array_mt)",
        "return {co = coroutine.create(function() end)}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_text_same(L, cases[i]);
    /* a deterministic mix of shapes */
    CHECK(run(L, "local r = 7\n"
                 "local function rnd(n) r = (r * 1103515245 + 12345) % 2147483648 return r % n end\n"
                 "local function gen(d)\n"
                 "  local k = rnd(d > 3 and 5 or 8)\n"
                 "  if k == 0 then return rnd(1000000) - 500000\n"
                 "  elseif k == 1 then return rnd(100000) / 7\n"
                 "  elseif k == 2 then return ('s'):rep(rnd(5)) .. '\\n\"' .. rnd(99)\n"
                 "  elseif k == 3 then return rnd(2) == 1\n"
                 "  elseif k == 4 then return json.null\n"
                 "  elseif k < 7 then local t = {} for i = 1, rnd(4) do t[i] = gen(d + 1) end return t\n"
                 "  else local t = {} for i = 1, rnd(5) do t['k' .. rnd(50)] = gen(d + 1) end return t end\n"
                 "end\n"
                 "samples = {} for i = 1, 300 do samples[i] = gen(0) end"));
    for (int i = 1; i <= 300; i++) {
        char code[64];
        snprintf(code, sizeof code, "return samples[%d]", i);
        check_text_same(L, code);
    }
    CHECK(run(L, "samples = nil"));
}

int main(void)
{
    lua_State *L = new_state();

    test_integers(L);
    test_reals(L);
    test_strings(L);
    test_containers(L);
    test_null(L);
    test_depth(L);
    test_refused_values(L);
    test_no_metamethods(L);
    test_large(L);
    test_decode_errors(L);
    test_push_api(L);
    test_module(L);
    test_append_text(L);
    CHECK_EQ_INT(lua_gettop(L), 0);
    lua_close(L);
    test_out_of_memory();
    TEST_MAIN_END();
}
