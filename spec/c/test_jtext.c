/* test_jtext.c: jtext against jansson 2.14 itself. Reader: a table of texts, each with the
 * verdict jansson gives (json_loadb with JSON_REJECT_DUPLICATES), checked against both; where
 * both accept, the values must be the same (types, integer values, real bit patterns, string
 * bytes, key order). The token reader (jtext_next), rebuilt into a value, must agree with
 * jtext_load on every one of them. Every input is an exact-size heap copy without a NUL terminator, so
 * AddressSanitizer catches any read past len, and every prefix of every case is compared too.
 * Writer: hand-picked and pseudo-random values, jtext_dump against json_dumps(JSON_COMPACT)
 * byte for byte, NULL results included. */
#include "jtext.h"

#include "json_same.h"
#include "testlib.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* jtext_load and json_loadb agree on text[0..len): both refuse, or both give the same value.
 * Returns 1 when jansson accepted. */
static int agree_load(const char *text, size_t len, const char *what)
{
    char *in = test_dup_exact(text, len);
    json_error_t je, te;
    json_t *a = json_loadb(in, len, JSON_REJECT_DUPLICATES, &je);
    json_t *b = jtext_load(in, len, &te);
    json_t *c = reader_load(in, len);
    int ok = (!a && !b) || (a && b && json_equal(a, b) && json_same(a, b));
    CHECK(ok);
    int ok_reader = (!b && !c) || (b && c && json_same(b, c));
    CHECK(ok_reader);
    if (!ok_reader)
        fprintf(stderr, "  %s: \"%.*s\": the token reader %s, jtext_load %s\n", what, (int)len,
                text, c ? "accepts" : "refuses", b ? "accepts" : "refuses");
    json_decref(c);
    if (!ok)
        fprintf(stderr, "  %s: \"%.*s\" (%zu bytes): jansson %s, jtext %s\n", what, (int)len, text,
                len, a ? "accepts" : je.text, b ? "accepts" : te.text);
    if (!b)
        CHECK(te.text[0] != '\0' && json_error_code(&te) != json_error_unknown);
    int accepted = a != NULL;
    json_decref(a);
    json_decref(b);
    free(in);
    return accepted;
}

#define W(s) s, sizeof(s) - 1

struct load_case {
    const char *in;
    size_t len;
    int ok; /* jansson's verdict */
};

