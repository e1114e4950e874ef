/* test_room.c: the room registry against hand-written cases, a reference model and 100k
 * members. */
#include "room.h"
#include "testlib.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#define J(r, m, s) room_join((r), (m), (s), strlen(s))
#define L(r, m, s) room_leave((r), (m), (s), strlen(s))
#define IS(r, m, s) room_is_member((r), (m), (s), strlen(s))
#define SZ(r, s) room_size((r), (s), strlen(s))

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* 1 when the room's member array holds exactly the ids in want[0..n) (any order). */
static int members_are(const struct room_registry *r, const char *room, const room_member_t *want,
                       size_t n)
{
    const room_member_t *ids;
    size_t count;
    if (room_members(r, room, strlen(room), &ids, &count) != 0)
        return n == 0;
    if (count != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        size_t hits = 0;
        for (size_t j = 0; j < count; j++)
            hits += ids[j] == want[i];
        if (hits != 1)
            return 0;
    }
    return 1;
}

static void test_basics(void)
{
    struct room_registry *r = room_registry_new();
    CHECK(r != NULL);
    if (!r)
        return;
    CHECK_EQ_INT(room_count(r), 0);
    CHECK_EQ_INT(room_join(r, 1, "", 0), -EINVAL);
    CHECK_EQ_INT(room_count(r), 0);

    CHECK_EQ_INT(J(r, 1, "lobby"), 0);
    CHECK_EQ_INT(J(r, 1, "lobby"), 1);
    CHECK_EQ_INT(J(r, 2, "lobby"), 0);
    CHECK_EQ_INT(J(r, 2, "game"), 0);
    CHECK_EQ_INT(SZ(r, "lobby"), 2);
    CHECK_EQ_INT(SZ(r, "game"), 1);
    CHECK_EQ_INT(SZ(r, "nope"), 0);
    CHECK_EQ_INT(room_count(r), 2);
    CHECK(IS(r, 1, "lobby"));
    CHECK(IS(r, 2, "lobby"));
    CHECK(!IS(r, 1, "game"));
    CHECK(!IS(r, 3, "lobby"));
    CHECK(!IS(r, 1, "nope"));

    /* names are not NUL-terminated in: a prefix is another room */
    CHECK_EQ_INT(room_join(r, 3, "lobbyXYZ", 3), 0);
    CHECK(room_is_member(r, 3, "lob", 3));
    CHECK(!IS(r, 3, "lobby"));
    const char *name;
    size_t len;
    CHECK_EQ_INT(room_member_room(r, 3, 0, &name, &len), 0);
    CHECK_EQ_INT(len, 3);
    CHECK_EQ_STR(name, "lob");
    CHECK_EQ_INT(room_member_room(r, 3, 1, &name, &len), -ENOENT);
    CHECK_EQ_INT(room_member_room(r, 99, 0, &name, &len), -ENOENT);

    const room_member_t *ids;
    size_t count;
    CHECK_EQ_INT(room_members(r, "nope", 4, &ids, &count), -ENOENT);
    CHECK_EQ_INT(room_members(r, "lobby", 5, &ids, &count), 0);
    CHECK_EQ_INT(count, 2);

    CHECK_EQ_INT(L(r, 1, "game"), -ENOENT);
    CHECK_EQ_INT(L(r, 1, "nope"), -ENOENT);
    CHECK_EQ_INT(L(r, 99, "lobby"), -ENOENT);
    CHECK_EQ_INT(L(r, 1, "lobby"), 0);
    CHECK_EQ_INT(L(r, 1, "lobby"), -ENOENT);
    CHECK_EQ_INT(SZ(r, "lobby"), 1);
    CHECK_EQ_INT(room_member_room_count(r, 1), 0);
    CHECK_EQ_INT(L(r, 2, "lobby"), 0);
    CHECK_EQ_INT(SZ(r, "lobby"), 0);
    CHECK_EQ_INT(room_count(r), 2); /* game, lob */
    CHECK_EQ_INT(L(r, 2, "game"), 0);
    CHECK_EQ_INT(L(r, 3, "lob"), 0);
    CHECK_EQ_INT(room_count(r), 0);

    /* a room can come back after it was freed */
    CHECK_EQ_INT(J(r, 7, "lobby"), 0);
    CHECK_EQ_INT(SZ(r, "lobby"), 1);
    room_registry_free(r);
    room_registry_free(NULL);
}

