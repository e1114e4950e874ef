/* luajson: exact JSON <-> Lua 5.4 conversion over jansson. See luajson.h for the mapping. */
#include "luajson.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "jtext.h"
#include "luajson_int.h"

/* Addresses used as identities: the null sentinel and the registry key of the array marker. */
static const char null_sentinel;
static const char array_mt_key;

#define ENCODE_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS | JSON_REAL_PRECISION(17))
#define DECODE_FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES)

/* Bound on the path shown in error messages; longer paths end in "...". */
#define PATH_MAX_LEN 160

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void luajson_push_null(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&null_sentinel);
}

int luajson_is_null(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA &&
           lua_touserdata(L, idx) == (void *)&null_sentinel;
}

static int array_mt_newindex(lua_State *L)
{
    return luaL_error(L, "json.array_mt is read-only");
}

void luajson_push_array_mt(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_createtable(L, 0, 0); /* the marker: stays empty */
    lua_createtable(L, 0, 2); /* its lock */
    lua_pushcfunction(L, array_mt_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &array_mt_key);
}

/* ---- JSON -> Lua ---------------------------------------------------------------------- */

static int clamp_int(size_t n)
{
    return n > INT_MAX ? INT_MAX : (int)n;
}

/* Push v; `level` is the number of containers enclosing v. On failure the caller restores the
 * stack top. Raises only Lua memory errors (and "table overflow" for absurd sizes). */
static int push_value(lua_State *L, const json_t *v, unsigned level, unsigned max_depth)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        size_t keylen;
        json_t *child;

        if (level >= max_depth)
            return -E2BIG;
        if (!lua_checkstack(L, 3))
            return -ENOMEM;
        lua_createtable(L, 0, clamp_int(json_object_size(v)));
        /* The iteration macro wants a non-const object; it does not modify it. */
        json_object_keylen_foreach((json_t *)v, key, keylen, child)
        {
            int rc;

            lua_pushlstring(L, key, keylen);
            rc = push_value(L, child, level + 1, max_depth);
            if (rc < 0)
                return rc;
            lua_rawset(L, -3);
        }
        return 0;
    }
    case JSON_ARRAY: {
        size_t i, n = json_array_size(v);

        if (level >= max_depth)
            return -E2BIG;
        if (!lua_checkstack(L, 3))
            return -ENOMEM;
        lua_createtable(L, clamp_int(n), 0);
        for (i = 0; i < n; i++) {
            int rc = push_value(L, json_array_get(v, i), level + 1, max_depth);

            if (rc < 0)
                return rc;
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        luajson_push_array_mt(L);
        lua_setmetatable(L, -2);
        return 0;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(v));
        return 0;
    case JSON_REAL:
        lua_pushnumber(L, (lua_Number)json_real_value(v));
        return 0;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        return 0;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        return 0;
    case JSON_NULL:
        luajson_push_null(L);
        return 0;
    }
    return -EINVAL;
}

int luajson_push(lua_State *L, const json_t *v, unsigned max_depth)
{
    int top = lua_gettop(L);
    int rc;

    if (!v)
        return -EINVAL;
    rc = push_value(L, v, 0, max_depth);
    if (rc < 0)
        lua_settop(L, top);
    return rc;
}

struct push_args {
    const json_t *v;
    unsigned max_depth;
    int rc;
};

static int push_trampoline(lua_State *L)
{
    struct push_args *a = lua_touserdata(L, 1);

    a->rc = luajson_push(L, a->v, a->max_depth);
    return a->rc < 0 ? 0 : 1;
}

/* Run f(ud) under lua_pcall, keeping its single result (nil if it returned none). Returns the
 * lua_pcall status, the error object left on the stack; or -1, with nothing pushed, if the Lua
 * stack cannot grow by the two slots the call needs. */
static int call_protected(lua_State *L, lua_CFunction f, void *ud)
{
    if (!lua_checkstack(L, 2))
        return -1;
    /* A light C function and a light userdata: pushing them allocates nothing. */
    lua_pushcfunction(L, f);
    lua_pushlightuserdata(L, ud);
    return lua_pcall(L, 1, 1, 0);
}

int luajson_push_protected(lua_State *L, const json_t *v, unsigned max_depth)
{
    struct push_args a = {v, max_depth, 0};
    int status;

    if (!v)
        return -EINVAL;
    status = call_protected(L, push_trampoline, &a);
    if (status == -1)
        return -ENOMEM;
    if (status != LUA_OK) {
        lua_pop(L, 1); /* the error object */
        return status == LUA_ERRMEM ? -ENOMEM : -EIO;
    }
    if (a.rc < 0) {
        lua_pop(L, 1); /* the nil standing in for no result */
        return a.rc;
    }
    return 0;
}

