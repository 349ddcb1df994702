#include "snap/strv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int snap_strv_add(snap_strv *s, const char *str, es_err *e)
{
    char *copy = strdup(str);
    char **v = copy ? realloc(s->v, (s->n + 1) * sizeof *v) : NULL;
    if (!v) {
        free(copy);
        return es_err_set(e, ENOMEM, NULL, "out of memory");
    }
    v[s->n++] = copy;
    s->v = v;
    return 0;
}

int snap_strv_addf(snap_strv *s, es_err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *str = NULL;
    int r = vasprintf(&str, fmt, ap);
    va_end(ap);
    if (r < 0)
        return es_err_set(e, ENOMEM, NULL, "out of memory");
    r = snap_strv_add(s, str, e);
    free(str);
    return r;
}

bool snap_strv_has(const snap_strv *s, const char *str)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], str) == 0)
            return true;
    return false;
}

void snap_strv_free(snap_strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

int snap_strdup(const char *s, char **out, es_err *e)
{
    *out = NULL;
    if (!s)
        return 0;
    *out = strdup(s);
    return *out ? 0 : es_err_set(e, ENOMEM, NULL, "out of memory");
}

int snap_asprintf(char **out, es_err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(out, fmt, ap);
    va_end(ap);
    if (r < 0) {
        *out = NULL;
        return es_err_set(e, ENOMEM, NULL, "out of memory");
    }
    return 0;
}

bool snap_streq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}