static void test_swap_remove(void)
{
    struct room_registry *r = room_registry_new();
    for (room_member_t m = 1; m <= 5; m++) {
        CHECK_EQ_INT(J(r, m, "a"), 0);
        CHECK_EQ_INT(J(r, m, "b"), 0);
    }
    /* member 2 sits in the middle: the last one moves into its place */
    CHECK_EQ_INT(L(r, 2, "a"), 0);
    room_member_t want1[] = {1, 3, 4, 5};
    CHECK(members_are(r, "a", want1, 4));
    for (room_member_t m = 1; m <= 5; m++)
        CHECK_EQ_INT(IS(r, m, "a"), m != 2);
    /* the moved member (5) must have its index updated: removing it must remove it */
    CHECK_EQ_INT(L(r, 5, "a"), 0);
    room_member_t want2[] = {1, 3, 4};
    CHECK(members_are(r, "a", want2, 3));
    CHECK_EQ_INT(L(r, 1, "a"), 0);
    room_member_t want3[] = {3, 4};
    CHECK(members_are(r, "a", want3, 2));
    CHECK(IS(r, 3, "a") && IS(r, 4, "a"));
    /* room b was untouched */
    room_member_t wantb[] = {1, 2, 3, 4, 5};
    CHECK(members_are(r, "b", wantb, 5));
    room_registry_free(r);
}

static void test_join_order(void)
{
    struct room_registry *r = room_registry_new();
    const char *rooms[] = {"r0", "r1", "r2", "r3", "r4", "r5", "r6"};
    for (int i = 0; i < 7; i++) {
        CHECK_EQ_INT(J(r, 42, rooms[i]), 0);
        CHECK_EQ_INT(J(r, 43, rooms[i]), 0); /* others in the same rooms */
    }
    CHECK_EQ_INT(room_member_room_count(r, 42), 7);
    CHECK_EQ_INT(L(r, 42, "r3"), 0);
    CHECK_EQ_INT(L(r, 42, "r0"), 0);
    const char *expect[] = {"r1", "r2", "r4", "r5", "r6"};
    CHECK_EQ_INT(room_member_room_count(r, 42), 5);
    for (size_t i = 0; i < 5; i++) {
        const char *name = NULL;
        size_t len = 0;
        CHECK_EQ_INT(room_member_room(r, 42, i, &name, &len), 0);
        CHECK_EQ_STR(name, expect[i]);
        CHECK_EQ_INT(len, 2);
    }
    /* the shifted memberships still work both ways */
    CHECK_EQ_INT(L(r, 43, "r5"), 0);
    CHECK_EQ_INT(L(r, 42, "r5"), 0);
    CHECK_EQ_INT(SZ(r, "r5"), 0);
    CHECK_EQ_INT(J(r, 42, "r0"), 0); /* rejoin goes to the end */
    const char *name;
    size_t len;
    CHECK_EQ_INT(room_member_room(r, 42, 4, &name, &len), 0);
    CHECK_EQ_STR(name, "r0");
    room_registry_free(r);
}

static void test_leave_all(void)
{
    struct room_registry *r = room_registry_new();
    char name[16];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "room%d", i);
        CHECK_EQ_INT(J(r, 1, name), 0);
        if (i % 2)
            CHECK_EQ_INT(J(r, 2, name), 0);
    }
    CHECK_EQ_INT(room_count(r), 20);
    room_leave_all(r, 1);
    CHECK_EQ_INT(room_member_room_count(r, 1), 0);
    CHECK_EQ_INT(room_count(r), 10);
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "room%d", i);
        CHECK(!IS(r, 1, name));
        CHECK_EQ_INT(SZ(r, name), i % 2 ? 1 : 0);
    }
    room_leave_all(r, 1); /* unknown member: no-op */
    room_leave_all(r, 2);
    CHECK_EQ_INT(room_count(r), 0);
    CHECK_EQ_INT(room_member_room_count(r, 2), 0);
    room_registry_free(r);
}

#define MODEL_MEMBERS 50
#define MODEL_ROOMS 30

/* A reference model: membership matrix plus each member's join order. */
struct model {
    int in[MODEL_MEMBERS][MODEL_ROOMS];
    int order[MODEL_MEMBERS][MODEL_ROOMS];
    int n[MODEL_MEMBERS];
};

static void model_leave(struct model *md, int m, int room)
{
    md->in[m][room] = 0;
    for (int i = 0; i < md->n[m]; i++) {
        if (md->order[m][i] == room) {
            memmove(&md->order[m][i], &md->order[m][i + 1],
                    (size_t)(md->n[m] - i - 1) * sizeof(int));
            md->n[m]--;
            return;
        }
    }
}

/* Compare every observable of the registry with the model; returns the mismatch count. */
static int model_compare(const struct room_registry *r, const struct model *md)
{
    int bad = 0;
    char name[16];
    size_t live = 0;
    for (int room = 0; room < MODEL_ROOMS; room++) {
        snprintf(name, sizeof name, "room-%d", room);
        size_t len = strlen(name);
        room_member_t want[MODEL_MEMBERS];
        size_t n = 0;
        for (int m = 0; m < MODEL_MEMBERS; m++) {
            if (md->in[m][room])
                want[n++] = (room_member_t)m + 1;
            bad += room_is_member(r, (room_member_t)m + 1, name, len) != md->in[m][room];
        }
        bad += room_size(r, name, len) != n;
        bad += !members_are(r, name, want, n);
        live += n > 0;
    }
    bad += room_count(r) != live;
    for (int m = 0; m < MODEL_MEMBERS; m++) {
        bad += room_member_room_count(r, (room_member_t)m + 1) != (size_t)md->n[m];
        for (int i = 0; i < md->n[m]; i++) {
            const char *got = NULL;
            size_t len = 0;
            snprintf(name, sizeof name, "room-%d", md->order[m][i]);
            if (room_member_room(r, (room_member_t)m + 1, (size_t)i, &got, &len) != 0 ||
                strcmp(got, name) != 0 || len != strlen(name))
                bad++;
        }
    }
    return bad;
}

