/* jwt.c: JWS compact tokens (RFC 7515 §7.1) carrying JWT claims (RFC 7519), HS256 and EdDSA
 * (RFC 7518 §3.2, RFC 8037 §3.1) over libsodium, JSON through jansson. */
#include "jwt.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define HS256_LEN crypto_auth_hmacsha256_BYTES /* 32 */
#define ED_SIG_LEN crypto_sign_BYTES           /* 64 */

struct jwt_key {
    enum jwt_alg alg;
    int can_sign;
    char *kid;             /* NULL: key without id */
    unsigned char *secret; /* HS256 secret, or the 64-byte Ed25519 secret key; wiped on free */
    size_t secret_len;
    unsigned char pk[crypto_sign_PUBLICKEYBYTES]; /* Ed25519 only */
};

struct jwt_keyset {
    size_t n;
    struct jwt_key keys[JWT_KEYSET_MAX];
};

/* ---- base64url (RFC 4648 §5, no padding) ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

static size_t b64_encoded_len(size_t len)
{
    return len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
}

/* base64url-encode in[0..len) into out, NUL-terminated; -ENOSPC when cap is too small. */
int jwt_b64url_encode(const unsigned char *in, size_t len, char *out, size_t cap)
{
    if (len > (size_t)INT_MAX / 4 * 3 - 3)
        return -ENOSPC;
    size_t olen = b64_encoded_len(len);
    if (!out || cap < olen + 1)
        return -ENOSPC;
    size_t i = 0, o = 0;
    for (; i + 3 <= len; i += 3) {
        unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = b64_alphabet[v >> 6 & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (len - i == 1) {
        out[o++] = b64_alphabet[in[i] >> 2];
        out[o++] = b64_alphabet[(in[i] & 3) << 4];
    } else if (len - i == 2) {
        out[o++] = b64_alphabet[in[i] >> 2];
        out[o++] = b64_alphabet[(in[i] & 3) << 4 | in[i + 1] >> 4];
        out[o++] = b64_alphabet[(in[i + 1] & 15) << 2];
    }
    out[o] = '\0';
    return (int)o;
}

/* Strictly decode unpadded canonical base64url into out; -EINVAL on any other input, -ENOSPC
 * when cap is too small. */
int jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    /* A lone trailing character carries only 6 bits: never a whole byte. */
    if (len % 4 == 1 || len > (size_t)INT_MAX)
        return -EINVAL;
    size_t olen = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (olen > cap || (olen && !out))
        return -ENOSPC;
    unsigned long acc = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0)
            return -EINVAL;
        acc = acc << 6 | (unsigned long)v;
        if (i % 4 == 3) {
            out[o++] = (unsigned char)(acc >> 16);
            out[o++] = (unsigned char)(acc >> 8);
            out[o++] = (unsigned char)acc;
            acc = 0;
        }
    }
    /* Canonical form only (§3.5): the unused low bits of the last character must be zero, so
     * every byte string has exactly one encoding and a token cannot be re-spelt. */
    if (len % 4 == 2) {
        if (acc & 15)
            return -EINVAL;
        out[o++] = (unsigned char)(acc >> 4);
    } else if (len % 4 == 3) {
        if (acc & 3)
            return -EINVAL;
        out[o++] = (unsigned char)(acc >> 10);
        out[o++] = (unsigned char)(acc >> 2);
    }
    return (int)o;
}

/* ---- keyset ---- */

/* An empty keyset the caller owns; NULL if libsodium cannot start or memory runs out. */
struct jwt_keyset *jwt_keyset_new(void)
{
    if (sodium_init() < 0)
        return NULL;
    return calloc(1, sizeof(struct jwt_keyset));
}

/* Wipe every secret and free the keyset; NULL is a no-op. */
void jwt_keyset_free(struct jwt_keyset *ks)
{
    if (!ks)
        return;
    for (size_t i = 0; i < ks->n; i++) {
        struct jwt_key *k = &ks->keys[i];
        if (k->secret) {
            sodium_memzero(k->secret, k->secret_len);
            free(k->secret);
        }
        free(k->kid);
    }
    sodium_memzero(ks, sizeof *ks);
    free(ks);
}

/* Number of keys held (0 for NULL). */
size_t jwt_keyset_count(const struct jwt_keyset *ks)
{
    return ks ? ks->n : 0;
}

static const struct jwt_key *find_kid(const struct jwt_keyset *ks, const char *kid)
{
    for (size_t i = 0; i < ks->n; i++)
        if (ks->keys[i].kid && strcmp(ks->keys[i].kid, kid) == 0)
            return &ks->keys[i];
    return NULL;
}

