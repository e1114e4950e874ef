/* sendq: one connection's bounded FIFO of outgoing frames (references to shared bufs).
 * Pure data structure: no I/O. The owner (conn) drains it in its writeable callback. Memory
 * when empty is the struct only: up to two frames sit in the struct itself; a heap ring is
 * allocated beyond that and released when the queue drains. Bounds: max frames and max bytes; a push past either bound fails with
 * -ENOBUFS and the caller disconnects the slow consumer. */
#ifndef LUCKYSYNC_SENDQ_H
#define LUCKYSYNC_SENDQ_H

#include <stddef.h>

struct buf;

#define SENDQ_INLINE 2 /* frames held without an allocation */

struct sendq {
    struct buf **ring; /* capacity entries, NULL until first push; inline or heap */
    unsigned head;     /* index of the oldest frame */
    unsigned count;    /* frames queued */
    unsigned cap;      /* ring capacity (power of two) */
    size_t bytes;      /* sum of buf_len of queued frames */
    struct buf *inline_ring[SENDQ_INLINE]; /* the ring while ≤ 2 frames are queued: a busy
                                              connection that drains between frames does
                                              not allocate per frame */
};

/* Initialise an empty queue (caller allocates the struct). */
void sendq_init(struct sendq *q);
/* Drop every queued reference and free the ring. The struct may be reused after sendq_init. */
void sendq_close(struct sendq *q);

/* Queue a reference to b (the queue takes a new reference via buf_ref; the caller keeps its
 * own). Returns 0, -ENOBUFS when count+1 > max_frames or bytes+len > max_bytes (nothing is
 * queued), or -ENOMEM. */
int sendq_push(struct sendq *q, struct buf *b, unsigned max_frames, size_t max_bytes);

/* The i-th oldest frame (borrowed; valid until popped), or NULL when i >= count. */
struct buf *sendq_peek(const struct sendq *q, unsigned i);
/* Remove the oldest n frames (n <= count), dropping their references. */
void sendq_pop(struct sendq *q, unsigned n);

static inline unsigned sendq_count(const struct sendq *q)
{
    return q->count;
}
static inline size_t sendq_bytes(const struct sendq *q)
{
    return q->bytes;
}

#endif
