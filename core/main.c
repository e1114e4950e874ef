/* main.c: the luckysync command: `luckysync [flags]` runs the server; `luckysync keygen` and
 * `luckysync token` mint development keys and tokens. */
#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "jwt.h"
#include "log.h"
#include "runtime.h"
#include "server.h"

static void usage(FILE *out)
{
    fputs("usage:\n"
          "  luckysync [--config FILE] [--handlers DIR] [--port N] [--host ADDR]\n"
          "            [--static DIR] [--log-level debug|info|warn|error] [--dev]\n"
          "  luckysync check [--config FILE] [--handlers DIR]\n"
          "  luckysync types [--config FILE] [--handlers DIR] > sync-routes.d.ts\n"
          "  luckysync keygen [--alg EdDSA|HS256] [--kid ID]\n"
          "  luckysync token [--config FILE] --sub USER [--kid ID] [--ttl SECONDS]\n"
          "            [--sid SESSION] [--claims JSON]\n"
          "Environment: LUCKYSYNC_JWT_SECRET (an HS256 secret when the config has no keys).\n",
          out);
}

/* Print a key as a Lua table for the config's auth.keys list. */
static int cmd_keygen(int argc, char **argv)
{
    const char *alg = "EdDSA", *kid = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--alg") == 0 && i + 1 < argc)
            alg = argv[++i];
        else if (strcmp(argv[i], "--kid") == 0 && i + 1 < argc)
            kid = argv[++i];
        else {
            usage(stderr);
            return 2;
        }
    }
    char id[32];
    if (!kid) {
        unsigned char r[6];
        randombytes_buf(r, sizeof r);
        jwt_b64url_encode(r, sizeof r, id, sizeof id);
        kid = id;
    }
    if (strcmp(alg, "HS256") == 0) {
        unsigned char secret[32];
        char enc[64];
        randombytes_buf(secret, sizeof secret);
        jwt_b64url_encode(secret, sizeof secret, enc, sizeof enc);
        printf("{ kid = \"%s\", alg = \"HS256\", secret = \"%s\" },\n", kid, enc);
        return 0;
    }
    if (strcmp(alg, "EdDSA") != 0) {
        fprintf(stderr, "keygen: --alg must be EdDSA or HS256\n");
        return 2;
    }
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    char pk64[64], seed64[64];
    crypto_sign_keypair(pk, sk);
    jwt_b64url_encode(pk, sizeof pk, pk64, sizeof pk64);
    jwt_b64url_encode(sk, 32, seed64, sizeof seed64); /* the seed is the first 32 bytes */
    printf("-- signing server (keep secret):\n"
           "{ kid = \"%s\", alg = \"EdDSA\", privateKey = \"%s\", publicKey = \"%s\" },\n"
           "-- verifying servers only need:\n"
           "{ kid = \"%s\", alg = \"EdDSA\", publicKey = \"%s\" },\n",
           kid, seed64, pk64, kid, pk64);
    sodium_memzero(sk, sizeof sk);
    return 0;
}

