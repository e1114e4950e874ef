/* buf.c: reference-counted byte buffers. */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

struct buf {
    int refs;
    size_t len;
    char data[];
};

struct buf *buf_new(size_t len)
{
    struct buf *b = malloc(sizeof *b + len + 1);
    if (!b)
        return NULL;
    b->refs = 1;
    b->len = len;
    b->data[len] = '\0';
    return b;
}

struct buf *buf_from(const void *data, size_t len)
{
    struct buf *b = buf_new(len);
    if (b && len)
        memcpy(b->data, data, len);
    return b;
}

struct buf *buf_concat(const void *const *parts, const size_t *lens, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += lens[i];
    struct buf *b = buf_new(total);
    if (!b)
        return NULL;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i])
            memcpy(b->data + off, parts[i], lens[i]);
        off += lens[i];
    }
    return b;
}

char *buf_data(struct buf *b)
{
    return b->data;
}

const char *buf_cdata(const struct buf *b)
{
    return b->data;
}

size_t buf_len(const struct buf *b)
{
    return b->len;
}

void buf_set_len(struct buf *b, size_t n)
{
    if (n <= b->len) {
        b->len = n;
        b->data[n] = '\0';
    }
}

struct buf *buf_ref(struct buf *b)
{
    b->refs++;
    return b;
}

void buf_unref(struct buf *b)
{
    if (b && --b->refs == 0)
        free(b);
}

int buf_refcount(const struct buf *b)
{
    return b->refs;
}
