/* sbpool: a cache of small freed blocks for one Lua state's allocator (sandbox.c).
 *
 * A sync request allocates and frees a couple of dozen small Lua objects (its ctx, its data
 * tables and strings, its result); through malloc and free each costs a hundred instructions or
 * more. The pool keeps freed blocks of up to SBPOOL_MAX bytes in 16-byte size classes, a bounded
 * number per class, and hands them out again. It does no accounting: the sandbox counts the
 * bytes Lua asked for, as before. Blocks in the cache are poisoned under AddressSanitizer. */
#ifndef LUCKYSYNC_SBPOOL_H
#define LUCKYSYNC_SBPOOL_H

#include <stddef.h>

#define SBPOOL_MAX 256 /* largest block size the pool keeps */

struct sbpool;

/* A new empty pool, or NULL when out of memory. */
struct sbpool *sbpool_new(void);
/* Free the cached blocks and the pool (NULL is fine). Blocks in use are the caller's. */
void sbpool_free(struct sbpool *p);
/* A block of n > 0 bytes, or NULL. */
void *sbpool_alloc(struct sbpool *p, size_t n);
/* Give back a block of n bytes (the size it was asked for, or last resized to). */
void sbpool_release(struct sbpool *p, void *ptr, size_t n);
/* Resize a block of old bytes to n > 0 bytes. NULL when out of memory, with ptr untouched. */
void *sbpool_resize(struct sbpool *p, void *ptr, size_t old, size_t n);

#endif
