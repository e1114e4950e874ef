/* schema.c: the `input` schema language (docs/SCHEMA.md): compile a Lua declaration into a
 * plain C tree; validating jansson values against it is schema_validate.c and printing it as a
 * TypeScript type is schema_ts.c, both of which see the tree through schema_int.h.
 *
 * Compiling reads the declaration with raw access only (lua_next, lua_rawget, lua_rawgeti) and
 * pushes no new string, so its only Lua allocations are stack and call-info growth. It runs
 * inside lua_pcall so that an allocation failure on a capped state becomes "out of memory"
 * rather than a longjmp through the caller. Every node is attached to the tree before its
 * children are compiled, so freeing the root after a failure frees everything. Fields are
 * compiled in name order and the smallest unknown key is the one reported, so messages do not
 * depend on Lua's (seeded) hash order. */
#include "schema.h"
#include "schema_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    unsigned bits;
} type_names[] = {
    {"string", T_STRING},   {"number", T_NUMBER}, {"integer", T_INTEGER},
    {"boolean", T_BOOLEAN}, {"null", T_NULL},     {"any", T_ANY},
    {"object", T_OBJECT},   {"array", T_ARRAY},   {"table", T_OBJECT | T_ARRAY},
};

/* ---- helpers shared by compile and validate ---- */

int schema_keycmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    return c ? c : alen < blen ? -1 : alen > blen;
}

int schema_fieldcmp(const void *a, const void *b)
{
    const struct field *fa = a, *fb = b;

    return schema_keycmp(fa->name, fa->len, fb->name, fb->len);
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned c = s[i], cp;
        unsigned need = c < 0x80   ? 0
                        : c < 0xC2 ? 9
                        : c < 0xE0 ? 1
                        : c < 0xF0 ? 2
                        : c < 0xF5 ? 3
                                   : 9;

        if (need == 9 || len - i <= need)
            return 0;
        cp = need ? c & (0x3Fu >> need) : c;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        i += need + 1;
    }
    return 1;
}

/* An ASCII identifier, printed unquoted as a TypeScript property name. */
int schema_is_identifier(const char *s)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$0123456789";

    return *s && !(*s >= '0' && *s <= '9') && s[strspn(s, chars)] == '\0';
}

static void node_free(struct node *n)
{
    if (!n)
        return;
    node_free(n->items);
    for (size_t i = 0; i < n->nfields; i++) {
        free(n->fields[i].name);
        node_free(n->fields[i].spec);
    }
    free(n->fields);
    for (size_t i = 0; i < n->nenums; i++)
        free(n->enums[i].str);
    free(n->enums);
    free(n->description);
    free(n);
}

void schema_free(struct schema *s)
{
    if (s)
        node_free(s->root);
    free(s);
}

/* ---- compile ---- */

struct cctx {
    lua_State *L;
    struct node *root;
    char *err;
    size_t errlen;
    int failed;     /* err holds the (first) message */
    unsigned nodes; /* specs so far, against SCHEMA_MAX_NODES */
    size_t plen;
    char path[256]; /* "input.meta.fields.color", truncated to fit */
};

static size_t cpath_push(struct cctx *c, const char *fmt, const char *arg)
{
    size_t old = c->plen;
    int n = snprintf(c->path + old, sizeof c->path - old, fmt, arg);

    if (n > 0)
        c->plen = old + (size_t)n < sizeof c->path ? old + (size_t)n : sizeof c->path - 1;
    return old;
}

static void cpath_pop(struct cctx *c, size_t old)
{
    c->plen = old;
    c->path[old] = '\0';
}

