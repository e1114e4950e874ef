/* syncenv: the fast reader of a `sync` event (WIRE.md), the hot path of every request.
 *
 * A Socket.IO EVENT packet's data of the common form ["sync",{"name":…,"data":{…},
 * "receiver":…, and optionally "cb", "ignoreSelf", "responseIndex"}] is read in one pass of
 * jtext's token reader, without building a json_t tree: the strings are borrowed from the text
 * and `data` stays JSON text, checked as strictly as jtext_load checks it (duplicate keys
 * included), to be pushed into Lua straight from the text. Anything else (other keys, escaped
 * names, other types, invalid JSON, very wide or deep data) is left to the general path
 * (jtext_load), which keeps its exact answers and errors. */
#ifndef LUCKYSYNC_SYNCENV_H
#define LUCKYSYNC_SYNCENV_H

#include <stddef.h>

#include <jansson.h>

struct syncenv {
    /* borrowed from the text (not NUL-terminated); cb is NULL when absent */
    const char *name, *receiver, *cb;
    size_t name_len, receiver_len, cb_len;
    /* the data object's JSON text, borrowed from the text */
    const char *data;
    size_t data_len;
    json_t *ri; /* responseIndex (owned), NULL when absent */
    int ignore_self;
};

/* Read text[0..len) (borrowed). Returns 0 with e filled (syncenv_clear releases it), or 1 with e
 * empty: the text is not of the common form, and must take the general path. */
int syncenv_read(const char *text, size_t len, struct syncenv *e);
/* Release what e owns. */
void syncenv_clear(struct syncenv *e);

#endif
