/* jtext: a fast compact JSON writer and a fast strict JSON reader for jansson's json_t, drop-in
 * replacements for json_dumps(v, JSON_COMPACT) and json_loadb(…, JSON_REJECT_DUPLICATES, …) of
 * jansson 2.14 with byte-identical output and identical acceptance (spec/c/test_jtext.c and
 * spec/fuzz/fuzz_jtext.c compare both against jansson). They work on whole memory buffers
 * instead of jansson's per-character stream and callback machinery. Uses jansson's value API
 * only; no I/O, no globals. Text is RFC 8259 JSON; strings are UTF-8.
 *
 * Bounds: nesting is limited to JTEXT_MAX_DEPTH levels both ways (jansson's own parser limit);
 * the recursion of the writer and the explicit stack of the reader are bounded by it. Input and
 * output sizes are the caller's bound. */
#ifndef LUCKYSYNC_JTEXT_H
#define LUCKYSYNC_JTEXT_H

#include <stddef.h>

#include <jansson.h>

/* Nesting bound: the top-level value is level 1 (jansson's JSON_PARSER_MAX_DEPTH). */
#define JTEXT_MAX_DEPTH 2048u

/* A growable byte buffer the caller owns, for writing prefix + value + suffix in one allocation.
 * data is malloc'd (NULL while cap is 0) and kept NUL-terminated after every successful jtext
 * call that wrote to it; len excludes the NUL. The caller may read data[0..len) and may take
 * data for itself (free() it later) instead of calling jtext_buf_close. */
struct jtext_buf {
    char *data;
    size_t len;
    size_t cap;
};

/* Make b empty, owning nothing. Never fails. */
void jtext_buf_init(struct jtext_buf *b);
/* Free b's data and make it empty again. */
void jtext_buf_close(struct jtext_buf *b);
/* Ensure room for `extra` more bytes (plus the NUL). 0, or -ENOMEM with b unchanged. */
int jtext_buf_reserve(struct jtext_buf *b, size_t extra);
/* Append p[0..n) (borrowed). 0, or -ENOMEM with b unchanged. */
int jtext_buf_append(struct jtext_buf *b, const void *p, size_t n);

/* Append the compact JSON text of v (borrowed) to b: exactly what json_dumps(v, JSON_COMPACT |
 * JSON_ENCODE_ANY) writes, so any type may stand at the top. Returns 0, or a negative errno with
 * b->len as it was: -EINVAL (v NULL, a string value that is not valid UTF-8, a non-finite real),
 * -E2BIG (containers nested deeper than JTEXT_MAX_DEPTH: the one deliberate difference, jansson
 * has no such limit when writing; a cycle, which jansson refuses too, always ends here), -ENOMEM.
 * An object key that is not valid UTF-8 is written truncated, as jansson does. */
int jtext_dump_append(struct jtext_buf *b, const json_t *v);

/* Append s[0..n) (borrowed) as a quoted JSON string, escaped as jtext_dump_append escapes a
 * string value. 0, or -EINVAL (not valid UTF-8) / -ENOMEM with b->len as it was. */
int jtext_string_append(struct jtext_buf *b, const char *s, size_t n);

/* Append an integer (as json_integer(v) dumps) or a real (as json_real(d) dumps: "%.17g", ".0"
 * added to integral values, the exponent without '+' or leading zeros). 0, or -EINVAL (d not
 * finite) / -ENOMEM with b->len as it was. */
int jtext_integer_append(struct jtext_buf *b, long long v);
int jtext_real_append(struct jtext_buf *b, double d);

/* The compact JSON text of v (borrowed) as a new malloc'd NUL-terminated string the caller
 * frees, with its length in *len_out when len_out is not NULL: byte for byte what
 * json_dumps(v, JSON_COMPACT) returns. NULL where jansson returns NULL: v NULL, v neither an
 * array nor an object, the jtext_dump_append failures above; and on allocation failure. */
char *jtext_dump(const json_t *v, size_t *len_out);

