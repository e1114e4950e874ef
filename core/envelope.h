/* envelope: the LuckySync answer envelopes (WIRE.md "Requests and answers"): error envelopes
 * with their HTTP status, and the frames that carry an answer on `<prefix>-<responseIndex>`
 * and as a Socket.IO ack. Shared by the Socket.IO layer and the handler runtime. Pure. */
#ifndef LUCKYSYNC_ENVELOPE_H
#define LUCKYSYNC_ENVELOPE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

/* The HTTP status that goes with a stable error code (400 when not listed). */
int envelope_http_status(const char *code);
/* {"status":"error","errorCode":code,"message":message or code,"httpStatus":…}: a new
 * object the caller owns. */
json_t *envelope_error(const char *code, const char *message);

/* The event name `<prefix>-<responseIndex>` as JavaScript's String(n) prints it. Returns 0, or
 * -1 when responseIndex is not a finite number. */
int envelope_answer_name(char *out, size_t cap, const char *prefix, const json_t *ri);
/* Write v in decimal and a NUL into out (at least 21 bytes); returns the digits written. */
size_t envelope_format_u64(char *out, uint64_t v);

/* Encode env once and build the frames that answer it: *event for `<prefix>-<ri>` (NULL when
 * ri is not a number) and *ack for ack_id ≥ 0 (else NULL). Caller owns both. Returns 0 or
 * -ENOMEM. */
int envelope_frames(const char *prefix, const json_t *ri, int64_t ack_id, const json_t *env,
                    struct buf **event, struct buf **ack);
/* The same frames around an envelope already encoded as text[0..len) (borrowed). */
int envelope_frames_text(const char *prefix, const json_t *ri, int64_t ack_id, const char *text,
                         size_t len, struct buf **event, struct buf **ack);

#endif
