/* fuzz_syncenv.c: differential libFuzzer target for the fast reader of `sync` events
 * (core/syncenv.c) against the general path. Whenever syncenv_read takes an input, jtext_load
 * must accept it too, and every field must be what the general path reads from the tree: the
 * strings, ignoreSelf, responseIndex, and the data text parsing to the same object. Any
 * disagreement aborts. The input is an exact-size heap copy so reads past len are reported.
 * Build: clang -fsanitize=fuzzer,address -Icore core/syncenv.c core/jtext.c core/jtext_load.c
 *        spec/fuzz/fuzz_syncenv.c -ljansson */
#include "syncenv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jtext.h"

#include "../c/json_same.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The string s[0..n) (NULL: absent) is what the tree holds at v (NULL or not a string). */
static int same_field(const char *s, size_t n, const json_t *v)
{
    if (!s)
        return !json_is_string(v);
    return json_is_string(v) && json_string_length(v) == n &&
           memcmp(json_string_value(v), s, n) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = fuzz_copy(data, size);
    if (!in)
        return 0;
    struct syncenv e;
    if (syncenv_read(in, size, &e) == 0) {
        json_t *arr = jtext_load(in, size, NULL);
        json_t *obj = json_array_get(arr, 1);
        if (!json_is_array(arr) || json_array_size(arr) != 2 || !json_is_object(obj) ||
            !same_field("sync", 4, json_array_get(arr, 0)) ||
            !same_field(e.name, e.name_len, json_object_get(obj, "name")) ||
            !same_field(e.receiver, e.receiver_len, json_object_get(obj, "receiver")) ||
            !same_field(e.cb, e.cb_len, json_object_get(obj, "cb")) ||
            e.ignore_self != json_is_true(json_object_get(obj, "ignoreSelf")))
            abort();
        static const char *const known[] = {"name", "data",       "receiver",
                                            "cb",   "ignoreSelf", "responseIndex"};
        size_t nknown = 0;
        for (size_t i = 0; i < 6; i++)
            nknown += json_object_get(obj, known[i]) != NULL;
        if (json_object_size(obj) != nknown)
            abort(); /* any other key takes the general path */
        const json_t *ri = json_object_get(obj, "responseIndex");
        if (!ri != !e.ri || (ri && !json_same(ri, e.ri)))
            abort();
        if (e.data < in || e.data + e.data_len > in + size)
            abort();
        json_t *d = jtext_load(e.data, e.data_len, NULL);
        if (!d || !json_same(d, json_object_get(obj, "data")))
            abort();
        json_decref(d);
        json_decref(arr);
        syncenv_clear(&e);
    } else if (e.name || e.ri || e.data) {
        abort(); /* refused: nothing is left filled in */
    }
    free(in);
    return 0;
}
