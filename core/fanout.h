/* fanout: delivers one already-serialised frame to every member of a room. The frame is a
 * reference-counted buf built once; each recipient gets a reference through the deliver
 * callback (the transport pushes it on the connection's bounded send queue and asks for a
 * writeable callback). No copy and no allocation per recipient happen here.
 *
 * A bus (Redis pub/sub in the multi-instance issue) can sit under the engine: when set, room
 * emits are also published on it, and frames the bus receives from other instances come back
 * through fanout_deliver_remote(). Uses room (the registry) and buf. */
#ifndef LUCKYSYNC_FANOUT_H
#define LUCKYSYNC_FANOUT_H

#include <stddef.h>

#include "room.h"

struct buf;
struct fanout;

/* Hand `frame` (borrowed: take buf_ref to keep it) to member m. Returns 0, or a negative
 * value when the member could not take it (e.g. its queue was over its bound; the callee has
 * already scheduled the disconnect). Contract: the callback must not change the room registry
 * (no join, leave or leave_all, directly or by closing a connection now): fanout iterates the
 * room's member array in place. The transport defers closes to after the fanout returns. */
typedef int (*fanout_deliver_cb)(void *ud, room_member_t m, struct buf *frame);

struct fanout_bus {
    /* Publish frame for `room` to other instances. Borrowed frame. Returns 0 or negative. */
    int (*publish)(void *bus_ud, const char *room, size_t len, struct buf *frame);
    void *bus_ud;
};

/* rooms is borrowed and must outlive the engine. NULL on allocation failure. */
struct fanout *fanout_new(struct room_registry *rooms, fanout_deliver_cb deliver, void *ud);
void fanout_free(struct fanout *f);
/* Attach (or with NULL detach) a bus; copied. */
void fanout_set_bus(struct fanout *f, const struct fanout_bus *bus);

/* Deliver frame to every local member of `room` except `except` (0 = nobody excepted), and
 * publish it on the bus if one is set. Returns the number of local members that accepted it. */
size_t fanout_room(struct fanout *f, const char *room, size_t len, struct buf *frame,
                   room_member_t except);
/* Local delivery only (a frame that came from the bus). */
size_t fanout_deliver_remote(struct fanout *f, const char *room, size_t len, struct buf *frame);
/* One member (per-recipient frames use the same queues). Returns the deliver cb's result. */
int fanout_member(struct fanout *f, room_member_t m, struct buf *frame);

/* Counters since creation: frames emitted to rooms, and individual deliveries. */
unsigned long long fanout_frames(const struct fanout *f);
unsigned long long fanout_deliveries(const struct fanout *f);

#endif
