/* syncenv: the fast reader of a `sync` event; see syncenv.h. */
#include "syncenv.h"

#include <string.h>

#include "jtext.h"

/* Bounds of the fast path's duplicate-key check inside data; wider or deeper data takes the
 * general path, whose check is a hash lookup per key. */
#define DATA_KEYS_MAX 128 /* keys of all the objects open at once */
#define DATA_DEPTH_MAX 32 /* containers nested inside data */

enum { K_NAME = 1, K_DATA = 2, K_RECEIVER = 4, K_CB = 8, K_IGNORE = 16, K_RI = 32 };

static int key_of(const char *k, size_t n)
{
    switch (n) {
    case 2:
        return memcmp(k, "cb", 2) == 0 ? K_CB : 0;
    case 4:
        return memcmp(k, "name", 4) == 0 ? K_NAME : memcmp(k, "data", 4) == 0 ? K_DATA : 0;
    case 8:
        return memcmp(k, "receiver", 8) == 0 ? K_RECEIVER : 0;
    case 10:
        return memcmp(k, "ignoreSelf", 10) == 0 ? K_IGNORE : 0;
    case 13:
        return memcmp(k, "responseIndex", 13) == 0 ? K_RI : 0;
    default:
        return 0;
    }
}

/* Walk the data object that just opened (t is its JTEXT_OBJECT token) to its end, refusing
 * (1) a duplicate key, an escaped key, or data beyond the bounds above. 0, or 1. */
static int skip_data(struct jtext_reader *r, struct jtext_token *t, size_t *end)
{
    struct {
        const char *k;
        size_t n;
    } keys[DATA_KEYS_MAX];
    size_t frame[DATA_DEPTH_MAX + 1], nkeys = 0, depth = 1;
    unsigned char is_obj[DATA_DEPTH_MAX + 1];
    frame[0] = 0;
    is_obj[0] = 1;
    while (depth) {
        enum jtext_tok k = jtext_next(r, t);
        switch (k) {
        case JTEXT_OBJECT:
        case JTEXT_ARRAY:
            if (depth > DATA_DEPTH_MAX)
                return 1;
            frame[depth] = nkeys;
            is_obj[depth++] = k == JTEXT_OBJECT;
            break;
        case JTEXT_CLOSE:
            depth--;
            if (is_obj[depth])
                nkeys = frame[depth];
            break;
        case JTEXT_KEY:
            if (t->escaped || nkeys == DATA_KEYS_MAX)
                return 1;
            for (size_t i = frame[depth - 1]; i < nkeys; i++)
                if (keys[i].n == t->len && memcmp(keys[i].k, t->str, t->len) == 0)
                    return 1;
            keys[nkeys].k = t->str;
            keys[nkeys++].n = t->len;
            break;
        case JTEXT_ERROR:
        case JTEXT_END:
            return 1;
        default: /* a scalar */
            break;
        }
    }
    *end = t->end;
    return 0;
}

/* A plain string token (no escapes): its text, borrowed from the input. */
static int plain_string(const struct jtext_token *t, const char **s, size_t *n)
{
    if (t->type != JTEXT_STRING || t->escaped)
        return -1;
    *s = t->str;
    *n = t->len;
    return 0;
}

int syncenv_read(const char *text, size_t len, struct syncenv *e)
{
    struct jtext_reader r;
    struct jtext_token t;
    unsigned seen = 0;
    int rc = 1;
    memset(e, 0, sizeof *e);
    jtext_reader_init(&r, text, len);
    if (jtext_next(&r, &t) != JTEXT_ARRAY || jtext_next(&r, &t) != JTEXT_STRING || t.escaped ||
        t.len != 4 || memcmp(t.str, "sync", 4) != 0 || jtext_next(&r, &t) != JTEXT_OBJECT)
        goto out;
    for (;;) {
        enum jtext_tok k = jtext_next(&r, &t);
        if (k == JTEXT_CLOSE)
            break;
        if (k != JTEXT_KEY || t.escaped)
            goto out;
        int key = key_of(t.str, t.len);
        if (!key || (seen & (unsigned)key))
            goto out;
        seen |= (unsigned)key;
        k = jtext_next(&r, &t);
        switch (key) {
        case K_NAME:
            if (plain_string(&t, &e->name, &e->name_len))
                goto out;
            break;
        case K_RECEIVER:
            if (plain_string(&t, &e->receiver, &e->receiver_len))
                goto out;
            break;
        case K_CB:
            if (plain_string(&t, &e->cb, &e->cb_len))
                goto out;
            break;
        case K_IGNORE:
            if (k != JTEXT_TRUE && k != JTEXT_FALSE)
                goto out;
            e->ignore_self = k == JTEXT_TRUE;
            break;
        case K_RI:
            if (k == JTEXT_INTEGER)
                e->ri = json_integer(t.i);
            else if (k == JTEXT_STRING && !t.escaped)
                e->ri = json_stringn_nocheck(t.str, t.len); /* the reader checked the UTF-8 */
            else
                goto out;
            if (!e->ri)
                goto out;
            break;
        case K_DATA: {
            size_t start = t.start, end;
            if (k != JTEXT_OBJECT || skip_data(&r, &t, &end))
                goto out;
            e->data = text + start;
            e->data_len = end - start;
            break;
        }
        }
    }
    if ((seen & (K_NAME | K_DATA | K_RECEIVER)) != (K_NAME | K_DATA | K_RECEIVER) ||
        jtext_next(&r, &t) != JTEXT_CLOSE || jtext_next(&r, &t) != JTEXT_END)
        goto out;
    rc = 0;
out:
    jtext_reader_close(&r);
    if (rc)
        syncenv_clear(e);
    return rc;
}

void syncenv_clear(struct syncenv *e)
{
    json_decref(e->ri);
    memset(e, 0, sizeof *e);
}
