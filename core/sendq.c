/* sendq.c: a connection's bounded FIFO of frame references, as a power-of-two ring that
 * exists only while something is queued (idle connections hold no ring). */
#include "sendq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define SENDQ_MIN_CAP 8u
#define SENDQ_MAX_CAP (1u << 31) /* largest power of two an unsigned holds */

/* Smallest power of two >= n (n >= 1), saturating at SENDQ_MAX_CAP. */
static unsigned pow2_at_least(unsigned n)
{
    unsigned p = 1;
    while (p < n && p < SENDQ_MAX_CAP)
        p <<= 1;
    return p;
}

/* Grow (or create) the ring so one more frame fits, never beyond what max_frames needs.
 * Entries are copied to start at index 0. On -ENOMEM the queue is unchanged. */
static int grow(struct sendq *q, unsigned max_frames)
{
    if (q->cap == SENDQ_MAX_CAP)
        return -ENOBUFS;
    if (q->cap == 0) { /* first frame: the ring inside the struct (no loop on the hot path) */
        q->ring = q->inline_ring;
        q->cap = max_frames >= SENDQ_INLINE ? SENDQ_INLINE : pow2_at_least(max_frames);
        q->head = 0;
        return 0;
    }
    unsigned limit = pow2_at_least(max_frames);
    unsigned cap = q->cap * 2 < SENDQ_MIN_CAP ? SENDQ_MIN_CAP : q->cap * 2;
    if (cap > limit)
        cap = limit; /* still > count: count + 1 <= max_frames <= limit */
    size_t size = (size_t)cap * sizeof(struct buf *);
    if (size / sizeof(struct buf *) != cap) /* 32-bit overflow */
        return -ENOMEM;
    struct buf **ring = malloc(size);
    if (!ring)
        return -ENOMEM;
    if (q->count) {
        unsigned first = q->cap - q->head; /* entries from head to the end of the old ring */
        if (first > q->count)
            first = q->count;
        memcpy(ring, q->ring + q->head, first * sizeof *ring);
        memcpy(ring + first, q->ring, (q->count - first) * sizeof *ring);
    }
    if (q->ring != q->inline_ring)
        free(q->ring);
    q->ring = ring;
    q->cap = cap;
    q->head = 0;
    return 0;
}

/* Initialise an empty queue in caller-owned storage; allocates nothing. */
void sendq_init(struct sendq *q)
{
    q->ring = NULL;
    q->head = 0;
    q->count = 0;
    q->cap = 0;
    q->bytes = 0;
}

/* Drop every queued reference and free the ring; q is left empty and reusable. */
void sendq_close(struct sendq *q)
{
    sendq_pop(q, q->count); /* releases the ring too */
    sendq_init(q);
}

/* Append a new reference to b (the caller keeps its own). Bounds are checked before anything
 * changes: -ENOBUFS past max_frames or max_bytes, -ENOMEM when the ring cannot grow. */
int sendq_push(struct sendq *q, struct buf *b, unsigned max_frames, size_t max_bytes)
{
    size_t len = buf_len(b);
    if (q->count >= max_frames)
        return -ENOBUFS;
    if (q->bytes > max_bytes || len > max_bytes - q->bytes)
        return -ENOBUFS;
    if (q->count == q->cap) {
        int rc = grow(q, max_frames);
        if (rc < 0)
            return rc;
    }
    q->ring[(q->head + q->count) & (q->cap - 1)] = buf_ref(b);
    q->count++;
    q->bytes += len;
    return 0;
}

/* The i-th oldest frame (borrowed, valid until popped), or NULL when i >= count. */
struct buf *sendq_peek(const struct sendq *q, unsigned i)
{
    if (i >= q->count)
        return NULL;
    return q->ring[(q->head + i) & (q->cap - 1)];
}

/* Drop the oldest n frames (clamped to count) and their references; frees the ring when the
 * queue drains. */
void sendq_pop(struct sendq *q, unsigned n)
{
    if (n > q->count)
        n = q->count;
    for (unsigned i = 0; i < n; i++) {
        struct buf *b = q->ring[q->head];
        q->bytes -= buf_len(b);
        buf_unref(b);
        q->head = (q->head + 1) & (q->cap - 1);
    }
    q->count -= n;
    if (q->count == 0) {
        if (q->ring != q->inline_ring)
            free(q->ring);
        q->ring = NULL;
        q->cap = 0;
        q->head = 0;
        q->bytes = 0;
    }
}
