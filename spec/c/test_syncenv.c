/* test_syncenv: the fast reader of `sync` events (core/syncenv.c) against the general path.
 * Whenever syncenv_read takes a text, jtext_load must accept it too, and every field must be
 * what the general path reads from the tree (the data text parsing to the same object).
 * Hand-picked texts pin which forms take the fast path and which must not (duplicate keys deep
 * in data, escapes, unknown keys, other types, invalid JSON, bounds); pseudo-random mutations of
 * valid envelopes check the same implication on texts nobody thought of. Every input is an
 * exact-size heap copy, so AddressSanitizer sees any read past its end. */
#include "syncenv.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_same.h"
#include "jtext.h"
#include "testlib.h"

static int field_is(const char *s, size_t n, const json_t *v)
{
    if (!s)
        return v == NULL || !json_is_string(v);
    return json_is_string(v) && json_string_length(v) == n &&
           memcmp(json_string_value(v), s, n) == 0;
}

/* Read text with syncenv; when it takes it, hold it to the general path. Returns syncenv's
 * verdict (0 fast, 1 general). */
static int check(const char *text, size_t len)
{
    char *in = malloc(len ? len : 1);
    if (len)
        memcpy(in, text, len);
    struct syncenv e;
    int rc = syncenv_read(in, len, &e);
    CHECK(rc == 0 || rc == 1);
    if (rc == 1) {
        CHECK(e.ri == NULL && e.name == NULL && e.data == NULL);
    } else {
        json_t *arr = jtext_load(in, len, NULL);
        json_t *obj = json_array_get(arr, 1);
        int ok = json_is_array(arr) && json_array_size(arr) == 2 &&
                 field_is("sync", 4, json_array_get(arr, 0)) && json_is_object(obj);
        CHECK(ok);
        if (ok) {
            CHECK(field_is(e.name, e.name_len, json_object_get(obj, "name")));
            CHECK(field_is(e.receiver, e.receiver_len, json_object_get(obj, "receiver")));
            CHECK(field_is(e.cb, e.cb_len, json_object_get(obj, "cb")));
            CHECK_EQ_INT(e.ignore_self, json_is_true(json_object_get(obj, "ignoreSelf")));
            const json_t *ri = json_object_get(obj, "responseIndex");
            CHECK((!ri && !e.ri) || (ri && e.ri && json_same(ri, e.ri)));
            CHECK(e.data > in && e.data + e.data_len <= in + len);
            json_t *d = jtext_load(e.data, e.data_len, NULL);
            CHECK(d && json_same(d, json_object_get(obj, "data")));
            json_decref(d);
            const char *known[] = {"name", "data", "receiver", "cb", "ignoreSelf", "responseIndex"};
            size_t nknown = 0;
            for (size_t i = 0; i < 6; i++)
                nknown += json_object_get(obj, known[i]) != NULL;
            CHECK_EQ_INT((int)json_object_size(obj), (int)nknown);
        } else {
            fprintf(stderr, "  fast path took what the general path reads otherwise: %.*s\n",
                    (int)len, text);
        }
        json_decref(arr);
    }
    syncenv_clear(&e);
    free(in);
    return rc;
}

#define S(s) s, sizeof(s) - 1

static const char canonical[] =
    "[\"sync\",{\"name\":\"bench/echo\",\"data\":{\"t\":1764080000000000000,\"s\":7,\"pad\":"
    "\"xxxxxxxx\"},\"receiver\":\"room-1\",\"ignoreSelf\":true,\"responseIndex\":7}]";

