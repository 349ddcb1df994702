#include "util/str.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int es_strdup(const char *s, char **out, es_err *e)
{
    *out = NULL;
    if (!s)
        return 0;
    *out = strdup(s);
    return *out ? 0 : es_err_set(e, ENOMEM, NULL, "out of memory");
}

int es_strdup_len(const void *s, size_t n, char **out, es_err *e)
{
    *out = malloc(n + 1);
    if (!*out)
        return es_err_set(e, ENOMEM, NULL, "out of memory");
    memcpy(*out, s, n);
    (*out)[n] = '\0';
    return 0;
}

int es_asprintf(char **out, es_err *e, const char *fmt, ...)
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
