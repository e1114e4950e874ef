/* fuzz_sio.c: libFuzzer target for the Socket.IO decoder, the JSON quoting and the encoders.
 * Build: clang -fsanitize=fuzzer,address -Icore core/sio.c core/buf.c spec/fuzz/fuzz_sio.c
 * The input is copied to an exact-size heap block so any read past len is reported. Besides
 * memory errors it checks invariants: borrowed pointers stay in the input, and an encoded
 * event (input as its name) decodes back as an EVENT with the same ack id. */
#include "buf.h"
#include "sio.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_input.h"

static void check_decoded(const struct sio_packet *pk, const char *in, size_t len)
{
    if (pk->type > SIO_BINARY_ACK)
        abort();
    if (pk->nsp >= in && pk->nsp < in + len) {
        if (pk->nsp_len > (size_t)(in + len - pk->nsp) || pk->nsp[0] != '/')
            abort();
    } else if (pk->nsp_len != 1 || pk->nsp[0] != '/') {
        abort();
    }
    if (pk->data && (pk->data < in || pk->data_len > (size_t)(in + len - pk->data)))
        abort();
    if (!pk->data && pk->data_len != 0)
        abort();
    if (pk->ack_id < -1 || pk->ack_id > 999999999999999999LL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = fuzz_copy(data, size);
    if (!in)
        return 0;

    struct sio_packet pk;
    int rc = sio_decode(in, size, &pk);
    if (rc == 0)
        check_decoded(&pk, in, size);
    else if (rc != -EINVAL)
        abort();

    /* Quoting: measured and written lengths agree, output is a quoted string. */
    size_t need = sio_json_quote(NULL, 0, in, size);
    char *q = malloc(need + 1);
    if (q) {
        if (sio_json_quote(q, need + 1, in, size) != need || q[0] != '"' || q[need - 1] != '"' ||
            q[need] != '\0')
            abort();
        free(q);
    }

    /* Round trip: the input as an event name, with an ack id taken from the input. */
    int64_t ack = size ? (int64_t)(data[0] % 8) - 1 : -1;
    struct buf *b = sio_event_encode(in, size, "{}", 2, ack);
    if (b) {
        struct sio_packet ev;
        if (buf_cdata(b)[0] != '4' || sio_decode(buf_cdata(b) + 1, buf_len(b) - 1, &ev) != 0 ||
            ev.type != SIO_EVENT || ev.ack_id != ack || ev.nsp_len != 1)
            abort();
        buf_unref(b);
    }
    free(in);
    return 0;
}