static void test_fast(void)
{
    static const struct {
        const char *t;
        size_t n;
    } cases[] = {
        {S(canonical)},
        {S("[\"sync\",{\"name\":\"a/b\",\"data\":{},\"receiver\":\"r\"}]")},
        {S(" [ \"sync\" , { \"receiver\" : \"r\" , \"data\" : { } , \"name\" : \"a/b\" } ] ")},
        {S("[\"sync\",{\"name\":\"a/b\",\"data\":{\"a\":{\"a\":1},\"b\":[{\"a\":2,\"b\":3}]},"
           "\"receiver\":\"r\",\"cb\":\"c1\",\"ignoreSelf\":false,\"responseIndex\":\"7\"}]")},
        {S("[\"sync\",{\"name\":\"a/b\",\"data\":{\"s\":\"esc\\n\\u00e9\\\"\",\"n\":null},"
           "\"receiver\":\"\xC3\xA9\"}]")},
        {S("[\"sync\",{\"name\":\"\",\"data\":{},\"receiver\":\"\"}]")},
        {S("[\"sync\",{\"name\":\"a/b\",\"data\":{\"x\":[1,2,3],\"y\":{}},\"receiver\":\"r\","
           "\"responseIndex\":-9223372036854775808}]")},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_EQ_INT(check(cases[i].t, cases[i].n), 0);
}

static void test_general(void)
{
    static const struct {
        const char *t;
        size_t n;
    } cases[] = {
        /* valid JSON, other forms */
        {S("[\"sync\",{\"name\":\"a/b\",\"data\":{},\"receiver\":\"r\",\"extra\":1}]")},
        {S("[\"sync\",{\"name\":\"a/b\",\"data\":{},\"receiver\":\"r\"},2]")},
        {S("[\"sync\",{\"name\":\"a/b\",\"data\":[],\"receiver\":\"r\"}]")},
        {S("[\"sync\",{\"name\":\"a/b\",\"data\":{}}]")},
        {S("[\"sync\",{\"data\":{},\"receiver\":\"r\"}]")},
        {S("[\"sync\",{\"name\":\"a/b\",\"receiver\":\"r\"}]")},
        {S("[\"sync\",{\"name\":5,\"data\":{},\"receiver\":\"r\"}]")},
        {S("[\"sync\",{\"name\":\"a\\/b\",\"data\":{},\"receiver\":\"r\"}]")},
        {S("[\"sync\",{\"na\\u006de\":\"a/b\",\"data\":{},\"receiver\":\"r\"}]")},
        {S("[\"s\\u0079nc\",{\"name\":\"a/b\",\"data\":{},\"receiver\":\"r\"}]")},
        {S("[\"sync\",{\"name\":\"a/b\",\"data\":{},\"receiver\":\"r\",\"ignoreSelf\":1}]")},
        {S("[\"sync\",{\"name\":\"a/b\",\"data\":{},\"receiver\":\"r\",\"responseIndex\":[]}]")},
        {S("[\"sync\",{\"name\":\"a/b\",\"data\":{},\"receiver\":\"r\",\"responseIndex\":1.5}]")},
        {S("[\"sync\",{\"name\":\"a/b\",\"data\":{\"k\\u0041\":1},\"receiver\":\"r\"}]")},
        {S("[\"joinRoom\",{\"group\":\"g\"}]")},
        {S("{\"sync\":1}")},
        /* invalid JSON: the general path refuses it with its own error */
        {S("[\"sync\",{\"name\":\"a/b\",\"name\":\"a/b\",\"data\":{},\"receiver\":\"r\"}]")},
        {S("[\"sync\",{\"name\":\"a/b\",\"data\":{\"a\":1,\"a\":2},\"receiver\":\"r\"}]")},
        {S("[\"sync\",{\"name\":\"a/b\",\"data\":{\"o\":{\"b\":1,\"c\":[{\"d\":1,\"d\":1}]}},"
           "\"receiver\":\"r\"}]")},
        {S("[\"sync\",{\"name\":\"a/b\",\"data\":{},\"receiver\":\"r\"}] x")},
        {S("[\"sync\",{\"name\":\"a/b\",\"data\":{,},\"receiver\":\"r\"}]")},
        {S("[\"sync\",{\"name\":\"a/b\",\"data\":{\"s\":\"\\u0000\"},\"receiver\":\"r\"}]")},
        {S("[\"sync\",{\"name\":\"a/b\",\"data\":{\"n\":1e999},\"receiver\":\"r\"}]")},
        {S("[\"sync\",{\"name\":\"a/b\",\"data\":{},\"receiver\":\"\xC3\"}]")},
        {S("[\"sync\",{\"name\":\"a/b\",\"data\":{},\"receiver\":\"r\"}")},
        {S("")},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_EQ_INT(check(cases[i].t, cases[i].n), 1);
    /* The same key in sibling objects is no duplicate. */
    CHECK_EQ_INT(check(S("[\"sync\",{\"name\":\"a/b\",\"data\":{\"o\":{\"a\":1},\"p\":{\"a\":1},"
                         "\"a\":[{\"a\":1},{\"a\":2}]},\"receiver\":\"r\"}]")),
                 0);
}

/* Data past the duplicate check's bounds goes the general way; just inside them, fast. */
static void test_bounds(void)
{
    char t[8192];
    for (int keys = 120; keys <= 136; keys += 8) {
        size_t k = (size_t)snprintf(t, sizeof t, "[\"sync\",{\"name\":\"a/b\",\"data\":{");
        for (int i = 0; i < keys; i++)
            k += (size_t)snprintf(t + k, sizeof t - k, "%s\"k%d\":%d", i ? "," : "", i, i);
        k += (size_t)snprintf(t + k, sizeof t - k, "},\"receiver\":\"r\"}]");
        CHECK_EQ_INT(check(t, k), keys <= 128 ? 0 : 1);
    }
    for (int depth = 30; depth <= 34; depth++) {
        size_t k = (size_t)snprintf(t, sizeof t, "[\"sync\",{\"name\":\"a/b\",\"data\":{\"d\":");
        for (int i = 0; i < depth; i++)
            t[k++] = '[';
        for (int i = 0; i < depth; i++)
            t[k++] = ']';
        k += (size_t)snprintf(t + k, sizeof t - k, "},\"receiver\":\"r\"}]");
        CHECK_EQ_INT(check(t, k), depth <= 32 ? 0 : 1);
    }
}

static void test_mutations(void)
{
    static const char seed2[] =
        "[\"sync\",{\"name\":\"a/b\",\"data\":{\"o\":{\"a\":1,\"b\":[true,null,\"x\"]},\"a\":2},"
        "\"receiver\":\"r\",\"cb\":\"c\",\"ignoreSelf\":false,\"responseIndex\":\"1\"}]";
    static const char alphabet[] = "{}[]\",:\\ abnu0123456789-.eE\x00\xC3\xA9tfl";
    const char *seeds[] = {canonical, seed2};
    size_t lens[] = {sizeof canonical - 1, sizeof seed2 - 1};
    char t[512];
    int fast = 0;
    test_seed(0x2545f4914f6cdd1dull);
    for (int it = 0; it < 60000; it++) {
        int which = (int)(test_rand() % 2);
        size_t n = lens[which];
        memcpy(t, seeds[which], n);
        for (int m = 0, nm = 1 + (int)(test_rand() % 3); m < nm; m++) {
            size_t at = (size_t)(test_rand() % n);
            char c = alphabet[test_rand() % (sizeof alphabet - 1)];
            switch (test_rand() % 3) {
            case 0:
                t[at] = c;
                break;
            case 1:
                if (n + 1 < sizeof t) {
                    memmove(t + at + 1, t + at, n - at);
                    t[at] = c;
                    n++;
                }
                break;
            default:
                memmove(t + at, t + at + 1, n - at - 1);
                n--;
                break;
            }
        }
        fast += check(t, n) == 0;
    }
    CHECK(fast > 100); /* many mutations (in pad bytes and values) still take the fast path */
}

int main(void)
{
    test_fast();
    test_general();
    test_bounds();
    test_mutations();
    TEST_MAIN_END();
}
