/* testlib.h: a minimal assertion harness for the C unit tests (one binary per subject).
 * CHECK records a failure and goes on; main returns non-zero when anything failed. */
#ifndef TESTLIB_H
#define TESTLIB_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int testlib_failures;
static int testlib_checks;

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        testlib_checks++;                                                                     \
        if (!(cond)) {                                                                        \
            testlib_failures++;                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);         \
        }                                                                                     \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                    \
    do {                                                                                      \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                 \
        testlib_checks++;                                                                     \
        if (va_ != vb_) {                                                                     \
            testlib_failures++;                                                               \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a,  \
                    #b, va_, vb_);                                                            \
        }                                                                                     \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                    \
    do {                                                                                      \
        const char *sa_ = (a), *sb_ = (b);                                                    \
        testlib_checks++;                                                                     \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                                          \
            testlib_failures++;                                                               \
            fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__,  \
                    #a, #b, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");                      \
        }                                                                                     \
    } while (0)

#define CHECK_EQ_MEM(a, alen, b, blen)                                                        \
    do {                                                                                      \
        size_t la_ = (alen), lb_ = (blen);                                                    \
        testlib_checks++;                                                                     \
        if (la_ != lb_ || memcmp((a), (b), la_) != 0) {                                       \
            testlib_failures++;                                                               \
            fprintf(stderr, "%s:%d: %s == %s failed: \"%.*s\" != \"%.*s\"\n", __FILE__,       \
                    __LINE__, #a, #b, (int)la_, (const char *)(a), (int)lb_,                  \
                    (const char *)(b));                                                       \
        }                                                                                     \
    } while (0)

/* An exact-size heap copy of s[0..len) (never NUL-terminated, a valid pointer even when empty),
 * so AddressSanitizer reports any read past len. Exits on allocation failure. */
static inline char *test_dup_exact(const char *s, size_t len)
{
    char *p = malloc(len ? len : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    if (len)
        memcpy(p, s, len);
    return p;
}

/* A reproducible pseudo-random sequence (xorshift64) for generated inputs; seed it with
 * test_seed for a sequence of the test's own. */
static uint64_t testlib_rng = 0x9e3779b97f4a7c15ull;

static inline void test_seed(uint64_t seed)
{
    testlib_rng = seed ? seed : 1;
}

static inline uint64_t test_rand(void)
{
    testlib_rng ^= testlib_rng << 13;
    testlib_rng ^= testlib_rng >> 7;
    testlib_rng ^= testlib_rng << 17;
    return testlib_rng;
}

/* A lua_Alloc (same signature; no Lua header needed) that refuses to grow past limit bytes in
 * use: the state's ud is a struct test_cap. */
struct test_cap {
    size_t used, limit;
};

static inline void *test_cap_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct test_cap *c = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        c->used -= old;
        return NULL;
    }
    if (nsize > old && c->used + (nsize - old) > c->limit)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        c->used = c->used - old + nsize;
    return p;
}

#define TEST_MAIN_END()                                                                       \
    do {                                                                                      \
        fprintf(stderr, "%s: %d checks, %d failures\n", __FILE__, testlib_checks,             \
                testlib_failures);                                                            \
        return testlib_failures ? 1 : 0;                                                      \
    } while (0)

#endif
