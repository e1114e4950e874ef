/* room.c: the room registry. Two open-addressing hash tables (linear probing, backward-shift
 * deletion, so no tombstones) hold name -> struct room and member id -> struct member.
 *
 * A room keeps its members in a dense id array (what fanout iterates) plus a parallel array of
 * back-pointers {member record, position in that member's join-order list}. A member record
 * keeps its rooms in join order as {room, index in the room's id array}. The two sides point at
 * each other, so removing a member from a room is a swap-remove that fixes the moved member's
 * index in O(1), and removing a room from the middle of a member's list shifts the later
 * entries and fixes their back-pointers in O(rooms of member) (bounded by the caller).
 *
 * Every allocation a join needs is made before anything is linked, so -ENOMEM leaves the
 * registry as it was (at most a table or array has grown). */
#include "room.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_MIN_CAP 16 /* slots of a hash table once it holds anything */
#define ROOM_MIN_CAP 4   /* initial member array of a new room */
#define MEMBER_MIN_CAP 4 /* initial room list of a new member record */
#define NOT_FOUND ((size_t)-1)

struct room;
struct member;

/* One membership seen from the member: the room and the member's index in its id array. */
struct membership {
    struct room *room;
    size_t idx;
};

/* Beside each id of a room: whose record holds this membership, and at which position of the
 * record's join-order list. */
struct back {
    struct member *mem;
    size_t pos;
};

struct room {
    uint64_t hash;
    room_member_t *ids; /* dense, count entries */
    struct back *backs; /* parallel to ids */
    size_t count, cap;
    size_t len;
    char name[]; /* len bytes + NUL */
};

struct member {
    room_member_t id;
    struct membership *rooms; /* join order, oldest first */
    size_t count, cap;
};

/* Open-addressing table of entry pointers (NULL = empty slot); cap is 0 or a power of two
 * and used <= cap * 3 / 4. */
struct table {
    void **slots;
    size_t cap;
    size_t used;
};

struct room_registry {
    struct table rooms;   /* struct room * */
    struct table members; /* struct member * */
    uint64_t seed;
};

typedef uint64_t (*entry_hash_fn)(const void *entry, uint64_t seed);

/* The splitmix64 finaliser: spreads every input bit over the low bits the tables index by. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* FNV-1a over the name, started from a per-registry seed, then mixed. The seed only keeps two
 * registries (or two processes, with ASLR) from sharing a layout; it is no defence against a
 * determined flood, which the caller bounds (name length, rooms per member). */
static uint64_t name_hash(uint64_t seed, const char *name, size_t len)
{
    uint64_t h = 14695981039346656037ULL ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)name[i];
        h *= 1099511628211ULL;
    }
    return mix64(h);
}

static uint64_t id_hash(uint64_t seed, room_member_t id)
{
    return mix64(id ^ seed);
}

static uint64_t room_entry_hash(const void *entry, uint64_t seed)
{
    (void)seed;
    return ((const struct room *)entry)->hash;
}

static uint64_t member_entry_hash(const void *entry, uint64_t seed)
{
    return id_hash(seed, ((const struct member *)entry)->id);
}

/* Place e in the first free slot of its probe sequence; the caller ensured there is room. */
static void table_put(struct table *t, void *e, uint64_t h)
{
    size_t mask = t->cap - 1;
    size_t i = (size_t)h & mask;
    while (t->slots[i])
        i = (i + 1) & mask;
    t->slots[i] = e;
    t->used++;
}

/* Move every entry into a fresh array of newcap slots. On -ENOMEM the table is unchanged. */
static int table_rehash(struct table *t, size_t newcap, entry_hash_fn hf, uint64_t seed)
{
    void **slots = calloc(newcap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    void **old = t->slots;
    size_t oldcap = t->cap;
    t->slots = slots;
    t->cap = newcap;
    t->used = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i])
            table_put(t, old[i], hf(old[i], seed));
    free(old);
    return 0;
}

/* Make sure `need` entries fit under the 3/4 load bound. */
static int table_reserve(struct table *t, size_t need, entry_hash_fn hf, uint64_t seed)
{
    size_t cap = t->cap ? t->cap : TABLE_MIN_CAP;
    while (need > cap / 4 * 3) {
        if (cap > SIZE_MAX / 2 / sizeof(void *))
            return -ENOMEM;
        cap *= 2;
    }
    if (cap == t->cap)
        return 0;
    return table_rehash(t, cap, hf, seed);
}

