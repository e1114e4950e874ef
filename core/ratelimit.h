/* ratelimit: fixed one-minute windows of request counts per key (user or connection, and
 * route). Pure: time is passed in. Bounded: at most max_keys entries; when full, expired
 * windows are swept, and if none expired the new key is refused (counted as limited), so
 * memory never grows past the bound. */
#ifndef LUCKYSYNC_RATELIMIT_H
#define LUCKYSYNC_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct ratelimit;

struct ratelimit *ratelimit_new(size_t max_keys);
void ratelimit_free(struct ratelimit *r);
/* Count one request for key against `limit` per minute at now_ms. Returns 0 when allowed, or
 * the number of seconds until the window resets (≥ 1) when limited. */
unsigned ratelimit_hit(struct ratelimit *r, const char *key, unsigned limit, uint64_t now_ms);
size_t ratelimit_size(const struct ratelimit *r);

#endif
