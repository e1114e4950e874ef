/* luajson_text: JSON text straight to and from Lua values, without a json_t in between (see
 * luajson.h): luajson_append_text writes what jtext_dump_append would write for
 * luajson_from_lua's tree; luajson_push_text pushes what luajson_push would push for
 * jtext_load's tree. The hot paths of a sync request: its data in, its result out. */
#include "luajson.h"

#include <errno.h>
#include <string.h>

#include <lauxlib.h>

#include "jtext.h"
#include "luajson_int.h"

/* ---- Lua -> JSON text ------------------------------------------------------------------- */

struct tenc {
    lua_State *L;
    unsigned max_depth;
    struct jtext_buf *b;
    const char *mark; /* a top-level key whose value's byte range is recorded, or NULL */
    size_t mark_len;
    size_t *mark_start, *mark_end;
};

static int to_text(struct tenc *t, int idx, unsigned level);

static int put(struct jtext_buf *b, const char *s, size_t n)
{
    return jtext_buf_append(b, s, n) ? -ENOMEM : 0;
}

/* A string as JSON text: valid UTF-8 without NUL bytes (luajson_check_text's rule; put_string
 * checks the UTF-8 as it copies, with the same rule), else -EINVAL. */
static int put_text_string(struct jtext_buf *b, const char *s, size_t n)
{
    if (memchr(s, 0, n))
        return -EINVAL;
    return jtext_string_append(b, s, n);
}

/* A table without the array marker whose keys are all strings, as an object, in one
 * traversal. Returns 0, a negative errno (the one the shape-first order of luajson_from_lua
 * gives: it visits the members in the same order), or 1 with nothing written when the table
 * is anything else (table_to_text then decides from its shape). A failure inside a member is
 * returned as is only once the shape shows a plain object, so nothing is encoded twice level
 * after level. */
static int object_to_text(struct tenc *t, int idx, unsigned level)
{
    lua_State *L = t->L;
    size_t was = t->b->len;
    int top = lua_gettop(L), first = 1, rc = 0;
    if (luajson_has_array_mt(L, idx))
        return 1;
    if (put(t->b, "{", 1))
        return -ENOMEM;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t kl;
        if (lua_type(L, -2) != LUA_TSTRING) {
            rc = 1;
            break;
        }
        const char *k = lua_tolstring(L, -2, &kl); /* a string key: no conversion happens */
        if (!first)
            rc = put(t->b, ",", 1);
        rc = rc ? rc : put_text_string(t->b, k, kl);
        rc = rc ? rc : put(t->b, ":", 1);
        size_t start = t->b->len;
        rc = rc ? rc : to_text(t, lua_gettop(L), level + 1);
        if (rc)
            break;
        if (level == 0 && t->mark && kl == t->mark_len && memcmp(k, t->mark, kl) == 0) {
            *t->mark_start = start;
            *t->mark_end = t->b->len;
        }
        first = 0;
        lua_pop(L, 1);
    }
    lua_settop(L, top);
    if (!rc && (rc = put(t->b, "}", 1)) == 0)
        return 0;
    t->b->len = was;
    if (rc < 0) {
        struct shape sh;
        luajson_table_shape(L, idx, &sh);
        if (sh.nstr && !sh.nint && !sh.nother)
            return rc;
    }
    return 1;
}

/* The same shapes and the same member order (lua_next's) as table_to_json: plain objects in
 * object_to_text, arrays (integer keys 1..n, or the array marker) here, anything else -EINVAL. */
static int table_to_text(struct tenc *t, int idx, unsigned level)
{
    lua_State *L = t->L;
    struct shape sh;
    int rc;

    if (level >= t->max_depth)
        return -E2BIG;
    if (!lua_checkstack(L, 4))
        return -ENOMEM;
    if ((rc = object_to_text(t, idx, level)) <= 0)
        return rc;
    luajson_table_shape(L, idx, &sh);
    int marked = luajson_has_array_mt(L, idx);
    if (sh.nother || sh.nstr || (lua_Integer)sh.nint != sh.maxint || !(marked || sh.nint > 0))
        return -EINVAL; /* mixed keys, holes, or string keys under the array marker */
    rc = put(t->b, "[", 1);
    for (lua_Integer i = 1; !rc && i <= sh.maxint; i++) {
        if (i > 1)
            rc = put(t->b, ",", 1);
        lua_rawgeti(L, idx, i);
        rc = rc ? rc : to_text(t, lua_gettop(L), level + 1);
        lua_pop(L, 1);
    }
    return rc ? rc : put(t->b, "]", 1);
}