/* Record "<path><sub>: <message>" unless an error is already recorded; returns -1. */
static int fail(struct cctx *c, const char *sub, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (c->failed++ || !c->err || !c->errlen)
        return -1;
    n = snprintf(c->err, c->errlen, "%s%s: ", c->path, sub);
    if (n >= 0 && (size_t)n < c->errlen) {
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int oom(struct cctx *c)
{
    if (!c->failed++ && c->err && c->errlen)
        snprintf(c->err, c->errlen, "out of memory");
    return -1;
}

static const char *type_of(lua_State *L, int idx)
{
    return lua_typename(L, lua_type(L, idx));
}

/* UTF-8 text of at most SCHEMA_MAX_TEXT bytes, copied (NUL-terminated) into *out. */
static int copy_text(struct cctx *c, int idx, const char *sub, char **out, size_t *len)
{
    const char *s = lua_tolstring(c->L, idx, len);

    if (*len > SCHEMA_MAX_TEXT || !utf8_valid((const unsigned char *)s, *len))
        return fail(c, sub, "must be UTF-8 of at most %d bytes", SCHEMA_MAX_TEXT);
    if (!(*out = malloc(*len + 1)))
        return oom(c);
    memcpy(*out, s, *len + 1);
    return 0;
}

/* "string", "integer?", "string|null": a union of type names, then an optional '?'. */
static int parse_type(struct cctx *c, const char *sub, const char *s, size_t len, struct node *n)
{
    size_t start = 0, whole = len > 64 ? 64 : len;

    if (len && s[len - 1] == '?')
        n->qmark = 1, len--;
    do {
        size_t end = start;
        unsigned bits = 0;

        while (end < len && s[end] != '|')
            end++;
        for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
            if (!schema_keycmp(s + start, end - start, type_names[i].name,
                               strlen(type_names[i].name)))
                bits = type_names[i].bits;
        if (!bits)
            return fail(c, sub, "unknown type '%.*s'", (int)(end - start > 64 ? 64 : end - start),
                        s + start);
        if ((bits & T_ANY) && (start > 0 || end < len))
            return fail(c, sub, "'any' cannot be part of a union");
        if (n->types & bits)
            return fail(c, sub, "'%.*s' repeats a type in '%.*s'", (int)(end - start), s + start,
                        (int)whole, s);
        n->types |= bits;
        start = end + 1;
    } while (start <= len);
    n->optional = n->qmark;
    n->open = (n->types & T_OBJECT) != 0; /* a bare "object" is any object */
    return 0;
}

static int compile_spec(struct cctx *c, int v, struct node *n, int depth, int is_field);

/* t: a table of field name -> spec; its specs sit at `depth`. Compiled in name order. */
static int compile_fields(struct cctx *c, int t, struct node *n, int depth)
{
    lua_State *L = c->L;
    int base = lua_gettop(L);
    size_t count = 0;

    n->has_fields = 1;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return fail(c, "", "field names must be strings, got %s", type_of(L, -1));
        if (++count > SCHEMA_MAX_FIELDS)
            return fail(c, "", "more than %d fields", SCHEMA_MAX_FIELDS);
        if (!lua_checkstack(L, 4))
            return oom(c);
        lua_pushvalue(L, -1); /* keep a copy below the iteration key */
    }
    if (!(n->fields = calloc(count ? count : 1, sizeof *n->fields)))
        return oom(c);
    n->nfields = count;
    for (size_t i = 0; i < count; i++) {
        struct field *f = &n->fields[i];
        const char *name = lua_tolstring(L, base + 1 + (int)i, &f->len);

        if (!(f->name = malloc(f->len + 1)))
            return oom(c);
        memcpy(f->name, name, f->len + 1);
        f->slot = base + 1 + (int)i;
    }
    qsort(n->fields, count, sizeof *n->fields, schema_fieldcmp);
    for (size_t i = 0; i < count; i++) {
        struct field *f = &n->fields[i];
        int bad = !f->len || f->len > SCHEMA_MAX_NAME ||
                  !utf8_valid((const unsigned char *)f->name, f->len);
        size_t old;

        for (size_t k = 0; k < f->len && !bad; k++)
            bad = (unsigned char)f->name[k] < 0x20 || f->name[k] == 0x7f;
        if (bad)
            return fail(c, "",
                        "field names must be 1 to %d bytes of UTF-8 without control "
                        "characters",
                        SCHEMA_MAX_NAME);
        if (!(f->spec = calloc(1, sizeof *f->spec)))
            return oom(c);
        old = cpath_push(c, schema_is_identifier(f->name) ? ".%.64s" : "[\"%.64s\"]", f->name);
        lua_pushvalue(L, f->slot);
        lua_rawget(L, t);
        if (compile_spec(c, lua_gettop(L), f->spec, depth, 1))
            return -1;
        lua_pop(L, 1);
        cpath_pop(c, old);
    }
    lua_settop(L, base);
    return 0;
}

static int enum_equal(const struct enumval *a, const struct enumval *b)
{
    if (a->kind == EV_STR || b->kind == EV_STR)
        return a->kind == b->kind && !schema_keycmp(a->str, a->len, b->str, b->len);
    if (a->kind == EV_INT && b->kind == EV_INT)
        return a->i == b->i;
    return (a->kind == EV_INT ? (double)a->i : a->d) == (b->kind == EV_INT ? (double)b->i : b->d);
}

static int compile_enum(struct cctx *c, int t, struct node *n)
{
    lua_State *L = c->L;
    lua_Integer maxk = 0;
    size_t count = 0;
    int bad = 0;

    if (lua_type(L, t) != LUA_TTABLE)
        return fail(c, "", "must be a list of strings and numbers, got %s", type_of(L, t));
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_Integer k = lua_isinteger(L, -2) ? lua_tointeger(L, -2) : 0;

        lua_pop(L, 1);
        bad |= k < 1 || k > SCHEMA_MAX_ENUM;
        maxk = k > maxk ? k : maxk;
        count++;
    }
    if (count == 0)
        return fail(c, "", "must not be empty");
    if (count > SCHEMA_MAX_ENUM)
        return fail(c, "", "more than %d values", SCHEMA_MAX_ENUM);
    if (bad || (size_t)maxk != count)
        return fail(c, "", "must be a list (keys 1..n)");
    if (!(n->enums = calloc(count, sizeof *n->enums)))
        return oom(c);
    n->nenums = count;
    for (size_t i = 0; i < count; i++) {
        struct enumval *e = &n->enums[i];
        char sub[32];
        int t1 = lua_rawgeti(L, t, (lua_Integer)i + 1);

        snprintf(sub, sizeof sub, "[%zu]", i + 1);
        if (t1 == LUA_TSTRING) {
            e->kind = EV_STR;
            if (copy_text(c, -1, sub, &e->str, &e->len))
                return -1;
        } else if (t1 == LUA_TNUMBER && lua_isinteger(L, -1)) {
            e->kind = EV_INT;
            e->i = (long long)lua_tointeger(L, -1);
        } else if (t1 == LUA_TNUMBER && isfinite(lua_tonumber(L, -1))) {
            e->kind = EV_REAL;
            e->d = (double)lua_tonumber(L, -1);
        } else {
            return fail(c, sub, "values must be strings or finite numbers, got %s",
                        t1 == LUA_TNUMBER ? "a non-finite number" : type_of(L, -1));
        }
        lua_pop(L, 1);
        for (size_t k = 0; k < i; k++)
            if (enum_equal(&n->enums[k], e))
                return fail(c, sub, "duplicate value");
    }
    return 0;
}