/* clang-format off */
static const struct load_case load_cases[] = {
    /* structure, whitespace (only space, tab, CR, LF), top level must be a container */
    {W("[]"), 1}, {W("{}"), 1}, {W(" \t\r\n[ \t\r\n] \t\r\n"), 1}, {W("[1,2,3]"), 1},
    {W("{\"a\":{\"b\":[1,{\"c\":null}],\"d\":[]},\"e\":{}}"), 1}, {W("[[[[]]],[[]]]"), 1},
    {W("{ \"a\" : 1 , \"b\" : [ true , false , null ] }"), 1}, {W(""), 0}, {W(" "), 0}, {W("1"), 0},
    {W("\"a\""), 0}, {W("true"), 0}, {W("null"), 0}, {W("["), 0}, {W("]"), 0}, {W("{"), 0},
    {W("}"), 0}, {W("[1,]"), 0}, {W("[,1]"), 0}, {W("[,]"), 0}, {W("[1 2]"), 0}, {W("[1]]"), 0},
    {W("[1] [2]"), 0}, {W("[1]x"), 0}, {W("{\"a\"}"), 0}, {W("{\"a\":}"), 0}, {W("{\"a\":1,}"), 0},
    {W("{a:1}"), 0}, {W("{1:1}"), 0}, {W("{\"a\" 1}"), 0}, {W("{\"a\":1 \"b\":2}"), 0},
    {W("[}"), 0}, {W("{]"), 0}, {W("[1,\v2]"), 0}, {W("[1,\f2]"), 0}, {W("\xEF\xBB\xBF[]"), 0},
    {W("[1]\xFF"), 0}, {W("[\xC3\xA9]"), 0}, {W("{\"a\":1:2}"), 0}, {W("[:]"), 0},
    /* literals */
    {W("[true,false,null]"), 1}, {W("[tru]"), 0}, {W("[truex]"), 0}, {W("[nul]"), 0},
    {W("[True]"), 0}, {W("[nulll]"), 0}, {W("[true1]"), 0}, {W("[t]"), 0}, {W("[x]"), 0},
    /* numbers: RFC 8259 grammar; no fraction or exponent -> integer */
    {W("[0,-0,1,-1,123,9223372036854775807,-9223372036854775808]"), 1},
    {W("[9223372036854775808]"), 0}, {W("[-9223372036854775809]"), 0},
    {W("[99999999999999999999]"), 0}, {W("[-99999999999999999999999]"), 0},
    {W("[1.5,-1.5,0.1,0.5,1e5,1E5,1e+5,1e-5,1E-05,0e0,0E-0,-0.0,-0e5,1.0e-0]"), 1},
    {W("[1.5e300,1e-400,-1e-400,4.9e-324,2.4e-324,2.2250738585072014e-308]"), 1},
    {W("[1.7976931348623157e308,0.30000000000000004,1e22,1e23,1e21,123456789012345678.0]"), 1},
    {W("[9007199254740993,9007199254740993.0,9007199254740992e0,0.000001,1e-7]"), 1},
    {W("[123456789012345678901234567890.0,1234567890123456789012345678.9e-10]"), 1},
    {W("[123456789012345678901234567890]"), 0},
    {W("[0.1234567890123456789012345,100000000000000000000000000000000000000000000.5]"), 1},
    {W("[0.00000000000000000000000000000000000000000000000000000000000001]"), 1},
    {W("[1e0000000000000000000000000000000000000000000001,1e-99999999999999999999]"), 1},
    {W("[5e-324,2.4703282292062328e-324,1.7976931348623158e308]"), 1}, {W("[1e400]"), 0},
    {W("[-1e400]"), 0}, {W("[1.8e308]"), 0}, {W("[1e99999999999999999999]"), 0}, {W("[01]"), 0},
    {W("[-01]"), 0}, {W("[00]"), 0}, {W("[.5]"), 0}, {W("[1.]"), 0}, {W("[1.e5]"), 0},
    {W("[+1]"), 0}, {W("[-]"), 0}, {W("[1e]"), 0}, {W("[1e+]"), 0}, {W("[1e-]"), 0},
    {W("[--1]"), 0}, {W("[0x10]"), 0}, {W("[Infinity]"), 0}, {W("[NaN]"), 0}, {W("[-Infinity]"), 0},
    {W("[1.5.3]"), 0}, {W("[1e5e5]"), 0}, {W("[- 1]"), 0}, {W("[1_0]"), 0},
    /* strings: escapes (RFC 8259 section 7) */
    {W("[\"\",\"a\",\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]"), 1},
    {W("[\"\\u0041\\u00e9\\u00E9\\u20AC\\uffff\\u0001\\u001F\\u007f\"]"), 1},
    {W("[\"\\uD83D\\uDE00\",\"\\ud83d\\ude00\",\"\\uDBFF\\uDFFF\",\"\\uD800\\uDC00\"]"), 1},
    {W("[\"x\\uD83D\\uDE00y\\n\"]"), 1}, {W("[\"\\u0000\"]"), 0}, {W("[\"a\\u0000b\"]"), 0},
    {W("{\"\\u0000\":1}"), 0}, {W("[\"\\a\"]"), 0}, {W("[\"\\x41\"]"), 0}, {W("[\"\\U0041\"]"), 0},
    {W("[\"\\'\"]"), 0}, {W("[\"\\u12\"]"), 0}, {W("[\"\\u12G4\"]"), 0}, {W("[\"\\u\"]"), 0},
    {W("[\"\\u 123\"]"), 0}, {W("[\"\\uD800\"]"), 0}, {W("[\"\\uD800x\"]"), 0},
    {W("[\"\\uDC00\"]"), 0}, {W("[\"\\uDFFF\\uD800\"]"), 0}, {W("[\"\\uD800\\u0041\"]"), 0},
    {W("[\"\\uD800\\uD800\"]"), 0}, {W("[\"\\uDBFF\\u\"]"), 0}, {W("[\"\\uD800\\\"]"), 0},
    {W("[\"\\uD800\\n\"]"), 0}, {W("[\"\\uD800\\uDC0\"]"), 0}, {W("[\"\\\xC3\xA9\"]"), 0},
    {W("[\"\\\x01\"]"), 0},
    /* strings: raw bytes (control characters refused, 0x7F and valid UTF-8 kept) */
    {W("[\"\x7F\",\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"]"), 1},
    {W("[\"\xF4\x8F\xBF\xBF\",\"\xEF\xBF\xBF\"]"), 1},
    {W("[\"\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xF0\x90\x80\x80\"]"), 1},
    {W("[\"a\0b\"]"), 0}, {W("[\"\x01\"]"), 0}, {W("[\"\n\"]"), 0}, {W("[\"\x1F\"]"), 0},
    {W("[\"\t\"]"), 0}, {W("[\"abc"), 0}, {W("[\"\\"), 0}, {W("[\"\\\"]"), 0}, {W("[\""), 0},
    {W("[\"\x80\"]"), 0}, {W("[\"\xBF\"]"), 0}, {W("[\"\xC0\x80\"]"), 0}, {W("[\"\xC1\xBF\"]"), 0},
    {W("[\"\xE0\x80\x80\"]"), 0}, {W("[\"\xE0\x9F\xBF\"]"), 0}, {W("[\"\xED\xA0\x80\"]"), 0},
    {W("[\"\xED\xBF\xBF\"]"), 0}, {W("[\"\xF0\x8F\xBF\xBF\"]"), 0},
    {W("[\"\xF4\x90\x80\x80\"]"), 0}, {W("[\"\xF5\x80\x80\x80\"]"), 0},
    {W("[\"\xF8\x88\x80\x80\x80\"]"), 0}, {W("[\"\xFE\"]"), 0}, {W("[\"\xFF\"]"), 0},
    {W("[\"\xC3\"]"), 0}, {W("[\"\xE2\x82\"]"), 0}, {W("[\"\xF0\x9F\x98\"]"), 0},
    {W("[\"\xC3\x28\"]"), 0}, {W("[\"\xE2\x28\xA1\"]"), 0}, {W("[\"\xF0\x9F\x28\x80\"]"), 0},
    {W("[\"\xC3"), 0}, {W("[\"\xF0\x9F"), 0},
    /* keys: duplicates refused (also when spelled differently), nested scopes separate */
    {W("{\"a\":1,\"b\":2,\"\\u0061b\":3}"), 1}, {W("{\"a\":{\"a\":{\"a\":1}},\"b\":{\"a\":2}}"), 1},
    {W("{\"\":1,\"\\\"\":2,\"\xC3\xA9\":3,\"\\u00e9x\":4}"), 1}, {W("{\"a\":1,\"a\":2}"), 0},
    {W("{\"a\":1,\"\\u0061\":2}"), 0}, {W("{\"a\":{\"b\":1,\"b\":2}}"), 0},
    {W("{\"\":1,\"\":2}"), 0}, {W("{\"\xC3\xA9\":1,\"\\u00E9\":2}"), 0}, {W("{\"a\x01\":1}"), 0},
    {W("{\"a\":1,\"b\":2,\"c\":3,\"b\":4}"), 0}, {W("{\"a\":[1],\"a\":[1]}"), 0},
    /* jansson: one NUL byte right after a number or a literal is skipped, nowhere else */
    {W("[1\0]"), 1}, {W("[true\0]"), 1}, {W("[null\0,false\0]"), 1}, {W("{\"a\":1.5e3\0}"), 1},
    {W("[-0\0 ]"), 1}, {W("[1\0\0]"), 0}, {W("[1 \0]"), 0}, {W("[\"a\"\0]"), 0}, {W("[]\0"), 0},
    {W("\0[]"), 0}, {W("[\0]"), 0}, {W("[1,\0 2]"), 0}, {W("{\"a\"\0:1}"), 0}, {W("[tr\0ue]"), 0},
    {W("[1\0"), 0}, {W("[1.\0]"), 0}, {W("[-\0]"), 0},
};
/* clang-format on */

static void test_load_table(void)
{
    for (size_t i = 0; i < sizeof load_cases / sizeof load_cases[0]; i++) {
        const struct load_case *c = &load_cases[i];
        int accepted = agree_load(c->in, c->len, "case");
        CHECK_EQ_INT(accepted, c->ok);
        if (accepted != c->ok)
            fprintf(stderr, "  case %zu: \"%.*s\": jansson differs from the table\n", i,
                    (int)c->len, c->in);
        for (size_t n = 0; n < c->len; n++)
            agree_load(c->in, n, "prefix");
    }
}

/* Nesting: jansson counts the top-level value as level 1 and refuses a value at level 2049. */
static void test_load_depth(void)
{
    size_t max = 2100;
    char *t = malloc(8 * max + 16);
    for (size_t depth = 2040; depth <= 2050; depth++) {
        for (int kind = 0; kind < 3; kind++) {
            size_t n = 0;
            for (size_t i = 0; i < depth; i++) {
                if (kind == 2) {
                    memcpy(t + n, "{\"a\":", 5);
                    n += 5;
                } else {
                    t[n++] = '[';
                }
            }
            if (kind == 1)
                t[n++] = '7'; /* a scalar one level further down */
            if (kind == 2)
                memcpy(t + n - 5, "{}", 2), n -= 3;
            for (size_t i = 0; i < depth - (kind == 2); i++)
                t[n++] = kind == 2 ? '}' : ']';
            int accepted = agree_load(t, n, "depth");
            CHECK_EQ_INT(accepted, depth + (kind == 1) <= JTEXT_MAX_DEPTH);
        }
    }
    /* Hostile depth far beyond the bound costs no C stack. */
    size_t big = 200000;
    char *deep = malloc(big);
    memset(deep, '[', big);
    json_error_t e;
    CHECK(jtext_load(deep, big, &e) == NULL);
    CHECK_EQ_INT(json_error_code(&e), json_error_stack_overflow);
    CHECK(reader_load(deep, big) == NULL);
    free(deep);
    free(t);
}

static void test_load_errors(void)
{
    json_error_t e;
    CHECK(jtext_load(NULL, 0, &e) == NULL);
    CHECK_EQ_INT(json_error_code(&e), json_error_invalid_argument);
    CHECK(jtext_load("[1,]", 4, NULL) == NULL);
    CHECK(jtext_load("{\"a\":1,\"a\":2}", 13, &e) == NULL);
    CHECK_EQ_INT(json_error_code(&e), json_error_duplicate_key);
    CHECK_EQ_STR(e.text, "duplicate object key");
    CHECK(jtext_load("[9223372036854775808]", 21, &e) == NULL);
    CHECK_EQ_INT(json_error_code(&e), json_error_numeric_overflow);
    CHECK_EQ_STR(e.text, "too big integer");
    CHECK(jtext_load("[1e999]", 7, &e) == NULL);
    CHECK_EQ_STR(e.text, "real number overflow");
    CHECK(jtext_load("[\"\\u0000\"]", 10, &e) == NULL);
    CHECK_EQ_INT(json_error_code(&e), json_error_null_character);
    CHECK(jtext_load("[1,\n [\"\xC3\xA9\x01\"]]", 13, &e) == NULL);
    CHECK_EQ_INT(e.line, 2);
    CHECK_EQ_INT(e.column, 4);
    CHECK_EQ_INT(e.position, 9);
    CHECK_EQ_STR(e.source, "<buffer>");
    json_t *v = jtext_load(" [1] ", 5, &e);
    CHECK(v != NULL);
    CHECK_EQ_INT(e.line, -1);
    CHECK_EQ_INT(e.position, 5);
    json_decref(v);
}

/* ---- writer ---------------------------------------------------------------------------- */

/* jtext_dump(v) == json_dumps(v, JSON_COMPACT), NULL included; scalars at the top level go
 * through jtext_dump_append against JSON_ENCODE_ANY. Also compares both readers on the text. */
static void agree_dump(const json_t *v, const char *what)
{
    char *a = json_dumps(v, JSON_COMPACT);
    size_t n = 12345;
    char *b = jtext_dump(v, &n);
    int ok = (!a && !b) || (a && b && strcmp(a, b) == 0 && n == strlen(a));
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "  %s: jansson %s\n  jtext   %s\n", what, a ? a : "NULL", b ? b : "NULL");
    if (a)
        agree_load(a, strlen(a), what);
    free(a);
    free(b);

    /* Appending between a prefix and a suffix, as JSON_ENCODE_ANY. */
    struct jtext_buf buf;
    jtext_buf_init(&buf);
    CHECK_EQ_INT(jtext_buf_append(&buf, "42[", 3), 0);
    a = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    int rc = jtext_dump_append(&buf, v);
    CHECK(a ? rc == 0 : rc < 0);
    CHECK(jtext_buf_append(&buf, "]", 1) == 0);
    if (a && rc == 0) {
        CHECK_EQ_INT(buf.len, strlen(a) + 4);
        CHECK(memcmp(buf.data + 3, a, strlen(a)) == 0);
        CHECK(buf.data[buf.len] == '\0');
    } else if (rc) {
        CHECK_EQ_STR(buf.data, "42[]"); /* a failed append leaves the buffer as it was */
    }
    free(a);
    jtext_buf_close(&buf);
}

