/* test_luajson_text: luajson_push_text (JSON text straight into Lua) against luajson_push of
 * jtext_load's tree, in a real Lua state: hand-picked texts around every branch (tables past
 * their size hint, escapes, long escaped strings, numbers, depth), pseudo-random values, failures,
 * and memory errors. Values are compared in Lua, strictly: types, integer vs float subtypes,
 * the null sentinel, the array marker metatable and every key. */
#include "luajson.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "jtext.h"
#include "testlib.h"

static const char same_lua[] =
    "local null, amt = json.null, getmetatable(json.decode('[]'))\n"
    "function same(a, b)\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) == 'number' then\n"
    "    return math.type(a) == math.type(b) and (a == b or (a ~= a and b ~= b)) and\n"
    "      (a ~= 0 or 1 / a == 1 / b)\n"
    "  end\n"
    "  if type(a) ~= 'table' then return a == b end\n"
    "  if (getmetatable(a) == amt) ~= (getmetatable(b) == amt) then return false end\n"
    "  for k, v in next, a do if not same(v, rawget(b, k)) then return false end end\n"
    "  for k in next, b do if rawget(a, k) == nil then return false end end\n"
    "  return true\n"
    "end\n";

static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "json", luajson_open, 1);
    lua_pop(L, 1);
    if (luaL_dostring(L, same_lua) != LUA_OK) {
        fprintf(stderr, "lua error: %s\n", lua_tostring(L, -1));
        exit(2);
    }
    return L;
}

/* push_text(text) and push(jtext_load(text)) give the same result code and, on success, the
 * same value; max_depth as given. Returns the push_text result. */
static int check_same(lua_State *L, const char *text, size_t len, unsigned max_depth)
{
    int top = lua_gettop(L);
    char *in = malloc(len ? len : 1); /* exact size: ASan sees reads past len */
    if (len)
        memcpy(in, text, len);
    json_t *v = jtext_load(in, len, NULL);
    int rc_tree = v ? luajson_push(L, v, max_depth) : -EINVAL;
    int rc_text = luajson_push_text(L, in, len, max_depth);
    CHECK_EQ_INT(rc_text, rc_tree);
    CHECK_EQ_INT(lua_gettop(L), top + (rc_tree == 0) + (rc_text == 0));
    if (rc_tree == 0 && rc_text == 0) {
        lua_getglobal(L, "same");
        lua_pushvalue(L, -3);
        lua_pushvalue(L, -3);
        lua_call(L, 2, 1);
        int ok = lua_toboolean(L, -1);
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "  not the same value: %.*s\n", (int)(len > 200 ? 200 : len), text);
    }
    lua_settop(L, top);
    json_decref(v);
    free(in);
    return rc_text;
}

#define S(s) s, sizeof(s) - 1