/* ---- Lua -> JSON ---------------------------------------------------------------------- */

struct enc {
    lua_State *L;
    unsigned max_depth;
    char *err;
    size_t errlen;
    size_t pathlen;
    char path[PATH_MAX_LEN + 4]; /* room for "..." and NUL */
};

static void enc_err(struct enc *e, const char *fmt, ...)
{
    char msg[128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (e->pathlen)
        set_err(e->err, e->errlen, "%s: %s", e->path, msg);
    else
        set_err(e->err, e->errlen, "%s", msg);
}

static void path_append(struct enc *e, const char *s, size_t n)
{
    if (e->pathlen >= PATH_MAX_LEN)
        return;
    if (n > PATH_MAX_LEN - e->pathlen) {
        memcpy(e->path + e->pathlen, s, PATH_MAX_LEN - e->pathlen);
        memcpy(e->path + PATH_MAX_LEN, "...", 4);
        e->pathlen = PATH_MAX_LEN;
        return;
    }
    memcpy(e->path + e->pathlen, s, n);
    e->pathlen += n;
    e->path[e->pathlen] = '\0';
}

static void path_truncate(struct enc *e, size_t len)
{
    e->pathlen = len;
    e->path[len] = '\0';
}

static int is_identifier(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > 64 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

/* Append `.key`, or `["key"]` (at most 32 bytes, unprintable bytes as '?') when the key is not
 * an identifier. The path is only for messages, so lossy is fine. */
static void path_push_key(struct enc *e, const char *key, size_t n)
{
    char buf[48];
    size_t i, m = 0;

    if (is_identifier(key, n)) {
        if (e->pathlen)
            path_append(e, ".", 1);
        path_append(e, key, n);
        return;
    }
    buf[m++] = '[';
    buf[m++] = '"';
    for (i = 0; i < n && i < 32; i++) {
        unsigned char c = (unsigned char)key[i];

        buf[m++] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
    }
    if (n > 32) {
        memcpy(buf + m, "...", 3);
        m += 3;
    }
    buf[m++] = '"';
    buf[m++] = ']';
    path_append(e, buf, m);
}

static void path_push_index(struct enc *e, lua_Integer i)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "[%lld]", (long long)i);

    path_append(e, buf, (size_t)n);
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. NUL bytes
 * are refused too: C consumers of the text must not see a truncated string. Returns 0 if valid,
 * else -1 (invalid UTF-8) or -2 (NUL). */
int luajson_check_text(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t need;
        unsigned long cp, min;

        if (n - i >= 8) { /* 8 ASCII bytes without NUL at a time: no high bit, no zero byte */
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!((w | ((w - 0x0101010101010101u) & ~w)) & 0x8080808080808080u)) {
                i += 8;
                continue;
            }
        }
        if (c < 0x80) {
            if (c == 0)
                return -2;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return -1;
        }
        if (n - i - 1 < need)
            return -1;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return -1;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return -1;
        i += need + 1;
    }
    return 0;
}

static int check_string(struct enc *e, const char *s, size_t n, const char *what)
{
    int rc = luajson_check_text(s, n);

    if (rc == -1)
        enc_err(e, "%s is not valid UTF-8", what);
    else if (rc == -2)
        enc_err(e, "%s contains a NUL byte", what);
    return rc < 0 ? -EINVAL : 0;
}

static int to_json(struct enc *e, int idx, unsigned level, json_t **out);

void luajson_table_shape(lua_State *L, int idx, struct shape *sh)
{
    memset(sh, 0, sizeof *sh);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            sh->nstr++;
        } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
            lua_Integer k = lua_tointeger(L, -1);

            sh->nint++;
            if (k > sh->maxint)
                sh->maxint = k;
        } else {
            if (!sh->nother)
                sh->other_type = lua_type(L, -1);
            sh->nother++;
        }
    }
}

int luajson_has_array_mt(lua_State *L, int idx)
{
    int yes;

    if (!lua_getmetatable(L, idx))
        return 0;
    /* Only looks the marker up, never creates it: no allocation here. */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);
    yes = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return yes;
}