static json_t *arr1(json_t *v)
{
    json_t *a = json_array();
    json_array_append_new(a, v);
    return a;
}

static void test_dump_hand(void)
{
    /* clang-format off */
    static const double reals[] = {
        0.0, 1.0, -1.0, 0.1, 0.5, 1.5, -2.25, 1e300, 1e-300, 5e-324, 2.2250738585072014e-308,
        1.7976931348623157e308, 1e21, 1e22, 1e16, 1e17, 123456789012345678.0, 9007199254740992.0,
        9007199254740994.0, -9007199254740992.0, 9007199254740991.0, 4503599627370496.5,
        0.30000000000000004, 3.141592653589793, 1e-5, 1e-4, 0.001, 123.456, 1e100, 1.5e-7, 2.5e15,
        1e15, 1e-320, 1234567890123456.25, 1234567890123456.75, 1125899906842624.125};
    /* clang-format on */
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        for (int sign = 0; sign < 2; sign++) {
            json_t *a = arr1(json_real(sign ? -reals[i] : reals[i]));
            agree_dump(a, "real");
            json_decref(a);
        }
    }
    /* clang-format off */
    static const json_int_t ints[] = {
        0, 1, -1, 9, 10, -10, 99, 100, 1234567890, INT64_MAX, INT64_MIN, INT64_MIN + 1,
        1000000000000000000LL};
    /* clang-format on */
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        json_t *a = arr1(json_integer(ints[i]));
        agree_dump(a, "integer");
        json_decref(a);
    }
    /* Every byte value alone in a string (invalid UTF-8 ones make both NULL). */
    for (int c = 0; c < 256; c++) {
        char s[3] = {'a', (char)c, 'b'};
        json_t *a = arr1(json_stringn_nocheck(s, 3));
        agree_dump(a, "byte");
        json_decref(a);
    }
    /* clang-format off */
    static const char *const strs[] = {
        "", "plain", "\"quoted\" \\back\\slash/", "\b\f\n\r\t", "\x7F", "\xC3\xA9\xE2\x82\xAC",
        "\xF0\x9F\x98\x80", "\xF4\x8F\xBF\xBF", "\xED\xA0\x80", "\xC0\x80", "\xE2\x82",
        "\xF4\x90\x80\x80", "a\nb\xFF", "\x01\x02\x1E\x1F ", "x\xC3"};
    /* clang-format on */
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        json_t *a = arr1(json_stringn_nocheck(strs[i], strlen(strs[i])));
        agree_dump(a, "string");
        json_decref(a);
        /* As a key: jansson writes an invalid key partially and goes on (see put_string). */
        json_t *o = json_object();
        json_object_set_new(o, "first", json_true());
        json_object_setn_new_nocheck(o, strs[i], strlen(strs[i]), json_integer(1));
        json_object_set_new(o, "last", json_null());
        agree_dump(o, "key");
        json_decref(o);
    }
    json_t *a = arr1(json_stringn_nocheck("a\0b\0", 4)); /* embedded NUL bytes */
    agree_dump(a, "nul");
    json_decref(a);
    json_t *o = json_object();
    json_object_setn_new_nocheck(o, "k\0y", 3, json_stringn("\0", 1));
    agree_dump(o, "nul key");
    json_decref(o);

    /* Top level: jtext_dump takes containers only, as json_dumps without JSON_ENCODE_ANY. */
    json_t *scalars[] = {json_string("s"), json_integer(1), json_real(1.5),
                         json_true(),      json_false(),    json_null()};
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        agree_dump(scalars[i], "scalar");
        json_decref(scalars[i]);
    }
    CHECK(jtext_dump(NULL, NULL) == NULL);
    struct jtext_buf buf;
    jtext_buf_init(&buf);
    CHECK_EQ_INT(jtext_dump_append(&buf, NULL), -EINVAL);
    jtext_buf_close(&buf);

    /* Insertion order survives deletion and re-insertion. */
    o = json_object();
    json_object_set_new(o, "z", json_integer(1));
    json_object_set_new(o, "a", json_integer(2));
    json_object_set_new(o, "m", json_integer(3));
    json_object_del(o, "a");
    json_object_set_new(o, "a", json_integer(4));
    json_object_set_new(o, "z", json_integer(5));
    agree_dump(o, "order");
    json_decref(o);

    /* Nesting: the deepest loadable value dumps; one more level is refused with -E2BIG (jansson
     * has no limit there); a cycle is NULL in both. */
    json_t *root = json_array(), *cur = root;
    for (unsigned i = 1; i < JTEXT_MAX_DEPTH; i++) {
        json_t *child = json_array();
        json_array_append_new(cur, child);
        cur = child;
    }
    agree_dump(root, "deep");
    json_array_append_new(cur, json_array());
    jtext_buf_init(&buf);
    CHECK_EQ_INT(jtext_dump_append(&buf, root), -E2BIG);
    CHECK(jtext_dump(root, NULL) == NULL);
    jtext_buf_close(&buf);
    json_decref(root);
    root = json_array();
    json_t *inner = json_object();
    json_array_append_new(root, inner);
    json_object_set(inner, "loop", root);
    char *j = json_dumps(root, JSON_COMPACT);
    CHECK(j == NULL);
    CHECK(jtext_dump(root, NULL) == NULL);
    json_object_del(inner, "loop");
    json_decref(root);
}

