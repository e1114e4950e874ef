/* schema.c: the `input` schema language (docs/SCHEMA.md): compile a Lua declaration into a
 * plain C tree, validate jansson values against it, print it as a TypeScript type.
 *
 * Compiling reads the declaration with raw access only (lua_next, lua_rawget, lua_rawgeti) and
 * pushes no new string, so its only Lua allocations are stack and call-info growth. It runs
 * inside lua_pcall so that an allocation failure on a capped state becomes "out of memory"
 * rather than a longjmp through the caller. Every node is attached to the tree before its
 * children are compiled, so freeing the root after a failure frees everything. Fields are
 * compiled in name order and the smallest unknown key is the one reported, so messages do not
 * depend on Lua's (seeded) hash order. */
#include "schema.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_STRING = 1, T_NUMBER = 2, T_INTEGER = 4, T_BOOLEAN = 8, T_NULL = 16, T_OBJECT = 32 };
enum { T_ARRAY = 64, T_ANY = 128 };

static const struct {
    const char *name;
    unsigned bits;
} type_names[] = {
    {"string", T_STRING},   {"number", T_NUMBER}, {"integer", T_INTEGER},
    {"boolean", T_BOOLEAN}, {"null", T_NULL},     {"any", T_ANY},
    {"object", T_OBJECT},   {"array", T_ARRAY},   {"table", T_OBJECT | T_ARRAY},
};

enum { EV_STR, EV_INT, EV_REAL };

struct enumval {
    int kind;
    char *str; /* EV_STR: valid UTF-8, may hold NUL bytes */
    size_t len;
    long long i; /* EV_INT */
    double d;    /* EV_REAL */
};

struct field {
    char *name; /* no NUL bytes (checked), so usable with json_object_get */
    size_t len;
    struct node *spec;
    int slot; /* compile time only: stack slot of the key */
};

struct node {
    unsigned types; /* T_* bits; 0 for an enum */
    unsigned char qmark, optional, open, has_fields, has_min, has_max;
    double min, max;      /* code points, items, or value (see has_min/has_max) */
    struct node *items;   /* array element spec; NULL = any value */
    struct field *fields; /* sorted by name (bytewise) */
    size_t nfields;
    struct enumval *enums;
    size_t nenums;
    char *description;
};

struct schema {
    struct node *root; /* always an object with declared fields, closed */
};

/* ---- helpers shared by compile and validate ---- */

static int keycmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    return c ? c : alen < blen ? -1 : alen > blen;
}

