/* test_schema: the `input` schema language (core/schema.c): compile errors with their paths,
 * validation cases as data (JSON in, field and reason out), TypeScript output, and compiling
 * under a Lua memory cap. */
#include "schema.h"

#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "testlib.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Run `src` (a chunk returning the declaration) and compile its result; the stack is checked to
 * be balanced. NULL with err on a compile error (or a Lua error in src, reported). */
static struct schema *compile_src(lua_State *L, const char *src, char *err, size_t errlen)
{
    int top = lua_gettop(L);
    struct schema *s;

    if (luaL_dostring(L, src) != LUA_OK) {
        fprintf(stderr, "lua error in %s: %s\n", src, lua_tostring(L, -1));
        snprintf(err, errlen, "(lua error)");
        lua_settop(L, top);
        return NULL;
    }
    s = schema_compile(L, -1, err, errlen);
    CHECK_EQ_INT(lua_gettop(L), top + 1);
    lua_settop(L, top);
    return s;
}

/* ---- compile errors: each declaration must fail with exactly this message ---- */

static const struct {
    const char *src, *err;
} compile_errors[] = {
    {"return { tags = { type = 'array', items = 'strng' } }",
     "input.tags.items: unknown type 'strng'"},
    {"return { a = 'strng' }", "input.a: unknown type 'strng'"},
    {"return { a = '' }", "input.a: unknown type ''"},
    {"return { a = '?' }", "input.a: unknown type ''"},
    {"return { a = 'string | null' }", "input.a: unknown type 'string '"},
    {"return { a = 'string|' }", "input.a: unknown type ''"},
    {"return { a = 'string?|null' }", "input.a: unknown type 'string?'"},
    {"return { a = 'any|null' }", "input.a: 'any' cannot be part of a union"},
    {"return { a = 'string|string' }", "input.a: 'string' repeats a type in 'string|string'"},
    {"return { a = 'object|table' }", "input.a: 'table' repeats a type in 'object|table'"},
    {"return { a = 42 }", "input.a: expected a type name or a spec table, got number"},
    {"return { a = true }", "input.a: expected a type name or a spec table, got boolean"},
    {"return { a = { type = 'string', pattern = '^x' } }", "input.a: unknown spec key 'pattern'"},
    {"return { a = { type = 'string', zeta = 1, beta = 2 } }", "input.a: unknown spec key 'beta'"},
    {"return { a = { type = 'string', [5] = 1 } }", "input.a: spec keys must be strings"},
    {"return { a = { type = 1 } }", "input.a.type: must be a string, got number"},
    {"return { a = { type = 'string', min = '1' } }", "input.a.min: must be a number, got string"},
    {"return { a = { type = 'string', min = 5, max = 2 } }",
     "input.a: min (5) is greater than max (2)"},
    {"return { a = { type = 'number', min = 0.5, max = -1 } }",
     "input.a: min (0.5) is greater than max (-1)"},
    {"return { a = { type = 'string', min = -1 } }",
     "input.a.min: must be a whole number >= 0 (a length)"},
    {"return { a = { type = 'array', max = 1.5 } }",
     "input.a.max: must be a whole number >= 0 (a length)"},
    {"return { a = { type = 'number', min = 0/0 } }", "input.a.min: must be a finite number"},
    {"return { a = { type = 'integer', max = math.huge } }",
     "input.a.max: must be a finite number"},
    {"return { a = { type = 'boolean', min = 1 } }",
     "input.a: min and max need one string, number, integer or array type (or it|null)"},
    {"return { a = { type = 'string|number', max = 1 } }",
     "input.a: min and max need one string, number, integer or array type (or it|null)"},
    {"return { a = { type = 'string', items = 'string' } }",
     "input.a: 'items' needs type 'array' (or 'array|null')"},
    {"return { a = { type = 'table', items = 'string' } }",
     "input.a: 'items' needs type 'array' (or 'array|null')"},
    {"return { a = { type = 'array', fields = {} } }",
     "input.a: 'fields' needs type 'object' (or 'object|null')"},
    {"return { a = { type = 'string', open = true } }",
     "input.a: 'open' needs type 'object' (or 'object|null')"},
    {"return { a = { type = 'object', fields = 'x' } }",
     "input.a.fields: must be a table, got string"},
    {"return { a = { type = 'object', open = 'yes' } }",
     "input.a.open: must be a boolean, got string"},
    {"return { a = { type = 'string', optional = 'yes' } }",
     "input.a.optional: must be a boolean, got string"},
    {"return { a = { type = 'string?', optional = false } }",
     "input.a: optional = false conflicts with the '?' suffix"},
    {"return { a = { type = 'string', description = 5 } }",
     "input.a.description: must be a string, got number"},
    {"return { a = { type = 'string', description = 'a\\0b' } }",
     "input.a.description: must not contain NUL"},
    {"return { a = { type = 'string', description = '\\xff' } }",
     "input.a.description: must be UTF-8 of at most 1024 bytes"},
    {"return { a = { enum = {} } }", "input.a.enum: must not be empty"},
    {"return { a = { enum = 'x' } }",
     "input.a.enum: must be a list of strings and numbers, got string"},
    {"return { a = { enum = { [1] = 'x', [3] = 'y' } } }",
     "input.a.enum: must be a list (keys 1..n)"},
    {"return { a = { enum = { 'x', k = 'y' } } }", "input.a.enum: must be a list (keys 1..n)"},
    {"return { a = { enum = { 'x', 'x' } } }", "input.a.enum[2]: duplicate value"},
    {"return { a = { enum = { 1, 2, 1.0 } } }", "input.a.enum[3]: duplicate value"},
    {"return { a = { enum = { 'x', true } } }",
     "input.a.enum[2]: values must be strings or finite numbers, got boolean"},
    {"return { a = { enum = { 1/0 } } }",
     "input.a.enum[1]: values must be strings or finite numbers, got a non-finite number"},
    {"return { a = { enum = { '\\xc3' } } }",
     "input.a.enum[1]: must be UTF-8 of at most 1024 bytes"},
    {"return { a = { enum = { 'x' }, type = 'string' } }",
     "input.a: 'type' cannot be combined with 'enum'"},
    {"return { a = { enum = { 1 }, min = 0 } }", "input.a: 'min' cannot be combined with 'enum'"},
    {"return { [1] = 'string' }", "input: field names must be strings, got number"},
    {"return { a = { x = 'number', [2] = 'string' } }",
     "input.a: field names must be strings, got number"},
    {"return { a = { type = 'object', fields = { [true] = 'string' } } }",
     "input.a.fields: field names must be strings, got boolean"},
    {"return { [''] = 'string' }",
     "input: field names must be 1 to 128 bytes of UTF-8 without control characters"},
    {"return { ['\\xff'] = 'string' }",
     "input: field names must be 1 to 128 bytes of UTF-8 without control characters"},
    {"return { ['a\\nb'] = 'string' }",
     "input: field names must be 1 to 128 bytes of UTF-8 without control characters"},
    {"return { [string.rep('x', 129)] = 'string' }",
     "input: field names must be 1 to 128 bytes of UTF-8 without control characters"},
    {"return { ['\\xc0\\xaf'] = 'string' }", /* overlong '/' */
     "input: field names must be 1 to 128 bytes of UTF-8 without control characters"},
    {"return { ['\\xed\\xa0\\x80'] = 'string' }", /* a surrogate */
     "input: field names must be 1 to 128 bytes of UTF-8 without control characters"},
    {"return { ['\\xf4\\x90\\x80\\x80'] = 'string' }", /* above U+10FFFF */
     "input: field names must be 1 to 128 bytes of UTF-8 without control characters"},
    {"return { ['\\xf0\\x9f\\x98'] = 'string' }", /* truncated */
     "input: field names must be 1 to 128 bytes of UTF-8 without control characters"},
    {"return { a = { 'string', 'number' } }",
     "input.a: an array shorthand { spec } takes one element and no other keys"},
    {"return { a = { 'string', min = 1 } }",
     "input.a: an array shorthand { spec } takes one element and no other keys"},
    {"return { a = { 'string?' } }",
     "input.a[1]: '?' and optional are only allowed on object fields"},
    {"return { a = { type = 'array', items = { type = 'string', optional = true } } }",
     "input.a.items: '?' and optional are only allowed on object fields"},
    {"return { a = { type = 'object', fields = { b = { type = 'object', fields = "
     "{ ['c d'] = 'strng' } } } } }",
     "input.a.fields.b.fields[\"c d\"]: unknown type 'strng'"},
    {"return { w = { x = 'number', y = { { z = 'nope' } } } }",
     "input.w.y[1].z: unknown type 'nope'"},
    /* several errors: the first in name order is reported, whatever Lua's hash order */
    {"return { m = 'bad1', c = 'bad2', x = 'bad3' }", "input.c: unknown type 'bad2'"},
    /* 32 levels compile (see below); 33 do not; a cycle is caught by the same bound */
    {"local t = 'string' for i = 1, 32 do t = { t } end return { a = t }",
     "input.a[1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1]"
     "[1][1][1][1][1]: nested deeper than 32 levels"},
    {"local t = {} t.x = t return { a = t }",
     "input.a.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x: nested deeper than "
     "32 levels"},
    {"local t = {} for i = 1, 257 do t['f' .. i] = 'string' end return t",
     "input: more than 256 fields"},
    {"local e = {} for i = 1, 257 do e[i] = i end return { a = { enum = e } }",
     "input.a.enum: more than 256 values"},
    /* 601 specs per g (itself, then 200 f of 3): the 4097th is the first of g07.f164 */
    {"local t = {} for i = 1, 200 do t[('f%03d'):format(i)] = { { 'string' } } end "
     "local u = {} for i = 1, 30 do u[('g%02d'):format(i)] = t end return u",
     "input.g07.f164: more than 4096 specs in one schema"},
};

