/* test_timer.c: the hashed timer wheel: timing, order, cancel, callbacks that reschedule or
 * cancel, far-future nodes, a randomized run against a reference, and timer_next_in. */
#include "testlib.h"
#include "timer.h"

#include <stdint.h>
#include <stdlib.h>

/* A node's owner; node is the first member so the callback can cast back. */
struct item {
    struct timer_node node;
    int id;
    int fires;
    uint64_t fired_at;
    uint64_t period;         /* > 0: reschedule itself this far after now */
    struct item *victim;     /* cancelled by this item's callback */
    struct item *reschedule; /* moved to reschedule_at by this item's callback */
    uint64_t reschedule_at;
};

/* What the callbacks see: the clock and a log of fired ids. */
struct run {
    uint64_t now;
    int log[64];
    int nlog;
    int pending_in_cb; /* sum of timer_pending(self) seen inside callbacks */
    struct timer_wheel *w;
};

static void on_fire(struct timer_node *node, void *ud)
{
    struct item *it = (struct item *)node;
    struct run *run = ud;
    it->fires++;
    it->fired_at = run->now;
    run->pending_in_cb += timer_pending(node);
    if (run->nlog < 64)
        run->log[run->nlog++] = it->id;
    if (it->victim)
        timer_cancel(&it->victim->node);
    if (it->reschedule)
        timer_schedule(run->w, &it->reschedule->node, it->reschedule_at);
    if (it->period)
        timer_schedule(run->w, node, run->now + it->period);
}

static void item_init(struct item *it, int id)
{
    memset(it, 0, sizeof *it);
    timer_node_init(&it->node, on_fire);
    it->id = id;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void test_args(void)
{
    CHECK(timer_wheel_new(0, 0, 64) == NULL);
    CHECK(timer_wheel_new(0, 10, 0) == NULL);
    CHECK(timer_wheel_new(0, 10, 48) == NULL);
    struct timer_wheel *w = timer_wheel_new(0, 10, 1);
    CHECK(w != NULL);
    if (!w)
        return;
    CHECK_EQ_INT(timer_count(w), 0);
    CHECK(timer_next_in(w, 0) == UINT64_MAX);
    CHECK_EQ_INT(timer_advance(w, 1000, NULL), 0);
    timer_wheel_free(w);
    timer_wheel_free(NULL);
}

/* Advancing 1 ms at a time fires each node exactly at its due time, in due order. */
static void test_order_exact(void)
{
    struct run run = {.now = 1000};
    run.w = timer_wheel_new(1000, 10, 64);
    struct item it[5];
    uint64_t due[5] = {1055, 1020, 1020, 1000, 1003};
    for (int i = 0; i < 5; i++) {
        item_init(&it[i], i);
        timer_schedule(run.w, &it[i].node, due[i]);
        CHECK(timer_pending(&it[i].node));
    }
    CHECK_EQ_INT(timer_count(run.w), 5);
    CHECK_EQ_INT(timer_next_in(run.w, 1000), 0);
    unsigned total = 0;
    for (run.now = 1000; run.now <= 1100; run.now++)
        total += timer_advance(run.w, run.now, &run);
    CHECK_EQ_INT(total, 5);
    CHECK_EQ_INT(run.pending_in_cb, 0); /* unscheduled before its callback */
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(it[i].fires, 1);
        CHECK_EQ_INT(it[i].fired_at, due[i]);
        CHECK(!timer_pending(&it[i].node));
    }
    int want[5] = {3, 4, 1, 2, 0};
    CHECK_EQ_INT(run.nlog, 5);
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(run.log[i], want[i]);
    CHECK_EQ_INT(timer_count(run.w), 0);
    CHECK(timer_next_in(run.w, run.now) == UINT64_MAX);
    timer_wheel_free(run.w);
}

/* Advancing in coarse, unaligned steps: never early, always by the first advance at or past
 * due (so within due + step). */
static void test_coarse_steps(void)
{
    struct run run = {.now = 5};
    run.w = timer_wheel_new(5, 10, 16);
    struct item it[40];
    for (int i = 0; i < 40; i++) {
        item_init(&it[i], i);
        timer_schedule(run.w, &it[i].node, 5 + (uint64_t)i * 13); /* up to ~3 revolutions */
    }
    int bad = 0;
    while (run.now < 1000) {
        uint64_t prev = run.now;
        run.now += 17;
        timer_advance(run.w, run.now, &run);
        for (int i = 0; i < 40; i++) {
            uint64_t due = 5 + (uint64_t)i * 13;
            if (due <= run.now)
                bad += it[i].fires != 1 || (due > prev && it[i].fired_at != run.now);
            else
                bad += it[i].fires != 0;
        }
    }
    CHECK_EQ_INT(bad, 0);
    timer_wheel_free(run.w);
}

