/* timer.c: a hashed timer wheel. Each slot is a circular doubly linked list closed by a
 * sentinel node kept in the wheel, so a node unlinks itself in O(1) without knowing its wheel
 * (timer_cancel takes no wheel). A node due at tick T = due_ms / tick_ms sits in slot
 * T & (slots - 1); a node further than one revolution away simply stays in its slot while the
 * wheel passes and fires on the revolution that reaches its due time.
 *
 * Invariant: w->cur is the tick of the last advance. Every pending node has T >= cur, except
 * nodes scheduled already overdue, which are placed in slot cur. Hence a node in the slot of
 * tick t (cur < t < cur + slots) is due no earlier than t * tick_ms, which bounds the scan in
 * timer_next_in. */
#include "timer.h"

#include <stdint.h>
#include <stdlib.h>

struct timer_wheel {
    uint64_t tick_ms;
    uint64_t cur;              /* tick of the last advance (or of creation) */
    unsigned mask;             /* slots - 1 */
    uint64_t *occ;             /* a bit per slot that may hold nodes (set on schedule, cleared
                                  when found empty), so empty stretches are skipped a word at
                                  a time */
    struct timer_node slots[]; /* sentinels */
};

#define OCC_SET(w, i) ((w)->occ[(i) >> 6] |= 1ull << ((i)&63))
#define OCC_CLR(w, i) ((w)->occ[(i) >> 6] &= ~(1ull << ((i)&63)))

static void list_init(struct timer_node *s)
{
    s->next = s->prev = s;
}

static void list_insert_tail(struct timer_node *s, struct timer_node *n)
{
    n->next = s;
    n->prev = s->prev;
    s->prev->next = n;
    s->prev = n;
}

static void list_unlink(struct timer_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = NULL;
}

/* Move every node of slot s onto the (empty) list headed by dst, leaving s empty. */
static void list_splice(struct timer_node *s, struct timer_node *dst)
{
    if (s->next == s)
        return;
    dst->next = s->next;
    dst->prev = s->prev;
    dst->next->prev = dst;
    dst->prev->next = dst;
    list_init(s);
}

/* New wheel starting at now_ms; tick_ms > 0 and slots a power of two, else NULL. The caller
 * owns it (timer_wheel_free). NULL on allocation failure. */
struct timer_wheel *timer_wheel_new(uint64_t now_ms, unsigned tick_ms, unsigned slots)
{
    if (tick_ms == 0 || slots == 0 || (slots & (slots - 1)) != 0)
        return NULL;
    size_t size = (size_t)slots * sizeof(struct timer_node);
    if (size / sizeof(struct timer_node) != slots || size > SIZE_MAX - sizeof(struct timer_wheel))
        return NULL; /* 32-bit overflow */
    struct timer_wheel *w = malloc(sizeof *w + size);
    if (!w)
        return NULL;
    w->occ = calloc((slots + 63) / 64, sizeof *w->occ);
    if (!w->occ) {
        free(w);
        return NULL;
    }
    w->tick_ms = tick_ms;
    w->cur = now_ms / tick_ms;
    w->mask = slots - 1;
    for (unsigned i = 0; i < slots; i++) {
        list_init(&w->slots[i]);
        w->slots[i].due_ms = 0;
        w->slots[i].cb = NULL;
    }
    return w;
}

/* Free the wheel; nodes still scheduled are unlinked (their callbacks are not called) and
 * stay owned by their owners. NULL is ignored. */
void timer_wheel_free(struct timer_wheel *w)
{
    if (!w)
        return;
    for (unsigned i = 0; i <= w->mask; i++) {
        struct timer_node *s = &w->slots[i];
        for (struct timer_node *n = s->next, *next; n != s; n = next) {
            next = n->next;
            n->next = n->prev = NULL;
        }
    }
    free(w->occ);
    free(w);
}

/* Prepare a node (in caller-owned storage) to be scheduled; cb runs when it fires. */
void timer_node_init(struct timer_node *n, timer_cb cb)
{
    n->next = n->prev = NULL;
    n->due_ms = 0;
    n->cb = cb;
}

/* Schedule n (borrowed, must stay alive while pending) to fire at due_ms, replacing any
 * earlier schedule. A due time already past fires at the next timer_advance. */
