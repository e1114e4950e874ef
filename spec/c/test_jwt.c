/* test_jwt.c: jwt against published vectors (RFC 7515 A.1, RFC 8037 A.4, RFC 4648 §10) and
 * the attacks a verifier must refuse (alg none, algorithm confusion, tampering, time). */
#include "jwt.h"
#include "testlib.h"

#include <errno.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>

#define NOW 1700000000

/* Decode a base64url string the test knows to be valid; returns the length. */
static size_t b64d(const char *s, unsigned char *out, size_t cap)
{
    int n = jwt_b64url_decode(s, strlen(s), out, cap);
    CHECK(n >= 0);
    return n < 0 ? 0 : (size_t)n;
}

/* Append base64url(data) to buf at *off. */
static void b64_append(char *buf, size_t cap, size_t *off, const void *data, size_t len)
{
    int n = jwt_b64url_encode(data, len, buf + *off, cap - *off);
    CHECK(n >= 0);
    if (n > 0)
        *off += (size_t)n;
}

static void b64_append_str(char *buf, size_t cap, size_t *off, const char *s)
{
    b64_append(buf, cap, off, s, strlen(s));
}

/* Build header.payload.HMAC-SHA-256(secret) by hand, so the test controls every byte the
 * verifier sees. */
static void make_token(char *out, size_t cap, const char *hdr, const char *payload,
                       const unsigned char *secret, size_t secret_len)
{
    size_t off = 0;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    b64_append(out, cap, &off, hdr, strlen(hdr));
    out[off++] = '.';
    b64_append(out, cap, &off, payload, strlen(payload));
    crypto_auth_hmacsha256_init(&st, secret, secret_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)out, off);
    crypto_auth_hmacsha256_final(&st, mac);
    out[off++] = '.';
    b64_append(out, cap, &off, mac, sizeof mac);
}

static int verify_str(const struct jwt_keyset *ks, const char *tok, int64_t now, int64_t leeway)
{
    json_t *c = (json_t *)1;
    int rc = jwt_verify(ks, tok, strlen(tok), now, leeway, &c);
    if (rc == JWT_OK)
        json_decref(c);
    else
        CHECK(c == NULL);
    return rc;
}

