/* fanout.c: one frame to every member of a room, through the transport's deliver callback,
 * plus an optional publish to the bus for other instances. */
#include "fanout.h"

#include <stdlib.h>

struct fanout {
    struct room_registry *rooms; /* borrowed */
    fanout_deliver_cb deliver;
    void *ud;
    struct fanout_bus bus;
    int has_bus;
    unsigned long long frames;     /* fanout_room + fanout_deliver_remote calls */
    unsigned long long deliveries; /* deliver callbacks that returned 0 */
};

/* Deliver to the room's local members except `except`; returns how many accepted. */
static size_t deliver_local(struct fanout *f, const char *room, size_t len, struct buf *frame,
                            room_member_t except)
{
    const room_member_t *ids;
    size_t count, accepted = 0;
    f->frames++;
    if (room_members(f->rooms, room, len, &ids, &count) != 0)
        return 0;
    /* deliver may not touch the registry (fanout.h), so ids stays valid for the whole loop */
    for (size_t i = 0; i < count; i++) {
        if (ids[i] == except && except != 0)
            continue;
        if (f->deliver(f->ud, ids[i], frame) == 0)
            accepted++;
    }
    f->deliveries += accepted;
    return accepted;
}

/* New engine over `rooms` (borrowed, must outlive it); deliver/ud are called per recipient.
 * The caller owns the result (fanout_free). NULL on allocation failure. */
struct fanout *fanout_new(struct room_registry *rooms, fanout_deliver_cb deliver, void *ud)
{
    struct fanout *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->rooms = rooms;
    f->deliver = deliver;
    f->ud = ud;
    return f;
}

/* Free the engine (not the registry). NULL is ignored. */
void fanout_free(struct fanout *f)
{
    free(f);
}

/* Attach a bus (the struct is copied; bus_ud stays borrowed) or detach it with NULL. */
void fanout_set_bus(struct fanout *f, const struct fanout_bus *bus)
{
    if (bus && bus->publish) {
        f->bus = *bus;
        f->has_bus = 1;
    } else {
        f->bus = (struct fanout_bus){0};
        f->has_bus = 0;
    }
}

/* Deliver frame (borrowed) to every local member of `room` but `except` (0: none), then publish
 * it once on the bus when one is set, even with no local members. A failed publish is not
 * reported here (the bus logs it). Returns the number of local members that accepted. */
size_t fanout_room(struct fanout *f, const char *room, size_t len, struct buf *frame,
                   room_member_t except)
{
    size_t accepted = deliver_local(f, room, len, frame, except);
    if (f->has_bus)
        (void)f->bus.publish(f->bus.bus_ud, room, len, frame);
    return accepted;
}

/* Deliver a frame that came from the bus (borrowed) to local members only; never republished.
 * Returns the number that accepted. */
size_t fanout_deliver_remote(struct fanout *f, const char *room, size_t len, struct buf *frame)
{
    return deliver_local(f, room, len, frame, 0);
}

/* Deliver frame (borrowed) to one member; counted as a delivery when accepted. Returns the
 * deliver callback's result. */
int fanout_member(struct fanout *f, room_member_t m, struct buf *frame)
{
    int rc = f->deliver(f->ud, m, frame);
    if (rc == 0)
        f->deliveries++;
    return rc;
}

/* Frames emitted to rooms since creation (fanout_room and fanout_deliver_remote calls). */
unsigned long long fanout_frames(const struct fanout *f)
{
    return f->frames;
}

/* Deliveries accepted since creation (room recipients and fanout_member). */
unsigned long long fanout_deliveries(const struct fanout *f)
{
    return f->deliveries;
}
