/* eio.c: the Engine.IO protocol 4 codec. Pure functions over caller-provided bytes; nothing
 * here allocates, and every input length is honoured exactly (no NUL terminator is assumed).
 * Section names refer to https://github.com/socketio/engine.io-protocol (revision 4). */
#include "eio.h"

#include "wsproto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Decode one text packet (spec "Packet encoding": a type digit followed by the data). Binary
 * packets travel base64-encoded over polling with a 'b' prefix (spec "Packet encoding >
 * HTTP long-polling"); this server has no binary messages, so they are refused. */
int eio_decode(const char *p, size_t len, enum eio_type *type, const char **data, size_t *dlen)
{
    if (!p || len == 0)
        return -EINVAL;
    if (p[0] < '0' || p[0] > '6')
        return -EINVAL; /* includes 'b' (base64 binary) and every unknown type */
    *type = (enum eio_type)(p[0] - '0');
    *data = p + 1;
    *dlen = len - 1;
    return 0;
}

/* Split a polling body into packets (spec "Packet encoding > HTTP long-polling": packets are
 * concatenated with the record separator 0x1e, no trailing separator). The whole body is
 * checked before the first callback, so a malformed or oversized body delivers no packet at
 * all; only a callback's own non-zero return stops delivery midway. */
int eio_payload_split(const char *body, size_t len, size_t max_packets, eio_packet_cb cb, void *ud)
{
    if (!body || len == 0 || !cb)
        return -EINVAL;

    /* Pass 1: count packets and reject empty ones (leading, doubled or trailing 0x1e). */
    size_t count = 0;
    const char *pos = body, *end = body + len;
    for (;;) {
        const char *sep = memchr(pos, EIO_RECORD_SEP, (size_t)(end - pos));
        const char *stop = sep ? sep : end;
        if (stop == pos)
            return -EINVAL;
        if (++count > max_packets)
            return -E2BIG;
        if (!sep)
            break;
        pos = sep + 1;
    }

    /* Pass 2: deliver. */
    pos = body;
    for (;;) {
        const char *sep = memchr(pos, EIO_RECORD_SEP, (size_t)(end - pos));
        const char *stop = sep ? sep : end;
        int rc = cb(ud, pos, (size_t)(stop - pos));
        if (rc != 0)
            return rc;
        if (!sep)
            return 0;
        pos = sep + 1;
    }
}

/* The sid is pasted into JSON unescaped, so only characters that never need escaping are
 * allowed (the server generates it; this guards against a caller passing anything else). */
static int sid_is_plain(const char *sid)
{
    for (const unsigned char *s = (const unsigned char *)sid; *s; s++)
        if (*s < 0x20 || *s == '"' || *s == '\\' || *s >= 0x7f)
            return 0;
    return 1;
}

/* Write the open packet (spec "Protocol > Handshake": sid, upgrades, pingInterval,
 * pingTimeout, maxPayload), NUL-terminated. Returns its length, -ENOSPC when cap is too
 * small (out then holds a truncated string), or -EINVAL for a NULL sid or one that would
 * need JSON escaping. */
int eio_open_encode(char *out, size_t cap, const char *sid, unsigned ping_interval_ms,
                    unsigned ping_timeout_ms, size_t max_payload, int allow_upgrade)
{
    if (!sid || !sid_is_plain(sid))
        return -EINVAL;
    int n = snprintf(out, cap,
                     "0{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%u,\"pingTimeout\":%u,"
                     "\"maxPayload\":%zu}",
                     sid, allow_upgrade ? "\"websocket\"" : "", ping_interval_ms, ping_timeout_ms,
                     max_payload);
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC;
    return n;
}

size_t eio_ws_header(unsigned char out[10], size_t payload_len)
{
    return wsproto_header_encode(out, WSPROTO_TEXT, payload_len);
}
