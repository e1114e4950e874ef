/* room: the registry of rooms and their members. Pure (no I/O, no globals): a member is an
 * opaque 64-bit id (a connection id in practice). Rooms are created on first join and freed
 * when their last member leaves. Every operation is O(1) average except room_leave_all
 * (O(rooms of the member)). Bounds are enforced by the caller (max rooms per member, max
 * name length); the registry itself only refuses empty names. */
#ifndef LUCKYSYNC_ROOM_H
#define LUCKYSYNC_ROOM_H

#include <stddef.h>
#include <stdint.h>

typedef uint64_t room_member_t;

struct room_registry;

struct room_registry *room_registry_new(void);
void room_registry_free(struct room_registry *r);

/* Add member m to room `name` (len bytes, not NUL-terminated necessarily). Returns 0 when
 * joined, 1 when m was already a member, -EINVAL for an empty name, -ENOMEM. */
int room_join(struct room_registry *r, room_member_t m, const char *name, size_t len);
/* Remove m from the room. Returns 0, or -ENOENT when m was not a member. Frees an empty room. */
int room_leave(struct room_registry *r, room_member_t m, const char *name, size_t len);
/* Remove m from every room it is in (disconnect). */
void room_leave_all(struct room_registry *r, room_member_t m);

int room_is_member(const struct room_registry *r, room_member_t m, const char *name, size_t len);
/* Number of members of a room (0 when it does not exist). */
size_t room_size(const struct room_registry *r, const char *name, size_t len);
/* Number of live rooms. */
size_t room_count(const struct room_registry *r);

/* Members of a room: sets *out to an array of *count ids (borrowed, valid until the next
 * mutation of the registry). Returns 0, or -ENOENT when the room does not exist. */
int room_members(const struct room_registry *r, const char *name, size_t len,
                 const room_member_t **out, size_t *count);

/* Rooms of member m, in join order (index 0 is the oldest). room_member_room_count returns
 * how many; room_member_room sets *name and *len (borrowed, NUL-terminated, valid while m stays
 * in that room) and returns 0, or -ENOENT when i is out of range. */
size_t room_member_room_count(const struct room_registry *r, room_member_t m);
int room_member_room(const struct room_registry *r, room_member_t m, size_t i, const char **name,
                     size_t *len);

#endif