static int to_text(struct tenc *t, int idx, unsigned level)
{
    lua_State *L = t->L;
    switch (lua_type(L, idx)) {
    case LUA_TTABLE:
        return table_to_text(t, idx, level);
    case LUA_TNIL:
        return put(t->b, "null", 4);
    case LUA_TBOOLEAN:
        return lua_toboolean(L, idx) ? put(t->b, "true", 4) : put(t->b, "false", 5);
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return jtext_integer_append(t->b, (long long)lua_tointeger(L, idx));
        return jtext_real_append(t->b, (double)lua_tonumber(L, idx)); /* -EINVAL: NaN, inf */
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return put_text_string(t->b, s, n);
    }
    case LUA_TLIGHTUSERDATA:
        if (luajson_is_null(L, idx))
            return put(t->b, "null", 4);
        return -EINVAL;
    default:
        return -EINVAL;
    }
}

int luajson_append_text(lua_State *L, int idx, unsigned max_depth, struct jtext_buf *b,
                        const char *mark, size_t *mark_start, size_t *mark_end)
{
    struct tenc t = {L, max_depth, b, mark, mark ? strlen(mark) : 0, mark_start, mark_end};
    size_t was = b->len;
    int top = lua_gettop(L);

    if (mark) {
        if (!mark_start || !mark_end)
            return -EINVAL;
        *mark_start = *mark_end = 0;
    }
    if (!lua_checkstack(L, 2))
        return -ENOMEM;
    int rc = to_text(&t, lua_absindex(L, idx), 0);
    lua_settop(L, top);
    if (rc) {
        b->len = was;
        if (b->data)
            b->data[was] = '\0';
        if (mark)
            *mark_start = *mark_end = 0;
    }
    return rc;
}

/* ---- JSON text -> Lua ------------------------------------------------------------------- */

/* Tables start at room for PUSH_HINT members, as a table constructor of a few fields would, and
 * grow like any Lua table past that. The hint changes no value, only Lua's internal layout. */
#define PUSH_HINT 4

static int push_tok(lua_State *L, struct jtext_reader *r, struct jtext_token *t, unsigned level,
                    unsigned max_depth);

static int push_container(lua_State *L, struct jtext_reader *r, struct jtext_token *t, int arr,
                          unsigned level, unsigned max_depth)
{
    if (level >= max_depth)
        return -E2BIG;
    if (!lua_checkstack(L, 4))
        return -ENOMEM;
    lua_createtable(L, arr ? PUSH_HINT : 0, arr ? 0 : PUSH_HINT);
    lua_Integer n = 0;
    for (;;) {
        enum jtext_tok k = jtext_next(r, t);
        if (k == JTEXT_CLOSE)
            break;
        if (!arr) {
            if (k != JTEXT_KEY)
                return -EINVAL;
            lua_pushlstring(L, t->str, t->len);
            jtext_next(r, t);
        }
        int rc = push_tok(L, r, t, level + 1, max_depth);
        if (rc)
            return rc;
        if (arr)
            lua_rawseti(L, -2, ++n);
        else
            lua_rawset(L, -3);
    }
    if (arr) {
        luajson_push_array_mt(L);
        lua_setmetatable(L, -2);
    }
    return 0;
}

static int push_tok(lua_State *L, struct jtext_reader *r, struct jtext_token *t, unsigned level,
                    unsigned max_depth)
{
    switch (t->type) {
    case JTEXT_OBJECT:
    case JTEXT_ARRAY:
        return push_container(L, r, t, t->type == JTEXT_ARRAY, level, max_depth);
    case JTEXT_STRING:
        lua_pushlstring(L, t->str, t->len);
        return 0;
    case JTEXT_INTEGER:
        lua_pushinteger(L, (lua_Integer)t->i);
        return 0;
    case JTEXT_REAL:
        lua_pushnumber(L, (lua_Number)t->d);
        return 0;
    case JTEXT_TRUE:
    case JTEXT_FALSE:
        lua_pushboolean(L, t->type == JTEXT_TRUE);
        return 0;
    case JTEXT_NULL:
        luajson_push_null(L);
        return 0;
    default:
        return -EINVAL;
    }
}

int luajson_push_text(lua_State *L, const char *text, size_t len, unsigned max_depth)
{
    struct jtext_reader r;
    struct jtext_token t;
    int top = lua_gettop(L);
    jtext_reader_init(&r, text, len);
    if (len > sizeof r.val_inl && memchr(text, '\\', len)) {
        /* Long escaped strings decode into a Lua-owned buffer, so a memory error raised while
         * building the tables leaks nothing. */
        char *sc = lua_newuserdatauv(L, 2 * len, 0);
        jtext_reader_scratch(&r, sc, len, sc + len, len);
    }
    jtext_next(&r, &t);
    int rc = push_tok(L, &r, &t, 0, max_depth);
    if (!rc && jtext_next(&r, &t) != JTEXT_END)
        rc = -EINVAL;
    jtext_reader_close(&r);
    if (rc)
        lua_settop(L, top);
    else if (lua_gettop(L) == top + 2)
        lua_remove(L, top + 1); /* the scratch buffer */
    return rc;
}
