/* session.c: JWT → connection session. */
#include "session.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jwt.h"

int session_from_token(const struct jwt_keyset *ks, const char *token, size_t len, int64_t now,
                       int64_t leeway, struct session **out)
{
    json_t *claims = NULL;
    struct session *s = NULL;
    int rc = jwt_verify(ks, token, len, now, leeway, &claims);
    if (rc != JWT_OK)
        return rc;
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    if (!sub || !*sub) {
        rc = JWT_ECLAIMS;
        goto fail;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        rc = JWT_ENOMEM;
        goto fail;
    }
    s->user_id = strdup(sub);
    const char *sid = json_string_value(json_object_get(claims, "sid"));
    if (sid && *sid) {
        s->session_id = strdup(sid);
    } else {
        unsigned char h[16];
        char enc[32];
        crypto_generichash(h, sizeof h, (const unsigned char *)token, len, NULL, 0);
        jwt_b64url_encode(h, sizeof h, enc, sizeof enc);
        size_t n = strlen(enc) + 3;
        s->session_id = malloc(n);
        if (s->session_id)
            snprintf(s->session_id, n, "t.%s", enc);
    }
    if (!s->user_id || !s->session_id) {
        rc = JWT_ENOMEM;
        goto fail;
    }
    json_t *exp = json_object_get(claims, "exp");
    s->exp = exp ? (int64_t)json_number_value(exp) : 0;
    s->claims = claims;
    *out = s;
    return 0;
fail:
    session_free(s);
    json_decref(claims);
    return rc;
}

void session_free(struct session *s)
{
    if (!s)
        return;
    free(s->user_id);
    free(s->session_id);
    json_decref(s->claims);
    free(s);
}

const char *session_error_code(int err)
{
    return err == JWT_EEXPIRED ? "auth.expired" : "auth.invalidToken";
}

const char *session_token_from_authorization(const char *value, size_t *len)
{
    if (!value || strncasecmp(value, "Bearer ", 7) != 0)
        return NULL;
    const char *t = value + 7;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    if (!n)
        return NULL;
    *len = n;
    return t;
}

const char *session_token_from_cookie(const char *value, size_t *len)
{
    static const char name[] = "luckysync_token=";
    const char *p = value;
    while (p && *p) {
        while (*p == ' ' || *p == ';')
            p++;
        if (strncmp(p, name, sizeof name - 1) == 0) {
            const char *v = p + sizeof name - 1;
            size_t n = strcspn(v, ";");
            while (n && v[n - 1] == ' ')
                n--;
            if (!n)
                return NULL;
            *len = n;
            return v;
        }
        p = strchr(p, ';');
    }
    return NULL;
}
