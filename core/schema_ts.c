/* schema_ts.c: the TypeScript printer of the schema module: schema_to_typescript turns a
 * compiled tree (read through schema_int.h) into one line holding an object type literal:
 * fields in name order, descriptions as doc comments, enums as unions of literals, open
 * objects with an index signature. Writes to a memory stream; recursion follows the tree,
 * whose depth schema_compile bounds by SCHEMA_MAX_DEPTH. */
#include "schema.h"
#include "schema_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A double-quoted string literal; UTF-8 is kept, control characters and NUL escaped. */
static void ts_quote(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void ts_enumval(FILE *f, const struct enumval *e)
{
    char tmp[40];
    int prec = 15;

    if (e->kind == EV_STR)
        ts_quote(f, e->str, e->len);
    else if (e->kind == EV_INT)
        fprintf(f, "%lld", e->i);
    else { /* the shortest text that reads back as the same double */
        do
            snprintf(tmp, sizeof tmp, "%.*g", prec, e->d);
        while (strtod(tmp, NULL) != e->d && ++prec <= 17);
        fputs(tmp, f);
    }
}

/* Members of the union printed for n (an array's element type needs parentheses if > 1). */
static int ts_members(const struct node *n)
{
    unsigned t = n->types;

    if (n->nenums || (t & T_ANY))
        return n->nenums ? (int)n->nenums : 1;
    return !!(t & T_STRING) + !!(t & (T_NUMBER | T_INTEGER)) + !!(t & T_BOOLEAN) +
           !!(t & T_OBJECT) + !!(t & T_ARRAY) + !!(t & T_NULL);
}

static void ts_type(FILE *f, const struct node *n);

static void ts_object(FILE *f, const struct node *n)
{
    if (!n->nfields && !n->open) {
        fputs("Record<string, never>", f);
        return;
    }
    fputs("{ ", f);
    for (size_t i = 0; i < n->nfields; i++) {
        const struct field *fd = &n->fields[i];
        const char *d = fd->spec->description;

        fputs(i ? "; " : "", f);
        if (d) { /* on one line, and "*\/" cannot end the comment early */
            fputs("/** ", f);
            for (; *d; d++) {
                if (d[0] == '*' && d[1] == '/')
                    fputs("*\\", f);
                else
                    fputc(strchr("\n\r\t", *d) ? ' ' : *d, f);
            }
            fputs(" */ ", f);
        }
        if (schema_is_identifier(fd->name))
            fputs(fd->name, f);
        else
            ts_quote(f, fd->name, fd->len);
        fputs(fd->spec->optional ? "?: " : ": ", f);
        ts_type(f, fd->spec);
    }
    if (n->open)
        fputs(n->nfields ? "; [key: string]: unknown" : "[key: string]: unknown", f);
    fputs(" }", f);
}

static void ts_type(FILE *f, const struct node *n)
{
    const char *sep = "";

    if (n->nenums) {
        for (size_t i = 0; i < n->nenums; i++) {
            fputs(i ? " | " : "", f);
            ts_enumval(f, &n->enums[i]);
        }
        return;
    }
    if (n->types & T_ANY) {
        fputs("unknown", f);
        return;
    }
    if (n->types & T_STRING)
        fputs("string", f), sep = " | ";
    if (n->types & (T_NUMBER | T_INTEGER))
        fprintf(f, "%snumber", sep), sep = " | ";
    if (n->types & T_BOOLEAN)
        fprintf(f, "%sboolean", sep), sep = " | ";
    if (n->types & T_OBJECT)
        fputs(sep, f), ts_object(f, n), sep = " | ";
    if (n->types & T_ARRAY) {
        int paren = n->items && ts_members(n->items) > 1;

        fprintf(f, "%s%s", sep, paren ? "(" : "");
        if (n->items)
            ts_type(f, n->items);
        else
            fputs("unknown", f);
        fputs(paren ? ")[]" : "[]", f);
        sep = " | ";
    }
    if (n->types & T_NULL)
        fprintf(f, "%snull", sep);
}

char *schema_to_typescript(const struct schema *s)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    int bad;

    if (!f)
        return NULL;
    ts_object(f, s->root);
    bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        free(text);
        return NULL;
    }
    return text;
}