/* Mint a token with the configured signing key. */
static int cmd_token(int argc, char **argv)
{
    struct config cfg;
    char err[512];
    const char *sub = NULL, *kid = NULL, *sid = NULL, *claims_text = NULL;
    long long ttl = 3600;
    int rc = 2;
    json_t *claims = NULL;
    char *token = NULL;
    if (config_init(&cfg) != 0)
        return 1;
    /* Collect server flags (--config) for config_from_args and our own flags. */
    char **pass = calloc((size_t)argc + 1, sizeof *pass);
    int npass = 0;
    if (!pass)
        goto out;
    pass[npass++] = argv[0];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--sub") == 0 && v)
            sub = argv[++i];
        else if (strcmp(a, "--kid") == 0 && v)
            kid = argv[++i];
        else if (strcmp(a, "--sid") == 0 && v)
            sid = argv[++i];
        else if (strcmp(a, "--claims") == 0 && v)
            claims_text = argv[++i];
        else if (strcmp(a, "--ttl") == 0 && v)
            ttl = strtoll(argv[++i], NULL, 10);
        else if (strcmp(a, "--config") == 0 && v) {
            pass[npass++] = argv[i];
            pass[npass++] = argv[++i];
        } else {
            usage(stderr);
            goto out;
        }
    }
    if (!sub) {
        fprintf(stderr, "token: --sub is required\n");
        goto out;
    }
    if (config_from_args(&cfg, npass, pass, err, sizeof err) != 0) {
        fprintf(stderr, "token: %s\n", err);
        goto out;
    }
    if (claims_text) {
        json_error_t jerr;
        claims = json_loads(claims_text, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(claims)) {
            fprintf(stderr, "token: --claims must be a JSON object (%s)\n", jerr.text);
            goto out;
        }
    } else {
        claims = json_object();
    }
    long long now = (long long)time(NULL);
    json_object_set_new(claims, "sub", json_string(sub));
    json_object_set_new(claims, "iat", json_integer(now));
    if (ttl > 0)
        json_object_set_new(claims, "exp", json_integer(now + ttl));
    if (sid)
        json_object_set_new(claims, "sid", json_string(sid));
    int jrc = jwt_sign(cfg.keys, kid, claims, &token);
    if (jrc != 0) {
        fprintf(stderr, "token: cannot sign (%s): configure a signing key (HS256 secret or "
                        "EdDSA privateKey) or set LUCKYSYNC_JWT_SECRET\n",
                jwt_strerror(jrc));
        rc = 1;
        goto out;
    }
    printf("%s\n", token);
    rc = 0;
out:
    free(token);
    json_decref(claims);
    free(pass);
    config_close(&cfg);
    return rc;
}

/* `check` and `types`: load every handler the way the server does. */
static int cmd_handlers(int argc, char **argv, int types)
{
    struct config cfg;
    char err[512];
    int rc = 2;
    if (config_init(&cfg) != 0)
        return 1;
    argv[1] = argv[0]; /* drop the subcommand for config_from_args */
    if (config_from_args(&cfg, argc - 1, argv + 1, err, sizeof err) != 0) {
        fprintf(stderr, "luckysync: %s\n", err);
        goto out;
    }
    log_set_level(LOG_WARN);
    if (types) {
        rc = runtime_typescript(&cfg, cfg.lua_dir, stdout) == 0 ? 0 : 1;
    } else {
        int problems = runtime_check(&cfg, cfg.lua_dir, stdout);
        rc = problems ? 1 : 0;
    }
out:
    config_close(&cfg);
    return rc;
}

static int cmd_serve(int argc, char **argv)
{
    struct config cfg;
    char err[512];
    int rc = 1;
    struct server *s = NULL;
    if (config_init(&cfg) != 0)
        return 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            rc = 0;
            goto out;
        }
    }
    if (config_from_args(&cfg, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "luckysync: %s\n", err);
        usage(stderr);
        rc = 2;
        goto out;
    }
    log_set_level(cfg.log_level);
    if (jwt_keyset_count(cfg.keys) == 0)
        LOG_W("no auth keys configured: every token is refused, anonymous clients only", NULL);
    s = server_new(&cfg);
    if (!s)
        goto out;
    rc = server_run(s);
out:
    server_free(s);
    config_close(&cfg);
    return rc;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "luckysync: libsodium failed to initialise\n");
        return 1;
    }
    if (argc > 1 && strcmp(argv[1], "keygen") == 0)
        return cmd_keygen(argc, argv);
    if (argc > 1 && strcmp(argv[1], "token") == 0)
        return cmd_token(argc, argv);
    if (argc > 1 && strcmp(argv[1], "check") == 0)
        return cmd_handlers(argc, argv, 0);
    if (argc > 1 && strcmp(argv[1], "types") == 0)
        return cmd_handlers(argc, argv, 1);
    return cmd_serve(argc, argv);
}