/* The benchmark packet and a typical answer, as the callers use them. */
static void test_dump_packet(void)
{
    static const char pkt[] =
        "[\"sync\",{\"name\":\"sync/bench/echo/v1\",\"data\":{\"t\":1732530000123456,\"seq\":42,"
        "\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"},\"receiver\":"
        "\"room-17\",\"responseIndex\":42,\"ignoreSelf\":true}]";
    json_t *v = jtext_load(pkt, sizeof pkt - 1, NULL);
    CHECK(v != NULL);
    char *s = jtext_dump(v, NULL);
    CHECK_EQ_STR(s, pkt);
    agree_dump(v, "packet");
    free(s);
    json_decref(v);
}

/* ---- pseudo-random values ---------------------------------------------------------------- */

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Bytes from pieces that exercise every escaping rule; with `bad`, now and then invalid UTF-8. */
static size_t random_text(char *out, size_t max, int bad)
{
    /* clang-format off */
    static const char *const pieces[] = {
        "a", "Z", " ", "\"", "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x01", "\x1F", "\x7F", "\0",
        "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xF4\x8F\xBF\xBF", "\xEF\xBF\xBF", "u0041",
        "\\u", "0"};
    /* clang-format on */
    static const char *const broken[] = {"\xFF", "\xC3", "\xED\xA0\x80", "\xC0\xAF", "\x80"};
    size_t n = 0, count = next() % 12;
    for (size_t i = 0; i < count; i++) {
        const char *p = pieces[next() % (sizeof pieces / sizeof pieces[0])];
        size_t len = p[0] ? strlen(p) : 1;
        if (bad && next() % 40 == 0)
            p = broken[next() % 5], len = strlen(p);
        if (n + len > max)
            break;
        memcpy(out + n, p, len);
        n += len;
    }
    return n;
}

