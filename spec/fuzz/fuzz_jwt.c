/* fuzz_jwt.c: libFuzzer target for the JWT verifier (base64url, JSON header and claims, key
 * choice, signatures). Build: clang -fsanitize=fuzzer,address -Icore core/jwt.c
 * spec/fuzz/fuzz_jwt.c -ljansson -lsodium. Invariant: nothing but a token we signed verifies. */
#include <jansson.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"

static struct jwt_keyset *keys;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!keys) {
        unsigned char seed[32] = {1}, pk[32], sk[64];
        keys = jwt_keyset_new();
        jwt_keyset_add_hs256(keys, "hs", (const unsigned char *)"fuzz-secret-0123456789abcdef0123", 32);
        crypto_sign_seed_keypair(pk, sk, seed);
        jwt_keyset_add_ed25519_secret(keys, "ed", sk);
    }
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    json_t *claims = NULL;
    int rc = jwt_verify(keys, copy, size, 1700000000, 30, &claims);
    if (rc == JWT_OK && !json_is_object(claims))
        abort();
    json_decref(claims);
    free(copy);
    return 0;
}
