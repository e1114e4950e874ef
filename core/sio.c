/* sio.c: the Socket.IO protocol 5 packet codec. The decoder only frames the packet and checks
 * the first byte of the JSON payload (the caller parses it with jansson); the encoders wrap
 * already-encoded JSON in exactly one allocation each. Section names refer to
 * https://github.com/socketio/socket.io-protocol (revision 5). */
#include "sio.h"

#include "buf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Bounds on the numeric fields: 18 decimal digits always fit an int64_t (max ~9.22e18), and 9
 * always fit an unsigned int; anything longer is refused instead of overflowing. */
#define SIO_ACK_ID_MAX_DIGITS 18
#define SIO_ATTACHMENTS_MAX_DIGITS 9

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Decode per "Packet encoding > Encoding format":
 *   <type>[<# of binary attachments>-][<namespace>,][<acknowledgment id>][JSON payload]
 * Stricter than the reference parser where a field cannot mean anything: binary types need
 * their attachment count, ACK/BINARY_ACK need an ack id, CONNECT/DISCONNECT/CONNECT_ERROR
 * must not carry one, and the payload's first byte must match the type ("Packet types"). */
int sio_decode(const char *p, size_t len, struct sio_packet *out)
{
    if (!p || !out || len == 0)
        return -EINVAL;
    if (p[0] < '0' || p[0] > '6')
        return -EINVAL;
    enum sio_type type = (enum sio_type)(p[0] - '0');
    size_t i = 1;
    int binary = type == SIO_BINARY_EVENT || type == SIO_BINARY_ACK;

    unsigned attachments = 0;
    if (binary) {
        size_t start = i;
        while (i < len && is_digit(p[i])) {
            if (i - start == SIO_ATTACHMENTS_MAX_DIGITS)
                return -EINVAL;
            attachments = attachments * 10 + (unsigned)(p[i] - '0');
            i++;
        }
        if (i == start || i >= len || p[i] != '-')
            return -EINVAL;
        i++;
    }

    /* The namespace runs to the first ',' or, without one, to the end ("0/admin"), as in the
     * reference parser. */
    const char *nsp = "/";
    size_t nsp_len = 1;
    if (i < len && p[i] == '/') {
        const char *comma = memchr(p + i, ',', len - i);
        size_t stop = comma ? (size_t)(comma - p) : len;
        nsp = p + i;
        nsp_len = stop - i;
        i = comma ? stop + 1 : stop;
    }

    int64_t ack_id = -1;
    if (i < len && is_digit(p[i])) {
        size_t start = i;
        ack_id = 0;
        while (i < len && is_digit(p[i])) {
            if (i - start == SIO_ACK_ID_MAX_DIGITS)
                return -EINVAL;
            ack_id = ack_id * 10 + (p[i] - '0');
            i++;
        }
    }

    const char *data = i < len ? p + i : NULL;
    size_t data_len = len - i;
    char first = '\0';
    if (data)
        first = data[0];

    /* "Packet types": what each type carries. */
    switch (type) {
    case SIO_CONNECT:
        if (ack_id >= 0 || (data && first != '{'))
            return -EINVAL;
        break;
    case SIO_DISCONNECT:
        if (ack_id >= 0 || data)
            return -EINVAL;
        break;
    case SIO_EVENT:
    case SIO_BINARY_EVENT:
        if (first != '[')
            return -EINVAL;
        break;
    case SIO_ACK:
    case SIO_BINARY_ACK:
        if (ack_id < 0 || first != '[')
            return -EINVAL;
        break;
    case SIO_CONNECT_ERROR:
        if (ack_id >= 0 || first != '{')
            return -EINVAL;
        break;
    }

    out->type = type;
    out->nsp = nsp;
    out->nsp_len = nsp_len;
    out->ack_id = ack_id;
    out->attachments = attachments;
    out->data = data;
    out->data_len = data ? data_len : 0;
    return 0;
}

/* Length of the escaped form of one byte (RFC 8259 §7). */
static size_t escaped_len(unsigned char c)
{
    if (c == '"' || c == '\\')
        return 2;
    if (c < 0x20) {
        switch (c) {
        case '\b':
        case '\f':
        case '\n':
        case '\r':
        case '\t':
            return 2;
        default:
            return 6;
        }
    }
    return 1;
}

/* Write the escaped form of one byte; returns bytes written (escaped_len(c)). */
static size_t escape_byte(char *o, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char shortc = 0;
    switch (c) {
    case '"':
        shortc = '"';
        break;
    case '\\':
        shortc = '\\';
        break;
    case '\b':
        shortc = 'b';
        break;
    case '\f':
        shortc = 'f';
        break;
    case '\n':
        shortc = 'n';
        break;
    case '\r':
        shortc = 'r';
        break;
    case '\t':
        shortc = 't';
        break;
    default:
        break;
    }
    if (shortc) {
        o[0] = '\\';
        o[1] = shortc;
        return 2;
    }
    if (c < 0x20) {
        memcpy(o, "\\u00", 4);
        o[4] = hex[c >> 4];
        o[5] = hex[c & 0xf];
        return 6;
    }
    o[0] = (char)c;
    return 1;
}

/* Quote s[0..len) as a JSON string (RFC 8259 §7): '"', '\\' and control bytes escaped (short
 * forms where they exist, else \u00XX); bytes >= 0x80 copied as is, so valid UTF-8 stays
 * valid (invalid UTF-8 is the caller's to reject). Returns the length needed without the
 * NUL, or SIZE_MAX if that does not fit a size_t. Writes everything only when it fits in cap
 * (plus a NUL when there is room); otherwise only a NUL at out[0] when cap > 0. With a NULL
 * out it only measures. */
size_t sio_json_quote(char *out, size_t cap, const char *s, size_t len)
{
    if (!s)
        len = 0;
    size_t plain = 0; /* the common case, event names: printable ASCII, nothing to escape */
    while (plain < len && (unsigned char)s[plain] >= 0x20 && (unsigned char)s[plain] < 0x7f &&
           s[plain] != '"' && s[plain] != '\\')
        plain++;
    if (plain == len && len <= SIZE_MAX - 2) {
        if (out && len + 2 <= cap) {
            out[0] = '"';
            if (len)
                memcpy(out + 1, s, len);
            out[len + 1] = '"';
            if (len + 2 < cap)
                out[len + 2] = '\0';
        } else if (out && cap > 0) {
            out[0] = '\0';
        }
        return len + 2;
    }
    size_t need = 2;
    for (size_t i = 0; i < len; i++) {
        size_t e = escaped_len((unsigned char)s[i]);
        if (need > SIZE_MAX - e)
            return SIZE_MAX;
        need += e;
    }
    if (!out || need > cap) {
        if (out && cap > 0)
            out[0] = '\0';
        return need;
    }
    char *o = out;
    *o++ = '"';
    for (size_t i = 0; i < len; i++)
        o += escape_byte(o, (unsigned char)s[i]);
    *o++ = '"';
    if (need < cap)
        *o = '\0';
    return need;
}

/* Sum of lengths with overflow detection: returns 0 and sets *total, or -1 on overflow. */
static int add_len(size_t *total, size_t n)
{
    if (*total > SIZE_MAX - n)
        return -1;
    *total += n;
    return 0;
}

/* Append helper for the encoders: the lengths were computed beforehand, so it cannot run
 * past the buffer. */
/* The decimal digits of a non-negative id (what "%" PRId64 prints), without printf. */
static size_t format_id(char out[24], int64_t v)
{
    char tmp[24], *t = tmp + sizeof tmp;
    uint64_t u = (uint64_t)v;
    do {
        *--t = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t n = (size_t)(tmp + sizeof tmp - t);
    memcpy(out, t, n);
    return n;
}

static char *put(char *o, const void *src, size_t n)
{
    if (n)
        memcpy(o, src, n);
    return o + n;
}

/* Build an EVENT ("Packet types > EVENT": 2[<id>]["<name>",<args>]) inside an Engine.IO
 * message. The caller owns the returned reference. NULL on allocation failure, a NULL name
 * with name_len > 0, or a size overflow. An empty json (NULL or json_len 0) means no
 * argument. The name is quoted here; json is copied verbatim and must be valid JSON. */
struct buf *sio_event_encode(const char *name, size_t name_len, const char *json, size_t json_len,
                             int64_t ack_id)
{
    if (!name && name_len)
        return NULL;
    if (!json)
        json_len = 0;
    char id[24] = "";
    size_t id_len = ack_id >= 0 ? format_id(id, ack_id) : 0;
    size_t qlen = sio_json_quote(NULL, 0, name, name_len);

    /* "42" id "[" qname ["," json] "]" */
    size_t total = 2 + 1 + 1;
    if (add_len(&total, id_len) || add_len(&total, qlen) ||
        (json_len && (add_len(&total, 1) || add_len(&total, json_len))))
        return NULL;
    struct buf *b = buf_new(total);
    if (!b)
        return NULL;
    char *o = put(buf_data(b), "42", 2);
    o = put(o, id, id_len);
    *o++ = '[';
    if (qlen == name_len + 2) { /* nothing to escape: the measuring pass said so */
        *o++ = '"';
        o = put(o, name, name_len);
        *o++ = '"';
    } else {
        o += sio_json_quote(o, qlen, name, name_len);
    }
    if (json_len) {
        *o++ = ',';
        o = put(o, json, json_len);
    }
    *o = ']';
    return b;
}

/* Build an ACK ("Packet types > ACK": 3<id>[<args>]) inside an Engine.IO message; json is the
 * one argument, copied verbatim (NULL or empty: no argument, "43<id>[]"). The caller owns
 * the returned reference. NULL on allocation failure, a negative ack_id, or a size overflow. */
struct buf *sio_ack_encode(int64_t ack_id, const char *json, size_t json_len)
{
    if (ack_id < 0)
        return NULL;
    if (!json)
        json_len = 0;
    char id[24];
    size_t id_len = format_id(id, ack_id);
    size_t total = 2 + 2;
    if (add_len(&total, id_len) || add_len(&total, json_len))
        return NULL;
    struct buf *b = buf_new(total);
    if (!b)
        return NULL;
    char *o = put(buf_data(b), "43", 2);
    o = put(o, id, id_len);
    *o++ = '[';
    o = put(o, json, json_len);
    *o = ']';
    return b;
}

/* Build the CONNECT answer ("Exchange protocol > Connection to a namespace": 0{"sid":…}) with
 * the sid JSON-escaped. The caller owns the returned reference. NULL on allocation failure or
 * a NULL sid. */
struct buf *sio_connect_ok_encode(const char *sid)
{
    static const char head[] = "40{\"sid\":";
    if (!sid)
        return NULL;
    size_t sid_len = strlen(sid);
    size_t qlen = sio_json_quote(NULL, 0, sid, sid_len);
    size_t total = sizeof head - 1 + 1;
    if (add_len(&total, qlen))
        return NULL;
    struct buf *b = buf_new(total);
    if (!b)
        return NULL;
    char *o = put(buf_data(b), head, sizeof head - 1);
    o += sio_json_quote(o, qlen, sid, sid_len);
    *o = '}';
    return b;
}

/* Build a CONNECT_ERROR ("Packet types > CONNECT_ERROR": 4{"message":…[,"data":…]}); message
 * is JSON-escaped here, data_json (NULL or "" for none) is copied verbatim. The caller owns
 * the returned reference. NULL on allocation failure, a NULL message, or a size overflow. */
struct buf *sio_connect_error_encode(const char *message, const char *data_json)
{
    static const char head[] = "44{\"message\":";
    static const char mid[] = ",\"data\":";
    if (!message)
        return NULL;
    size_t msg_len = strlen(message);
    size_t data_len = data_json ? strlen(data_json) : 0;
    size_t qlen = sio_json_quote(NULL, 0, message, msg_len);
    size_t total = sizeof head - 1 + 1;
    if (add_len(&total, qlen) ||
        (data_len && (add_len(&total, sizeof mid - 1) || add_len(&total, data_len))))
        return NULL;
    struct buf *b = buf_new(total);
    if (!b)
        return NULL;
    char *o = put(buf_data(b), head, sizeof head - 1);
    o += sio_json_quote(o, qlen, message, msg_len);
    if (data_len) {
        o = put(o, mid, sizeof mid - 1);
        o = put(o, data_json, data_len);
    }
    *o = '}';
    return b;
}

/* Build a DISCONNECT for the default namespace ("Packet types > DISCONNECT": 1). The caller
 * owns the returned reference; NULL on allocation failure. */
struct buf *sio_disconnect_encode(void)
{
    return buf_from("41", 2);
}
