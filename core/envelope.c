/* envelope.c: answer envelopes and their frames. */
#include "envelope.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jtext.h"
#include "sio.h"

int envelope_http_status(const char *code)
{
    static const struct {
        const char *code;
        int status;
    } map[] = {
        {"auth.required", 401},          {"auth.invalidToken", 401},
        {"auth.expired", 401},           {"auth.forbidden", 403},
        {"room.forbidden", 403},         {"sync.notRoomMember", 403},
        {"sync.notFound", 404},          {"sync.payloadTooLarge", 413},
        {"sync.methodNotAllowed", 405},
        {"sync.rateLimitExceeded", 429}, {"sync.serverExecutionFailed", 500},
        {"sync.invalidServerResponse", 500}, {"sync.timeout", 500},
        {"sync.outOfMemory", 500},       {"sync.clientExecutionFailed", 500},
        {"sync.invalidClientResponse", 500}, {"server.unavailable", 503},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(code, map[i].code) == 0)
            return map[i].status;
    return 400;
}

json_t *envelope_error(const char *code, const char *message)
{
    return json_pack("{s:s, s:s, s:s, s:i}", "status", "error", "errorCode", code, "message",
                     message ? message : code, "httpStatus", envelope_http_status(code));
}

size_t envelope_format_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

int envelope_answer_name(char *out, size_t cap, const char *prefix, const json_t *ri)
{
    if (json_is_integer(ri)) {
        /* the hot path (every request): by hand rather than through snprintf */
        long long v = (long long)json_integer_value(ri);
        size_t pl = strlen(prefix);
        if (pl + 23 <= cap) {
            memcpy(out, prefix, pl);
            out[pl++] = '-';
            uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
            if (v < 0)
                out[pl++] = '-';
            envelope_format_u64(out + pl, mag);
            return 0;
        }
        snprintf(out, cap, "%s-%lld", prefix, v);
        return 0;
    }
    if (json_is_real(ri)) {
        double v = json_real_value(ri);
        if (!isfinite(v))
            return -1;
        if (v == floor(v) && fabs(v) < 9007199254740992.0)
            snprintf(out, cap, "%s-%lld", prefix, (long long)v);
        else
            snprintf(out, cap, "%s-%.17g", prefix, v);
        return 0;
    }
    return -1;
}

int envelope_frames_text(const char *prefix, const json_t *ri, int64_t ack_id, const char *text,
                         size_t len, struct buf **event, struct buf **ack)
{
    char name[128];
    *event = *ack = NULL;
    int want_event = envelope_answer_name(name, sizeof name, prefix, ri) == 0;
    int rc = 0;
    if (want_event && !(*event = sio_event_encode(name, strlen(name), text, len, -1)))
        rc = -ENOMEM;
    if (ack_id >= 0 && !(*ack = sio_ack_encode(ack_id, text, len)))
        rc = -ENOMEM;
    return rc;
}

int envelope_frames(const char *prefix, const json_t *ri, int64_t ack_id, const json_t *env,
                    struct buf **event, struct buf **ack)
{
    *event = *ack = NULL;
    if (!json_is_number(ri) && ack_id < 0)
        return 0;
    size_t len = 0;
    char *text = jtext_dump(env, &len);
    if (!text)
        return -ENOMEM;
    int rc = envelope_frames_text(prefix, ri, ack_id, text, len, event, ack);
    free(text);
    return rc;
}