static void test_hand(lua_State *L)
{
    static const struct {
        const char *t;
        size_t n;
    } cases[] = {
        {S("{}")},
        {S("[]")},
        {S(" { } ")},
        {S("{\"a\":1,\"b\":-2.5,\"c\":\"x\",\"d\":true,\"e\":false,\"f\":null}")},
        {S("[1,2.0,-0,-0.0,1e2,1E-2,9223372036854775807,-9223372036854775808]")},
        {S("[0.1,123456789012345678901234567890,4.9e-324,1.7976931348623157e308]")},
        {S("{\"s\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\u20ac\\ud83d\\ude00\"}")},
        {S("{\"\\u00e9\":\"key with an escape\",\"k\\n\":[]}")},
        {S("{\"a\":{\"b\":{\"c\":[[],[{}],[null]]}}}")},
        {S("[\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"]")},
        {S("{\"t\":1764080000000000000,\"s\":42,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}")},
        /* invalid: both refuse */
        {S("")},
        {S("1")},
        {S("\"s\"")},
        {S("[1,]")},
        {S("{\"a\"}")},
        {S("[1] x")},
        {S("[\"\\u0000\"]")},
        {S("[9223372036854775808]")},
        {S("[1e999]")},
        {S("[\"\xC3\"]")},
        {S("[\"\\ud800\"]")},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_same(L, cases[i].t, cases[i].n, LUAJSON_MAX_DEPTH);
    /* duplicate keys: jtext_load refuses them; push_text is documented to let the last win */
    CHECK_EQ_INT(luajson_push_text(L, S("{\"a\":1,\"a\":2}"), 8), 0);
    lua_getfield(L, -1, "a");
    CHECK_EQ_INT((int)lua_tointeger(L, -1), 2);
    lua_pop(L, 2);
}

/* Objects and arrays of 0..40 members: within and past the tables' size hint (4). */
static void test_batches(lua_State *L)
{
    char t[4096];
    for (int n = 0; n <= 40; n++) {
        for (int arr = 0; arr < 2; arr++) {
            size_t k = 0;
            t[k++] = arr ? '[' : '{';
            for (int i = 0; i < n; i++) {
                if (i)
                    t[k++] = ',';
                if (arr)
                    k += (size_t)snprintf(t + k, sizeof t - k, "%d", i * 7);
                else
                    k += (size_t)snprintf(t + k, sizeof t - k, "\"k%d\":[%d,\"v\"]", i, i);
            }
            t[k++] = arr ? ']' : '}';
            CHECK_EQ_INT(check_same(L, t, k, LUAJSON_MAX_DEPTH), 0);
        }
    }
}

/* Strings longer than the reader's own scratch, with escapes: decoded into a Lua buffer. */
static void test_long_escaped(lua_State *L)
{
    size_t n = 5000, k = 0;
    char *t = malloc(n * 8 + 64);
    memcpy(t + k, "{\"\\u0041", 8);
    k += 8;
    for (size_t i = 0; i < n; i++)
        t[k++] = i % 2 ? 'a' : 'b'; /* plain bytes */
    memcpy(t + k, "\":\"", 3);
    k += 3;
    for (size_t i = 0; i < n; i++) {
        memcpy(t + k, i % 3 ? "\\n" : "\\u20ac", i % 3 ? 2 : 6);
        k += i % 3 ? 2 : 6;
    }
    static const char tail[] = "\",\"x\":[\"\\t\"]}";
    memcpy(t + k, tail, sizeof tail - 1);
    k += sizeof tail - 1;
    CHECK_EQ_INT(check_same(L, t, k, LUAJSON_MAX_DEPTH), 0);
    free(t);
}

static void test_depth(lua_State *L)
{
    char t[1024];
    for (unsigned depth = 1; depth <= 70; depth++) {
        for (int obj = 0; obj < 2; obj++) {
            size_t k = 0;
            for (unsigned i = 0; i < depth; i++) {
                const char *open = obj && i + 1 < depth ? "{\"a\":" : obj ? "{" : "[";
                size_t n = strlen(open);
                memcpy(t + k, open, n);
                k += n;
            }
            for (unsigned i = 0; i < depth; i++)
                t[k++] = obj ? '}' : ']';
            int rc = check_same(L, t, k, LUAJSON_MAX_DEPTH);
            CHECK_EQ_INT(rc, depth <= LUAJSON_MAX_DEPTH ? 0 : -E2BIG);
            check_same(L, t, k, 5);
        }
    }
}

static json_t *random_value(int depth)
{
    static const char *const strs[] = {
        "",   "x",        "\xC3\xA9t\xC3\xA9", "a\"b",
        "\\", "\n\t\x01", "\xF0\x9F\x98\x80",  "long string of some length here"};
    unsigned k = (unsigned)(test_rand() % (depth > 4 ? 6 : 8));
    switch (k) {
    case 0:
        return json_integer((json_int_t)test_rand() >> (test_rand() % 64));
    case 1:
        return json_real((double)(int64_t)test_rand() / (double)(1 + test_rand() % 100000));
    case 2:
        return json_string(strs[test_rand() % 8]);
    case 3:
        return test_rand() % 2 ? json_true() : json_false();
    case 4:
    case 5:
        return json_null();
    case 6: {
        json_t *a = json_array();
        for (unsigned i = 0, n = (unsigned)(test_rand() % 20); i < n; i++)
            json_array_append_new(a, random_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (unsigned i = 0, n = (unsigned)(test_rand() % 20); i < n; i++) {
            char key[32];
            snprintf(key, sizeof key, "%s%u", strs[test_rand() % 8], i);
            json_object_set_new(o, key, random_value(depth + 1));
        }
        return o;
    }
    }
}

static void test_random(lua_State *L)
{
    for (int i = 0; i < 2000; i++) {
        json_t *v = json_array();
        json_array_append_new(v, random_value(0));
        json_t *top = i % 2 ? v : json_array_get(v, 0);
        if (!json_is_array(top) && !json_is_object(top))
            top = v;
        size_t n;
        char *t = jtext_dump(top, &n);
        CHECK(t != NULL);
        if (t)
            CHECK_EQ_INT(check_same(L, t, n, LUAJSON_MAX_DEPTH), 0);
        free(t);
        json_decref(v);
    }
}

struct push_args {
    const char *t;
    size_t n;
    int rc;
};

static int push_in_lua(lua_State *L)
{
    struct push_args *a = lua_touserdata(L, 1);
    a->rc = luajson_push_text(L, a->t, a->n, LUAJSON_MAX_DEPTH);
    return 1;
}

/* A memory error while the tables are built is raised as a Lua error and leaks nothing
 * (LeakSanitizer checks the long escaped strings' buffers); the state stays usable. */
static void test_out_of_memory(void)
{
    struct test_cap c = {0, 4u << 20};
    lua_State *L = lua_newstate(test_cap_alloc, &c);
    luaL_openlibs(L);
    luaL_requiref(L, "json", luajson_open, 1);
    lua_pop(L, 1);
    size_t n = 60000, k = 0;
    char *t = malloc(n * 12 + 16);
    t[k++] = '[';
    for (size_t i = 0; i < n; i++) {
        if (i)
            t[k++] = ',';
        memcpy(t + k, i % 2 ? "\"\\u00e9x\"" : "[1,2]", i % 2 ? 9 : 5);
        k += i % 2 ? 9 : 5;
    }
    t[k++] = ']';
    struct push_args a = {t, k, 1};
    lua_pushcfunction(L, push_in_lua);
    lua_pushlightuserdata(L, &a);
    CHECK_EQ_INT(lua_pcall(L, 1, 1, 0), LUA_ERRMEM);
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT);
    a = (struct push_args){"{\"a\":[1]}", 9, 1};
    lua_pushcfunction(L, push_in_lua);
    lua_pushlightuserdata(L, &a);
    CHECK_EQ_INT(lua_pcall(L, 1, 1, 0), LUA_OK);
    CHECK_EQ_INT(a.rc, 0);
    lua_close(L);
    free(t);
}

int main(void)
{
    lua_State *L = new_state();
    test_hand(L);
    test_batches(L);
    test_long_escaped(L);
    test_depth(L);
    test_random(L);
    CHECK_EQ_INT(lua_gettop(L), 0);
    lua_close(L);
    test_out_of_memory();
    TEST_MAIN_END();
}