/* Append a key; copies kid and secret. pk may be NULL (HS256). */
static int add_key(struct jwt_keyset *ks, const char *kid, enum jwt_alg alg, int can_sign,
                   const unsigned char *secret, size_t secret_len, const unsigned char *pk)
{
    if (!ks || ks->n >= JWT_KEYSET_MAX)
        return JWT_EINVAL;
    if (kid && (strlen(kid) > JWT_KID_MAX || find_kid(ks, kid)))
        return JWT_EINVAL;
    struct jwt_key k = {.alg = alg, .can_sign = can_sign, .secret_len = secret_len};
    if (kid) {
        /* A header kid is always UTF-8 (it came from JSON), and jwt_sign must emit it. */
        json_t *probe = json_string(kid);
        if (!probe)
            return JWT_EINVAL;
        json_decref(probe);
        if (!(k.kid = strdup(kid)))
            goto fail;
    }
    if (secret_len) {
        if (!(k.secret = malloc(secret_len)))
            goto fail;
        memcpy(k.secret, secret, secret_len);
    }
    if (pk)
        memcpy(k.pk, pk, sizeof k.pk);
    ks->keys[ks->n++] = k;
    return JWT_OK;
fail:
    free(k.kid);
    return JWT_ENOMEM;
}

/* Add an HMAC-SHA-256 secret of any non-zero length (copied); JWT_EINVAL when empty. */
int jwt_keyset_add_hs256(struct jwt_keyset *ks, const char *kid, const unsigned char *secret,
                         size_t len)
{
    /* An empty HMAC key would let anyone mint tokens. */
    if (!secret || len == 0)
        return JWT_EINVAL;
    return add_key(ks, kid, JWT_ALG_HS256, 1, secret, len, NULL);
}

/* Add a verify-only Ed25519 key; JWT_EINVAL unless pk is a valid, non-small-order point. */
int jwt_keyset_add_ed25519_public(struct jwt_keyset *ks, const char *kid,
                                  const unsigned char pk[32])
{
    /* Refuses non-canonical encodings and small-order points, for which signatures prove
     * nothing. */
    if (!pk || !crypto_core_ed25519_is_valid_point(pk))
        return JWT_EINVAL;
    return add_key(ks, kid, JWT_ALG_EDDSA, 0, NULL, 0, pk);
}

/* Add a signing Ed25519 key (seed || pk, copied); JWT_EINVAL when pk is not the seed's. */
int jwt_keyset_add_ed25519_secret(struct jwt_keyset *ks, const char *kid,
                                  const unsigned char sk[64])
{
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk2[crypto_sign_SECRETKEYBYTES];
    if (!sk)
        return JWT_EINVAL;
    /* libsodium signs with the public half stored in sk; a mismatched one would mint tokens
     * that never verify, so rederive it from the seed and compare. */
    crypto_sign_seed_keypair(pk, sk2, sk);
    sodium_memzero(sk2, sizeof sk2);
    if (sodium_memcmp(pk, sk + 32, sizeof pk) != 0)
        return JWT_EINVAL;
    return add_key(ks, kid, JWT_ALG_EDDSA, 1, sk, crypto_sign_SECRETKEYBYTES, pk);
}

/* ---- signing primitives ---- */

static void hs256(const struct jwt_key *k, const void *msg, size_t len,
                  unsigned char mac[HS256_LEN])
{
    crypto_auth_hmacsha256_state st;
    /* The state API takes a key of any length (hashed first when over 64 bytes, RFC 2104). */
    crypto_auth_hmacsha256_init(&st, k->secret, k->secret_len);
    crypto_auth_hmacsha256_update(&st, msg, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
}

static int key_verifies(const struct jwt_key *k, const char *msg, size_t len,
                        const unsigned char *sig, size_t sig_len)
{
    if (k->alg == JWT_ALG_HS256) {
        unsigned char mac[HS256_LEN];
        if (sig_len != HS256_LEN)
            return 0;
        hs256(k, msg, len, mac);
        return sodium_memcmp(mac, sig, HS256_LEN) == 0;
    }
    return sig_len == ED_SIG_LEN &&
           crypto_sign_verify_detached(sig, (const unsigned char *)msg, len, k->pk) == 0;
}

/* ---- verification ---- */

static int ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Locale-free case-insensitive comparison, for typ (RFC 7515 §4.1.9). */
static int ascii_caseeq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b))
            return 0;
    return *a == *b;
}

