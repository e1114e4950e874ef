/* json_same.h: strict equality of two jansson values for the jtext tests (spec/c/test_jtext.c)
 * and its differential fuzz target (spec/fuzz/fuzz_jtext.c), and a loader built on jtext's
 * token reader to hold it to jtext_load. Header-only, test code. */
#ifndef LUCKYSYNC_SPEC_JSON_SAME_H
#define LUCKYSYNC_SPEC_JSON_SAME_H

#include <jansson.h>
#include <string.h>

#include "jtext.h"

/* Same value in every observable way: json_equal would let 0.0 equal -0.0 and ignores order. */
static inline int json_same(const json_t *a, const json_t *b)
{
    if (json_typeof(a) != json_typeof(b))
        return 0;
    switch (json_typeof(a)) {
    case JSON_OBJECT: {
        void *ia = json_object_iter((json_t *)a), *ib = json_object_iter((json_t *)b);
        if (json_object_size(a) != json_object_size(b))
            return 0;
        for (; ia && ib; ia = json_object_iter_next((json_t *)a, ia),
                         ib = json_object_iter_next((json_t *)b, ib)) {
            size_t la = json_object_iter_key_len(ia), lb = json_object_iter_key_len(ib);
            if (la != lb || memcmp(json_object_iter_key(ia), json_object_iter_key(ib), la) ||
                !json_same(json_object_iter_value(ia), json_object_iter_value(ib)))
                return 0;
        }
        return !ia && !ib;
    }
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!json_same(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
    case JSON_INTEGER:
        return json_integer_value(a) == json_integer_value(b);
    case JSON_REAL: {
        double x = json_real_value(a), y = json_real_value(b);
        return !memcmp(&x, &y, sizeof x);
    }
    default:
        return 1;
    }
}

/* The value jtext's token reader describes, built with jansson's API and refusing duplicate
 * keys as jtext_load does; NULL where it reports an error. Tokens are also checked for
 * consistency: [start, end) lies inside the text, and a string's escaped flag says whether its
 * text points into the input. */
static inline json_t *reader_load(const char *text, size_t len)
{
    struct jtext_reader r;
    struct jtext_token t;
    json_t *stack[JTEXT_MAX_DEPTH + 1], *root = NULL, *v;
    char key[4096];
    size_t depth = 0, klen = 0;
    int bad = 0;
    jtext_reader_init(&r, text, len);
    while (!bad && jtext_next(&r, &t) > JTEXT_END) {
        if (t.start > t.end || t.end > len) {
            bad = 1;
            break;
        }
        if (t.type == JTEXT_KEY || t.type == JTEXT_STRING) {
            int inside = t.str >= text && t.str + t.len <= text + len;
            if (inside == t.escaped)
                bad = 1;
        }
        switch (t.type) {
        case JTEXT_CLOSE:
            depth--;
            continue;
        case JTEXT_KEY:
            if (t.len >= sizeof key) {
                bad = 1;
                continue;
            }
            memcpy(key, t.str, t.len);
            key[t.len] = '\0';
            klen = t.len;
            continue;
        case JTEXT_OBJECT:
            v = json_object();
            break;
        case JTEXT_ARRAY:
            v = json_array();
            break;
        case JTEXT_STRING:
            v = json_stringn(t.str, t.len);
            break;
        case JTEXT_INTEGER:
            v = json_integer(t.i);
            break;
        case JTEXT_REAL:
            v = json_real(t.d);
            break;
        case JTEXT_TRUE:
            v = json_true();
            break;
        case JTEXT_FALSE:
            v = json_false();
            break;
        default:
            v = json_null();
            break;
        }
        if (!depth) {
            root = v;
        } else if (json_is_array(stack[depth - 1])) {
            json_array_append_new(stack[depth - 1], v);
        } else {
            if (json_object_getn(stack[depth - 1], key, klen))
                bad = 1;
            json_object_setn_new(stack[depth - 1], key, klen, v);
        }
        if (t.type == JTEXT_OBJECT || t.type == JTEXT_ARRAY)
            stack[depth++] = v;
    }
    if (t.type == JTEXT_ERROR || depth)
        bad = 1;
    jtext_reader_close(&r);
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return root;
}

#endif