void timer_schedule(struct timer_wheel *w, struct timer_node *n, uint64_t due_ms)
{
    timer_cancel(n);
    n->due_ms = due_ms;
    uint64_t t = due_ms / w->tick_ms;
    if (t < w->cur)
        t = w->cur;
    list_insert_tail(&w->slots[t & w->mask], n);
    OCC_SET(w, (unsigned)(t & w->mask));
}

/* Unschedule n; harmless when it is not scheduled. */
void timer_cancel(struct timer_node *n)
{
    if (n->next)
        list_unlink(n);
}

/* 1 while n is scheduled, else 0 (also inside its own callback). */
int timer_pending(const struct timer_node *n)
{
    return n->next != NULL;
}

/* Fire every node due at or before now_ms, walking the ticks since the last advance (at most
 * one full revolution). Each node is unlinked before its callback, which may reschedule it or
 * cancel others; a node rescheduled into a slot already visited waits for the next advance,
 * so a callback that keeps rescheduling itself cannot livelock the loop. Returns the count. */
unsigned timer_advance(struct timer_wheel *w, uint64_t now_ms, void *ud)
{
    uint64_t from = w->cur;
    uint64_t target = now_ms / w->tick_ms;
    if (target < from)
        target = from; /* clock went back: only recheck the current slot */
    uint64_t span = target - from + 1;
    if (span > (uint64_t)w->mask + 1)
        span = (uint64_t)w->mask + 1; /* a full revolution visits every slot once */
    /* from here on, overdue (re)schedules land in target's slot, which the next advance visits
     * first */
    w->cur = target;

    unsigned fired = 0;
    for (uint64_t i = 0; i < span; i++) {
        unsigned idx = (unsigned)((from + i) & w->mask);
        if (!(w->occ[idx >> 6] & (1ull << (idx & 63))))
            continue;
        struct timer_node *s = &w->slots[idx];
        struct timer_node batch;
        list_init(&batch);
        /* work on a private list: callbacks may cancel or reschedule any node in it */
        list_splice(s, &batch);
        while (batch.next != &batch) {
            struct timer_node *n = batch.next;
            list_unlink(n);
            if (n->due_ms <= now_ms) {
                fired++;
                n->cb(n, ud);
            } else {
                list_insert_tail(s, n); /* a later revolution, or later in this tick */
            }
        }
        if (s->next == s)
            OCC_CLR(w, idx);
    }
    return fired;
}

/* Exact milliseconds from now_ms to the earliest due time (0 when overdue), or UINT64_MAX when
 * nothing is scheduled. Scans slots forward from the current tick and stops once a slot's tick
 * starts after the best due found; O(slots + nodes) at worst. */
uint64_t timer_next_in(const struct timer_wheel *w, uint64_t now_ms)
{
    uint64_t best = UINT64_MAX;
    int found = 0;
    for (uint64_t i = 0; i <= w->mask; i++) {
        unsigned idx = (unsigned)((w->cur + i) & w->mask);
        uint64_t bits = w->occ[idx >> 6] >> (idx & 63);
        if (!bits) { /* nothing in the rest of this word: jump to its end (or the wrap) */
            unsigned to_word_end = 63 - (idx & 63), to_wrap = w->mask - idx;
            i += to_word_end < to_wrap ? to_word_end : to_wrap;
            continue;
        }
        unsigned skip = (unsigned)__builtin_ctzll(bits);
        i += skip;
        if (i > w->mask)
            break;
        uint64_t t = w->cur + i;
        if (found && t <= UINT64_MAX / w->tick_ms && t * w->tick_ms >= best)
            break; /* nodes from here on are due at or after t * tick_ms */
        const struct timer_node *s = &w->slots[t & w->mask];
        for (const struct timer_node *n = s->next; n != s; n = n->next) {
            found = 1;
            if (n->due_ms < best)
                best = n->due_ms;
        }
    }
    if (!found)
        return UINT64_MAX;
    return best <= now_ms ? 0 : best - now_ms;
}

/* Number of scheduled nodes. Cancels do not reach the wheel (timer_cancel takes none), so
 * this walks every slot: O(slots + nodes), for metrics and tests rather than the hot path. */
unsigned timer_count(const struct timer_wheel *w)
{
    unsigned count = 0;
    for (unsigned i = 0; i <= w->mask; i++) {
        const struct timer_node *s = &w->slots[i];
        for (const struct timer_node *n = s->next; n != s; n = n->next)
            count++;
    }
    return count;
}