/* Check the JOSE header (RFC 7515 §4.1) against our allow-list; *kid is borrowed from hdr. */
static int check_header(const json_t *hdr, enum jwt_alg *alg, const char **kid)
{
    const char *a = json_string_value(json_object_get(hdr, "alg"));
    if (!a)
        return JWT_EALG;
    if (strcmp(a, "HS256") == 0)
        *alg = JWT_ALG_HS256;
    else if (strcmp(a, "EdDSA") == 0)
        *alg = JWT_ALG_EDDSA;
    else
        return JWT_EALG;
    /* §4.1.11: a recipient must understand every extension listed in crit; we know none. */
    if (json_object_get(hdr, "crit"))
        return JWT_EMALFORMED;
    const json_t *typ = json_object_get(hdr, "typ");
    if (typ && (!json_is_string(typ) || !ascii_caseeq(json_string_value(typ), "JWT")))
        return JWT_EMALFORMED;
    const json_t *k = json_object_get(hdr, "kid");
    if (k && !json_is_string(k))
        return JWT_EMALFORMED;
    *kid = k ? json_string_value(k) : NULL;
    return JWT_OK;
}

static int check_signature(const struct jwt_keyset *ks, enum jwt_alg alg, const char *kid,
                           const char *input, size_t input_len, const unsigned char *sig,
                           size_t sig_len)
{
    if (kid) {
        const struct jwt_key *k = find_kid(ks, kid);
        if (!k)
            return JWT_ENOKEY;
        /* The key decides the algorithm, never the token: an HS256 header naming an Ed25519
         * key must not turn its public key into an HMAC secret. */
        if (k->alg != alg)
            return JWT_EALG;
        return key_verifies(k, input, input_len, sig, sig_len) ? JWT_OK : JWT_ESIG;
    }
    int tried = 0;
    for (size_t i = 0; i < ks->n; i++) {
        if (ks->keys[i].alg != alg)
            continue;
        tried = 1;
        if (key_verifies(&ks->keys[i], input, input_len, sig, sig_len))
            return JWT_OK;
    }
    return tried ? JWT_ESIG : JWT_ENOKEY;
}

static int64_t add_sat(int64_t a, int64_t b) /* b >= 0 */
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* exp and nbf (RFC 7519 §4.1.4-5) are NumericDates: integers compared exactly, reals in
 * double. */
static int check_times(const json_t *claims, int64_t now, int64_t leeway)
{
    const json_t *exp = json_object_get(claims, "exp");
    const json_t *nbf = json_object_get(claims, "nbf");
    const json_t *iat = json_object_get(claims, "iat");
    if ((exp && !json_is_number(exp)) || (nbf && !json_is_number(nbf)) ||
        (iat && !json_is_number(iat)))
        return JWT_ECLAIMS;
    if (exp) {
        if (json_is_integer(exp) ? now > add_sat((int64_t)json_integer_value(exp), leeway)
                                 : (double)now > json_real_value(exp) + (double)leeway)
            return JWT_EEXPIRED;
    }
    if (nbf) {
        if (json_is_integer(nbf) ? add_sat(now, leeway) < (int64_t)json_integer_value(nbf)
                                 : (double)now + (double)leeway < json_real_value(nbf))
            return JWT_ENOTYET;
    }
    return JWT_OK;
}

/* Verify a compact token: shape, header allow-list, key by kid/alg, signature, and only then
 * the claims and their times. *claims gets a new reference on success. */
int jwt_verify(const struct jwt_keyset *ks, const char *token, size_t len, int64_t now,
               int64_t leeway, json_t **claims)
{
    json_t *hdr = NULL, *payload = NULL;
    unsigned char *buf = NULL;
    int rc;
    if (claims)
        *claims = NULL;
    if (!ks || !token || leeway < 0)
        return JWT_EINVAL;
    if (len == 0 || len > JWT_TOKEN_MAX)
        return JWT_EMALFORMED;
    /* Exactly three segments: header.payload.signature (§7.1). */
    const char *end = token + len;
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(end - d1 - 1)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)))
        return JWT_EMALFORMED;

    /* The three decoded parts together are shorter than the token: one buffer holds them. */
    if (!(buf = malloc(len)))
        return JWT_ENOMEM;
    rc = JWT_EMALFORMED;
    int hn = jwt_b64url_decode(token, (size_t)(d1 - token), buf, len);
    if (hn < 0)
        goto fail;
    int pn = jwt_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), buf + hn, len - (size_t)hn);
    if (pn < 0)
        goto fail;
    unsigned char *sig = buf + hn + pn;
    int sn = jwt_b64url_decode(d2 + 1, (size_t)(end - d2 - 1), sig, len - (size_t)(hn + pn));
    if (sn < 0)
        goto fail;

    hdr = json_loadb((const char *)buf, (size_t)hn, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(hdr))
        goto fail;
    enum jwt_alg alg;
    const char *kid = NULL;
    if ((rc = check_header(hdr, &alg, &kid)) != JWT_OK)
        goto fail;
    /* The signing input is the ASCII of the first two segments as received (§5.2). */
    rc = check_signature(ks, alg, kid, token, (size_t)(d2 - token), sig, (size_t)sn);
    if (rc != JWT_OK)
        goto fail;

    /* Only now is the payload trusted enough to parse. */
    rc = JWT_ECLAIMS;
    payload = json_loadb((const char *)buf + hn, (size_t)pn, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(payload))
        goto fail;
    if ((rc = check_times(payload, now, leeway)) != JWT_OK)
        goto fail;
    if (claims) {
        *claims = payload;
        payload = NULL;
    }
    rc = JWT_OK;