static int fieldcmp(const void *a, const void *b)
{
    const struct field *fa = a, *fb = b;

    return keycmp(fa->name, fa->len, fb->name, fb->len);
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

/* Keys refused in data wherever the schema does not declare them (docs/SCHEMA.md). */
static int is_reserved(const char *key, size_t len)
{
    return !keycmp(key, len, "__proto__", 9) || !keycmp(key, len, "constructor", 11) ||
           !keycmp(key, len, "prototype", 9);
}

/* An ASCII identifier, printed unquoted as a TypeScript property name. */
static int is_identifier(const char *s)
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
            if (!keycmp(s + start, end - start, type_names[i].name, strlen(type_names[i].name)))
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
    qsort(n->fields, count, sizeof *n->fields, fieldcmp);
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
        old = cpath_push(c, is_identifier(f->name) ? ".%.64s" : "[\"%.64s\"]", f->name);
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
        return a->kind == b->kind && !keycmp(a->str, a->len, b->str, b->len);
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
            if (!keycmp(s, len, spec_keys[i] + 1, strlen(spec_keys[i] + 1)))
                k = i;
        if (k >= 0)
            lua_copy(L, -1, SLOT(k));
        else if (!s)
            nonstring = 1;
        else if (!unknown || keycmp(s, len, unknown, ulen) < 0)
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

/* ---- validate ---- */

struct vctx {
    char *buf; /* the caller's field buffer: the path of the value being checked */
    size_t cap, len;
    const char *reason;
};

/* Append ".key" ("key" at the top) or, key NULL, "[index]"; returns the length to go back to. */
static size_t vpath_push(struct vctx *v, const char *key, size_t keylen, size_t index)
{
    size_t old = v->len;
    int n;

    if (!v->cap)
        return old;
    if (key)
        n = snprintf(v->buf + old, v->cap - old, "%s%.*s", old ? "." : "",
                     (int)(keylen < v->cap ? keylen : v->cap), key);
    else
        n = snprintf(v->buf + old, v->cap - old, "[%zu]", index);
    v->len = n < 0 ? old : old + (size_t)n < v->cap ? old + (size_t)n : v->cap - 1;
    return old;
}

static void vpath_pop(struct vctx *v, size_t old)
{
    v->len = old;
    if (v->cap)
        v->buf[old] = '\0';
}

static int vfail(struct vctx *v, const char *reason)
{
    v->reason = reason;
    return -1;
}

/* Compare a JSON integer with a double exactly: <0, 0, >0. */
static int cmp_int_dbl(json_int_t i, double d)
{
    double f = floor(d);

    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    if (i != (json_int_t)f)
        return i < (json_int_t)f ? -1 : 1;
    return f < d ? -1 : 0;
}

/* Compare a JSON number with a double exactly. */
static int num_cmp(const json_t *j, double d)
{
    double x = json_real_value(j);

    return json_is_integer(j) ? cmp_int_dbl(json_integer_value(j), d) : (x > d) - (x < d);
}

static int declared(const struct node *n, const char *key, size_t len)
{
    struct field k = {(char *)key, len, NULL, 0};

    return n && n->nfields && bsearch(&k, n->fields, n->nfields, sizeof k, fieldcmp);
}

/* 1 if j, a value taken as is (any, or an object or array without a spec), passes: no
 * container deeper than SCHEMA_MAX_DATA_DEPTH and no reserved key. No path, no ordering. */
static int free_ok(const json_t *j, int depth)
{
    const char *key;
    size_t len;
    json_t *val;

    if (!json_is_object(j) && !json_is_array(j))
        return 1;
    if (depth > SCHEMA_MAX_DATA_DEPTH)
        return 0;
    for (size_t i = 0; i < json_array_size(j); i++)
        if (!free_ok(json_array_get(j, i), depth + 1))
            return 0;
    json_object_keylen_foreach((json_t *)j, key, len, val)
    {
        if (is_reserved(key, len) || !free_ok(val, depth + 1))
            return 0;
    }
    return 1;
}

static int check_free(struct vctx *v, const json_t *j, int depth);

/* The undeclared keys of object j (n NULL: a free-form object): the smallest failing key is
 * reported. free_ok finds the failing keys, so only the reported one is descended into again. */
static int check_extra(struct vctx *v, const struct node *n, const json_t *j, int depth)
{
    int open = n ? n->open : 1;
    const char *best = NULL, *key;
    size_t bestlen = 0, len;
    json_t *val;

    json_object_keylen_foreach((json_t *)j, key, len, val)
    {
        if (declared(n, key, len))
            continue;
        if ((!open || is_reserved(key, len) || !free_ok(val, depth + 1)) &&
            (!best || keycmp(key, len, best, bestlen) < 0))
            best = key, bestlen = len;
    }
    if (!best)
        return 0;
    vpath_push(v, best, bestlen, 0);
    if (!open || is_reserved(best, bestlen))
        return vfail(v, "unknownKey");
    return check_free(v, json_object_getn(j, best, bestlen), depth + 1);
}

/* A value taken as is: free_ok, with the path and reason of the first failure. */
static int check_free(struct vctx *v, const json_t *j, int depth)
{
    if (free_ok(j, depth))
        return 0;
    if (depth > SCHEMA_MAX_DATA_DEPTH)
        return vfail(v, "tooDeep");
    if (json_is_object(j))
        return check_extra(v, NULL, j, depth);
    for (size_t i = 0; i < json_array_size(j); i++) {
        if (!free_ok(json_array_get(j, i), depth + 1)) {
            vpath_push(v, NULL, 0, i);
            return check_free(v, json_array_get(j, i), depth + 1);
        }
    }
    return 0;
}

static int check_enum(struct vctx *v, const struct node *n, const json_t *j)
{
    int kind_seen = 0;

    for (size_t i = 0; i < n->nenums; i++) {
        const struct enumval *e = &n->enums[i];

        if (e->kind == EV_STR && json_is_string(j)) {
            kind_seen = 1;
            if (!keycmp(json_string_value(j), json_string_length(j), e->str, e->len))
                return 0;
        } else if (e->kind != EV_STR && json_is_number(j)) {
            kind_seen = 1;
            if (e->kind == EV_REAL   ? !num_cmp(j, e->d)
                : json_is_integer(j) ? json_integer_value(j) == e->i
                                     : !cmp_int_dbl(e->i, json_real_value(j)))
                return 0;
        }
    }
    return vfail(v, kind_seen ? "enum" : "type");
}

static int check_len(struct vctx *v, const struct node *n, size_t len, const char *lo,
                     const char *hi)
{
    if (n->has_min && (double)len < n->min)
        return vfail(v, lo);
    if (n->has_max && (double)len > n->max)
        return vfail(v, hi);
    return 0;
}

/* depth: the nesting level of j if it is a container (the top-level object is level 1). */
static int check_value(struct vctx *v, const struct node *n, const json_t *j, int depth)
{
    unsigned t = n->types;
    size_t count = 0, old;

    if (n->nenums)
        return check_enum(v, n, j);
    if (t & T_ANY)
        return check_free(v, j, depth);
    switch (json_typeof(j)) {
    case JSON_NULL:
        return t & T_NULL ? 0 : vfail(v, "type");
    case JSON_TRUE:
    case JSON_FALSE:
        return t & T_BOOLEAN ? 0 : vfail(v, "type");
    case JSON_STRING:
        if (!(t & T_STRING))
            return vfail(v, "type");
        for (size_t i = 0; i < json_string_length(j); i++) /* code points: non-continuation bytes */
            count += ((unsigned char)json_string_value(j)[i] & 0xC0) != 0x80;
        return check_len(v, n, count, "tooShort", "tooLong");
    case JSON_INTEGER:
    case JSON_REAL:
        if (!(t & (T_NUMBER | T_INTEGER)))
            return vfail(v, "type");
        if (!(t & T_NUMBER) && json_is_real(j) &&
            (floor(json_real_value(j)) != json_real_value(j) ||
             fabs(json_real_value(j)) > 9007199254740992.0))
            return vfail(v, "notInteger");
        if (n->has_min && num_cmp(j, n->min) < 0)
            return vfail(v, "tooSmall");
        if (n->has_max && num_cmp(j, n->max) > 0)
            return vfail(v, "tooLarge");
        return 0;
    case JSON_OBJECT:
        if (!(t & T_OBJECT))
            return vfail(v, "type");
        if (depth > SCHEMA_MAX_DATA_DEPTH)
            return vfail(v, "tooDeep");
        for (size_t i = 0; i < n->nfields; i++) {
            const struct field *f = &n->fields[i];
            const json_t *fv = json_object_get(j, f->name);

            if (!fv && f->spec->optional)
                continue;
            old = vpath_push(v, f->name, f->len, 0);
            if (!fv)
                return vfail(v, "required");
            if (check_value(v, f->spec, fv, depth + 1))
                return -1;
            vpath_pop(v, old);
        }
        return check_extra(v, n, j, depth);
    case JSON_ARRAY:
        if (!(t & T_ARRAY))
            return vfail(v, "type");
        if (depth > SCHEMA_MAX_DATA_DEPTH)
            return vfail(v, "tooDeep");
        if (check_len(v, n, json_array_size(j), "tooFew", "tooMany"))
            return -1;
        for (size_t i = 0; i < json_array_size(j); i++) {
            const json_t *e = json_array_get(j, i);

            old = vpath_push(v, NULL, 0, i);
            if (n->items ? check_value(v, n->items, e, depth + 1) : check_free(v, e, depth + 1))
                return -1;
            vpath_pop(v, old);
        }
        return 0;
    }
    return vfail(v, "type");
}

int schema_validate(const struct schema *s, const json_t *data, char *field, size_t fieldlen,
                    const char **reason)
{
    struct vctx v = {field, field ? fieldlen : 0, 0, NULL};
    int r;

    if (v.cap)
        field[0] = '\0';
    if (!data || !json_is_object(data))
        r = vfail(&v, "type");
    else
        r = check_value(&v, s->root, data, 1);
    if (reason)
        *reason = r ? v.reason : NULL;
    return r;
}

/* ---- TypeScript ---- */

/* A double-quoted string literal; UTF-8 is kept, control characters and NUL escaped. */
static void ts_quote(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void ts_enumval(FILE *f, const struct enumval *e)
{
    char tmp[40];
    int prec = 15;

    if (e->kind == EV_STR)
        ts_quote(f, e->str, e->len);
    else if (e->kind == EV_INT)
        fprintf(f, "%lld", e->i);
    else { /* the shortest text that reads back as the same double */
        do
            snprintf(tmp, sizeof tmp, "%.*g", prec, e->d);
        while (strtod(tmp, NULL) != e->d && ++prec <= 17);
        fputs(tmp, f);
    }
}

/* Members of the union printed for n (an array's element type needs parentheses if > 1). */
static int ts_members(const struct node *n)
{
    unsigned t = n->types;

    if (n->nenums || (t & T_ANY))
        return n->nenums ? (int)n->nenums : 1;
    return !!(t & T_STRING) + !!(t & (T_NUMBER | T_INTEGER)) + !!(t & T_BOOLEAN) +
           !!(t & T_OBJECT) + !!(t & T_ARRAY) + !!(t & T_NULL);
}

static void ts_type(FILE *f, const struct node *n);

static void ts_object(FILE *f, const struct node *n)
{
    if (!n->nfields && !n->open) {
        fputs("Record<string, never>", f);
        return;
    }
    fputs("{ ", f);
    for (size_t i = 0; i < n->nfields; i++) {
        const struct field *fd = &n->fields[i];
        const char *d = fd->spec->description;

        fputs(i ? "; " : "", f);
        if (d) { /* on one line, and "*\/" cannot end the comment early */
            fputs("/** ", f);
            for (; *d; d++) {
                if (d[0] == '*' && d[1] == '/')
                    fputs("*\\", f);
                else
                    fputc(strchr("\n\r\t", *d) ? ' ' : *d, f);
            }
            fputs(" */ ", f);
        }
        if (is_identifier(fd->name))
            fputs(fd->name, f);
        else
            ts_quote(f, fd->name, fd->len);
        fputs(fd->spec->optional ? "?: " : ": ", f);
        ts_type(f, fd->spec);
    }
    if (n->open)
        fputs(n->nfields ? "; [key: string]: unknown" : "[key: string]: unknown", f);
    fputs(" }", f);
}

static void ts_type(FILE *f, const struct node *n)
{
    const char *sep = "";

    if (n->nenums) {
        for (size_t i = 0; i < n->nenums; i++) {
            fputs(i ? " | " : "", f);
            ts_enumval(f, &n->enums[i]);
        }
        return;
    }
    if (n->types & T_ANY) {
        fputs("unknown", f);
        return;
    }
    if (n->types & T_STRING)
        fputs("string", f), sep = " | ";
    if (n->types & (T_NUMBER | T_INTEGER))
        fprintf(f, "%snumber", sep), sep = " | ";
    if (n->types & T_BOOLEAN)
        fprintf(f, "%sboolean", sep), sep = " | ";
    if (n->types & T_OBJECT)
        fputs(sep, f), ts_object(f, n), sep = " | ";
    if (n->types & T_ARRAY) {
        int paren = n->items && ts_members(n->items) > 1;

        fprintf(f, "%s%s", sep, paren ? "(" : "");
        if (n->items)
            ts_type(f, n->items);
        else
            fputs("unknown", f);
        fputs(paren ? ")[]" : "[]", f);
        sep = " | ";
    }
    if (n->types & T_NULL)
        fprintf(f, "%snull", sep);
}

char *schema_to_typescript(const struct schema *s)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    int bad;

    if (!f)
        return NULL;
    ts_object(f, s->root);
    bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        free(text);
        return NULL;
    }
    return text;
}
