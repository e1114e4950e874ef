/* fuzz_eio.c: libFuzzer target for the Engine.IO decoder and the polling payload splitter.
 * Build: clang -fsanitize=fuzzer,address -Icore core/eio.c spec/fuzz/fuzz_eio.c
 * The input is copied to an exact-size heap block so any read past len is reported. */
#include "eio.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ctx {
    const char *lo, *hi;
    size_t n;
};

/* Each slice must lie inside the body, be non-empty and hold no separator. */
static int packet_cb(void *ud, const char *p, size_t len)
{
    struct ctx *c = ud;
    if (p < c->lo || p + len > c->hi || len == 0 || memchr(p, EIO_RECORD_SEP, len))
        abort();
    c->n++;
    enum eio_type type;
    const char *data;
    size_t dlen;
    if (eio_decode(p, len, &type, &data, &dlen) == 0 &&
        (type > EIO_NOOP || data != p + 1 || dlen != len - 1))
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = malloc(size ? size : 1);
    if (!body)
        return 0;
    if (size)
        memcpy(body, data, size);

    enum eio_type type;
    const char *d;
    size_t dlen;
    int rc = eio_decode(body, size, &type, &d, &dlen);
    if (rc != 0 && rc != -EINVAL)
        abort();

    struct ctx c = {body, body + size, 0};
    rc = eio_payload_split(body, size, 64, packet_cb, &c);
    if (rc == 0 ? (c.n == 0 || c.n > 64) : ((rc != -EINVAL && rc != -E2BIG) || c.n != 0))
        abort();

    unsigned char hdr[10];
    size_t n = eio_ws_header(hdr, size);
    if (n != 2 && n != 4 && n != 10)
        abort();
    free(body);
    return 0;
}