/* Parse text[0..len) (borrowed; need not be NUL-terminated) as json_loadb(text, len,
 * JSON_REJECT_DUPLICATES, err) does: an array or object at the top, whitespace around it and
 * nothing else, strict UTF-8, no duplicate keys, no \u0000, integers within int64, reals that
 * do not overflow; even jansson's quirk of skipping one NUL byte right after a number or a
 * literal. Returns a new value (the caller owns the reference), or NULL with err (may be NULL)
 * filled in: text in jansson's wording (without its "near '...'" part), json_error_code(err) set,
 * source "<buffer>", line/column/position best-effort. */
json_t *jtext_load(const char *text, size_t len, json_error_t *err);

/* ---- the token reader ---- */

/* jtext_load's grammar and checks as a stream of tokens, for callers that build something other
 * than json_t (Lua values, a few fields picked out of an envelope) without a tree in between.
 * It accepts exactly what jtext_load accepts, except duplicate object keys: those it passes on
 * as they come, for the caller to refuse. Usage:
 *
 *     struct jtext_reader r;
 *     struct jtext_token t;
 *     jtext_reader_init(&r, text, len);
 *     while (jtext_next(&r, &t) > JTEXT_END) { ... }   // JTEXT_END: done; JTEXT_ERROR: invalid
 *     jtext_reader_close(&r);
 *
 * The top-level value is an array or an object. After JTEXT_OBJECT come KEY-value pairs, after
 * JTEXT_ARRAY values, each container ended by JTEXT_CLOSE; JTEXT_END follows the top-level
 * CLOSE once only whitespace is left. An error is final: every later call returns it again. */
enum jtext_tok {
    JTEXT_ERROR = -1,
    JTEXT_END = 0,
    JTEXT_OBJECT,
    JTEXT_ARRAY,
    JTEXT_CLOSE,
    JTEXT_KEY,
    JTEXT_STRING,
    JTEXT_INTEGER,
    JTEXT_REAL,
    JTEXT_TRUE,
    JTEXT_FALSE,
    JTEXT_NULL,
};

struct jtext_token {
    enum jtext_tok type;
    /* KEY, STRING: the decoded text (valid UTF-8, no NUL), valid until the next token of the
     * same kind (a KEY's text survives its value's tokens). escaped: the text had escapes, so
     * str points into the reader's scratch; otherwise it points into the input. */
    const char *str;
    size_t len;
    int escaped;
    json_int_t i; /* INTEGER */
    double d;     /* REAL */
    size_t start, end; /* the token's bytes in the input: [start, end) */
};

/* A decoded string's buffer: inl (inside the reader) or malloc'd. */
struct jtext_scratch {
    char *p, *inl;
    size_t cap;
};

/* The parser's state, on the caller's stack (about 600 bytes). Its fields are jtext's own. */
struct jtext_reader {
    const unsigned char *start, *s, *end;
    json_error_t *err;
    struct jtext_scratch key, val;
    json_t **stack, **stack_inl; /* jtext_load's open containers */
    size_t depth;
    int escaped, state;
    char key_inl[128], val_inl[128];
    unsigned char arrays[JTEXT_MAX_DEPTH / 8]; /* the token reader's open containers: 1 = array */
};

/* Start reading text[0..len) (borrowed, need not be NUL-terminated; it must outlive r). */
void jtext_reader_init(struct jtext_reader *r, const char *text, size_t len);
/* Decode escaped strings into the caller's buffers (borrowed; they must outlive r) instead of
 * r's own 128-byte ones. The reader mallocs only for a string longer than the buffer, so
 * buffers of len bytes each, for a text of len bytes, mean it never allocates. Call it right
 * after jtext_reader_init. */
void jtext_reader_scratch(struct jtext_reader *r, char *key, size_t key_cap, char *val,
                          size_t val_cap);
/* The next token into *t; returns its type (JTEXT_END at the end, JTEXT_ERROR on invalid text or
 * out of memory). */
enum jtext_tok jtext_next(struct jtext_reader *r, struct jtext_token *t);
/* Free what r allocated (long escaped strings). r may be closed at any point. */
void jtext_reader_close(struct jtext_reader *r);

#endif
