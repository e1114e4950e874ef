/* config_keys.c: the jwt keyset of the config, from the `auth.keys` section of the file (and
 * from LUCKYSYNC_JWT_SECRET, through config_add_hs256). Each entry's kid, alg and key material
 * (an HS256 secret, or base64url Ed25519 public and private keys, checked against each other) is
 * checked and added to a fresh keyset that the staging copy owns at once, so a failed load frees
 * it. Walks the table with the helpers of config.c through config_int.h. */
#include "config.h"
#include "config_int.h"

#include <errno.h>
#include <lua.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "jwt.h"
#include "log.h"

#define CONFIG_SHORT_SECRET 32 /* HS256 secrets below this many bytes draw a warning */
#define CONFIG_MAX_SECRET 4096 /* one HS256 secret, in bytes */
#define CONFIG_MAX_B64KEY 88   /* base64url text of a 64-byte key is 86 characters */

/* The members of one auth.keys entry; load_key() reads them. */
static const struct field key_fields[] = {
    {"kid", K_NONE, 0, 0, 0, NULL},        {"alg", K_NONE, 0, 0, 0, NULL},
    {"secret", K_NONE, 0, 0, 0, NULL},     {"publicKey", K_NONE, 0, 0, 0, NULL},
    {"privateKey", K_NONE, 0, 0, 0, NULL}, {0},
};

int config_add_hs256(struct jwt_keyset *ks, const char *kid, const char *secret, size_t len,
                     const char *where)
{
    if (len < CONFIG_SHORT_SECRET)
        log_write(LOG_WARN, "config: HS256 secret is shorter than 32 bytes",
                  "\"key\":\"%s\",\"bytes\":%zu", where, len);
    return jwt_keyset_add_hs256(ks, kid, (const unsigned char *)secret, len);
}

/* t[name] as a string (NULL when absent). */
static int key_part(struct load_ctx *x, lua_State *L, int t, const char *kpath, const char *name,
                    size_t max, int allow_nul, const char **s, size_t *len)
{
    char path[CONFIG_PATH_LEN];
    int rc = 0;
    config_join_path(path, sizeof path, kpath, name);
    *s = NULL;
    *len = 0;
    lua_pushstring(L, name);
    if (lua_rawget(L, t) != LUA_TNIL)
        rc = config_get_string(x, L, -1, path, max, allow_nul, s, len);
    lua_pop(L, 1);
    return rc;
}

/* Decode a base64url key; returns its length in bytes or -1. */
static int decode_key(struct load_ctx *x, const char *kpath, const char *name, const char *text,
                      size_t len, unsigned char *out, size_t cap)
{
    int n = len <= CONFIG_MAX_B64KEY ? jwt_b64url_decode(text, len, out, cap) : -EINVAL;
    if (n < 0)
        return CONFIG_FAIL(x, "%s.%s: expected base64url (no padding) of 32 or 64 bytes", kpath,
                           name);
    return n;
}

static int add_result(struct load_ctx *x, const char *kpath, int rc)
{
    if (rc == JWT_ENOMEM)
        return CONFIG_FAIL(x, "out of memory");
    if (rc != JWT_OK)
        return CONFIG_FAIL(x, "%s: rejected by jwt: %s", kpath, jwt_strerror(rc));
    return 0;
}

/* An EdDSA entry: a private key (32-byte seed or 64-byte libsodium secret key), a public key,
 * or both (which must then agree). */
static int add_eddsa(struct load_ctx *x, const char *kpath, const char *kid, const char *pub,
                     size_t publen, const char *priv, size_t privlen)
{
    unsigned char buf[72], pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    unsigned char pub_raw[72];
    int rc = -1, n;

    if (sodium_init() < 0)
        return CONFIG_FAIL(x, "libsodium failed to initialise");
    if (pub) {
        if ((n = decode_key(x, kpath, "publicKey", pub, publen, pub_raw, sizeof pub_raw)) < 0)
            goto out;
        if (n != crypto_sign_PUBLICKEYBYTES) {
            config_report(x, "%s.publicKey: expected 32 bytes, got %d", kpath, n);
            goto out;
        }
    }
    if (priv) {
        if ((n = decode_key(x, kpath, "privateKey", priv, privlen, buf, sizeof buf)) < 0)
            goto out;
        if (n != crypto_sign_SEEDBYTES && n != crypto_sign_SECRETKEYBYTES) {
            config_report(
                x, "%s.privateKey: expected 32 bytes (seed) or 64 bytes (secret key), got %d",
                kpath, n);
            goto out;
        }
        /* A 64-byte key is seed || public key: rederive it so a corrupted half is caught. */
        crypto_sign_seed_keypair(pk, sk, buf);
        if (n == crypto_sign_SECRETKEYBYTES && sodium_memcmp(sk, buf, sizeof sk) != 0) {
            config_report(x, "%s.privateKey: its public half does not match its seed", kpath);
            goto out;
        }
        if (pub && sodium_memcmp(pk, pub_raw, sizeof pk) != 0) {
            config_report(x, "%s: publicKey does not match privateKey", kpath);
            goto out;
        }
        rc = add_result(x, kpath, jwt_keyset_add_ed25519_secret(x->cfg->keys, kid, sk));
    } else if (!crypto_core_ed25519_is_valid_point(pub_raw)) {
        config_report(x, "%s.publicKey: not a valid Ed25519 public key", kpath);
    } else {
        rc = add_result(x, kpath, jwt_keyset_add_ed25519_public(x->cfg->keys, kid, pub_raw));
    }
out:
    sodium_memzero(buf, sizeof buf);
    sodium_memzero(sk, sizeof sk);
    return rc;
}

