#include "util/str.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

int es_strdup(const char *s, char **out, es_err *e)
{
    (void)e;
    *out = es_xstrdup(s);
    return 0;
}

int es_strdup_len(const void *s, size_t n, char **out, es_err *e)
{
    (void)e;
    *out = es_xstrdup_len(s, n);
    return 0;
}

int es_asprintf(char **out, es_err *e, const char *fmt, ...)
{
    (void)e;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(out, fmt, ap);
    va_end(ap);
    if (r < 0)
        es_oom();
    return 0;
}

bool es_streq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

bool es_looks_like_path(const char *arg)
{
    size_t l = strlen(arg);
    return strchr(arg, '/') || (l > 4 && strcmp(arg + l - 4, ".xml") == 0);
}