enum { K_TYPE, K_OPTIONAL, K_MIN, K_MAX, K_ENUM, K_ITEMS, K_FIELDS, K_OPEN, K_DESC, K_COUNT };
static const char *const spec_keys[K_COUNT] = {
    ".type", ".optional", ".min", ".max", ".enum", ".items", ".fields", ".open", ".description"};

/* min or max: a finite number; a length must be whole and >= 0. */
static int read_bound(struct cctx *c, int idx, int k, int length, double *out)
{
    if (lua_type(c->L, idx) != LUA_TNUMBER)
        return fail(c, spec_keys[k], "must be a number, got %s", type_of(c->L, idx));
    *out = lua_isinteger(c->L, idx) ? (double)lua_tointeger(c->L, idx) : lua_tonumber(c->L, idx);
    if (!isfinite(*out))
        return fail(c, spec_keys[k], "must be a finite number");
    if (length && (*out < 0 || *out != floor(*out)))
        return fail(c, spec_keys[k], "must be a whole number >= 0 (a length)");
    return 0;
}

static int read_bool(struct cctx *c, int idx, int k, unsigned char *out)
{
    if (lua_type(c->L, idx) != LUA_TBOOLEAN)
        return fail(c, spec_keys[k], "must be a boolean, got %s", type_of(c->L, idx));
    *out = (unsigned char)lua_toboolean(c->L, idx);
    return 0;
}

/* The spec keys of table v sit in slots base+1+K_*. A table without `type` or `enum` is the
 * object shorthand { name = spec, ... }. */
