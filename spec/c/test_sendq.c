/* test_sendq.c: the bounded frame queue: order, references, bounds, ring lifetime. */
#include "buf.h"
#include "sendq.h"
#include "testlib.h"

#include <errno.h>
#include <stdint.h>

#define NOLIMIT_BYTES SIZE_MAX

static void test_order_and_refs(void)
{
    struct sendq q;
    sendq_init(&q);
    CHECK(q.ring == NULL);
    CHECK(sendq_peek(&q, 0) == NULL);

    struct buf *a = buf_from("alpha", 5);
    struct buf *b = buf_from("be", 2);
    struct buf *c = buf_from("c", 1);
    CHECK_EQ_INT(sendq_push(&q, a, 100, NOLIMIT_BYTES), 0);
    CHECK(q.ring == q.inline_ring); /* the first frames need no allocation */
    CHECK_EQ_INT(q.cap, SENDQ_INLINE);
    CHECK_EQ_INT(sendq_push(&q, b, 100, NOLIMIT_BYTES), 0);
    CHECK(q.ring == q.inline_ring);
    CHECK_EQ_INT(sendq_push(&q, a, 100, NOLIMIT_BYTES), 0);
    CHECK(q.ring != q.inline_ring); /* a third frame moves to a heap ring */
    CHECK_EQ_INT(q.cap, 8);
    CHECK_EQ_INT(sendq_push(&q, c, 100, NOLIMIT_BYTES), 0);
    CHECK_EQ_INT(sendq_count(&q), 4);
    CHECK_EQ_INT(sendq_bytes(&q), 5 + 2 + 5 + 1);
    CHECK_EQ_INT(buf_refcount(a), 3);
    CHECK_EQ_INT(buf_refcount(b), 2);
    CHECK_EQ_INT(buf_refcount(c), 2);

    CHECK(sendq_peek(&q, 0) == a);
    CHECK(sendq_peek(&q, 1) == b);
    CHECK(sendq_peek(&q, 2) == a);
    CHECK(sendq_peek(&q, 3) == c);
    CHECK(sendq_peek(&q, 4) == NULL);

    sendq_pop(&q, 1);
    CHECK_EQ_INT(buf_refcount(a), 2);
    CHECK(sendq_peek(&q, 0) == b);
    CHECK_EQ_INT(sendq_bytes(&q), 2 + 5 + 1);
    sendq_pop(&q, 2);
    CHECK_EQ_INT(buf_refcount(a), 1);
    CHECK_EQ_INT(buf_refcount(b), 1);
    CHECK(sendq_peek(&q, 0) == c);
    CHECK(q.ring != NULL);
    sendq_pop(&q, 1);
    CHECK_EQ_INT(sendq_count(&q), 0);
    CHECK_EQ_INT(sendq_bytes(&q), 0);
    CHECK_EQ_INT(buf_refcount(c), 1);
    CHECK(q.ring == NULL); /* idle queues hold no ring */
    CHECK_EQ_INT(q.cap, 0);

    /* close drops what is still queued */
    CHECK_EQ_INT(sendq_push(&q, a, 100, NOLIMIT_BYTES), 0);
    CHECK_EQ_INT(sendq_push(&q, b, 100, NOLIMIT_BYTES), 0);
    sendq_close(&q);
    CHECK(q.ring == NULL);
    CHECK_EQ_INT(sendq_count(&q), 0);
    CHECK_EQ_INT(buf_refcount(a), 1);
    CHECK_EQ_INT(buf_refcount(b), 1);
    sendq_close(&q); /* twice is harmless */

    buf_unref(a);
    buf_unref(b);
    buf_unref(c);
}