static double random_real(void)
{
    static const double special[] = {
        0.1,  1e300, -0.0, 0.0, 5e-324, 1e21, 123456789012345678.0, 1e-7, 2.5, 9007199254740993.0,
        1e16, 1e17};
    uint64_t bits;
    double d;
    switch (next() % 4) {
    case 0:
        return special[next() % (sizeof special / sizeof special[0])];
    case 1:
        return (double)(int64_t)(next() % 2000001 - 1000000) / 1000.0;
    case 2:
        return (double)(int64_t)next() * pow(10, (int)(next() % 40) - 20);
    default:
        do {
            bits = next();
            memcpy(&d, &bits, sizeof d);
        } while (!isfinite(d));
        return d;
    }
}

static json_t *random_value(int depth, int bad)
{
    char text[128];
    switch (next() % (depth > 5 ? 6 : 8)) {
    case 0:
        return json_null();
    case 1:
        return next() & 1 ? json_true() : json_false();
    case 2: {
        static const json_int_t edge[] = {0, -1, INT64_MAX, INT64_MIN, 42, -9};
        return json_integer(next() & 1 ? edge[next() % 6] : (json_int_t)next() >> (next() % 64));
    }
    case 3:
        return json_real(random_real());
    case 4:
    case 5:
        return json_stringn_nocheck(text, random_text(text, sizeof text, bad));
    case 6: {
        json_t *a = json_array();
        for (size_t i = 0, n = next() % 6; i < n; i++)
            json_array_append_new(a, random_value(depth + 1, bad));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (size_t i = 0, n = next() % 6; i < n; i++)
            json_object_setn_new_nocheck(o, text, random_text(text, 24, bad),
                                         random_value(depth + 1, bad));
        return o;
    }
    }
}