static int compile_table(struct cctx *c, int v, struct node *n, int depth)
{
    lua_State *L = c->L;
    int base = lua_gettop(L), nonstring = 0;
    const char *unknown = NULL, *s;
    size_t ulen = 0, len, old;
    unsigned kind;

#define SLOT(k) (base + 1 + (k))
#define HAS(k) (!lua_isnil(L, SLOT(k)))
    for (int k = 0; k < K_COUNT; k++)
        lua_pushnil(L);
    lua_pushnil(L);
    while (lua_next(L, v)) {
        int k = -1;

        s = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
        for (int i = 0; s && i < K_COUNT && k < 0; i++)
            if (!schema_keycmp(s, len, spec_keys[i] + 1, strlen(spec_keys[i] + 1)))
                k = i;
        if (k >= 0)
            lua_copy(L, -1, SLOT(k));
        else if (!s)
            nonstring = 1;
        else if (!unknown || schema_keycmp(s, len, unknown, ulen) < 0)
            unknown = s, ulen = len;
        lua_pop(L, 1);
    }
    if (!HAS(K_TYPE) && !HAS(K_ENUM)) { /* { name = spec, ... }: a closed object */
        lua_settop(L, base);
        n->types = T_OBJECT;
        return compile_fields(c, v, n, depth + 1);
    }
    if (nonstring)
        return fail(c, "", "spec keys must be strings");
    if (unknown)
        return fail(c, "", "unknown spec key '%.*s'", (int)(ulen > 64 ? 64 : ulen), unknown);
    if (HAS(K_ENUM)) {
        static const int excluded[] = {K_TYPE, K_MIN, K_MAX, K_ITEMS, K_FIELDS, K_OPEN};

        for (size_t i = 0; i < sizeof excluded / sizeof excluded[0]; i++)
            if (HAS(excluded[i]))
                return fail(c, "", "'%s' cannot be combined with 'enum'",
                            spec_keys[excluded[i]] + 1);
        old = cpath_push(c, "%s", ".enum");
        if (compile_enum(c, SLOT(K_ENUM), n))
            return -1;
        cpath_pop(c, old);
    } else if (lua_type(L, SLOT(K_TYPE)) != LUA_TSTRING) {
        return fail(c, ".type", "must be a string, got %s", type_of(L, SLOT(K_TYPE)));
    } else {
        s = lua_tolstring(L, SLOT(K_TYPE), &len);
        if (parse_type(c, ".type", s, len, n))
            return -1;
    }
    if (HAS(K_OPTIONAL)) {
        if (read_bool(c, SLOT(K_OPTIONAL), K_OPTIONAL, &n->optional))
            return -1;
        if (n->qmark && !n->optional)
            return fail(c, "", "optional = false conflicts with the '?' suffix");
    }
    kind = n->types & ~(unsigned)T_NULL;
    if (HAS(K_MIN) || HAS(K_MAX)) {
        int length = kind == T_STRING || kind == T_ARRAY;

        if (!length && (!kind || (kind & ~(unsigned)(T_NUMBER | T_INTEGER))))
            return fail(c, "",
                        "min and max need one string, number, integer or array type "
                        "(or it|null)");
        if ((HAS(K_MIN) && read_bound(c, SLOT(K_MIN), K_MIN, length, &n->min)) ||
            (HAS(K_MAX) && read_bound(c, SLOT(K_MAX), K_MAX, length, &n->max)))
            return -1;
        n->has_min = HAS(K_MIN);
        n->has_max = HAS(K_MAX);
        if (n->has_min && n->has_max && n->min > n->max)
            return fail(c, "", "min (%g) is greater than max (%g)", n->min, n->max);
    }
    if (HAS(K_ITEMS)) {
        if (kind != T_ARRAY)
            return fail(c, "", "'items' needs type 'array' (or 'array|null')");
        if (!(n->items = calloc(1, sizeof *n->items)))
            return oom(c);
        old = cpath_push(c, "%s", ".items");
        if (compile_spec(c, SLOT(K_ITEMS), n->items, depth + 1, 0))
            return -1;
        cpath_pop(c, old);
    }
    if ((HAS(K_FIELDS) || HAS(K_OPEN)) && kind != T_OBJECT)
        return fail(c, "", "'%s' needs type 'object' (or 'object|null')",
                    HAS(K_FIELDS) ? "fields" : "open");
    if (HAS(K_FIELDS)) {
        if (lua_type(L, SLOT(K_FIELDS)) != LUA_TTABLE)
            return fail(c, ".fields", "must be a table, got %s", type_of(L, SLOT(K_FIELDS)));
        old = cpath_push(c, "%s", ".fields");
        if (compile_fields(c, SLOT(K_FIELDS), n, depth + 1))
            return -1;
        cpath_pop(c, old);
        n->open = 0; /* declared fields: closed unless open = true */
    }
    if (HAS(K_OPEN) && read_bool(c, SLOT(K_OPEN), K_OPEN, &n->open))
        return -1;
    if (HAS(K_DESC)) {
        if (lua_type(L, SLOT(K_DESC)) != LUA_TSTRING)
            return fail(c, ".description", "must be a string, got %s", type_of(L, SLOT(K_DESC)));
        if (copy_text(c, SLOT(K_DESC), ".description", &n->description, &len))
            return -1;
        if (strlen(n->description) != len)
            return fail(c, ".description", "must not contain NUL");
    }
    return 0;
#undef SLOT
#undef HAS
}