static int array_to_json(struct enc *e, int idx, lua_Integer n, unsigned level, json_t **out)
{
    json_t *arr = json_array();
    size_t saved = e->pathlen;
    lua_Integer i;

    if (!arr)
        goto nomem;
    for (i = 1; i <= n; i++) {
        json_t *child;
        int rc;

        lua_rawgeti(e->L, idx, i);
        path_push_index(e, i);
        rc = to_json(e, lua_gettop(e->L), level, &child);
        lua_pop(e->L, 1);
        if (rc < 0) {
            json_decref(arr);
            return rc;
        }
        path_truncate(e, saved);
        if (json_array_append_new(arr, child) < 0) /* decrefs child on failure */
            goto nomem;
    }
    *out = arr;
    return 0;

nomem:
    json_decref(arr);
    enc_err(e, "out of memory");
    return -ENOMEM;
}

static int object_to_json(struct enc *e, int idx, unsigned level, json_t **out)
{
    lua_State *L = e->L;
    int top = lua_gettop(L);
    json_t *obj = json_object();
    size_t saved = e->pathlen;
    int rc;

    if (!obj)
        goto nomem;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t kl;
        const char *k = lua_tolstring(L, -2, &kl); /* a string key: no conversion happens */
        json_t *child;

        path_push_key(e, k, kl);
        rc = check_string(e, k, kl, "key");
        if (rc < 0)
            goto fail;
        rc = to_json(e, lua_gettop(L), level, &child);
        if (rc < 0)
            goto fail;
        path_truncate(e, saved);
        if (json_object_setn_new_nocheck(obj, k, kl, child) < 0) /* decrefs child on failure */
            goto nomem;
        lua_pop(L, 1);
    }
    *out = obj;
    return 0;

nomem:
    enc_err(e, "out of memory");
    rc = -ENOMEM;
fail:
    lua_settop(L, top);
    json_decref(obj);
    return rc;
}

static int table_to_json(struct enc *e, int idx, unsigned level, json_t **out)
{
    struct shape sh;
    int marked;

    if (level >= e->max_depth) {
        enc_err(e, "nesting deeper than %u levels (or a cycle)", e->max_depth);
        return -E2BIG;
    }
    /* lua_next, the pushed key/value, metatable lookups: a handful of slots per level. */
    if (!lua_checkstack(e->L, 4)) {
        enc_err(e, "out of memory (Lua stack)");
        return -ENOMEM;
    }
    luajson_table_shape(e->L, idx, &sh);
    marked = luajson_has_array_mt(e->L, idx);
    if (sh.nother == 0 && sh.nstr == 0 && (lua_Integer)sh.nint == sh.maxint &&
        (marked || sh.nint > 0))
        return array_to_json(e, idx, sh.maxint, level + 1, out);
    if (marked) {
        enc_err(e, "array has keys other than 1..n");
        return -EINVAL;
    }
    if (sh.nother == 0 && sh.nint == 0)
        return object_to_json(e, idx, level + 1, out);
    if (sh.nother)
        enc_err(e, "mixed or non-string keys (a %s key)", lua_typename(e->L, sh.other_type));
    else
        enc_err(e, "mixed or non-string keys");
    return -EINVAL;
}

/* Convert the value at absolute index idx; `level` is the number of enclosing tables. On
 * success *out holds a new reference; on failure the message is already in e->err. */
static int to_json(struct enc *e, int idx, unsigned level, json_t **out)
{
    lua_State *L = e->L;
    json_t *v = NULL;

    *out = NULL;
    switch (lua_type(L, idx)) {
    case LUA_TTABLE:
        return table_to_json(e, idx, level, out);
    case LUA_TNIL:
        v = json_null();
        break;
    case LUA_TBOOLEAN:
        v = json_boolean(lua_toboolean(L, idx));
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            v = json_integer((json_int_t)lua_tointeger(L, idx));
        } else {
            lua_Number d = lua_tonumber(L, idx);

            if (!isfinite(d)) {
                enc_err(e, "cannot encode %s", isnan(d) ? "NaN" : "infinity");
                return -EINVAL;
            }
            v = json_real((double)d);
        }
        break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);

        if (check_string(e, s, n, "string") < 0)
            return -EINVAL;
        v = json_stringn_nocheck(s, n);
        break;
    }
    case LUA_TLIGHTUSERDATA:
        if (luajson_is_null(L, idx)) {
            v = json_null();
            break;
        }
        /* fall through */
    default:
        enc_err(e, "cannot encode %s", lua_typename(L, lua_type(L, idx)));
        return -EINVAL;
    }
    if (!v) {
        enc_err(e, "out of memory");
        return -ENOMEM;
    }
    *out = v;
    return 0;
}

