/* jwt: JSON Web Token verification and minting (RFC 7519, JWS compact form RFC 7515) with
 * libsodium: HS256 (HMAC-SHA-256, shared secret) and EdDSA (Ed25519, RFC 8037). An explicit
 * allow-list: only those two; "none" and every other alg are refused. Each key carries its own
 * algorithm, so a token can never make the verifier use a key with another algorithm
 * (no algorithm confusion). Several keys may be loaded at once (kid) for rotation. Claims are
 * parsed with jansson (64-bit integers kept). Pure: time is passed in. */
#ifndef LUCKYSYNC_JWT_H
#define LUCKYSYNC_JWT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum jwt_alg { JWT_ALG_HS256 = 1, JWT_ALG_EDDSA = 2 };

#define JWT_TOKEN_MAX 8192 /* longest compact token accepted or minted, in bytes */
#define JWT_KEYSET_MAX 64  /* keys per keyset */
#define JWT_KID_MAX 255    /* longest kid, in bytes */

enum jwt_error {
    JWT_OK = 0,
    JWT_EMALFORMED = -1, /* not three base64url parts, bad JSON, bad header */
    JWT_EALG = -2,       /* alg missing, not allowed, or not the key's alg */
    JWT_ENOKEY = -3,     /* no key for the kid / alg */
    JWT_ESIG = -4,       /* signature does not verify */
    JWT_EEXPIRED = -5,   /* exp passed (beyond leeway) */
    JWT_ENOTYET = -6,    /* nbf in the future (beyond leeway) */
    JWT_ECLAIMS = -7,    /* claims not an object, or exp/nbf/iat not numbers */
    JWT_ENOMEM = -8,
    JWT_EINVAL = -9,     /* bad argument (key size, …) */
};

struct jwt_keyset;

/* An empty keyset (at most JWT_KEYSET_MAX keys), caller owns; NULL when out of memory or
 * libsodium fails to initialise. free wipes every secret; NULL is a no-op. */
struct jwt_keyset *jwt_keyset_new(void);
void jwt_keyset_free(struct jwt_keyset *ks);
/* Add keys; kid may be NULL (a key without id). Secrets are copied (wiped on free). Return 0
 * or JWT_EINVAL: keyset full, kid longer than JWT_KID_MAX or already present, empty HS256
 * secret, Ed25519 public key not a valid point, or secret key whose public half does not
 * match its seed. */
int jwt_keyset_add_hs256(struct jwt_keyset *ks, const char *kid, const unsigned char *secret,
                         size_t len);
int jwt_keyset_add_ed25519_public(struct jwt_keyset *ks, const char *kid,
                                  const unsigned char pk[32]);
/* A signing key (64-byte libsodium secret key = seed || public key); it also verifies. */
int jwt_keyset_add_ed25519_secret(struct jwt_keyset *ks, const char *kid,
                                  const unsigned char sk[64]);
/* How many keys ks holds. */
size_t jwt_keyset_count(const struct jwt_keyset *ks);

/* Verify token[0..len). Key choice: the header's kid selects exactly that key (whose alg must
 * equal the header's alg); without a kid every key of the header's alg is tried. exp/nbf are
 * checked against now (unix seconds) with leeway seconds (>= 0), only after the signature
 * verified. On success *claims (may be NULL) is a new reference to the claims object (caller
 * json_decref's) and 0 is returned; on failure *claims is NULL. Tokens longer than
 * JWT_TOKEN_MAX are JWT_EMALFORMED. */
int jwt_verify(const struct jwt_keyset *ks, const char *token, size_t len, int64_t now,
               int64_t leeway, json_t **claims);

/* Mint a token signed with the key `kid` (NULL: the first signing-capable key). claims is
 * borrowed. *out is a malloc'd NUL-terminated string the caller frees. Fails with JWT_ENOKEY
 * (no such signing key), JWT_ECLAIMS (claims not an object), JWT_EINVAL (token would exceed
 * JWT_TOKEN_MAX) or JWT_ENOMEM. */
int jwt_sign(const struct jwt_keyset *ks, const char *kid, const json_t *claims, char **out);

/* A short stable description of an error code ("expired", "bad signature", …). */
const char *jwt_strerror(int err);

/* base64url without padding (RFC 4648 §5). encode: returns the length written (NUL-terminated)
 * or -ENOSPC. decode: accepts no padding only, rejects any byte outside the alphabet and
 * non-zero trailing bits (§3.5); returns the decoded length, -EINVAL, or -ENOSPC when cap is
 * too small. */
int jwt_b64url_encode(const unsigned char *in, size_t len, char *out, size_t cap);
int jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap);

#endif