static void test_cancel(void)
{
    struct run run = {.now = 0};
    run.w = timer_wheel_new(0, 10, 8);
    struct item a, b, c;
    item_init(&a, 1);
    item_init(&b, 2);
    item_init(&c, 3);
    timer_cancel(&a.node); /* not scheduled: harmless */
    CHECK(!timer_pending(&a.node));
    timer_schedule(run.w, &a.node, 50);
    timer_schedule(run.w, &b.node, 50);
    timer_schedule(run.w, &c.node, 30);
    timer_cancel(&a.node);
    timer_cancel(&a.node);
    CHECK(!timer_pending(&a.node));
    CHECK_EQ_INT(timer_count(run.w), 2);
    /* rescheduling replaces the earlier schedule: c moves from 30 to 70 */
    timer_schedule(run.w, &c.node, 70);
    CHECK_EQ_INT(timer_count(run.w), 2);
    CHECK_EQ_INT(timer_next_in(run.w, 0), 50);
    for (run.now = 0; run.now <= 100; run.now += 5)
        timer_advance(run.w, run.now, &run);
    CHECK_EQ_INT(a.fires, 0);
    CHECK_EQ_INT(b.fires, 1);
    CHECK_EQ_INT(b.fired_at, 50);
    CHECK_EQ_INT(c.fires, 1);
    CHECK_EQ_INT(c.fired_at, 70);

    /* freeing the wheel leaves scheduled nodes unlinked and uncalled */
    timer_schedule(run.w, &a.node, 500);
    timer_schedule(run.w, &b.node, 5000);
    timer_wheel_free(run.w);
    CHECK(!timer_pending(&a.node));
    CHECK(!timer_pending(&b.node));
    CHECK_EQ_INT(a.fires, 0);
}

static void test_callbacks(void)
{
    struct run run = {.now = 0};
    run.w = timer_wheel_new(0, 10, 8);

    /* a periodic node rescheduling itself every 50 ms */
    struct item p;
    item_init(&p, 1);
    p.period = 50;
    timer_schedule(run.w, &p.node, 50);
    for (run.now = 0; run.now <= 1000; run.now++)
        timer_advance(run.w, run.now, &run);
    CHECK_EQ_INT(p.fires, 20);
    CHECK_EQ_INT(p.fired_at, 1000);
    CHECK(timer_pending(&p.node));
    timer_cancel(&p.node);

    /* a callback that reschedules itself at once fires once per advance (no livelock) */
    struct item q;
    item_init(&q, 2);
    q.period = 0;
    q.reschedule = &q;
    q.reschedule_at = 0; /* always overdue */
    timer_schedule(run.w, &q.node, run.now);
    CHECK_EQ_INT(timer_advance(run.w, run.now, &run), 1);
    CHECK_EQ_INT(timer_advance(run.w, run.now, &run), 1);
    CHECK_EQ_INT(timer_advance(run.w, run.now + 10000, &run), 1);
    CHECK_EQ_INT(q.fires, 3);
    timer_cancel(&q.node);
    run.now += 10000;

    /* in the same slot: the first cancels the second, which must not fire */
    struct item a, b, c, d;
    item_init(&a, 10);
    item_init(&b, 11);
    item_init(&c, 12);
    item_init(&d, 13);
    uint64_t t0 = run.now;
    a.victim = &b;
    timer_schedule(run.w, &a.node, t0 + 20);
    timer_schedule(run.w, &b.node, t0 + 20);
    /* c cancels d, due in a later slot of the same advance; c moves a to the far future */
    c.victim = &d;
    c.reschedule = &a;
    c.reschedule_at = t0 + 5000;
    timer_schedule(run.w, &c.node, t0 + 30);
    timer_schedule(run.w, &d.node, t0 + 60);
    run.now = t0 + 100;
    CHECK_EQ_INT(timer_advance(run.w, run.now, &run), 2); /* a and c */
    CHECK_EQ_INT(a.fires, 1);
    CHECK_EQ_INT(b.fires, 0);
    CHECK_EQ_INT(c.fires, 1);
    CHECK_EQ_INT(d.fires, 0);
    CHECK(timer_pending(&a.node));
    CHECK_EQ_INT(timer_count(run.w), 1);
    CHECK_EQ_INT(timer_next_in(run.w, run.now), 4900);
    run.now = t0 + 4999;
    CHECK_EQ_INT(timer_advance(run.w, run.now, &run), 0);
    run.now = t0 + 5000;
    CHECK_EQ_INT(timer_advance(run.w, run.now, &run), 1);
    CHECK_EQ_INT(a.fires, 2);
    CHECK_EQ_INT(timer_count(run.w), 0);
    CHECK_EQ_INT(run.pending_in_cb, 0);
    timer_wheel_free(run.w);
}

