/* fuzz_jtext.c: differential libFuzzer target, jtext against jansson 2.14. For any input,
 * jtext_load and json_loadb(…, JSON_REJECT_DUPLICATES) must both refuse it or both accept it;
 * when they accept, the values must be json_equal with the same integer/real kinds and the same
 * key order, and jtext_dump must equal json_dumps(…, JSON_COMPACT) byte for byte. The token
 * reader (jtext_next), rebuilt into a value, must agree with jtext_load. Any disagreement
 * aborts. The input is an exact-size heap copy so reads past len are reported.
 * Build: clang -fsanitize=fuzzer,address -Icore core/jtext.c core/jtext_load.c
 *        spec/fuzz/fuzz_jtext.c -ljansson */
#include "jtext.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../c/json_same.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = fuzz_copy(data, size);
    if (!in)
        return 0;
    json_error_t je, te;
    json_t *a = json_loadb(in, size, JSON_REJECT_DUPLICATES, &je);
    json_t *b = jtext_load(in, size, &te);
    json_t *c = reader_load(in, size);
    if (!a != !b || !b != !c || (b && !json_same(b, c)))
        abort();
    json_decref(c);
    if (a) {
        if (!json_equal(a, b) || !json_same(a, b))
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
