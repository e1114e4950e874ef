/* buf: reference-counted immutable byte buffers for frames shared by many sockets.
 * A frame is serialised once into a buf and every recipient's send queue holds a reference;
 * the last buf_unref frees it. Single-threaded (one event loop), so the count is a plain int. */
#ifndef LUCKYSYNC_BUF_H
#define LUCKYSYNC_BUF_H

#include <stddef.h>

struct buf;

/* New buffer of `len` bytes (uninitialised, plus a hidden NUL terminator), refcount 1; the
 * caller owns that reference. NULL on allocation failure. */
struct buf *buf_new(size_t len);
/* New buffer holding a copy of data[0..len); refcount 1. NULL on failure. */
struct buf *buf_from(const void *data, size_t len);
/* New buffer from the concatenation of n parts; refcount 1. NULL on failure. */
struct buf *buf_concat(const void *const *parts, const size_t *lens, size_t n);

char *buf_data(struct buf *b);
const char *buf_cdata(const struct buf *b);
size_t buf_len(const struct buf *b);
/* Shrink the visible length (n <= current length); used after writing into buf_new space. */
void buf_set_len(struct buf *b, size_t n);

/* Take another reference; returns b. */
struct buf *buf_ref(struct buf *b);
/* Drop a reference; frees on the last one. NULL is ignored. */
void buf_unref(struct buf *b);
int buf_refcount(const struct buf *b);

#endif