static void test_model(void)
{
    struct room_registry *r = room_registry_new();
    static struct model md;
    memset(&md, 0, sizeof md);
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    char name[16];
    int total_bad = 0, steps_bad = 0;
    for (int step = 0; step < 2000; step++) {
        int m = (int)(rng_next(&seed) % MODEL_MEMBERS);
        int room = (int)(rng_next(&seed) % MODEL_ROOMS);
        unsigned op = (unsigned)(rng_next(&seed) % 100);
        snprintf(name, sizeof name, "room-%d", room);
        size_t len = strlen(name);
        room_member_t id = (room_member_t)m + 1;
        if (op < 55) {
            int rc = room_join(r, id, name, len);
            if (rc != (md.in[m][room] ? 1 : 0))
                total_bad++;
            if (!md.in[m][room]) {
                md.in[m][room] = 1;
                md.order[m][md.n[m]++] = room;
            }
        } else if (op < 95) {
            int rc = room_leave(r, id, name, len);
            if (rc != (md.in[m][room] ? 0 : -ENOENT))
                total_bad++;
            if (md.in[m][room])
                model_leave(&md, m, room);
        } else {
            room_leave_all(r, id);
            while (md.n[m])
                model_leave(&md, m, md.order[m][0]);
        }
        int bad = model_compare(r, &md);
        total_bad += bad;
        steps_bad += bad > 0;
    }
    CHECK_EQ_INT(total_bad, 0);
    CHECK_EQ_INT(steps_bad, 0);
    for (int m = 0; m < MODEL_MEMBERS; m++)
        room_leave_all(r, (room_member_t)m + 1);
    CHECK_EQ_INT(room_count(r), 0);
    room_registry_free(r);
}

#define BIG 100000

static void test_large(void)
{
    struct room_registry *r = room_registry_new();
    room_member_t *order = malloc(BIG * sizeof *order);
    int join_bad = 0;
    for (size_t i = 0; i < BIG; i++) {
        order[i] = (room_member_t)i * 7919 + 3; /* sparse ids */
        join_bad += J(r, order[i], "big") != 0;
        if (i % 10 == 0)
            join_bad += J(r, order[i], "tenth") != 0;
    }
    CHECK_EQ_INT(join_bad, 0);
    CHECK_EQ_INT(SZ(r, "big"), BIG);
    CHECK_EQ_INT(SZ(r, "tenth"), BIG / 10);

    uint64_t seed = 12345;
    for (size_t i = BIG - 1; i > 0; i--) {
        size_t j = (size_t)(rng_next(&seed) % (i + 1));
        room_member_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    int bad = 0;
    for (size_t i = 0; i < BIG; i++) {
        bad += L(r, order[i], "big") != 0;
        bad += SZ(r, "big") != BIG - i - 1;
        if (i % 997 == 0) {
            bad += IS(r, order[i], "big");
            if (i + 1 < BIG)
                bad += !IS(r, order[i + 1], "big");
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(SZ(r, "big"), 0);
    CHECK_EQ_INT(room_count(r), 1);
    /* the tenth-room members kept their other membership */
    CHECK(IS(r, 3, "tenth"));
    CHECK_EQ_INT(room_member_room_count(r, 3), 1);
    for (size_t i = 0; i < BIG; i += 10)
        room_leave_all(r, (room_member_t)i * 7919 + 3);
    CHECK_EQ_INT(room_count(r), 0);
    free(order);
    room_registry_free(r);
}

/* Many rooms at once (table growth and shrink), freed by leave_all. */
static void test_many_rooms(void)
{
    struct room_registry *r = room_registry_new();
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "r/%d", i);
        CHECK_EQ_INT(J(r, (room_member_t)(i % 100) + 1, name) == 0, 1);
    }
    CHECK_EQ_INT(room_count(r), 5000);
    int bad = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "r/%d", i);
        bad += !IS(r, (room_member_t)(i % 100) + 1, name);
    }
    CHECK_EQ_INT(bad, 0);
    for (int m = 1; m <= 100; m++) {
        room_leave_all(r, (room_member_t)m);
        CHECK_EQ_INT(room_count(r), 5000 - 50 * (size_t)m);
    }
    room_registry_free(r);
}

int main(void)
{
    test_basics();
    test_swap_remove();
    test_join_order();
    test_leave_all();
    test_model();
    test_large();
    test_many_rooms();
    TEST_MAIN_END();
}
