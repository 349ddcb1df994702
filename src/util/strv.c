#include "util/strv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

int es_strv_add(es_strv *s, const char *str, es_err *e)
{
    (void)e;
    s->v = es_xreallocarray(s->v, s->n + 1, sizeof *s->v);
    s->v[s->n++] = es_xstrdup(str);
    return 0;
}

int es_strv_addf(es_strv *s, es_err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *str = NULL;
    int r = vasprintf(&str, fmt, ap);
    va_end(ap);
    if (r < 0)
        es_oom();
    r = es_strv_add(s, str, e);
    free(str);
    return r;
}

bool es_strv_has(const es_strv *s, const char *str)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], str) == 0)
            return true;
    return false;
}

void es_strv_free(es_strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}
