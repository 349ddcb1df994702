#include "domxml/strbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

static void reserve(dx_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > ((size_t)-1) / 2)
            es_oom();
        cap *= 2;
    }
    b->data = es_xrealloc(b->data, cap);
    b->cap = cap;
}

void dx_buf_add(dx_buf *b, const char *s, size_t n)
{
    reserve(b, n);
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void dx_buf_adds(dx_buf *b, const char *s)
{
    dx_buf_add(b, s, strlen(s));
}

void dx_buf_addf(dx_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    /* Our formats fail only when the text would pass INT_MAX bytes. */
    if (n < 0)
        es_oom();
    reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void dx_buf_add_escaped(dx_buf *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        switch (c) {
        case '<': dx_buf_add(b, "&lt;", 4); break;
        case '>': dx_buf_add(b, "&gt;", 4); break;
        case '&': dx_buf_add(b, "&amp;", 5); break;
        case '\'': dx_buf_add(b, "&apos;", 6); break;
        case '"': dx_buf_add(b, "&quot;", 6); break;
        default:
            if (c >= 0x20 || c == '\t' || c == '\n' || c == '\r')
                dx_buf_add(b, p, 1);
        }
    }
}

int dx_buf_take(dx_buf *b, char **out, size_t *len, es_err *e)
{
    (void)e;
    if (!b->data)
        reserve(b, 0);
    b->data[b->len] = '\0';
    *out = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return 0;
}

void dx_buf_free(dx_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int dx_strset(char **dst, const char *src, es_err *e)
{
    (void)e;
    char *copy = es_xstrdup(src);
    free(*dst);
    *dst = copy;
    return 0;
}