static void test_compile_errors(lua_State *L)
{
    char err[512];

    for (size_t i = 0; i < N(compile_errors); i++) {
        struct schema *s = compile_src(L, compile_errors[i].src, err, sizeof err);

        CHECK(s == NULL);
        CHECK_EQ_STR(err, compile_errors[i].err);
        if (!s && strcmp(err, compile_errors[i].err) != 0)
            fprintf(stderr, "  declaration: %s\n", compile_errors[i].src);
        schema_free(s);
    }
    /* not a table at all */
    lua_pushstring(L, "x");
    CHECK(schema_compile(L, -1, err, sizeof err) == NULL);
    CHECK_EQ_STR(err, "input: must be a table, got string");
    lua_pop(L, 1);
    /* a short err buffer is truncated, and NULL/0 is accepted */
    lua_pushstring(L, "x");
    CHECK(schema_compile(L, -1, err, 6) == NULL);
    CHECK_EQ_STR(err, "input");
    CHECK(schema_compile(L, -1, NULL, 0) == NULL);
    lua_pop(L, 1);
}

static void test_compile_ok(lua_State *L)
{
    static const char *const ok[] = {
        "return {}",
        "local t = 'string' for i = 1, 31 do t = { t } end return { a = t }",
        "return { a = { type = 'string', min = 3, max = 3 } }",
        "return { a = { type = 'integer|null', min = -1.5, max = 2 } }",
        "return { a = { type = 'array|null', items = { type = 'number', min = 0 } } }",
        "return { a = { type = 'object|null', fields = { b = 'string' } } }",
        "return { a = { enum = { 'x', 1, 2.5 }, optional = true, description = 'd' } }",
        "return { ['__proto__'] = 'string?', type = 'string', enum = 'number' }",
        "return { a = { type = 'string?', optional = true } }",
        "return { a = 'integer|number' }",
        "return { ['\\xc3\\xa9t\\xc3\\xa9'] = 'string', ['\\xf0\\x9f\\x98\\x80'] = 'number', "
        "[string.rep('x', 128)] = 'string' }",
    };
    char err[256];

    for (size_t i = 0; i < N(ok); i++) {
        struct schema *s = compile_src(L, ok[i], err, sizeof err);

        CHECK(s != NULL);
        if (!s)
            fprintf(stderr, "  %s: %s\n", ok[i], err);
        schema_free(s);
    }
    schema_free(NULL);
}

