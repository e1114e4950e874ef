/* fuzz_jtext.c: differential libFuzzer target, jtext against jansson 2.14. For any input,
 * jtext_load and json_loadb(…, JSON_REJECT_DUPLICATES) must both refuse it or both accept it;
 * when they accept, the values must be json_equal with the same integer/real kinds and the same
 * key order, and jtext_dump must equal json_dumps(…, JSON_COMPACT) byte for byte. Any
 * disagreement aborts. The input is an exact-size heap copy so reads past len are reported.
 * Build: clang -fsanitize=fuzzer,address -Icore core/jtext.c spec/fuzz/fuzz_jtext.c -ljansson */
#include "jtext.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Type for type, bit for bit and in iteration order (json_equal lets 0.0 equal -0.0). */
static int same(const json_t *a, const json_t *b)
{
    if (json_typeof(a) != json_typeof(b))
        return 0;
    switch (json_typeof(a)) {
    case JSON_OBJECT: {
        void *ia = json_object_iter((json_t *)a), *ib = json_object_iter((json_t *)b);
        for (; ia && ib; ia = json_object_iter_next((json_t *)a, ia),
                         ib = json_object_iter_next((json_t *)b, ib)) {
            size_t la = json_object_iter_key_len(ia);
            if (la != json_object_iter_key_len(ib) ||
                memcmp(json_object_iter_key(ia), json_object_iter_key(ib), la) ||
                !same(json_object_iter_value(ia), json_object_iter_value(ib)))
                return 0;
        }
        return !ia && !ib;
    }
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!same(json_array_get(a, i), json_array_get(b, i)))
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    if (size)
        memcpy(in, data, size);
    json_error_t je, te;
    json_t *a = json_loadb(in, size, JSON_REJECT_DUPLICATES, &je);
    json_t *b = jtext_load(in, size, &te);
    if (!a != !b)
        abort();
    if (a) {
        if (!json_equal(a, b) || !same(a, b))
            abort();
        size_t n;
        char *da = json_dumps(a, JSON_COMPACT), *db = jtext_dump(b, &n);
        if (!da || !db || n != strlen(da) || strcmp(da, db) != 0)
            abort();
        free(da);
        free(db);
    } else if (!te.text[0]) {
        abort();
    }
    json_decref(a);
    json_decref(b);
    free(in);
    return 0;
}
