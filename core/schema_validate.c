/* schema_validate.c: the validator of the schema module: schema_validate checks a jansson value
 * against a compiled tree (read through schema_int.h) and reports the first failure as a field
 * path and a stable reason code. The failure reported does not depend on jansson's key order:
 * declared fields in name order, then the smallest failing undeclared key, array items in index
 * order. Recursion follows the data and stops at SCHEMA_MAX_DATA_DEPTH containers; the path is
 * built in the caller's buffer, so nothing is allocated. */
#include "schema.h"
#include "schema_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Keys refused in data wherever the schema does not declare them (docs/SCHEMA.md). */
static int is_reserved(const char *key, size_t len)
{
    return !schema_keycmp(key, len, "__proto__", 9) ||
           !schema_keycmp(key, len, "constructor", 11) || !schema_keycmp(key, len, "prototype", 9);
}

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

    return n && n->nfields && bsearch(&k, n->fields, n->nfields, sizeof k, schema_fieldcmp);
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
            (!best || schema_keycmp(key, len, best, bestlen) < 0))
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
            if (!schema_keycmp(json_string_value(j), json_string_length(j), e->str, e->len))
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