/* ---- validation: schema source, then cases (JSON, expected field or NULL, reason) ---- */

struct vcase {
    const char *json, *field, *reason;
};

static void run_cases(lua_State *L, const char *src, const struct vcase *cases, size_t n)
{
    char err[256], field[512];
    struct schema *s = compile_src(L, src, err, sizeof err);

    CHECK(s != NULL);
    if (!s) {
        fprintf(stderr, "  %s: %s\n", src, err);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_error_t jerr;
        json_t *j = json_loads(cases[i].json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        const char *reason = "unset";
        int rc;

        CHECK(j != NULL);
        if (!j) {
            fprintf(stderr, "  bad JSON %s: %s\n", cases[i].json, jerr.text);
            continue;
        }
        rc = schema_validate(s, j, field, sizeof field, &reason);
        if (!cases[i].field) {
            CHECK_EQ_INT(rc, 0);
            CHECK(reason == NULL);
            if (rc)
                fprintf(stderr, "  %s: unexpected %s at '%s'\n", cases[i].json, reason, field);
        } else {
            CHECK_EQ_INT(rc, -1);
            CHECK_EQ_STR(field, cases[i].field);
            CHECK_EQ_STR(reason, cases[i].reason);
            if (rc != -1 || strcmp(field, cases[i].field) || !reason ||
                strcmp(reason, cases[i].reason))
                fprintf(stderr, "  case %s\n", cases[i].json);
        }
        json_decref(j);
    }
    schema_free(s);
}

static const char types_src[] =
    "return { s = 'string?', n = 'number?', i = 'integer?', b = 'boolean?', z = 'null?', "
    "a = 'any?', o = 'object?', arr = 'array?', t = 'table?', u = 'string|null?', "
    "sn = 'string|number?', ia = 'integer|array?' }";

static const struct vcase types_cases[] = {
    {"{}", NULL, NULL},
    {"[]", "", "type"},
    {"\"x\"", "", "type"},
    {"null", "", "type"},
    {"{\"s\": \"x\", \"n\": 1.5, \"i\": 3, \"b\": false, \"z\": null}", NULL, NULL},
    {"{\"s\": 1}", "s", "type"},
    {"{\"s\": null}", "s", "type"}, /* optional is not nullable */
    {"{\"n\": 1}", NULL, NULL},
    {"{\"n\": -1e300}", NULL, NULL},
    {"{\"n\": \"1\"}", "n", "type"},
    {"{\"n\": null}", "n", "type"},
    {"{\"n\": true}", "n", "type"},
    {"{\"i\": 3.0}", NULL, NULL},
    {"{\"i\": -0.0}", NULL, NULL},
    {"{\"i\": 3.5}", "i", "notInteger"},
    {"{\"i\": 1e300}", "i", "notInteger"},
    {"{\"i\": 9007199254740992.0}", NULL, NULL},
    {"{\"i\": 18014398509481984.0}", "i", "notInteger"},
    {"{\"i\": 9223372036854775807}", NULL, NULL},
    {"{\"i\": \"3\"}", "i", "type"},
    {"{\"b\": true}", NULL, NULL},
    {"{\"b\": 0}", "b", "type"},
    {"{\"z\": 0}", "z", "type"},
    {"{\"z\": false}", "z", "type"},
    {"{\"a\": null}", NULL, NULL},
    {"{\"a\": [1, {\"x\": [true]}]}", NULL, NULL},
    {"{\"o\": {\"k\": 1}}", NULL, NULL},
    {"{\"o\": []}", "o", "type"},
    {"{\"o\": null}", "o", "type"},
    {"{\"arr\": [1, \"x\", null]}", NULL, NULL},
    {"{\"arr\": {}}", "arr", "type"},
    {"{\"t\": {}}", NULL, NULL},
    {"{\"t\": [1]}", NULL, NULL},
    {"{\"t\": \"x\"}", "t", "type"},
    {"{\"u\": null}", NULL, NULL},
    {"{\"u\": \"x\"}", NULL, NULL},
    {"{\"u\": 1}", "u", "type"},
    {"{\"sn\": \"x\"}", NULL, NULL},
    {"{\"sn\": 2.5}", NULL, NULL},
    {"{\"sn\": null}", "sn", "type"},
    {"{\"ia\": 2.5}", "ia", "notInteger"},
    {"{\"ia\": [2.5]}", NULL, NULL},
    {"{\"zz\": 1}", "zz", "unknownKey"},
    {"{\"zz\": 1, \"aa\": 2, \"s\": \"ok\"}", "aa", "unknownKey"},
    {"{\"__proto__\": {}}", "__proto__", "unknownKey"},
    {"{\"s\": 1, \"n\": \"x\", \"zz\": 0}", "n", "type"}, /* fields in name order, then keys */
};

static const char bounds_src[] =
    "return { title = { type = 'string', min = 1, max = 5 }, "
    "name = { type = 'string', max = 2, optional = true }, "
    "prio = { type = 'number', min = 0, max = 10, optional = true }, "
    "cnt = { type = 'integer', min = -3, max = 3, optional = true }, "
    "half = { type = 'number|null', min = 0.5, optional = true }, "
    "labels = { type = 'array', items = 'string', min = 1, max = 2, optional = true } }";

static const struct vcase bounds_cases[] = {
    {"{\"title\": \"a\"}", NULL, NULL},
    {"{\"title\": \"abcde\"}", NULL, NULL},
    {"{}", "title", "required"},
    {"{\"title\": \"\"}", "title", "tooShort"},
    {"{\"title\": \"abcdef\"}", "title", "tooLong"},
    {"{\"title\": \"x\", \"name\": \"\xc3\xa9\xf0\x9f\x98\x80\"}", NULL, NULL}, /* "é😀": 2 */
    {"{\"title\": \"x\", \"name\": \"\\u00e9\\ud83d\\ude00\"}", NULL, NULL},
    {"{\"title\": \"x\", \"name\": \"\xc3\xa9\xf0\x9f\x98\x80x\"}", "name", "tooLong"},
    {"{\"title\": \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", NULL, NULL}, /* 10 bytes, 5 */
    {"{\"title\": \"x\", \"prio\": 0}", NULL, NULL},
    {"{\"title\": \"x\", \"prio\": 10.0}", NULL, NULL},
    {"{\"title\": \"x\", \"prio\": -0.5}", "prio", "tooSmall"},
    {"{\"title\": \"x\", \"prio\": -1}", "prio", "tooSmall"},
    {"{\"title\": \"x\", \"prio\": 10.000001}", "prio", "tooLarge"},
    {"{\"title\": \"x\", \"prio\": 11}", "prio", "tooLarge"},
    {"{\"title\": \"x\", \"cnt\": 3.0}", NULL, NULL},
    {"{\"title\": \"x\", \"cnt\": -3}", NULL, NULL},
    {"{\"title\": \"x\", \"cnt\": -4}", "cnt", "tooSmall"},
    {"{\"title\": \"x\", \"cnt\": 4.0}", "cnt", "tooLarge"},
    {"{\"title\": \"x\", \"cnt\": 2.5}", "cnt", "notInteger"},
    {"{\"title\": \"x\", \"cnt\": 9223372036854775807}", "cnt", "tooLarge"},
    {"{\"title\": \"x\", \"half\": null}", NULL, NULL},
    {"{\"title\": \"x\", \"half\": 0.5}", NULL, NULL},
    {"{\"title\": \"x\", \"half\": 0}", "half", "tooSmall"},
    {"{\"title\": \"x\", \"labels\": [\"a\"]}", NULL, NULL},
    {"{\"title\": \"x\", \"labels\": []}", "labels", "tooFew"},
    {"{\"title\": \"x\", \"labels\": [\"a\", \"b\", \"c\"]}", "labels", "tooMany"},
    {"{\"title\": \"x\", \"labels\": [\"a\", 1]}", "labels[1]", "type"},
    {"{\"title\": \"x\", \"labels\": [1, 2, 3]}", "labels", "tooMany"}, /* count before items */
    {"{\"title\": 5, \"cnt\": 9}", "cnt", "tooLarge"},                  /* name order */
};

static const char enums_src[] = "return { lane = { enum = { 'todo', 'doing', 'done' } }, "
                                "level = { enum = { 1, 2, 3.5 }, optional = true }, "
                                "mixed = { enum = { 'a', 0 }, optional = true }, "
                                "big = { enum = { 9007199254740993 }, optional = true } }";

static const struct vcase enums_cases[] = {
    {"{\"lane\": \"todo\"}", NULL, NULL},
    {"{\"lane\": \"done\"}", NULL, NULL},
    {"{\"lane\": \"Done\"}", "lane", "enum"},
    {"{\"lane\": \"todo\\u0000\"}", "lane", "enum"},
    {"{\"lane\": 1}", "lane", "type"},
    {"{\"lane\": null}", "lane", "type"},
    {"{}", "lane", "required"},
    {"{\"lane\": \"todo\", \"level\": 1}", NULL, NULL},
    {"{\"lane\": \"todo\", \"level\": 1.0}", NULL, NULL},
    {"{\"lane\": \"todo\", \"level\": 3.5}", NULL, NULL},
    {"{\"lane\": \"todo\", \"level\": 3}", "level", "enum"},
    {"{\"lane\": \"todo\", \"level\": 1.5}", "level", "enum"},
    {"{\"lane\": \"todo\", \"level\": \"1\"}", "level", "type"},
    {"{\"lane\": \"todo\", \"mixed\": \"a\"}", NULL, NULL},
    {"{\"lane\": \"todo\", \"mixed\": 0}", NULL, NULL},
    {"{\"lane\": \"todo\", \"mixed\": -0.0}", NULL, NULL},
    {"{\"lane\": \"todo\", \"mixed\": \"b\"}", "mixed", "enum"},
    {"{\"lane\": \"todo\", \"mixed\": 1}", "mixed", "enum"},
    {"{\"lane\": \"todo\", \"mixed\": true}", "mixed", "type"},
    {"{\"lane\": \"todo\", \"mixed\": [\"a\"]}", "mixed", "type"},
    {"{\"lane\": \"todo\", \"big\": 9007199254740993}", NULL, NULL},
    {"{\"lane\": \"todo\", \"big\": 9007199254740992}", "big", "enum"}, /* exact, not doubles */
};

static const char nested_src[] =
    "return { cards = { { id = 'string', title = { type = 'string', min = 1 } } }, "
    "meta = { type = 'object', fields = { color = 'string?' }, optional = true }, "
    "extra = { type = 'object', fields = { a = 'number' }, open = true, optional = true }, "
    "grid = { type = 'array', items = { 'integer' }, optional = true }, "
    "free = { type = 'object', optional = true }, "
    "shut = { type = 'object', open = false, optional = true }, "
    "empty = { type = 'object', fields = {}, optional = true }, "
    "nul = { type = 'object|null', fields = { k = 'boolean' }, optional = true }, "
    "decl = { type = 'object', fields = { constructor = 'string?' }, optional = true } }";

static const struct vcase nested_cases[] = {
    {"{\"cards\": []}", NULL, NULL},
    {"{\"cards\": [{\"id\": \"a\", \"title\": \"x\"}, {\"id\": \"b\", \"title\": \"y\"}]}", NULL,
     NULL},
    {"{\"cards\": [{\"id\": \"a\", \"title\": \"x\"}, {\"id\": \"b\", \"title\": \"\"}]}",
     "cards[1].title", "tooShort"},
    {"{\"cards\": [{\"title\": \"x\"}]}", "cards[0].id", "required"},
    {"{\"cards\": [{\"id\": \"a\", \"title\": \"x\", \"zz\": 1}]}", "cards[0].zz", "unknownKey"},
    {"{\"cards\": [{\"id\": \"a\", \"title\": \"x\"}, 5]}", "cards[1]", "type"},
    {"{\"cards\": {}}", "cards", "type"},
    {"{\"zz\": 1}", "cards", "required"}, /* declared fields before unknown keys */
    {"{\"cards\": [], \"meta\": {}}", NULL, NULL},
    {"{\"cards\": [], \"meta\": {\"color\": \"red\"}}", NULL, NULL},
    {"{\"cards\": [], \"meta\": {\"color\": null}}", "meta.color", "type"},
    {"{\"cards\": [], \"meta\": {\"x\": 1}}", "meta.x", "unknownKey"},
    {"{\"cards\": [], \"meta\": null}", "meta", "type"},
    {"{\"cards\": [], \"extra\": {\"a\": 1, \"b\": {\"c\": [1]}}}", NULL, NULL},
    {"{\"cards\": [], \"extra\": {\"b\": 1}}", "extra.a", "required"},
    {"{\"cards\": [], \"extra\": {\"a\": 1, \"__proto__\": {}}}", "extra.__proto__", "unknownKey"},
    {"{\"cards\": [], \"extra\": {\"a\": 1, \"prototype\": 1, \"constructor\": 1}}",
     "extra.constructor", "unknownKey"},
    {"{\"cards\": [], \"extra\": {\"a\": 1, \"z\": {\"__proto__\": 1}, \"b\": [{\"prototype\": "
     "1}]}}",
     "extra.b[0].prototype", "unknownKey"},
    {"{\"cards\": [], \"grid\": [[1, 2], [3, 4.0]]}", NULL, NULL},
    {"{\"cards\": [], \"grid\": [[1, 2], [3, \"x\"]]}", "grid[1][1]", "type"},
    {"{\"cards\": [], \"grid\": [[1], 2]}", "grid[1]", "type"},
    {"{\"cards\": [], \"free\": {\"x\": {\"y\": [null]}}}", NULL, NULL},
    {"{\"cards\": [], \"free\": {\"x\": {\"prototype\": 1}}}", "free.x.prototype", "unknownKey"},
    {"{\"cards\": [], \"free\": []}", "free", "type"},
    {"{\"cards\": [], \"shut\": {}}", NULL, NULL},
    {"{\"cards\": [], \"shut\": {\"a\": 1}}", "shut.a", "unknownKey"},
    {"{\"cards\": [], \"empty\": {}}", NULL, NULL},
    {"{\"cards\": [], \"empty\": {\"a\": 1}}", "empty.a", "unknownKey"},
    {"{\"cards\": [], \"nul\": null}", NULL, NULL},
    {"{\"cards\": [], \"nul\": {\"k\": true}}", NULL, NULL},
    {"{\"cards\": [], \"nul\": {}}", "nul.k", "required"},
    {"{\"cards\": [], \"decl\": {\"constructor\": \"x\"}}", NULL, NULL},
    {"{\"cards\": [], \"decl\": {\"prototype\": \"x\"}}", "decl.prototype", "unknownKey"},
};

/* The raw access: metamethods on the declaration are never called. */
static const char raw_src[] =
    "local boom = function() error('metamethod called') end "
    "local mt = { __index = function() return 'string' end, __pairs = boom, __len = boom } "
    "return setmetatable({ a = setmetatable({ x = 'number' }, mt) }, mt)";

static const struct vcase raw_cases[] = {
    {"{\"a\": {\"x\": 1}}", NULL, NULL},
    {"{\"a\": {\"x\": 1, \"y\": \"s\"}}", "a.y", "unknownKey"},
    {"{\"a\": {\"x\": 1}, \"b\": \"s\"}", "b", "unknownKey"},
};

/* Data nesting: `depth` containers under "a" (the top-level object is level 1). */
static void nested_json(char *out, size_t size, int depth, int objects)
{
    size_t n = (size_t)snprintf(out, size, "{\"a\": ");

    for (int i = 0; i < depth; i++)
        n += (size_t)snprintf(out + n, size - n, "%s", objects ? "{\"k\": " : "[");
    n += (size_t)snprintf(out + n, size - n, "1");
    for (int i = 0; i < depth; i++)
        n += (size_t)snprintf(out + n, size - n, "%s", objects ? "}" : "]");
    snprintf(out + n, size - n, "}");
}

static void test_depth(lua_State *L)
{
    static const char *const srcs[] = {"return { a = 'any' }", "return { a = 'table' }",
                                       "return { a = { type = 'array', items = 'any' } }"};
    char err[256], field[1024], want[1024], text[2048];
    const char *reason;

    for (size_t k = 0; k < N(srcs); k++) {
        struct schema *s = compile_src(L, srcs[k], err, sizeof err);

        CHECK(s != NULL);
        for (int objects = 0; objects < (k == 2 ? 1 : 2) && s; objects++) {
            for (int depth = 62; depth <= 70; depth++) {
                nested_json(text, sizeof text, depth, objects);
                char *p = want;
                json_t *j = json_loads(text, 0, NULL);
                int rc = schema_validate(s, j, field, sizeof field, &reason);

                CHECK(j != NULL);
                if (depth <= SCHEMA_MAX_DATA_DEPTH - 1) {
                    CHECK_EQ_INT(rc, 0);
                } else { /* the container at level 65 is under "a" at level 2 */
                    p += sprintf(p, "a");
                    for (int i = 0; i < SCHEMA_MAX_DATA_DEPTH - 1; i++)
                        p += sprintf(p, objects ? ".k" : "[0]");
                    CHECK_EQ_INT(rc, -1);
                    CHECK_EQ_STR(reason, "tooDeep");
                    CHECK_EQ_STR(field, want);
                }
                json_decref(j);
            }
        }
        schema_free(s);
    }
}

static void test_paths(lua_State *L)
{
    char err[256], small[8];
    const char *reason = NULL;
    struct schema *s = compile_src(L, nested_src, err, sizeof err);
    json_t *j = json_loads("{\"cards\": [{\"id\": \"a\", \"title\": \"\"}]}", 0, NULL);

    CHECK(s && j);
    CHECK_EQ_INT(schema_validate(s, j, small, sizeof small, &reason), -1);
    CHECK_EQ_STR(small, "cards[0");
    CHECK_EQ_STR(reason, "tooShort");
    CHECK_EQ_INT(schema_validate(s, j, NULL, 0, &reason), -1);
    CHECK_EQ_STR(reason, "tooShort");
    CHECK_EQ_INT(schema_validate(s, j, small, 1, NULL), -1);
    CHECK_EQ_STR(small, "");
    CHECK_EQ_INT(schema_validate(s, NULL, small, sizeof small, &reason), -1);
    CHECK_EQ_STR(reason, "type");
    json_decref(j);
    schema_free(s);
}

/* ---- TypeScript ---- */

static const char ts_src[] =
    "return {\n"
    "  cardId = 'string',\n"
    "  toLane = { enum = { 'todo', 'doing', 'done' } },\n"
    "  pos = 'integer?',\n"
    "  title = { type = 'string', min = 1, max = 200, description = 'Shown on the card */ x' },\n"
    "  prio = { type = 'number', min = 0, max = 10, optional = true },\n"
    "  tags = { 'string' },\n"
    "  labels = { type = 'array', items = 'string|null', min = 0, max = 20 },\n"
    "  meta = { type = 'object', fields = { color = 'string?' } },\n"
    "  extra = { type = 'object', fields = { a = 'number' }, open = true },\n"
    "  where = { x = 'number', y = 'number' },\n"
    "  anything = 'any',\n"
    "  flags = 'table',\n"
    "  obj = 'object?',\n"
    "  arr = 'array',\n"
    "  note = 'string|null',\n"
    "  levels = { enum = { 1, 2.5, -3, 0.1 } },\n"
    "  ['data-id'] = { type = 'string', description = 'two\\nlines' },\n"
    "  grid = { { 'integer' } },\n"
    "  nothing = { type = 'object', fields = {} },\n"
    "  maybe = 'object|null',\n"
    "  q = { enum = { 'say \"hi\"\\n', '\\\\' } },\n"
    "  both = 'null|boolean|number|string',\n"
    "  picks = { { enum = { 'a', 'b' } } },\n"
    "}";

static const char ts_want[] =
    "{ anything: unknown; arr: unknown[]; both: string | number | boolean | null; cardId: string; "
    "/** two lines */ \"data-id\": string; extra: { a: number; [key: string]: unknown }; "
    "flags: { [key: string]: unknown } | unknown[]; grid: number[][]; "
    "labels: (string | null)[]; levels: 1 | 2.5 | -3 | 0.1; "
    "maybe: { [key: string]: unknown } | null; meta: { color?: string }; note: string | null; "
    "nothing: Record<string, never>; obj?: { [key: string]: unknown }; "
    "picks: (\"a\" | \"b\")[]; pos?: number; prio?: number; "
    "q: \"say \\\"hi\\\"\\u000a\" | \"\\\\\"; tags: string[]; "
    "/** Shown on the card *\\/ x */ title: string; toLane: \"todo\" | \"doing\" | \"done\"; "
    "where: { x: number; y: number } }";

static void test_typescript(lua_State *L)
{
    char err[256];
    struct schema *s = compile_src(L, ts_src, err, sizeof err);
    char *ts;

    CHECK(s != NULL);
    if (!s) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    ts = schema_to_typescript(s);
    CHECK_EQ_STR(ts, ts_want);
    if (getenv("SCHEMA_TS_OUT") && ts) /* for an outside check with tsc */
        printf("type Input = %s;\n", ts);
    free(ts);
    schema_free(s);

    /* property names: ASCII identifiers bare, anything else quoted; bytewise name order */
    s = compile_src(L,
                    "return { ['\\xc3\\xa9'] = 'string', ['a b'] = 'number?', _ok = 'boolean', "
                    "['1x'] = 'null', ['$'] = 'string' }",
                    err, sizeof err);
    ts = s ? schema_to_typescript(s) : NULL;
    CHECK_EQ_STR(
        ts, "{ $: string; \"1x\": null; _ok: boolean; \"a b\"?: number; \"\xc3\xa9\": string }");
    free(ts);
    schema_free(s);

    s = compile_src(L, "return {}", err, sizeof err);
    ts = s ? schema_to_typescript(s) : NULL;
    CHECK_EQ_STR(ts, "Record<string, never>");
    free(ts);
    schema_free(s);
}

/* ---- a Lua state under a memory cap ---- */

struct cap {
    size_t used, limit;
};

static void *cap_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct cap *c = ud;
    void *p;

    if (!ptr)
        osize = 0; /* osize is then a type tag */
    if (nsize == 0) {
        free(ptr);
        c->used -= osize;
        return NULL;
    }
    if (nsize > osize && c->used + (nsize - osize) > c->limit)
        return NULL;
    if (!(p = realloc(ptr, nsize)))
        return NULL;
    c->used = c->used - osize + nsize;
    return p;
}