static void test_b64(void)
{
    static const char *const rfc4648[][2] = {
        {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},         {"foo", "Zm9v"},
        {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
    char enc[128];
    unsigned char dec[128], in[80];
    for (size_t i = 0; i < sizeof rfc4648 / sizeof rfc4648[0]; i++) {
        int n = jwt_b64url_encode((const unsigned char *)rfc4648[i][0], strlen(rfc4648[i][0]), enc,
                                  sizeof enc);
        CHECK_EQ_INT(n, strlen(rfc4648[i][1]));
        CHECK_EQ_STR(enc, rfc4648[i][1]);
    }
    /* The two characters that differ from standard base64. */
    unsigned char hi[3] = {0xfb, 0xff, 0xbf};
    CHECK_EQ_INT(jwt_b64url_encode(hi, 3, enc, sizeof enc), 4);
    CHECK_EQ_STR(enc, "-_-_");

    for (size_t len = 0; len <= 70; len++) {
        randombytes_buf(in, len);
        int n = jwt_b64url_encode(in, len, enc, sizeof enc);
        CHECK_EQ_INT(n, (len * 4 + 2) / 3);
        CHECK_EQ_INT(strlen(enc), n);
        CHECK(strchr(enc, '=') == NULL);
        int m = jwt_b64url_decode(enc, (size_t)n, dec, len);
        CHECK_EQ_INT(m, len);
        CHECK(memcmp(in, dec, len) == 0);
        if (len > 0) {
            CHECK_EQ_INT(jwt_b64url_decode(enc, (size_t)n, dec, len - 1), -ENOSPC);
            CHECK_EQ_INT(jwt_b64url_encode(in, len, enc, (size_t)n), -ENOSPC);
        }
    }
    static const char *const bad[] = {"Zg==", "Zg=",    "Zm8=", "Z",   "Zm9vY", "a+b/",
                                      "Zm 9", "Zm9v\n", "Zh",   "Zm9", "Zm9v*A"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ_INT(jwt_b64url_decode(bad[i], strlen(bad[i]), dec, sizeof dec), -EINVAL);
    CHECK_EQ_INT(jwt_b64url_decode("Zm\0v", 4, dec, sizeof dec), -EINVAL);
    CHECK_EQ_INT(jwt_b64url_decode("", 0, NULL, 0), 0);
}

/* RFC 7515 Appendix A.1: the HS256 example, byte for byte (its header has CR LF in it). */
static void test_rfc7515_a1(void)
{
    static const char tok[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
                              ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGx"
                              "lLmNvbS9pc19yb290Ijp0cnVlfQ"
                              ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    static const char k[] =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
    unsigned char key[64];
    size_t klen = b64d(k, key, sizeof key);
    CHECK_EQ_INT(klen, 64);
    struct jwt_keyset *ks = jwt_keyset_new();
    CHECK_EQ_INT(jwt_keyset_add_hs256(ks, NULL, key, klen), JWT_OK);

    json_t *c = NULL;
    CHECK_EQ_INT(jwt_verify(ks, tok, strlen(tok), 1300819370, 0, &c), JWT_OK);
    CHECK_EQ_STR(json_string_value(json_object_get(c, "iss")), "joe");
    CHECK(json_is_true(json_object_get(c, "http://example.com/is_root")));
    CHECK_EQ_INT(json_integer_value(json_object_get(c, "exp")), 1300819380);
    json_decref(c);
    CHECK_EQ_INT(verify_str(ks, tok, 1300819380, 0), JWT_OK); /* exp itself is still valid */
    CHECK_EQ_INT(verify_str(ks, tok, 1300819381, 0), JWT_EEXPIRED);
    CHECK_EQ_INT(verify_str(ks, tok, NOW, 60), JWT_EEXPIRED);
    CHECK_EQ_INT(verify_str(ks, tok, 1300819385, 10), JWT_OK);
    /* NULL claims out-parameter is allowed. */
    CHECK_EQ_INT(jwt_verify(ks, tok, strlen(tok), 1300819370, 0, NULL), JWT_OK);

    /* Tampering the payload (a later exp) breaks the MAC. */
    char t2[sizeof tok];
    memcpy(t2, tok, sizeof tok);
    char *p = strstr(t2, "MTkzODAs");
    CHECK(p != NULL);
    if (p)
        p[2] = 'l';
    CHECK_EQ_INT(verify_str(ks, t2, 1300819370, 0), JWT_ESIG);
    /* The same key registered under a kid still serves a token without kid. */
    struct jwt_keyset *ks2 = jwt_keyset_new();
    CHECK_EQ_INT(jwt_keyset_add_hs256(ks2, "joe-key", key, klen), JWT_OK);
    CHECK_EQ_INT(verify_str(ks2, tok, 1300819370, 0), JWT_OK);
    jwt_keyset_free(ks2);
    jwt_keyset_free(ks);
}

/* RFC 8037 Appendix A.1, A.4: Ed25519 signing of "Example of Ed25519 signing". */
static void test_rfc8037_a4(void)
{
    static const char d[] = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    static const char x[] = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    static const char input[] = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
    /* As published in the RFC (and reproduced by libsodium below). */
    static const char sig_b64[] = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGj"
                                  "g5BhVsPt9g7sVvpAr_MuM0KAg";
    char tok[256];
    snprintf(tok, sizeof tok, "%s.%s", input, sig_b64);

    unsigned char seed[32], xpk[32], pk[32], sk[64], sig[64];
    CHECK_EQ_INT(b64d(d, seed, sizeof seed), 32);
    CHECK_EQ_INT(b64d(x, xpk, sizeof xpk), 32);
    crypto_sign_seed_keypair(pk, sk, seed);
    CHECK(memcmp(pk, xpk, 32) == 0);

    /* The payload decodes to the RFC's text. */
    unsigned char pl[64];
    size_t pn = b64d("RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc", pl, sizeof pl);
    CHECK_EQ_MEM(pl, pn, "Example of Ed25519 signing", strlen("Example of Ed25519 signing"));

    /* Ed25519 is deterministic: our encoder must reproduce the RFC's signature exactly. */
    char enc[128];
    crypto_sign_detached(sig, NULL, (const unsigned char *)input, strlen(input), sk);
    CHECK_EQ_INT(jwt_b64url_encode(sig, sizeof sig, enc, sizeof enc), 86);
    CHECK_EQ_STR(enc, sig_b64);

    /* The signature verifies; the payload is not a JSON object, so the claims layer refuses. */
    struct jwt_keyset *pub = jwt_keyset_new();
    CHECK_EQ_INT(jwt_keyset_add_ed25519_public(pub, NULL, pk), JWT_OK);
    CHECK_EQ_INT(verify_str(pub, tok, NOW, 0), JWT_ECLAIMS);
    struct jwt_keyset *sec = jwt_keyset_new();
    CHECK_EQ_INT(jwt_keyset_add_ed25519_secret(sec, "rfc8037", sk), JWT_OK);
    CHECK_EQ_INT(verify_str(sec, tok, NOW, 0), JWT_ECLAIMS);

    /* One character of the signature changed. */
    char bad[256];
    memcpy(bad, tok, sizeof bad);
    size_t s = strlen(input) + 1;
    bad[s] = bad[s] == 'h' ? 'i' : 'h';
    CHECK_EQ_INT(verify_str(pub, bad, NOW, 0), JWT_ESIG);
    memcpy(bad, tok, sizeof bad);
    bad[s + 40] = bad[s + 40] == 'A' ? 'B' : 'A';
    CHECK_EQ_INT(verify_str(pub, bad, NOW, 0), JWT_ESIG);
    /* Truncated signature: wrong length, still just a bad signature. */
    memcpy(bad, tok, sizeof bad);
    bad[strlen(bad) - 2] = '\0';
    CHECK_EQ_INT(verify_str(pub, bad, NOW, 0), JWT_ESIG);
    /* A key that is not this one. */
    unsigned char pk2[32], sk2[64];
    crypto_sign_keypair(pk2, sk2);
    struct jwt_keyset *other = jwt_keyset_new();
    CHECK_EQ_INT(jwt_keyset_add_ed25519_public(other, NULL, pk2), JWT_OK);
    CHECK_EQ_INT(verify_str(other, tok, NOW, 0), JWT_ESIG);
    jwt_keyset_free(other);
    jwt_keyset_free(sec);
    jwt_keyset_free(pub);
}

/* Decode a token's header segment into buf (NUL-terminated). */
static void token_header(const char *tok, char *buf, size_t cap)
{
    const char *dot = strchr(tok, '.');
    int n = dot ? jwt_b64url_decode(tok, (size_t)(dot - tok), (unsigned char *)buf, cap - 1) : -1;
    CHECK(n >= 0);
    buf[n < 0 ? 0 : n] = '\0';
}

static void test_round_trip(void)
{
    unsigned char s1[32], s2[48], edpk[32], edsk[64];
    randombytes_buf(s1, sizeof s1);
    randombytes_buf(s2, sizeof s2);
    crypto_sign_keypair(edpk, edsk);
    struct jwt_keyset *ks = jwt_keyset_new();
    CHECK_EQ_INT(jwt_keyset_add_hs256(ks, "k1", s1, sizeof s1), JWT_OK);
    CHECK_EQ_INT(jwt_keyset_add_hs256(ks, "k2", s2, sizeof s2), JWT_OK);
    CHECK_EQ_INT(jwt_keyset_add_ed25519_secret(ks, "ed1", edsk), JWT_OK);
    CHECK_EQ_INT(jwt_keyset_count(ks), 3);

    json_t *claims = json_pack("{s:s, s:I, s:I}", "sub", "u42", "exp", (json_int_t)NOW + 60, "big",
                               (json_int_t)9007199254740993LL);
    char *tok = NULL, hdr[256];
    static const char *const kids[] = {"k1", "k2", "ed1"};
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ_INT(jwt_sign(ks, kids[i], claims, &tok), JWT_OK);
        CHECK(tok != NULL);
        if (!tok)
            continue;
        token_header(tok, hdr, sizeof hdr);
        char want[128];
        snprintf(want, sizeof want, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
                 i < 2 ? "HS256" : "EdDSA", kids[i]);
        CHECK_EQ_STR(hdr, want);
        json_t *c = NULL;
        CHECK_EQ_INT(jwt_verify(ks, tok, strlen(tok), NOW, 0, &c), JWT_OK);
        CHECK_EQ_STR(json_string_value(json_object_get(c, "sub")), "u42");
        /* 2^53 + 1: lost by any double round trip. */
        CHECK(json_is_integer(json_object_get(c, "big")));
        CHECK(json_integer_value(json_object_get(c, "big")) == 9007199254740993LL);
        json_decref(c);

        /* Replace the payload with other claims, keep the signature. */
        char forged[1024];
        const char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
        size_t off = (size_t)(d1 - tok) + 1;
        memcpy(forged, tok, off);
        static const char evil[] = "{\"sub\":\"admin\",\"exp\":1800000000}";
        b64_append(forged, sizeof forged, &off, evil, strlen(evil));
        snprintf(forged + off, sizeof forged - off, "%s", d2);
        CHECK_EQ_INT(verify_str(ks, forged, NOW, 0), JWT_ESIG);
        free(tok);
        tok = NULL;
    }

    /* Rotation: a verifier holding only the new key refuses the old key's tokens. */
    struct jwt_keyset *only2 = jwt_keyset_new();
    CHECK_EQ_INT(jwt_keyset_add_hs256(only2, "k2", s2, sizeof s2), JWT_OK);
    CHECK_EQ_INT(jwt_sign(ks, "k1", claims, &tok), JWT_OK);
    CHECK_EQ_INT(verify_str(only2, tok, NOW, 0), JWT_ENOKEY);
    free(tok);
    CHECK_EQ_INT(jwt_sign(ks, "k2", claims, &tok), JWT_OK);
    CHECK_EQ_INT(verify_str(only2, tok, NOW, 0), JWT_OK);
    free(tok);
    jwt_keyset_free(only2);

    /* Unknown kid, signed correctly with a known secret: still no key. */
    char t[1024];
    make_token(t, sizeof t, "{\"alg\":\"HS256\",\"kid\":\"k9\"}", "{}", s1, sizeof s1);
    CHECK_EQ_INT(verify_str(ks, t, NOW, 0), JWT_ENOKEY);
    CHECK_EQ_INT(jwt_sign(ks, "k9", claims, &tok), JWT_ENOKEY);
    CHECK(tok == NULL);
    /* No kid: every HS256 key is tried. */
    make_token(t, sizeof t, "{\"alg\":\"HS256\",\"typ\":\"jwt\"}", "{\"a\":1}", s2, sizeof s2);
    CHECK_EQ_INT(verify_str(ks, t, NOW, 0), JWT_OK);
    /* kid names k1 but the token was MACed with k2's secret. */
    make_token(t, sizeof t, "{\"alg\":\"HS256\",\"kid\":\"k1\"}", "{}", s2, sizeof s2);
    CHECK_EQ_INT(verify_str(ks, t, NOW, 0), JWT_ESIG);

    /* jwt_sign with kid NULL takes the first signing-capable key. */
    struct jwt_keyset *mixed = jwt_keyset_new();
    CHECK_EQ_INT(jwt_keyset_add_ed25519_public(mixed, "pub", edpk), JWT_OK);
    CHECK_EQ_INT(jwt_sign(mixed, NULL, claims, &tok), JWT_ENOKEY);
    CHECK_EQ_INT(jwt_sign(mixed, "pub", claims, &tok), JWT_ENOKEY);
    CHECK_EQ_INT(jwt_keyset_add_hs256(mixed, NULL, s1, sizeof s1), JWT_OK);
    CHECK_EQ_INT(jwt_sign(mixed, NULL, claims, &tok), JWT_OK);
    if (tok) {
        token_header(tok, hdr, sizeof hdr);
        CHECK_EQ_STR(hdr, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
        CHECK_EQ_INT(verify_str(mixed, tok, NOW, 0), JWT_OK);
        free(tok);
    }
    /* An EdDSA token minted by ks verifies with the public key alone. */
    CHECK_EQ_INT(jwt_sign(ks, "ed1", claims, &tok), JWT_OK);
    struct jwt_keyset *edpub = jwt_keyset_new();
    CHECK_EQ_INT(jwt_keyset_add_ed25519_public(edpub, "ed1", edpk), JWT_OK);
    CHECK_EQ_INT(verify_str(edpub, tok, NOW, 0), JWT_OK);
    free(tok);
    jwt_keyset_free(edpub);

    json_t *arr = json_array();
    CHECK_EQ_INT(jwt_sign(ks, "k1", arr, &tok), JWT_ECLAIMS);
    json_decref(arr);
    CHECK_EQ_INT(jwt_sign(ks, "k1", NULL, &tok), JWT_EINVAL);
    /* Claims too large for JWT_TOKEN_MAX. */
    char *huge = malloc(JWT_TOKEN_MAX);
    memset(huge, 'a', JWT_TOKEN_MAX - 1);
    huge[JWT_TOKEN_MAX - 1] = '\0';
    json_t *big = json_pack("{s:s}", "pad", huge);
    CHECK_EQ_INT(jwt_sign(ks, "k1", big, &tok), JWT_EINVAL);
    CHECK(tok == NULL);
    json_decref(big);
    free(huge);

    jwt_keyset_free(mixed);
    json_decref(claims);
    jwt_keyset_free(ks);
}

/* Tokens forged the ways real JWT libraries have been broken. */
static void test_attacks(void)
{
    unsigned char secret[32], edpk[32], edsk[64];
    randombytes_buf(secret, sizeof secret);
    crypto_sign_keypair(edpk, edsk);
    struct jwt_keyset *ks = jwt_keyset_new();
    CHECK_EQ_INT(jwt_keyset_add_hs256(ks, "hs", secret, sizeof secret), JWT_OK);
    CHECK_EQ_INT(jwt_keyset_add_ed25519_public(ks, "ed", edpk), JWT_OK);
    char t[1024];
    size_t off;

    /* alg none with an empty signature. */
    off = 0;
    b64_append_str(t, sizeof t, &off, "{\"alg\":\"none\"}");
    t[off++] = '.';
    b64_append_str(t, sizeof t, &off, "{\"sub\":\"admin\"}");
    t[off++] = '.';
    t[off] = '\0';
    CHECK_EQ_INT(verify_str(ks, t, NOW, 0), JWT_EALG);

    /* Algorithms outside the allow-list, even with a valid HS256 MAC underneath. */
    static const char *const hdrs[] = {"{\"alg\":\"none\",\"typ\":\"JWT\"}",
                                       "{\"alg\":\"None\"}",
                                       "{\"alg\":\"HS512\"}",
                                       "{\"alg\":\"ES256\"}",
                                       "{\"alg\":\"RS256\"}",
                                       "{\"alg\":\"hs256\"}",
                                       "{\"typ\":\"JWT\"}",
                                       "{\"alg\":null}",
                                       "{\"alg\":256}",
                                       "{\"alg\":[\"HS256\"]}",
                                       "{\"alg\":\"HS256 \"}"};
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
        make_token(t, sizeof t, hdrs[i], "{}", secret, sizeof secret);
        CHECK_EQ_INT(verify_str(ks, t, NOW, 0), JWT_EALG);
    }

    /* Header shape: crit, typ, kid type, duplicate members, not an object. */
    static const char *const malformed[] = {"{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}",
                                            "{\"alg\":\"HS256\",\"typ\":\"JWS\"}",
                                            "{\"alg\":\"HS256\",\"typ\":1}",
                                            "{\"alg\":\"HS256\",\"kid\":7}",
                                            "{\"alg\":\"HS256\",\"alg\":\"HS256\"}",
                                            "{\"alg\":\"none\",\"alg\":\"HS256\"}",
                                            "[\"HS256\"]",
                                            "\"HS256\"",
                                            "{\"alg\":\"HS256\"",
                                            ""};
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        make_token(t, sizeof t, malformed[i], "{}", secret, sizeof secret);
        CHECK_EQ_INT(verify_str(ks, t, NOW, 0), JWT_EMALFORMED);
    }

    /* Algorithm confusion: HS256 with the Ed25519 public key bytes as the HMAC secret. With
     * the kid it is refused as the wrong algorithm; without, the HS256 key doesn't match. */
    make_token(t, sizeof t, "{\"alg\":\"HS256\",\"kid\":\"ed\"}", "{}", edpk, sizeof edpk);
    CHECK_EQ_INT(verify_str(ks, t, NOW, 0), JWT_EALG);
    make_token(t, sizeof t, "{\"alg\":\"HS256\"}", "{}", edpk, sizeof edpk);
    CHECK_EQ_INT(verify_str(ks, t, NOW, 0), JWT_ESIG);
    struct jwt_keyset *edonly = jwt_keyset_new();
    CHECK_EQ_INT(jwt_keyset_add_ed25519_public(edonly, NULL, edpk), JWT_OK);
    CHECK_EQ_INT(verify_str(edonly, t, NOW, 0), JWT_ENOKEY);
    jwt_keyset_free(edonly);
    /* And the other way: an EdDSA header naming the HMAC key. */
    off = 0;
    b64_append_str(t, sizeof t, &off, "{\"alg\":\"EdDSA\",\"kid\":\"hs\"}");
    t[off++] = '.';
    b64_append_str(t, sizeof t, &off, "{}");
    unsigned char sig[64];
    crypto_sign_detached(sig, NULL, (const unsigned char *)t, off, edsk);
    t[off++] = '.';
    b64_append(t, sizeof t, &off, sig, sizeof sig);
    CHECK_EQ_INT(verify_str(ks, t, NOW, 0), JWT_EALG);
    /* The same token without the kid is fine: it was signed by the Ed25519 key. */
    off = 0;
    b64_append_str(t, sizeof t, &off, "{\"alg\":\"EdDSA\"}");
    t[off++] = '.';
    b64_append_str(t, sizeof t, &off, "{}");
    crypto_sign_detached(sig, NULL, (const unsigned char *)t, off, edsk);
    t[off++] = '.';
    b64_append(t, sizeof t, &off, sig, sizeof sig);
    CHECK_EQ_INT(verify_str(ks, t, NOW, 0), JWT_OK);

    jwt_keyset_free(ks);
}

static void test_times(void)
{
    unsigned char secret[40];
    randombytes_buf(secret, sizeof secret);
    struct jwt_keyset *ks = jwt_keyset_new();
    CHECK_EQ_INT(jwt_keyset_add_hs256(ks, NULL, secret, sizeof secret), JWT_OK);
    static const char H[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char t[1024], p[256];

    snprintf(p, sizeof p, "{\"exp\":%d}", NOW - 100);
    make_token(t, sizeof t, H, p, secret, sizeof secret);
    CHECK_EQ_INT(verify_str(ks, t, NOW, 0), JWT_EEXPIRED);
    CHECK_EQ_INT(verify_str(ks, t, NOW, 99), JWT_EEXPIRED);
    CHECK_EQ_INT(verify_str(ks, t, NOW, 100), JWT_OK);
    CHECK_EQ_INT(verify_str(ks, t, NOW, 300), JWT_OK);
    CHECK_EQ_INT(verify_str(ks, t, NOW, -1), JWT_EINVAL);

    snprintf(p, sizeof p, "{\"nbf\":%d}", NOW + 100);
    make_token(t, sizeof t, H, p, secret, sizeof secret);
    CHECK_EQ_INT(verify_str(ks, t, NOW, 30), JWT_ENOTYET);
    CHECK_EQ_INT(verify_str(ks, t, NOW, 100), JWT_OK);
    CHECK_EQ_INT(verify_str(ks, t, NOW + 100, 0), JWT_OK);

    /* Real NumericDates (RFC 7519 §2 allows fractions). */
    snprintf(p, sizeof p, "{\"exp\":%d.5,\"nbf\":%d.5}", NOW, NOW - 10);
    make_token(t, sizeof t, H, p, secret, sizeof secret);
    CHECK_EQ_INT(verify_str(ks, t, NOW, 0), JWT_OK);
    CHECK_EQ_INT(verify_str(ks, t, NOW + 1, 0), JWT_EEXPIRED);
    CHECK_EQ_INT(verify_str(ks, t, NOW - 10, 0), JWT_ENOTYET);
    CHECK_EQ_INT(verify_str(ks, t, NOW - 10, 1), JWT_OK);

    /* Extremes must not overflow (UBSan watches). */
    make_token(t, sizeof t, H, "{\"exp\":9223372036854775807,\"nbf\":-9223372036854775808}", secret,
               sizeof secret);
    CHECK_EQ_INT(verify_str(ks, t, INT64_MAX, INT64_MAX), JWT_OK);
    CHECK_EQ_INT(verify_str(ks, t, INT64_MIN, INT64_MAX), JWT_OK);
    make_token(t, sizeof t, H, "{\"nbf\":9223372036854775807}", secret, sizeof secret);
    CHECK_EQ_INT(verify_str(ks, t, INT64_MAX - 5, 10), JWT_OK);
    CHECK_EQ_INT(verify_str(ks, t, INT64_MAX - 5, 4), JWT_ENOTYET);

    /* Wrong types, checked only after the signature. */
    static const char *const badclaims[] = {"{\"exp\":\"1800000000\"}",
                                            "{\"nbf\":true}",
                                            "{\"iat\":\"now\"}",
                                            "{\"exp\":null}",
                                            "[]",
                                            "\"claims\"",
                                            "42",
                                            "{\"a\":1,\"a\":2}",
                                            "{\"a\":",
                                            "not json"};
    for (size_t i = 0; i < sizeof badclaims / sizeof badclaims[0]; i++) {
        make_token(t, sizeof t, H, badclaims[i], secret, sizeof secret);
        CHECK_EQ_INT(verify_str(ks, t, NOW, 0), JWT_ECLAIMS);
        /* Same claims, broken MAC: the signature error wins. */
        t[strlen(t) - 3] = t[strlen(t) - 3] == 'A' ? 'B' : 'A';
        CHECK_EQ_INT(verify_str(ks, t, NOW, 0), JWT_ESIG);
    }
    /* An expired token with a bad signature reports the signature. */
    snprintf(p, sizeof p, "{\"exp\":%d}", NOW - 100);
    make_token(t, sizeof t, H, p, secret, sizeof secret);
    t[strlen(t) - 5] = t[strlen(t) - 5] == 'A' ? 'B' : 'A';
    CHECK_EQ_INT(verify_str(ks, t, NOW, 0), JWT_ESIG);

    /* The 64-bit integer as text from the wire, not just through jwt_sign. */
    make_token(t, sizeof t, H, "{\"n\":9007199254740993,\"m\":-9223372036854775808}", secret,
               sizeof secret);
    json_t *c = NULL;
    CHECK_EQ_INT(jwt_verify(ks, t, strlen(t), NOW, 0, &c), JWT_OK);
    CHECK(json_integer_value(json_object_get(c, "n")) == 9007199254740993LL);
    CHECK(json_integer_value(json_object_get(c, "m")) == INT64_MIN);
    json_decref(c);
    jwt_keyset_free(ks);
}

static void test_malformed(void)
{
    unsigned char secret[32];
    randombytes_buf(secret, sizeof secret);
    struct jwt_keyset *ks = jwt_keyset_new();
    CHECK_EQ_INT(jwt_keyset_add_hs256(ks, NULL, secret, sizeof secret), JWT_OK);
    char good[512];
    make_token(good, sizeof good, "{\"alg\":\"HS256\"}", "{\"a\":1}", secret, sizeof secret);
    CHECK_EQ_INT(verify_str(ks, good, NOW, 0), JWT_OK);

    static const char *const bad[] = {
        "",         ".",         "..",           "...",       "abc",   "a.b", "e30.e30.e30.e30",
        "!!!.e30.", "e30.e30=.", "e30.e30.a+b/", " e30.e30.", "Z.e30."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ_INT(verify_str(ks, bad[i], NOW, 0), JWT_EMALFORMED);

    /* The good token with a fourth part, padding, whitespace, or a NUL inside. */
    char t[600];
    snprintf(t, sizeof t, "%s.", good);
    CHECK_EQ_INT(verify_str(ks, t, NOW, 0), JWT_EMALFORMED);
    snprintf(t, sizeof t, "%s=", good);
    CHECK_EQ_INT(verify_str(ks, t, NOW, 0), JWT_EMALFORMED);
    snprintf(t, sizeof t, "%s\n", good);
    CHECK_EQ_INT(verify_str(ks, t, NOW, 0), JWT_EMALFORMED);
    size_t gl = strlen(good);
    memcpy(t, good, gl + 1);
    t[5] = '\0';
    CHECK_EQ_INT(jwt_verify(ks, t, gl, NOW, 0, NULL), JWT_EMALFORMED);
    /* len shorter than the string: only len bytes count (43 -> 41 signature characters is
     * impossible base64, 43 -> 40 a 30-byte MAC). */
    CHECK_EQ_INT(jwt_verify(ks, good, gl - 2, NOW, 0, NULL), JWT_EMALFORMED);
    CHECK_EQ_INT(jwt_verify(ks, good, gl - 3, NOW, 0, NULL), JWT_ESIG);
    /* A header without alg is refused before anything else is looked at. */
    CHECK_EQ_INT(verify_str(ks, "e30..", NOW, 0), JWT_EALG);

    /* Over the bound, even if otherwise well formed. */
    size_t hl = JWT_TOKEN_MAX + 64;
    char *huge = malloc(hl + 1);
    memset(huge, 'A', hl);
    huge[hl] = '\0';
    huge[100] = huge[200] = '.';
    CHECK_EQ_INT(verify_str(ks, huge, NOW, 0), JWT_EMALFORMED);
    CHECK_EQ_INT(jwt_verify(ks, huge, JWT_TOKEN_MAX + 1, NOW, 0, NULL), JWT_EMALFORMED);
    free(huge);
    /* A deep JSON nest inside the bound is refused by jansson's depth limit, not a crash. */
    size_t depth = 3000;
    char *deep = malloc(depth * 2 + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[depth * 2] = '\0';
    char *dt = malloc(JWT_TOKEN_MAX * 2);
    make_token(dt, JWT_TOKEN_MAX * 2, "{\"alg\":\"HS256\"}", deep, secret, sizeof secret);
    CHECK(strlen(dt) <= JWT_TOKEN_MAX);
    CHECK_EQ_INT(verify_str(ks, dt, NOW, 0), JWT_ECLAIMS);
    free(dt);
    free(deep);

    CHECK_EQ_INT(jwt_verify(NULL, good, gl, NOW, 0, NULL), JWT_EINVAL);
    CHECK_EQ_INT(jwt_verify(ks, NULL, 0, NOW, 0, NULL), JWT_EINVAL);
    jwt_keyset_free(ks);

    /* Random bytes never crash the parser. */
    ks = jwt_keyset_new();
    CHECK_EQ_INT(jwt_keyset_add_hs256(ks, NULL, secret, sizeof secret), JWT_OK);
    unsigned char junk[300];
    for (int i = 0; i < 2000; i++) {
        size_t n = randombytes_uniform(sizeof junk);
        randombytes_buf(junk, n);
        for (size_t j = 0; j < n; j++)
            if (junk[j] % 7 == 0)
                junk[j] = '.';
        CHECK(jwt_verify(ks, (const char *)junk, n, NOW, 0, NULL) < 0);
    }
    jwt_keyset_free(ks);
}

static void test_keyset(void)
{
    struct jwt_keyset *ks = jwt_keyset_new();
    unsigned char secret[32] = {1}, pk[32], sk[64];
    char kid[16];
    crypto_sign_keypair(pk, sk);
    for (int i = 0; i < JWT_KEYSET_MAX; i++) {
        snprintf(kid, sizeof kid, "k%d", i);
        CHECK_EQ_INT(jwt_keyset_add_hs256(ks, kid, secret, sizeof secret), JWT_OK);
    }
    CHECK_EQ_INT(jwt_keyset_count(ks), JWT_KEYSET_MAX);
    CHECK_EQ_INT(jwt_keyset_add_hs256(ks, "one-more", secret, sizeof secret), JWT_EINVAL);
    CHECK_EQ_INT(jwt_keyset_add_ed25519_public(ks, NULL, pk), JWT_EINVAL);
    CHECK_EQ_INT(jwt_keyset_count(ks), JWT_KEYSET_MAX);
    jwt_keyset_free(ks);

    ks = jwt_keyset_new();
    CHECK_EQ_INT(jwt_keyset_add_hs256(ks, "a", secret, sizeof secret), JWT_OK);
    CHECK_EQ_INT(jwt_keyset_add_hs256(ks, "a", secret, sizeof secret), JWT_EINVAL);
    CHECK_EQ_INT(jwt_keyset_add_ed25519_public(ks, "a", pk), JWT_EINVAL);
    CHECK_EQ_INT(jwt_keyset_add_hs256(ks, "b", secret, 0), JWT_EINVAL);
    CHECK_EQ_INT(jwt_keyset_add_hs256(ks, "b", NULL, 3), JWT_EINVAL);
    /* A one-byte and a 200-byte secret (longer than the HMAC block) both work. */
    unsigned char longs[200];
    randombytes_buf(longs, sizeof longs);
    CHECK_EQ_INT(jwt_keyset_add_hs256(ks, "short", secret, 1), JWT_OK);
    CHECK_EQ_INT(jwt_keyset_add_hs256(ks, "long", longs, sizeof longs), JWT_OK);
    json_t *claims = json_object();
    char *tok = NULL;
    CHECK_EQ_INT(jwt_sign(ks, "long", claims, &tok), JWT_OK);
    CHECK_EQ_INT(verify_str(ks, tok, NOW, 0), JWT_OK);
    free(tok);
    /* All-zero and small-order public keys are not valid points. */
    unsigned char zero[32] = {0}, one[32] = {1};
    CHECK_EQ_INT(jwt_keyset_add_ed25519_public(ks, NULL, zero), JWT_EINVAL);
    CHECK_EQ_INT(jwt_keyset_add_ed25519_public(ks, NULL, one), JWT_EINVAL);
    /* A secret key whose public half is not its seed's. */
    unsigned char mixed[64];
    memcpy(mixed, sk, 32);
    crypto_sign_keypair(pk, sk);
    memcpy(mixed + 32, pk, 32);
    CHECK_EQ_INT(jwt_keyset_add_ed25519_secret(ks, "mixed", mixed), JWT_EINVAL);
    /* kid bounds: JWT_KID_MAX bytes is fine, one more is not; not UTF-8 is refused. */
    char longkid[JWT_KID_MAX + 2];
    memset(longkid, 'x', sizeof longkid);
    longkid[JWT_KID_MAX] = '\0';
    CHECK_EQ_INT(jwt_keyset_add_hs256(ks, longkid, secret, sizeof secret), JWT_OK);
    longkid[JWT_KID_MAX] = 'x';
    longkid[JWT_KID_MAX + 1] = '\0';
    CHECK_EQ_INT(jwt_keyset_add_hs256(ks, longkid, secret, sizeof secret), JWT_EINVAL);
    CHECK_EQ_INT(jwt_keyset_add_hs256(ks, "\xff\xfe", secret, sizeof secret), JWT_EINVAL);
    /* A kid that needs escaping in JSON survives into the header and back. */
    CHECK_EQ_INT(jwt_keyset_add_hs256(ks, "q\"\\/\xc3\xa9", secret, sizeof secret), JWT_OK);
    CHECK_EQ_INT(jwt_sign(ks, "q\"\\/\xc3\xa9", claims, &tok), JWT_OK);
    CHECK_EQ_INT(verify_str(ks, tok, NOW, 0), JWT_OK);
    free(tok);
    json_decref(claims);
    jwt_keyset_free(ks);
    jwt_keyset_free(NULL);
    CHECK_EQ_INT(jwt_keyset_count(NULL), 0);
}

static void test_strerror(void)
{
    CHECK_EQ_STR(jwt_strerror(JWT_OK), "ok");
    CHECK_EQ_STR(jwt_strerror(JWT_EMALFORMED), "malformed token");
    CHECK_EQ_STR(jwt_strerror(JWT_EALG), "algorithm not allowed");
    CHECK_EQ_STR(jwt_strerror(JWT_ENOKEY), "no matching key");
    CHECK_EQ_STR(jwt_strerror(JWT_ESIG), "bad signature");
    CHECK_EQ_STR(jwt_strerror(JWT_EEXPIRED), "expired");
    CHECK_EQ_STR(jwt_strerror(JWT_ENOTYET), "not yet valid");
    CHECK_EQ_STR(jwt_strerror(JWT_ECLAIMS), "bad claims");
    CHECK_EQ_STR(jwt_strerror(JWT_ENOMEM), "out of memory");
    CHECK_EQ_STR(jwt_strerror(JWT_EINVAL), "invalid argument");
    CHECK_EQ_STR(jwt_strerror(-100), "unknown error");
    CHECK_EQ_STR(jwt_strerror(1), "unknown error");
}

int main(void)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "sodium_init failed\n");
        return 1;
    }
    test_b64();
    test_rfc7515_a1();
    test_rfc8037_a4();
    test_round_trip();
    test_attacks();
    test_times();
    test_malformed();
    test_keyset();
    test_strerror();
    TEST_MAIN_END();
}
