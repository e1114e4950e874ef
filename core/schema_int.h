/* schema_int.h: private to the schema module. Only core/schema.c, core/schema_validate.c and
 * core/schema_ts.c may include it; everything else sees schema.h (an opaque struct schema). It
 * holds the compiled tree, which schema.c builds, schema_validate.c validates with and
 * schema_ts.c prints, and the few helpers they share. The tree is immutable once
 * schema_compile returns it. */
#ifndef LUCKYSYNC_SCHEMA_INT_H
#define LUCKYSYNC_SCHEMA_INT_H

#include <stddef.h>

enum { T_STRING = 1, T_NUMBER = 2, T_INTEGER = 4, T_BOOLEAN = 8, T_NULL = 16, T_OBJECT = 32 };
enum { T_ARRAY = 64, T_ANY = 128 };

enum { EV_STR, EV_INT, EV_REAL };

struct enumval {
    int kind;
    char *str; /* EV_STR: valid UTF-8, may hold NUL bytes */
    size_t len;
    long long i; /* EV_INT */
    double d;    /* EV_REAL */
};

struct field {
    char *name; /* no NUL bytes (checked), so usable with json_object_get */
    size_t len;
    struct node *spec;
    int slot; /* compile time only: stack slot of the key */
};

struct node {
    unsigned types; /* T_* bits; 0 for an enum */
    unsigned char qmark, optional, open, has_fields, has_min, has_max;
    double min, max;      /* code points, items, or value (see has_min/has_max) */
    struct node *items;   /* array element spec; NULL = any value */
    struct field *fields; /* sorted by name (bytewise) */
    size_t nfields;
    struct enumval *enums;
    size_t nenums;
    char *description;
};

struct schema {
    struct node *root; /* always an object with declared fields, closed */
};

/* Bytewise order of two keys that may hold NUL bytes (a shorter prefix first): <0, 0, >0. */
int schema_keycmp(const char *a, size_t alen, const char *b, size_t blen);

/* Orders struct field by name with schema_keycmp: qsort at compile time, bsearch when
 * validating (the fields of a node are sorted). */
int schema_fieldcmp(const void *a, const void *b);

/* An ASCII identifier, printed unquoted as a TypeScript property name. */
int schema_is_identifier(const char *s);

#endif
