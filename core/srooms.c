/* srooms.c: session → remembered rooms, a chained hash map plus an LRU list of records. */
#include "srooms.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct rec {
    struct rec *hnext;            /* hash chain */
    struct rec *lru_prev, *lru_next; /* most recent at the tail */
    char **names;
    unsigned count;
    char id[];
};

struct srooms {
    struct rec **buckets;
    size_t nbuckets;
    size_t count, max_sessions;
    unsigned max_rooms;
    struct rec *lru_head, *lru_tail;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

struct srooms *srooms_new(size_t max_sessions, unsigned max_rooms)
{
    struct srooms *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->nbuckets = 1024;
    s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
    if (!s->buckets) {
        free(s);
        return NULL;
    }
    s->max_sessions = max_sessions ? max_sessions : 1;
    s->max_rooms = max_rooms ? max_rooms : 1;
    return s;
}

static void rec_free(struct rec *r)
{
    for (unsigned i = 0; i < r->count; i++)
        free(r->names[i]);
    free(r->names);
    free(r);
}

void srooms_free(struct srooms *s)
{
    if (!s)
        return;
    struct rec *r = s->lru_head;
    while (r) {
        struct rec *n = r->lru_next;
        rec_free(r);
        r = n;
    }
    free(s->buckets);
    free(s);
}

static struct rec **find_slot(struct srooms *s, const char *id)
{
    struct rec **pp = &s->buckets[hash_str(id) & (s->nbuckets - 1)];
    while (*pp && strcmp((*pp)->id, id) != 0)
        pp = &(*pp)->hnext;
    return pp;
}

static void lru_unlink(struct srooms *s, struct rec *r)
{
    if (r->lru_prev)
        r->lru_prev->lru_next = r->lru_next;
    else
        s->lru_head = r->lru_next;
    if (r->lru_next)
        r->lru_next->lru_prev = r->lru_prev;
    else
        s->lru_tail = r->lru_prev;
    r->lru_prev = r->lru_next = NULL;
}

static void lru_append(struct srooms *s, struct rec *r)
{
    r->lru_prev = s->lru_tail;
    r->lru_next = NULL;
    if (s->lru_tail)
        s->lru_tail->lru_next = r;
    else
        s->lru_head = r;
    s->lru_tail = r;
}

static void rec_remove(struct srooms *s, struct rec *r)
{
    struct rec **pp = find_slot(s, r->id);
    if (*pp == r)
        *pp = r->hnext;
    lru_unlink(s, r);
    s->count--;
    rec_free(r);
}

static int find_name(const struct rec *r, const char *room, size_t len)
{
    for (unsigned i = 0; i < r->count; i++)
        if (strlen(r->names[i]) == len && memcmp(r->names[i], room, len) == 0)
            return (int)i;
    return -1;
}

static void drop_index(struct rec *r, unsigned i)
{
    free(r->names[i]);
    memmove(&r->names[i], &r->names[i + 1], (r->count - i - 1) * sizeof *r->names);
    r->count--;
}

int srooms_add(struct srooms *s, const char *session_id, const char *room, size_t len)
{
    struct rec **pp = find_slot(s, session_id);
    struct rec *r = *pp;
    if (!r) {
        size_t idlen = strlen(session_id);
        r = calloc(1, sizeof *r + idlen + 1);
        if (!r)
            return -ENOMEM;
        r->names = calloc(s->max_rooms, sizeof *r->names);
        if (!r->names) {
            free(r);
            return -ENOMEM;
        }
        memcpy(r->id, session_id, idlen + 1);
        *pp = r;
        s->count++;
        lru_append(s, r);
        while (s->count > s->max_sessions && s->lru_head != r)
            rec_remove(s, s->lru_head);
    } else {
        lru_unlink(s, r);
        lru_append(s, r);
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, room, len);
    copy[len] = '\0';
    int at = find_name(r, room, len);
    if (at >= 0)
        drop_index(r, (unsigned)at);
    else if (r->count == s->max_rooms)
        drop_index(r, 0);
    r->names[r->count++] = copy;
    return 0;
}

int srooms_remove(struct srooms *s, const char *session_id, const char *room, size_t len)
{
    struct rec *r = *find_slot(s, session_id);
    if (!r)
        return -ENOENT;
    int at = find_name(r, room, len);
    if (at < 0)
        return -ENOENT;
    drop_index(r, (unsigned)at);
    if (r->count == 0)
        rec_remove(s, r);
    return 0;
}

size_t srooms_list(struct srooms *s, const char *session_id, char *const **names)
{
    struct rec *r = *find_slot(s, session_id);
    if (!r) {
        *names = NULL;
        return 0;
    }
    *names = r->names;
    return r->count;
}

size_t srooms_sessions(const struct srooms *s)
{
    return s->count;
}
