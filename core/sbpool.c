/* sbpool: a cache of small freed blocks for one Lua state's allocator; see sbpool.h. */
#include "sbpool.h"

#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define GRAIN 16
#define NCLASS (SBPOOL_MAX / GRAIN)
#define PER_CLASS 128 /* cached blocks per class: at most 16 × 128 blocks, 272 KB, per pool */

struct sbpool {
    unsigned count[NCLASS];
    void *blocks[NCLASS][PER_CLASS];
};

/* The class of a size 1..SBPOOL_MAX: 0 for 1..16, 1 for 17..32, … */
static inline size_t class_of(size_t n)
{
    return (n - 1) / GRAIN;
}

struct sbpool *sbpool_new(void)
{
    return calloc(1, sizeof(struct sbpool));
}

void sbpool_free(struct sbpool *p)
{
    if (!p)
        return;
    for (size_t c = 0; c < NCLASS; c++)
        for (unsigned i = 0; i < p->count[c]; i++) {
            UNPOISON(p->blocks[c][i], (c + 1) * GRAIN);
            free(p->blocks[c][i]);
        }
    free(p);
}

void *sbpool_alloc(struct sbpool *p, size_t n)
{
    if (n > SBPOOL_MAX)
        return malloc(n);
    size_t c = class_of(n);
    if (p->count[c]) {
        void *b = p->blocks[c][--p->count[c]];
        UNPOISON(b, (c + 1) * GRAIN);
        return b;
    }
    return malloc((c + 1) * GRAIN);
}

void sbpool_release(struct sbpool *p, void *ptr, size_t n)
{
    if (!ptr)
        return;
    if (n > SBPOOL_MAX) {
        free(ptr);
        return;
    }
    size_t c = class_of(n);
    if (p->count[c] == PER_CLASS) {
        free(ptr);
        return;
    }
    POISON(ptr, (c + 1) * GRAIN);
    p->blocks[c][p->count[c]++] = ptr;
}

void *sbpool_resize(struct sbpool *p, void *ptr, size_t old, size_t n)
{
    if (old > SBPOOL_MAX && n > SBPOOL_MAX)
        return realloc(ptr, n);
    if (old <= SBPOOL_MAX && n <= SBPOOL_MAX && class_of(old) == class_of(n))
        return ptr; /* the block already has room */
    void *q = sbpool_alloc(p, n);
    if (!q)
        return NULL;
    memcpy(q, ptr, old < n ? old : n);
    sbpool_release(p, ptr, old);
    return q;
}
