/* timer: one shared hashed timer wheel for per-connection deadlines (heartbeats, handshake
 * timeouts, session expiry), so the loop keeps a single lws_sul armed at the earliest slot
 * instead of one OS timer per connection. Pure: time is passed in (milliseconds, monotonic).
 * Nodes are intrusive (embedded in the owner's struct), so adding and cancelling never
 * allocate. Resolution is the wheel's tick; a node never fires early. */
#ifndef LUCKYSYNC_TIMER_H
#define LUCKYSYNC_TIMER_H

#include <stdint.h>

struct timer_node;
typedef void (*timer_cb)(struct timer_node *node, void *ud);

struct timer_node {
    struct timer_node *next, *prev; /* NULL when not scheduled */
    uint64_t due_ms;
    timer_cb cb;
};

struct timer_wheel;

/* tick_ms: resolution; slots: wheel size (a power of two). NULL on allocation failure or when
 * tick_ms is 0 or slots is not a power of two. */
struct timer_wheel *timer_wheel_new(uint64_t now_ms, unsigned tick_ms, unsigned slots);
/* Frees the wheel; scheduled nodes are left unlinked (not called). */
void timer_wheel_free(struct timer_wheel *w);

/* Zero a node before first use. */
void timer_node_init(struct timer_node *n, timer_cb cb);
/* (Re)schedule n to fire at due_ms (cancels a previous schedule). */
void timer_schedule(struct timer_wheel *w, struct timer_node *n, uint64_t due_ms);
/* Cancel; harmless when not scheduled. */
void timer_cancel(struct timer_node *n);
int timer_pending(const struct timer_node *n);

/* Fire every node with due_ms <= now_ms (each is unscheduled before its callback, which may
 * reschedule it or cancel others). Returns the number fired. */
unsigned timer_advance(struct timer_wheel *w, uint64_t now_ms, void *ud);
/* Milliseconds from now_ms until the earliest scheduled node may be due (0 if overdue),
 * or UINT64_MAX when nothing is scheduled. */
uint64_t timer_next_in(const struct timer_wheel *w, uint64_t now_ms);
/* Scheduled nodes; walks every slot (O(slots + nodes)): for metrics and tests. */
unsigned timer_count(const struct timer_wheel *w);

#endif