/* Index of the slot holding exactly e (which must be present). */
static size_t table_index_of(const struct table *t, const void *e, uint64_t h)
{
    size_t mask = t->cap - 1;
    size_t i = (size_t)h & mask;
    while (t->slots[i] != e)
        i = (i + 1) & mask;
    return i;
}

/* Empty slot i and pull later entries of the cluster back so every probe sequence stays
 * unbroken (no tombstones). Shrinks a table that fell under 1/8 load, best effort. */
static void table_del_at(struct table *t, size_t i, entry_hash_fn hf, uint64_t seed)
{
    size_t mask = t->cap - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        void *e = t->slots[j];
        if (!e)
            break;
        size_t home = (size_t)hf(e, seed) & mask;
        /* e may fill the hole only if the hole lies on its probe path home..j */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            t->slots[i] = e;
            i = j;
        }
    }
    t->slots[i] = NULL;
    t->used--;
    if (t->used == 0) {
        free(t->slots);
        t->slots = NULL;
        t->cap = 0;
    } else if (t->cap > TABLE_MIN_CAP && t->used < t->cap / 8) {
        (void)table_rehash(t, t->cap / 2, hf, seed); /* failure keeps the larger table */
    }
}

static struct room *room_find(const struct room_registry *r, const char *name, size_t len,
                              uint64_t h)
{
    if (!r->rooms.cap)
        return NULL;
    size_t mask = r->rooms.cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        struct room *room = r->rooms.slots[i];
        if (!room)
            return NULL;
        if (room->hash == h && room->len == len && memcmp(room->name, name, len) == 0)
            return room;
    }
}

static struct member *member_find(const struct room_registry *r, room_member_t id)
{
    if (!r->members.cap)
        return NULL;
    size_t mask = r->members.cap - 1;
    for (size_t i = (size_t)id_hash(r->seed, id) & mask;; i = (i + 1) & mask) {
        struct member *mem = r->members.slots[i];
        if (!mem)
            return NULL;
        if (mem->id == id)
            return mem;
    }
}

/* Position of room in mem's join-order list, or NOT_FOUND. */
static size_t membership_pos(const struct member *mem, const struct room *room)
{
    for (size_t i = 0; i < mem->count; i++)
        if (mem->rooms[i].room == room)
            return i;
    return NOT_FOUND;
}

static void room_destroy(struct room *room)
{
    if (!room)
        return;
    free(room->ids);
    free(room->backs);
    free(room);
}

static void member_destroy(struct member *mem)
{
    if (!mem)
        return;
    free(mem->rooms);
    free(mem);
}

static struct room *room_alloc(const char *name, size_t len, uint64_t h)
{
    if (len > SIZE_MAX - sizeof(struct room) - 1)
        return NULL;
    struct room *room = malloc(sizeof *room + len + 1);
    if (!room)
        return NULL;
    room->hash = h;
    room->count = 0;
    room->cap = ROOM_MIN_CAP;
    room->len = len;
    memcpy(room->name, name, len);
    room->name[len] = '\0';
    room->ids = malloc(ROOM_MIN_CAP * sizeof *room->ids);
    room->backs = malloc(ROOM_MIN_CAP * sizeof *room->backs);
    if (!room->ids || !room->backs) {
        room_destroy(room);
        return NULL;
    }
    return room;
}

static struct member *member_alloc(room_member_t id)
{
    struct member *mem = malloc(sizeof *mem);
    if (!mem)
        return NULL;
    mem->id = id;
    mem->count = 0;
    mem->cap = MEMBER_MIN_CAP;
    mem->rooms = malloc(MEMBER_MIN_CAP * sizeof *mem->rooms);
    if (!mem->rooms) {
        free(mem);
        return NULL;
    }
    return mem;
}

/* Room for one more member. cap only moves once both arrays hold the new size, so a failure
 * half-way leaves a larger ids array and a consistent room. */