/* Nodes several revolutions away stay put while the wheel passes them. */
static void test_far_future(void)
{
    struct run run = {.now = 0};
    run.w = timer_wheel_new(0, 10, 8); /* one revolution = 80 ms */
    struct item near, far, farther;
    item_init(&near, 1);
    item_init(&far, 2);
    item_init(&farther, 3);
    timer_schedule(run.w, &near.node, 85);
    timer_schedule(run.w, &far.node, 1005);
    timer_schedule(run.w, &farther.node, 1000000);
    CHECK_EQ_INT(timer_next_in(run.w, 0), 85);
    int early = 0;
    for (run.now = 0; run.now < 1005; run.now += 3) {
        timer_advance(run.w, run.now, &run);
        early += far.fires != 0;
        if (run.now >= 85 && run.now < 88)
            CHECK_EQ_INT(near.fires, 1);
    }
    CHECK_EQ_INT(early, 0);
    CHECK_EQ_INT(run.now, 1005);
    CHECK_EQ_INT(timer_next_in(run.w, 1004), 1);
    CHECK_EQ_INT(timer_advance(run.w, 1004, &run), 0);
    CHECK_EQ_INT(timer_advance(run.w, 1005, &run), 1);
    CHECK_EQ_INT(far.fires, 1);
    CHECK_EQ_INT(far.fired_at, 1005);
    CHECK_EQ_INT(timer_next_in(run.w, 1005), 1000000 - 1005);
    /* one jump of many revolutions: nothing early, then everything due */
    run.now = 999999;
    CHECK_EQ_INT(timer_advance(run.w, run.now, &run), 0);
    run.now = 2000000;
    CHECK_EQ_INT(timer_advance(run.w, run.now, &run), 1);
    CHECK_EQ_INT(farther.fires, 1);
    CHECK_EQ_INT(farther.fired_at, 2000000);
    timer_wheel_free(run.w);
}

#define MANY 10000

static void test_random_reference(void)
{
    struct run run = {.now = 123456};
    run.w = timer_wheel_new(run.now, 7, 256); /* a revolution is 1792 ms */
    struct item *it = calloc(MANY, sizeof *it);
    uint64_t *due = calloc(MANY, sizeof *due); /* reference: 0 = not scheduled */
    uint64_t seed = 0xdeadbeefcafef00dULL;
    for (int i = 0; i < MANY; i++) {
        item_init(&it[i], i);
        due[i] = run.now + rng_next(&seed) % 20000;
        timer_schedule(run.w, &it[i].node, due[i]);
    }
    int bad_fire = 0, bad_count = 0, late_next = 0, busy_next = 0, steps = 0;
    uint64_t end = run.now + 30000;
    while (run.now < end) {
        /* some cancels and reschedules between advances */
        for (int k = 0; k < 20; k++) {
            int i = (int)(rng_next(&seed) % MANY);
            if (rng_next(&seed) % 3 == 0) {
                timer_cancel(&it[i].node);
                due[i] = 0;
            } else {
                due[i] = run.now + rng_next(&seed) % 5000; /* may be due right now */
                timer_schedule(run.w, &it[i].node, due[i]);
            }
        }
        /* timer_next_in is never later than the true earliest due, and not 0 needlessly */
        uint64_t min_due = UINT64_MAX;
        unsigned pending = 0;
        for (int i = 0; i < MANY; i++) {
            if (due[i]) {
                pending++;
                if (due[i] < min_due)
                    min_due = due[i];
            }
        }
        uint64_t next = timer_next_in(run.w, run.now);
        uint64_t truth = min_due == UINT64_MAX ? UINT64_MAX
                         : min_due <= run.now  ? 0
                                               : min_due - run.now;
        late_next += next > truth;
        busy_next += truth > 0 && next == 0;
        bad_count += timer_count(run.w) != pending;

        uint64_t step =
            rng_next(&seed) % 10 == 0 ? 1000 + rng_next(&seed) % 4000 : 1 + rng_next(&seed) % 300;
        run.now += step;
        for (int i = 0; i < MANY; i++)
            it[i].fires = 0;
        unsigned fired = timer_advance(run.w, run.now, &run);
        unsigned want = 0;
        for (int i = 0; i < MANY; i++) {
            int should = due[i] && due[i] <= run.now;
            want += (unsigned)should;
            bad_fire += it[i].fires != should;
            bad_fire += timer_pending(&it[i].node) != (due[i] && !should);
            if (should)
                due[i] = 0;
        }
        bad_fire += fired != want;
        steps++;
    }
    CHECK(steps > 50);
    CHECK_EQ_INT(bad_fire, 0);
    CHECK_EQ_INT(bad_count, 0);
    CHECK_EQ_INT(late_next, 0);
    CHECK_EQ_INT(busy_next, 0);
    timer_wheel_free(run.w); /* before the items it may still link */
    free(due);
    free(it);
}

int main(void)
{
    test_args();
    test_order_exact();
    test_coarse_steps();
    test_cancel();
    test_callbacks();
    test_far_future();
    test_random_reference();
    TEST_MAIN_END();
}
