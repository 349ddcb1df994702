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

void es_str_escape_ctl(char *dst, size_t len, const char *src)
{
    size_t n = 0;
    for (; *src; src++) {
        unsigned char c = (unsigned char)*src;
        char esc[5] = {(char)c, 0};
        if (c == '\n')
            memcpy(esc, "\\n", 3);
        else if (c == '\t')
            memcpy(esc, "\\t", 3);
        else if (c == '\r')
            memcpy(esc, "\\r", 3);
        else if (c < 0x20 || c == 0x7f)
            snprintf(esc, sizeof esc, "\\x%02x", c);
        size_t l = strlen(esc);
        if (n + l >= len)
            break;
        memcpy(dst + n, esc, l);
        n += l;
    }
    dst[n] = '\0';
}

char *es_path_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return es_xstrdup(".");
    if (slash == path)
        return es_xstrdup("/");
    return es_xstrdup_len(path, (size_t)(slash - path));
}
