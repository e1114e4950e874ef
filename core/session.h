/* session: turns a verified JWT into the session of a connection: user id (`sub`), session id
 * (the `sid` claim, or a hash of the token when it has none), expiry and every claim. Also
 * finds the token a client offered in its handshake headers. Uses jwt, jansson, libsodium. */
#ifndef LUCKYSYNC_SESSION_H
#define LUCKYSYNC_SESSION_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct jwt_keyset;

/* A value record; owned by its connection. */
struct session {
    char *user_id;    /* the `sub` claim */
    char *session_id; /* the `sid` claim, or "t." + base64url(BLAKE2b-128(token)) */
    int64_t exp;      /* unix seconds; 0 = no expiry */
    json_t *claims;   /* every claim (owned reference) */
};

/* Verify token[0..len) and build a session. Returns 0 and sets *out (caller frees with
 * session_free), or a negative jwt_error (see jwt.h). A token without a string `sub` is
 * refused with JWT_ECLAIMS. */
int session_from_token(const struct jwt_keyset *ks, const char *token, size_t len, int64_t now,
                       int64_t leeway, struct session **out);
void session_free(struct session *s);

/* The stable wire error code for a jwt error: "auth.expired" or "auth.invalidToken". */
const char *session_error_code(int err);

/* Extract the token from an Authorization header value ("Bearer <t>", case-insensitive
 * scheme) or a Cookie header value (cookie `luckysync_token`). Returns a pointer into the
 * value and sets *len, or NULL. */
const char *session_token_from_authorization(const char *value, size_t *len);
const char *session_token_from_cookie(const char *value, size_t *len);

#endif