static int load_key(struct load_ctx *x, lua_State *L, int t, const char *kpath, const char **kids,
                    size_t nkids)
{
    const char *kid, *alg, *secret, *pub, *priv;
    size_t len, secretlen, publen, privlen;

    if (!lua_istable(L, t))
        return config_type_error(x, L, t, kpath, "table");
    if (config_check_unknown(x, L, t, kpath, key_fields) < 0 ||
        key_part(x, L, t, kpath, "kid", JWT_KID_MAX, 0, &kid, &len) < 0 ||
        key_part(x, L, t, kpath, "alg", 16, 0, &alg, &len) < 0 ||
        key_part(x, L, t, kpath, "secret", CONFIG_MAX_SECRET, 1, &secret, &secretlen) < 0 ||
        key_part(x, L, t, kpath, "publicKey", CONFIG_MAX_STRING, 0, &pub, &publen) < 0 ||
        key_part(x, L, t, kpath, "privateKey", CONFIG_MAX_STRING, 0, &priv, &privlen) < 0)
        return -1;
    for (size_t i = 0; kid && i < nkids; i++)
        if (kids[i] && strcmp(kids[i], kid) == 0)
            return CONFIG_FAIL(x, "%s.kid: duplicate kid \"%s\"", kpath, kid);
    if (!alg)
        return CONFIG_FAIL(x, "%s.alg: missing (\"HS256\" or \"EdDSA\")", kpath);
    if (strcmp(alg, "HS256") == 0) {
        if (pub || priv)
            return CONFIG_FAIL(x, "%s.%s: not allowed with alg HS256 (use secret)", kpath,
                               pub ? "publicKey" : "privateKey");
        if (!secret)
            return CONFIG_FAIL(x, "%s.secret: missing (required with alg HS256)", kpath);
        return add_result(x, kpath, config_add_hs256(x->cfg->keys, kid, secret, secretlen, kpath));
    }
    if (strcmp(alg, "EdDSA") == 0) {
        if (secret)
            return CONFIG_FAIL(
                x, "%s.secret: not allowed with alg EdDSA (use publicKey/privateKey)", kpath);
        if (!pub && !priv)
            return CONFIG_FAIL(x, "%s: alg EdDSA needs publicKey or privateKey", kpath);
        return add_eddsa(x, kpath, kid, pub, publen, priv, privlen);
    }
    return CONFIG_FAIL(x, "%s.alg: expected \"HS256\" or \"EdDSA\", got \"%s\"", kpath, alg);
}

/* auth.keys replaces the whole keyset (even when empty): keys are not merged across files. */
int config_load_keys(struct load_ctx *x, lua_State *L, int t, const char *path)
{
    const char *kids[JWT_KEYSET_MAX];
    size_t n = 0;
    if (config_check_list(x, L, t, path, JWT_KEYSET_MAX, &n) < 0)
        return -1;
    struct jwt_keyset *ks = jwt_keyset_new();
    if (!ks)
        return CONFIG_FAIL(x, "out of memory");
    x->cfg->keys = ks; /* owned by the staging copy: freed on rollback */
    for (size_t i = 0; i < n; i++) {
        char kpath[CONFIG_PATH_LEN + 32];
        snprintf(kpath, sizeof kpath, "%s[%zu]", path, i + 1);
        lua_rawgeti(L, t, (lua_Integer)(i + 1));
        int rc = load_key(x, L, lua_gettop(L), kpath, kids, i);
        /* The kid string stays alive: the entry is still referenced by the table. */
        kids[i] = NULL;
        if (rc == 0) {
            lua_pushliteral(L, "kid");
            if (lua_rawget(L, -2) == LUA_TSTRING)
                kids[i] = lua_tostring(L, -1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        if (rc < 0)
            return -1;
    }
    return 0;
}