int luajson_from_lua(lua_State *L, int idx, unsigned max_depth, json_t **out, char *err,
                     size_t errlen)
{
    struct enc e;

    e.L = L;
    e.max_depth = max_depth;
    e.err = err;
    e.errlen = errlen;
    e.pathlen = 0;
    e.path[0] = '\0';
    set_err(err, errlen, "%s", "");
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!lua_checkstack(L, 2)) { /* lua_absindex and the first frame need nothing more */
        set_err(err, errlen, "out of memory (Lua stack)");
        return -ENOMEM;
    }
    return to_json(&e, lua_absindex(L, idx), 0, out);
}

/* ---- text ----------------------------------------------------------------------------- */

int luajson_decode(lua_State *L, const char *text, size_t len, unsigned max_depth, char *err,
                   size_t errlen)
{
    json_error_t jerr;
    json_t *v;
    int rc;

    set_err(err, errlen, "%s", "");
    if (!text) {
        set_err(err, errlen, "no input");
        return -EINVAL;
    }
    v = json_loadb(text, len, DECODE_FLAGS, &jerr);
    if (!v) {
        if (json_error_code(&jerr) == json_error_out_of_memory) {
            set_err(err, errlen, "out of memory");
            return -ENOMEM;
        }
        set_err(err, errlen, "%s at byte %d", jerr.text, jerr.position);
        return -EINVAL;
    }
    rc = luajson_push_protected(L, v, max_depth);
    json_decref(v);
    if (rc == -E2BIG)
        set_err(err, errlen, "nesting deeper than %u levels", max_depth);
    else if (rc == -ENOMEM)
        set_err(err, errlen, "out of memory");
    else if (rc < 0)
        set_err(err, errlen, "Lua error while building the value");
    return rc;
}

struct outbuf {
    char *p;
    size_t len, cap;
};

static int outbuf_write(const char *s, size_t n, void *data)
{
    struct outbuf *b = data;

    if (!b->p || n >= b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;

        while (n >= cap - b->len) {
            if (cap > SIZE_MAX / 2)
                return -1;
            cap *= 2;
        }
        p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

char *luajson_encode(lua_State *L, int idx, unsigned max_depth, size_t *len, char *err,
                     size_t errlen)
{
    struct outbuf b = {NULL, 0, 0};
    json_t *v;

    if (luajson_from_lua(L, idx, max_depth, &v, err, errlen) < 0)
        return NULL;
    /* jansson has its own allocator hooks; our own buffer lets the caller use plain free(). */
    if (json_dump_callback(v, outbuf_write, &b, ENCODE_FLAGS) < 0 ||
        (!b.p && outbuf_write("", 0, &b) < 0)) {
        json_decref(v);
        free(b.p);
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    json_decref(v);
    if (len)
        *len = b.len;
    return b.p;
}

/* ---- Lua module ----------------------------------------------------------------------- */

struct lstring_args {
    const char *s;
    size_t len;
};

static int push_lstring_trampoline(lua_State *L)
{
    struct lstring_args *a = lua_touserdata(L, 1);

    lua_pushlstring(L, a->s, a->len);
    return 1;
}

static int l_encode(lua_State *L)
{
    char err[256];
    struct lstring_args a;
    char *text;
    int status;

    luaL_checkany(L, 1);
    lua_settop(L, 1);
    text = luajson_encode(L, 1, LUAJSON_MAX_DEPTH, &a.len, err, sizeof err);
    if (!text)
        return luaL_error(L, "json.encode: %s", err);
    /* The text is malloc'd: copy it into Lua under protection so a memory error cannot leak it. */
    a.s = text;
    status = call_protected(L, push_lstring_trampoline, &a);
    free(text);
    if (status == -1)
        return luaL_error(L, "json.encode: out of memory (Lua stack)");
    if (status != LUA_OK)
        return lua_error(L);
    return 1;
}

static int l_decode(lua_State *L)
{
    char err[256];
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    int rc = luajson_decode(L, s, len, LUAJSON_MAX_DEPTH, err, sizeof err);

    if (rc == -ENOMEM) {
        /* Already interned by lua_State creation, so pushing it allocates nothing. */
        lua_pushliteral(L, "not enough memory");
        return lua_error(L);
    }
    if (rc < 0)
        return luaL_error(L, "json.decode: %s", err);
    return 1;
}

int luajson_open(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"encode", l_encode},
        {"decode", l_decode},
        {NULL, NULL},
    };

    luaL_newlib(L, funcs);
    luajson_push_null(L);
    lua_setfield(L, -2, "null");
    luajson_push_array_mt(L);
    lua_setfield(L, -2, "array_mt");
    return 1;
}