static void test_dump_random(void)
{
    for (int i = 0; i < 20000; i++) {
        json_t *v = random_value(0, i % 4 == 0);
        json_t *top = next() & 1 ? arr1(v) : v; /* scalars too: top-level NULL must agree */
        agree_dump(top, "random");
        json_decref(top);
    }
}

/* The scans go 16, then 8, then 1 byte at a time: one odd byte (or sequence) at every position
 * of strings 0..48 long, and a string that ends at every distance from the input's end, read
 * and written as jansson does. */
static void test_string_steps(void)
{
    static const char *const odd[] = {"\"", "\\", "\n", "\x01", "\x1F", "\x7F", "\x80",
                                      "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xC3",
                                      "\xFF", "\\u00e9", "\\n"};
    char s[64], text[160];
    for (size_t len = 0; len <= 48; len++) {
        for (size_t pos = 0; pos <= len; pos++) {
            for (size_t k = 0; k < sizeof odd / sizeof odd[0]; k++) {
                size_t ol = strlen(odd[k]), n = 0;
                memset(s, 'a', sizeof s);
                memcpy(s + pos, odd[k], ol);
                n = len + ol;
                json_t *a = arr1(json_stringn_nocheck(s, n));
                agree_dump(a, "string steps");
                json_decref(a);
                int t = snprintf(text, sizeof text, "[\"%.*s\"]", (int)n, s);
                agree_load(text, (size_t)t, "string steps");
                agree_load(text, (size_t)t - 2, "string steps, cut");
            }
        }
    }
}

int main(void)
{
    test_load_table();
    test_load_depth();
    test_load_errors();
    test_dump_hand();
    test_dump_packet();
    test_dump_random();
    test_string_steps();
    TEST_MAIN_END();
}