static void test_bounds(void)
{
    struct sendq q;
    sendq_init(&q);
    struct buf *f = buf_from("0123456789", 10);

    /* frame bound */
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(sendq_push(&q, f, 3, NOLIMIT_BYTES), 0);
    CHECK_EQ_INT(buf_refcount(f), 4);
    CHECK_EQ_INT(sendq_push(&q, f, 3, NOLIMIT_BYTES), -ENOBUFS);
    CHECK_EQ_INT(sendq_count(&q), 3);
    CHECK_EQ_INT(sendq_bytes(&q), 30);
    CHECK_EQ_INT(buf_refcount(f), 4);
    CHECK(q.cap <= 4); /* never beyond what max_frames needs */
    sendq_close(&q);

    /* byte bound: 25 bytes hold two frames of 10, not three */
    CHECK_EQ_INT(sendq_push(&q, f, 100, 25), 0);
    CHECK_EQ_INT(sendq_push(&q, f, 100, 25), 0);
    CHECK_EQ_INT(sendq_push(&q, f, 100, 25), -ENOBUFS);
    CHECK_EQ_INT(sendq_count(&q), 2);
    CHECK_EQ_INT(sendq_bytes(&q), 20);
    CHECK_EQ_INT(buf_refcount(f), 3);
    struct buf *small = buf_from("12345", 5);
    CHECK_EQ_INT(sendq_push(&q, small, 100, 25), 0); /* exactly at the bound */
    CHECK_EQ_INT(sendq_bytes(&q), 25);
    sendq_close(&q);
    CHECK_EQ_INT(buf_refcount(small), 1);

    /* a frame larger than the bound on an empty queue: nothing queued, no ring */
    CHECK_EQ_INT(sendq_push(&q, f, 100, 9), -ENOBUFS);
    CHECK(q.ring == NULL);
    CHECK_EQ_INT(sendq_count(&q), 0);
    CHECK_EQ_INT(buf_refcount(f), 1);
    /* max_frames 0 refuses everything */
    CHECK_EQ_INT(sendq_push(&q, f, 0, NOLIMIT_BYTES), -ENOBUFS);
    CHECK(q.ring == NULL);
    /* max_frames 1: a tiny ring */
    CHECK_EQ_INT(sendq_push(&q, f, 1, NOLIMIT_BYTES), 0);
    CHECK_EQ_INT(q.cap, 1);
    CHECK_EQ_INT(sendq_push(&q, f, 1, NOLIMIT_BYTES), -ENOBUFS);
    sendq_close(&q);

    buf_unref(small);
    buf_unref(f);
}

/* Push and pop so head is not 0 when the ring must grow, checking FIFO order throughout. */
static void test_wraparound_growth(void)
{
    struct sendq q;
    sendq_init(&q);
    struct buf *frames[64];
    for (int i = 0; i < 64; i++) {
        char text[8];
        int n = snprintf(text, sizeof text, "f%d", i);
        frames[i] = buf_from(text, (size_t)n);
    }
    int next_in = 0, next_out = 0, bad = 0;
    /* fill 6 of 8, pop 5: head = 5 */
    for (; next_in < 6; next_in++)
        CHECK_EQ_INT(sendq_push(&q, frames[next_in], 64, NOLIMIT_BYTES), 0);
    for (int i = 0; i < 5; i++, next_out++)
        bad += sendq_peek(&q, 0) != frames[next_out], sendq_pop(&q, 1);
    CHECK_EQ_INT(q.head, 5);
    CHECK_EQ_INT(q.cap, 8);
    /* 7 more wrap the ring (1 + 7 = 8 entries, head at 5) */
    for (; next_in < 13; next_in++)
        CHECK_EQ_INT(sendq_push(&q, frames[next_in], 64, NOLIMIT_BYTES), 0);
    CHECK_EQ_INT(q.cap, 8);
    CHECK_EQ_INT(q.head, 5);
    CHECK_EQ_INT(sendq_count(&q), 8);
    /* one more grows a wrapped ring */
    CHECK_EQ_INT(sendq_push(&q, frames[next_in++], 64, NOLIMIT_BYTES), 0);
    CHECK_EQ_INT(q.cap, 16);
    CHECK_EQ_INT(sendq_count(&q), 9);
    for (unsigned i = 0; i < sendq_count(&q); i++)
        bad += sendq_peek(&q, i) != frames[next_out + (int)i];
    CHECK_EQ_INT(bad, 0);

    /* a long interleaving, growing up to the 64-frame bound */
    for (int round = 0; round < 500; round++) {
        int pushes = round % 7, pops = round % 5;
        for (int i = 0; i < pushes; i++) {
            int rc = sendq_push(&q, frames[next_in % 64], 64, NOLIMIT_BYTES);
            if (rc == 0)
                next_in++;
            else
                bad += rc != -ENOBUFS || sendq_count(&q) != 64;
        }
        for (int i = 0; i < pops && sendq_count(&q); i++, next_out++)
            bad += sendq_peek(&q, 0) != frames[next_out % 64], sendq_pop(&q, 1);
        bad += sendq_count(&q) != (unsigned)(next_in - next_out);
        bad += q.cap > 64;
        bad += (sendq_count(&q) == 0) != (q.ring == NULL);
    }
    CHECK_EQ_INT(bad, 0);
    sendq_close(&q);
    for (int i = 0; i < 64; i++) {
        CHECK_EQ_INT(buf_refcount(frames[i]), 1);
        buf_unref(frames[i]);
    }
}

int main(void)
{
    test_order_and_refs();
    test_bounds();
    test_wraparound_growth();
    TEST_MAIN_END();
}