static int room_reserve_one(struct room *room)
{
    if (room->count < room->cap)
        return 0;
    if (room->cap > SIZE_MAX / 2 / sizeof(struct back))
        return -ENOMEM;
    size_t cap = room->cap * 2;
    room_member_t *ids = realloc(room->ids, cap * sizeof *ids);
    if (!ids)
        return -ENOMEM;
    room->ids = ids;
    struct back *backs = realloc(room->backs, cap * sizeof *backs);
    if (!backs)
        return -ENOMEM;
    room->backs = backs;
    room->cap = cap;
    return 0;
}

/* Halve the arrays of a room that fell to a quarter of its capacity (best effort). */
static void room_maybe_shrink(struct room *room)
{
    if (room->cap <= ROOM_MIN_CAP * 2 || room->count > room->cap / 4)
        return;
    size_t cap = room->cap / 2;
    room_member_t *ids = realloc(room->ids, cap * sizeof *ids);
    if (!ids)
        return;
    room->ids = ids;
    room->cap = cap; /* both arrays now hold at least cap entries */
    struct back *backs = realloc(room->backs, cap * sizeof *backs);
    if (backs)
        room->backs = backs;
}

static int member_reserve_one(struct member *mem)
{
    if (mem->count < mem->cap)
        return 0;
    if (mem->cap > SIZE_MAX / 2 / sizeof(struct membership))
        return -ENOMEM;
    size_t cap = mem->cap * 2;
    struct membership *rooms = realloc(mem->rooms, cap * sizeof *rooms);
    if (!rooms)
        return -ENOMEM;
    mem->rooms = rooms;
    mem->cap = cap;
    return 0;
}

/* Swap-remove the member at idx of room, fixing the moved member's recorded index; frees the
 * room when it empties. The removed member's own record is the caller's business. */
static void room_remove_at(struct room_registry *r, struct room *room, size_t idx)
{
    size_t last = --room->count;
    if (idx != last) {
        room->ids[idx] = room->ids[last];
        room->backs[idx] = room->backs[last];
        const struct back *b = &room->backs[idx];
        b->mem->rooms[b->pos].idx = idx;
    }
    if (room->count == 0) {
        table_del_at(&r->rooms, table_index_of(&r->rooms, room, room->hash), room_entry_hash,
                     r->seed);
        room_destroy(room);
    } else {
        room_maybe_shrink(room);
    }
}

static void member_drop(struct room_registry *r, struct member *mem)
{
    table_del_at(&r->members, table_index_of(&r->members, mem, id_hash(r->seed, mem->id)),
                 member_entry_hash, r->seed);
    member_destroy(mem);
}

/* Allocate an empty registry; the caller owns it (room_registry_free). NULL on -ENOMEM. */
struct room_registry *room_registry_new(void)
{
    struct room_registry *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->seed = mix64((uint64_t)(uintptr_t)r);
    return r;
}

/* Free the registry with every room and member record in it. NULL is ignored. */
void room_registry_free(struct room_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->rooms.cap; i++)
        room_destroy(r->rooms.slots[i]);
    for (size_t i = 0; i < r->members.cap; i++)
        member_destroy(r->members.slots[i]);
    free(r->rooms.slots);
    free(r->members.slots);
    free(r);
}

/* Add m to room `name` (copied; created on first join), appending it to m's join order.
 * Returns 0, 1 when already a member, -EINVAL for an empty name, or -ENOMEM (nothing changed). */
int room_join(struct room_registry *r, room_member_t m, const char *name, size_t len)
{
    if (!name || len == 0)
        return -EINVAL;
    uint64_t h = name_hash(r->seed, name, len);
    struct room *room = room_find(r, name, len, h);
    struct member *mem = member_find(r, m);
    if (room && mem && membership_pos(mem, room) != NOT_FOUND)
        return 1;

    struct room *new_room = NULL;
    struct member *new_mem = NULL;
    if (!room) {
        if (table_reserve(&r->rooms, r->rooms.used + 1, room_entry_hash, r->seed) < 0)
            goto fail;
        if (!(new_room = room_alloc(name, len, h)))
            goto fail;
        room = new_room;
    } else if (room_reserve_one(room) < 0) {
        goto fail;
    }
    if (!mem) {
        if (table_reserve(&r->members, r->members.used + 1, member_entry_hash, r->seed) < 0)
            goto fail;
        if (!(new_mem = member_alloc(m)))
            goto fail;
        mem = new_mem;
    } else if (member_reserve_one(mem) < 0) {
        goto fail;
    }

    /* nothing below can fail */
    if (new_room)
        table_put(&r->rooms, new_room, h);
    if (new_mem)
        table_put(&r->members, new_mem, id_hash(r->seed, m));
    size_t idx = room->count++;
    size_t pos = mem->count++;
    room->ids[idx] = m;
    room->backs[idx] = (struct back){mem, pos};
    mem->rooms[pos] = (struct membership){room, idx};
    return 0;

fail:
    room_destroy(new_room);
    member_destroy(new_mem);
    return -ENOMEM;
}

