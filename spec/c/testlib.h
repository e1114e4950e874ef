/* testlib.h: a minimal assertion harness for the C unit tests (one binary per subject).
 * CHECK records a failure and goes on; main returns non-zero when anything failed. */
#ifndef TESTLIB_H
#define TESTLIB_H
#include <stdio.h>
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

#define TEST_MAIN_END()                                                                       \
    do {                                                                                      \
        fprintf(stderr, "%s: %d checks, %d failures\n", __FILE__, testlib_checks,             \
                testlib_failures);                                                            \
        return testlib_failures ? 1 : 0;                                                      \
    } while (0)

#endif
