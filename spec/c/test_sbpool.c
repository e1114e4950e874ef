/* test_sbpool: the small-block cache under the Lua allocator (core/sbpool.c). Random
 * allocations, resizes across and within size classes and over SBPOOL_MAX, and releases, each
 * block filled with a pattern that must survive every resize; blocks handed out twice would
 * overwrite each other's pattern. Under AddressSanitizer the cached blocks are poisoned, so a
 * use after release in the pool itself would be reported. */
#include "sbpool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define SLOTS 512

static size_t random_size(void)
{
    switch (test_rand() % 4) {
    case 0:
        return 1 + test_rand() % 32;
    case 1:
        return 1 + test_rand() % SBPOOL_MAX;
    case 2:
        return SBPOOL_MAX - 8 + test_rand() % 16; /* around the limit */
    default:
        return 1 + test_rand() % 4000;
    }
}

static int pattern_ok(const unsigned char *p, size_t n, unsigned char tag)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(tag + i))
            return 0;
    return 1;
}

static void fill(unsigned char *p, size_t n, unsigned char tag)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(tag + i);
}

int main(void)
{
    struct sbpool *p = sbpool_new();
    CHECK(p != NULL);
    unsigned char *blk[SLOTS] = {0};
    size_t len[SLOTS] = {0};
    unsigned char tag[SLOTS] = {0};
    int bad = 0;
    for (int it = 0; it < 400000; it++) {
        size_t i = test_rand() % SLOTS;
        if (!blk[i]) {
            len[i] = random_size();
            blk[i] = sbpool_alloc(p, len[i]);
            tag[i] = (unsigned char)test_rand();
            fill(blk[i], len[i], tag[i]);
        } else if (test_rand() % 3 == 0) {
            bad += !pattern_ok(blk[i], len[i], tag[i]);
            sbpool_release(p, blk[i], len[i]);
            blk[i] = NULL;
        } else {
            size_t n = random_size();
            unsigned char *q = sbpool_resize(p, blk[i], len[i], n);
            CHECK(q != NULL);
            bad += !pattern_ok(q, len[i] < n ? len[i] : n, tag[i]);
            blk[i] = q;
            len[i] = n;
            fill(q, n, tag[i]);
        }
    }
    CHECK_EQ_INT(bad, 0);
    /* Same-class resizes keep the block; a released block is handed out again. */
    void *a = sbpool_alloc(p, 20);
    CHECK(sbpool_resize(p, a, 20, 32) == a);
    sbpool_release(p, a, 32);
    CHECK(sbpool_alloc(p, 17) == a);
    sbpool_release(p, a, 17);
    for (size_t i = 0; i < SLOTS; i++)
        sbpool_release(p, blk[i], len[i]);
    sbpool_free(p);
    sbpool_free(NULL);
    TEST_MAIN_END();
}
