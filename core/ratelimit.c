/* ratelimit.c: open-addressing map of key → {window start, count}. */
#include "ratelimit.h"

#include <stdlib.h>
#include <string.h>

#define WINDOW_MS 60000u

struct entry {
    char *key; /* NULL: empty slot */
    uint64_t start;
    unsigned count;
};

struct ratelimit {
    struct entry *slots;
    size_t cap, used, max_keys;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

struct ratelimit *ratelimit_new(size_t max_keys)
{
    struct ratelimit *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->max_keys = max_keys ? max_keys : 1;
    r->cap = 16;
    while (r->cap < r->max_keys * 2)
        r->cap <<= 1;
    r->slots = calloc(r->cap, sizeof *r->slots);
    if (!r->slots) {
        free(r);
        return NULL;
    }
    return r;
}

void ratelimit_free(struct ratelimit *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->cap; i++)
        free(r->slots[i].key);
    free(r->slots);
    free(r);
}

/* Rebuild without expired windows (linear probing cannot simply blank slots). */
static void sweep(struct ratelimit *r, uint64_t now)
{
    struct entry *old = r->slots;
    struct entry *fresh = calloc(r->cap, sizeof *fresh);
    if (!fresh)
        return;
    r->slots = fresh;
    r->used = 0;
    for (size_t i = 0; i < r->cap; i++) {
        if (!old[i].key)
            continue;
        if (now - old[i].start >= WINDOW_MS) {
            free(old[i].key);
            continue;
        }
        size_t j = hash_str(old[i].key) & (r->cap - 1);
        while (fresh[j].key)
            j = (j + 1) & (r->cap - 1);
        fresh[j] = old[i];
        r->used++;
    }
    free(old);
}

unsigned ratelimit_hit(struct ratelimit *r, const char *key, unsigned limit, uint64_t now)
{
    size_t i = hash_str(key) & (r->cap - 1);
    while (r->slots[i].key && strcmp(r->slots[i].key, key) != 0)
        i = (i + 1) & (r->cap - 1);
    struct entry *e = &r->slots[i];
    if (!e->key) {
        if (r->used >= r->max_keys) {
            sweep(r, now);
            if (r->used >= r->max_keys)
                return 1;
            return ratelimit_hit(r, key, limit, now);
        }
        e->key = strdup(key);
        if (!e->key)
            return 1;
        e->start = now;
        e->count = 0;
        r->used++;
    }
    if (now - e->start >= WINDOW_MS) {
        e->start = now;
        e->count = 0;
    }
    if (e->count >= limit) {
        uint64_t left = WINDOW_MS - (now - e->start);
        return (unsigned)((left + 999) / 1000);
    }
    e->count++;
    return 0;
}

size_t ratelimit_size(const struct ratelimit *r)
{
    return r->used;
}