/* Remove m from room `name`, keeping the order of m's other rooms. Frees the room when it
 * empties and m's record when m has no rooms left. Returns 0 or -ENOENT (not a member). */
int room_leave(struct room_registry *r, room_member_t m, const char *name, size_t len)
{
    if (!name || len == 0)
        return -ENOENT;
    struct room *room = room_find(r, name, len, name_hash(r->seed, name, len));
    struct member *mem = room ? member_find(r, m) : NULL;
    size_t pos = mem ? membership_pos(mem, room) : NOT_FOUND;
    if (pos == NOT_FOUND)
        return -ENOENT;

    size_t idx = mem->rooms[pos].idx;
    for (size_t j = pos + 1; j < mem->count; j++) {
        struct membership *e = &mem->rooms[j - 1];
        *e = mem->rooms[j];
        e->room->backs[e->idx].pos = j - 1;
    }
    mem->count--;
    room_remove_at(r, room, idx);
    if (mem->count == 0)
        member_drop(r, mem);
    return 0;
}

/* Remove m from every room (on disconnect), freeing rooms that empty and m's record. A member
 * in no room is a no-op. */
void room_leave_all(struct room_registry *r, room_member_t m)
{
    struct member *mem = member_find(r, m);
    if (!mem)
        return;
    /* each removal only touches other members' records (m is in a room once) */
    for (size_t i = mem->count; i-- > 0;)
        room_remove_at(r, mem->rooms[i].room, mem->rooms[i].idx);
    mem->count = 0;
    member_drop(r, mem);
}

/* 1 when m is in room `name`, else 0 (also for an unknown room or member). */
int room_is_member(const struct room_registry *r, room_member_t m, const char *name, size_t len)
{
    if (!name || len == 0)
        return 0;
    const struct room *room = room_find(r, name, len, name_hash(r->seed, name, len));
    const struct member *mem = room ? member_find(r, m) : NULL;
    return mem && membership_pos(mem, room) != NOT_FOUND;
}

/* Members in room `name`; 0 when the room does not exist. */
size_t room_size(const struct room_registry *r, const char *name, size_t len)
{
    if (!name || len == 0)
        return 0;
    const struct room *room = room_find(r, name, len, name_hash(r->seed, name, len));
    return room ? room->count : 0;
}

/* Rooms that exist (have at least one member). */
size_t room_count(const struct room_registry *r)
{
    return r->rooms.used;
}

/* The dense member array of room `name` (borrowed, valid until the registry next changes).
 * Returns 0, or -ENOENT when the room does not exist. */
int room_members(const struct room_registry *r, const char *name, size_t len,
                 const room_member_t **out, size_t *count)
{
    const struct room *room =
        (name && len) ? room_find(r, name, len, name_hash(r->seed, name, len)) : NULL;
    if (!room) {
        *out = NULL;
        *count = 0;
        return -ENOENT;
    }
    *out = room->ids;
    *count = room->count;
    return 0;
}

/* Number of rooms m is in (0 for an unknown member). */
size_t room_member_room_count(const struct room_registry *r, room_member_t m)
{
    const struct member *mem = member_find(r, m);
    return mem ? mem->count : 0;
}

/* The i-th room m joined (0 = oldest): *name is borrowed and NUL-terminated, valid while m
 * stays in that room. Returns 0, or -ENOENT when i is out of range. */
int room_member_room(const struct room_registry *r, room_member_t m, size_t i, const char **name,
                     size_t *len)
{
    const struct member *mem = member_find(r, m);
    if (!mem || i >= mem->count)
        return -ENOENT;
    *name = mem->rooms[i].room->name;
    *len = mem->rooms[i].room->len;
    return 0;
}