fail:
    json_decref(payload);
    json_decref(hdr);
    free(buf);
    return rc;
}

/* ---- minting ---- */

static const struct jwt_key *find_signer(const struct jwt_keyset *ks, const char *kid)
{
    if (kid) {
        const struct jwt_key *k = find_kid(ks, kid);
        return k && k->can_sign ? k : NULL;
    }
    for (size_t i = 0; i < ks->n; i++)
        if (ks->keys[i].can_sign)
            return &ks->keys[i];
    return NULL;
}

/* Mint header.claims.signature with key kid (or the first that can sign); *out is malloc'd.
 * Fails with JWT_ENOKEY, JWT_ECLAIMS, JWT_EINVAL (over JWT_TOKEN_MAX) or JWT_ENOMEM. */
int jwt_sign(const struct jwt_keyset *ks, const char *kid, const json_t *claims, char **out)
{
    json_t *hdr = NULL;
    char *hs = NULL, *ps = NULL, *tok = NULL;
    unsigned char sig[ED_SIG_LEN];
    int rc;
    if (out)
        *out = NULL;
    if (!ks || !claims || !out)
        return JWT_EINVAL;
    if (!json_is_object(claims))
        return JWT_ECLAIMS;
    const struct jwt_key *k = find_signer(ks, kid);
    if (!k)
        return JWT_ENOKEY;

    rc = JWT_ENOMEM;
    const char *alg = k->alg == JWT_ALG_HS256 ? "HS256" : "EdDSA";
    hdr = json_object();
    if (!hdr || json_object_set_new(hdr, "alg", json_string(alg)) != 0 ||
        json_object_set_new(hdr, "typ", json_string("JWT")) != 0 ||
        (k->kid && json_object_set_new(hdr, "kid", json_string(k->kid)) != 0))
        goto fail;
    if (!(hs = json_dumps(hdr, JSON_COMPACT)) || !(ps = json_dumps(claims, JSON_COMPACT)))
        goto fail;

    size_t sig_len = k->alg == JWT_ALG_HS256 ? HS256_LEN : ED_SIG_LEN;
    size_t hl = strlen(hs), pl = strlen(ps);
    rc = JWT_EINVAL;
    if (hl > JWT_TOKEN_MAX || pl > JWT_TOKEN_MAX)
        goto fail;
    size_t eh = b64_encoded_len(hl), ep = b64_encoded_len(pl);
    size_t total = eh + 1 + ep + 1 + b64_encoded_len(sig_len);
    if (total > JWT_TOKEN_MAX)
        goto fail;
    rc = JWT_ENOMEM;
    if (!(tok = malloc(total + 1)))
        goto fail;
    jwt_b64url_encode((const unsigned char *)hs, hl, tok, total + 1);
    tok[eh] = '.';
    jwt_b64url_encode((const unsigned char *)ps, pl, tok + eh + 1, total - eh);
    size_t input_len = eh + 1 + ep;
    if (k->alg == JWT_ALG_HS256)
        hs256(k, tok, input_len, sig);
    else
        crypto_sign_detached(sig, NULL, (const unsigned char *)tok, input_len, k->secret);
    tok[input_len] = '.';
    jwt_b64url_encode(sig, sig_len, tok + input_len + 1, total - input_len);
    *out = tok;
    tok = NULL;
    rc = JWT_OK;
fail:
    free(tok);
    free(ps);
    free(hs);
    json_decref(hdr);
    return rc;
}

/* A fixed short string for err; "unknown error" for codes outside enum jwt_error. */
const char *jwt_strerror(int err)
{
    switch (err) {
    case JWT_OK:
        return "ok";
    case JWT_EMALFORMED:
        return "malformed token";
    case JWT_EALG:
        return "algorithm not allowed";
    case JWT_ENOKEY:
        return "no matching key";
    case JWT_ESIG:
        return "bad signature";
    case JWT_EEXPIRED:
        return "expired";
    case JWT_ENOTYET:
        return "not yet valid";
    case JWT_ECLAIMS:
        return "bad claims";
    case JWT_ENOMEM:
        return "out of memory";
    case JWT_EINVAL:
        return "invalid argument";
    default:
        return "unknown error";
    }
}