/* The spec at stack index v; is_field: an object field (may be optional), not array items. */
static int compile_spec(struct cctx *c, int v, struct node *n, int depth, int is_field)
{
    lua_State *L = c->L;
    int top = lua_gettop(L), t = lua_type(L, v), r;
    size_t len, count = 0;

    if (depth > SCHEMA_MAX_DEPTH)
        return fail(c, "", "nested deeper than %d levels", SCHEMA_MAX_DEPTH);
    if (++c->nodes > SCHEMA_MAX_NODES)
        return fail(c, "", "more than %d specs in one schema", SCHEMA_MAX_NODES);
    if (!lua_checkstack(L, K_COUNT + 8))
        return oom(c);
    if (t == LUA_TSTRING) {
        const char *s = lua_tolstring(L, v, &len);

        r = parse_type(c, "", s, len, n);
    } else if (t != LUA_TTABLE) {
        r = fail(c, "", "expected a type name or a spec table, got %s", lua_typename(L, t));
    } else if (lua_rawgeti(L, v, 1) != LUA_TNIL) { /* { spec }: an array of spec */
        lua_pushnil(L);
        while (lua_next(L, v))
            lua_pop(L, 1), count++;
        n->types = T_ARRAY;
        if (count != 1)
            r = fail(c, "", "an array shorthand { spec } takes one element and no other keys");
        else if (!(n->items = calloc(1, sizeof *n->items)))
            r = oom(c);
        else {
            size_t old = cpath_push(c, "%s", "[1]");

            r = compile_spec(c, top + 1, n->items, depth + 1, 0);
            cpath_pop(c, old);
        }
    } else {
        lua_pop(L, 1);
        r = compile_table(c, v, n, depth);
    }
    lua_settop(L, top);
    if (!r && n->optional && !is_field)
        r = fail(c, "", "'?' and optional are only allowed on object fields");
    return r;
}

static int compile_main(lua_State *L)
{
    struct cctx *c = lua_touserdata(L, 2);

    c->L = L;
    compile_fields(c, 1, c->root, 1);
    return 0;
}

struct schema *schema_compile(lua_State *L, int idx, char *err, size_t errlen)
{
    struct cctx c;
    struct schema *s;
    int top = lua_gettop(L), st;

    memset(&c, 0, sizeof c);
    c.err = err;
    c.errlen = errlen;
    c.plen = (size_t)snprintf(c.path, sizeof c.path, "input");
    if (err && errlen)
        err[0] = '\0';
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) != LUA_TTABLE) {
        fail(&c, "", "must be a table, got %s", type_of(L, idx));
        return NULL;
    }
    if (!(s = calloc(1, sizeof *s)) || !(s->root = calloc(1, sizeof *s->root)) ||
        !lua_checkstack(L, 3)) {
        schema_free(s);
        oom(&c);
        return NULL;
    }
    s->root->types = T_OBJECT;
    c.root = s->root;
    lua_pushcfunction(L, compile_main);
    lua_pushvalue(L, idx);
    lua_pushlightuserdata(L, &c);
    st = lua_pcall(L, 2, 0, 0);
    lua_settop(L, top);
    if (st != LUA_OK && err && errlen)
        snprintf(err, errlen, "%s", st == LUA_ERRMEM ? "out of memory" : "internal Lua error");
    if (st != LUA_OK || c.failed) {
        schema_free(s);
        return NULL;
    }
    return s;
}