static void test_memory_cap(void)
{
    struct cap cap = {0, (size_t)64 << 20};
    lua_State *L = lua_newstate(cap_alloc, &cap), *co;
    char err[256];
    struct schema *s;
    int successes = 0, ooms = 0;

    CHECK(L != NULL);
    if (!L)
        return;
    luaL_openlibs(L);
    CHECK_EQ_INT(luaL_dostring(L, ts_src), LUA_OK);
    /* a fresh coroutine must allocate a call frame: refused (no garbage for an emergency GC) */
    co = lua_newthread(L);
    lua_pushvalue(L, -2);
    lua_xmove(L, co, 1);
    lua_gc(L, LUA_GCCOLLECT);
    cap.limit = cap.used;
    s = schema_compile(co, -1, err, sizeof err);
    CHECK(s == NULL);
    CHECK_EQ_STR(err, "out of memory");
    CHECK_EQ_INT(lua_gettop(co), 1);
    /* every cap from none to plenty: either a schema or "out of memory", never anything else */
    for (size_t extra = 0; extra <= 16384; extra += 16) {
        lua_State *t;

        cap.limit = (size_t)64 << 20;
        t = lua_newthread(L);
        lua_pushvalue(L, -3);
        lua_xmove(L, t, 1);
        lua_gc(L, LUA_GCCOLLECT);
        cap.limit = cap.used + extra;
        s = schema_compile(t, -1, err, sizeof err);
        if (s) {
            char *ts = schema_to_typescript(s);

            CHECK_EQ_STR(ts, ts_want);
            free(ts);
            successes++;
        } else {
            CHECK_EQ_STR(err, "out of memory");
            ooms++;
        }
        CHECK_EQ_INT(lua_gettop(t), 1);
        schema_free(s);
        lua_pop(L, 1);
    }
    CHECK(ooms > 0);
    CHECK(successes > 0);
    cap.limit = (size_t)64 << 20;
    lua_close(L);
    CHECK_EQ_INT(cap.used, 0);
}

int main(void)
{
    lua_State *L = luaL_newstate();

    luaL_openlibs(L);
    test_compile_errors(L);
    test_compile_ok(L);
    run_cases(L, types_src, types_cases, N(types_cases));
    run_cases(L, bounds_src, bounds_cases, N(bounds_cases));
    run_cases(L, enums_src, enums_cases, N(enums_cases));
    run_cases(L, nested_src, nested_cases, N(nested_cases));
    run_cases(L, raw_src, raw_cases, N(raw_cases));
    test_depth(L);
    test_paths(L);
    test_typescript(L);
    CHECK_EQ_INT(lua_gettop(L), 0);
    lua_close(L);
    test_memory_cap();
    TEST_MAIN_END();
}
