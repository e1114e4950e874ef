/* srooms: the rooms each session has joined, remembered so that every socket of the session
 * re-joins them when it (re)connects. Pure, bounded: at most max_rooms names per session (the
 * oldest is dropped first) and at most max_sessions sessions (the least recently touched
 * record is forgotten first). */
#ifndef LUCKYSYNC_SROOMS_H
#define LUCKYSYNC_SROOMS_H

#include <stddef.h>

struct srooms;

struct srooms *srooms_new(size_t max_sessions, unsigned max_rooms);
void srooms_free(struct srooms *s);
/* Remember `room` for the session (moved to the newest place when present). Returns 0 or
 * -ENOMEM. */
int srooms_add(struct srooms *s, const char *session_id, const char *room, size_t len);
/* Forget `room` for the session; 0 or -ENOENT. */
int srooms_remove(struct srooms *s, const char *session_id, const char *room, size_t len);
/* The session's rooms oldest first: *names borrowed until the next mutation. */
size_t srooms_list(struct srooms *s, const char *session_id, char *const **names);
size_t srooms_sessions(const struct srooms *s);

#endif
