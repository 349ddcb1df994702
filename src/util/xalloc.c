#include "util/xalloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned long fail_at;

void es_xalloc_fail_at(unsigned long n)
{
    fail_at = n;
}

/* The test hook: true when this allocation is to fail. */
static int injected(void)
{
    return fail_at && --fail_at == 0;
}

_Noreturn void es_oom(void)
{
    /* write(2), not stdio: nothing here may need memory. */
    static const char msg[] = "extsnap: out of memory\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    _exit(ES_EXIT_OOM);
}

void *es_xcheck_ptr(void *p)
{
    if (!p)
        es_oom();
    return p;
}

void *es_xmalloc(size_t n)
{
    return es_xcheck_ptr(injected() ? NULL : malloc(n ? n : 1));
}

void *es_xcalloc(size_t n, size_t size)
{
    return es_xcheck_ptr(injected() ? NULL : calloc(n ? n : 1, size ? size : 1));
}

void *es_xrealloc(void *p, size_t n)
{
    return es_xcheck_ptr(injected() ? NULL : realloc(p, n ? n : 1));
}

void *es_xreallocarray(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        es_oom();
    return es_xrealloc(p, n * size);
}

char *es_xstrdup(const char *s)
{
    if (!s)
        return NULL;
    return es_xstrdup_len(s, strlen(s));
}

char *es_xstrdup_len(const void *s, size_t n)
{
    char *p = es_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *es_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int r = injected() ? -1 : vasprintf(&s, fmt, ap);
    va_end(ap);
    if (r < 0)
        es_oom();
    return s;
}
