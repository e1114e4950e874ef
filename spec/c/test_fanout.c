/* test_fanout.c: room fanout into per-member send queues, slow consumers, the bus, counters. */
#include "buf.h"
#include "fanout.h"
#include "room.h"
#include "sendq.h"
#include "testlib.h"

#include <errno.h>
#include <stdint.h>

#define N 50

/* What the transport would be: one bounded send queue per member id 1..N. */
struct transport {
    struct sendq q[N + 1];
    unsigned max_frames[N + 1];
    unsigned calls[N + 1];
    unsigned failed;
};

static int deliver(void *ud, room_member_t m, struct buf *frame)
{
    struct transport *t = ud;
    if (m == 0 || m > N)
        return -EINVAL;
    t->calls[m]++;
    int rc = sendq_push(&t->q[m], frame, t->max_frames[m], SIZE_MAX);
    if (rc < 0)
        t->failed++; /* a real transport schedules the disconnect here */
    return rc;
}

struct bus_log {
    unsigned publishes;
    char last_room[32];
    size_t last_len;
    struct buf *last_frame;
};

static int publish(void *bus_ud, const char *room, size_t len, struct buf *frame)
{
    struct bus_log *log = bus_ud;
    log->publishes++;
    log->last_len = len < sizeof log->last_room ? len : sizeof log->last_room - 1;
    memcpy(log->last_room, room, log->last_len);
    log->last_room[log->last_len] = '\0';
    log->last_frame = frame;
    return 0;
}

static void transport_init(struct transport *t)
{
    memset(t, 0, sizeof *t);
    for (int m = 0; m <= N; m++) {
        sendq_init(&t->q[m]);
        t->max_frames[m] = 16;
    }
}

static void transport_close(struct transport *t)
{
    for (int m = 0; m <= N; m++)
        sendq_close(&t->q[m]);
}

static void test_fanout_room(void)
{
    struct room_registry *rooms = room_registry_new();
    static struct transport t;
    transport_init(&t);
    struct fanout *f = fanout_new(rooms, deliver, &t);
    CHECK(f != NULL);
    if (!f)
        return;
    for (room_member_t m = 1; m <= N; m++)
        CHECK_EQ_INT(room_join(rooms, m, "chat", 4), 0);
    CHECK_EQ_INT(room_join(rooms, 1, "other", 5), 0);

    struct buf *frame = buf_from("42[\"msg\",\"hi\"]", 15);
    CHECK_EQ_INT(fanout_room(f, "chat", 4, frame, 0), N);
    /* one shared buffer: every queue holds a reference, nothing was copied */
    CHECK_EQ_INT(buf_refcount(frame), N + 1);
    int bad = 0;
    for (int m = 1; m <= N; m++)
        bad += sendq_count(&t.q[m]) != 1 || sendq_peek(&t.q[m], 0) != frame;
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(fanout_frames(f), 1);
    CHECK_EQ_INT(fanout_deliveries(f), N);

    /* except excludes exactly one member */
    CHECK_EQ_INT(fanout_room(f, "chat", 4, frame, 7), N - 1);
    CHECK_EQ_INT(buf_refcount(frame), 2 * N);
    CHECK_EQ_INT(sendq_count(&t.q[7]), 1);
    CHECK_EQ_INT(t.calls[7], 1);
    bad = 0;
    for (int m = 1; m <= N; m++)
        bad += m != 7 && sendq_count(&t.q[m]) != 2;
    CHECK_EQ_INT(bad, 0);
    /* an except that is not in the room excludes nobody */
    CHECK_EQ_INT(fanout_room(f, "chat", 4, frame, 999), N);

    /* unknown room: nobody, but still counted as an emitted frame */
    CHECK_EQ_INT(fanout_room(f, "nope", 4, frame, 0), 0);
    CHECK_EQ_INT(fanout_frames(f), 4);
    CHECK_EQ_INT(fanout_deliveries(f), 3 * N - 1);

    /* the caller drops its reference; the queues keep the frame alive */
    buf_unref(frame);
    CHECK_EQ_INT(buf_refcount(sendq_peek(&t.q[1], 0)), 3 * N - 1);
    transport_close(&t);
    fanout_free(f);
    room_registry_free(rooms);
}

static void test_slow_consumer(void)
{
    struct room_registry *rooms = room_registry_new();
    static struct transport t;
    transport_init(&t);
    struct fanout *f = fanout_new(rooms, deliver, &t);
    for (room_member_t m = 1; m <= 10; m++)
        CHECK_EQ_INT(room_join(rooms, m, "game", 4), 0);
    t.max_frames[4] = 2; /* member 4 is slow: two frames and it is full */

    struct buf *frames[3];
    for (int i = 0; i < 3; i++) {
        frames[i] = buf_from("x", 1);
        CHECK_EQ_INT(fanout_room(f, "game", 4, frames[i], 0), i < 2 ? 10 : 9);
    }
    CHECK_EQ_INT(t.failed, 1);
    CHECK_EQ_INT(sendq_count(&t.q[4]), 2);
    CHECK(sendq_peek(&t.q[4], 1) == frames[1]);
    int bad = 0;
    for (int m = 1; m <= 10; m++)
        bad += m != 4 && (sendq_count(&t.q[m]) != 3 || sendq_peek(&t.q[m], 2) != frames[2]);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(buf_refcount(frames[2]), 1 + 9); /* the slow member holds no reference */
    CHECK_EQ_INT(fanout_deliveries(f), 29);
    CHECK_EQ_INT(fanout_frames(f), 3);

    /* the per-member path reports the queue's refusal */
    CHECK_EQ_INT(fanout_member(f, 4, frames[0]), -ENOBUFS);
    CHECK_EQ_INT(fanout_member(f, 5, frames[0]), 0);
    CHECK_EQ_INT(sendq_count(&t.q[5]), 4);
    CHECK_EQ_INT(fanout_deliveries(f), 30);
    CHECK_EQ_INT(fanout_frames(f), 3);

    for (int i = 0; i < 3; i++)
        buf_unref(frames[i]);
    transport_close(&t);
    fanout_free(f);
    room_registry_free(rooms);
}

static void test_bus(void)
{
    struct room_registry *rooms = room_registry_new();
    static struct transport t;
    transport_init(&t);
    struct fanout *f = fanout_new(rooms, deliver, &t);
    struct bus_log log = {0};
    struct fanout_bus bus = {publish, &log};
    fanout_set_bus(f, &bus);
    bus.publish = NULL; /* copied: later changes to the caller's struct do not matter */
    for (room_member_t m = 1; m <= 3; m++)
        CHECK_EQ_INT(room_join(rooms, m, "r1", 2), 0);

    struct buf *frame = buf_from("hello", 5);
    CHECK_EQ_INT(fanout_room(f, "r1", 2, frame, 2), 2);
    CHECK_EQ_INT(log.publishes, 1);
    CHECK_EQ_STR(log.last_room, "r1");
    CHECK(log.last_frame == frame);
    /* published even with no local member: other instances may have some */
    CHECK_EQ_INT(fanout_room(f, "empty", 5, frame, 0), 0);
    CHECK_EQ_INT(log.publishes, 2);
    CHECK_EQ_STR(log.last_room, "empty");

    /* frames from the bus are delivered locally and never republished */
    CHECK_EQ_INT(fanout_deliver_remote(f, "r1", 2, frame), 3);
    CHECK_EQ_INT(log.publishes, 2);
    CHECK_EQ_INT(sendq_count(&t.q[2]), 1);
    CHECK_EQ_INT(fanout_frames(f), 3);
    CHECK_EQ_INT(fanout_deliveries(f), 5);

    /* fanout_member never publishes */
    CHECK_EQ_INT(fanout_member(f, 1, frame), 0);
    CHECK_EQ_INT(log.publishes, 2);

    /* detached: no publish */
    fanout_set_bus(f, NULL);
    CHECK_EQ_INT(fanout_room(f, "r1", 2, frame, 0), 3);
    CHECK_EQ_INT(log.publishes, 2);
    CHECK_EQ_INT(buf_refcount(frame), 1 + 2 + 3 + 1 + 3);

    buf_unref(frame);
    transport_close(&t);
    fanout_free(f);
    fanout_free(NULL);
    room_registry_free(rooms);
}

int main(void)
{
    test_fanout_room();
    test_slow_consumer();
    test_bus();
    TEST_MAIN_END();
}
