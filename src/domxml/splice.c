#include "domxml/splice.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

static void add_owned(dx_splices *s, size_t off, size_t len, char *text)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        s->v = es_xreallocarray(s->v, cap, sizeof *s->v);
        s->cap = cap;
    }
    s->v[s->n] = (dx_splice){off, len, text, s->n};
    s->n++;
}

void dx_splices_add_buf(dx_splices *s, size_t off, size_t len, dx_buf *b)
{
    char *text = NULL;
    dx_buf_take(b, &text, NULL, NULL);
    add_owned(s, off, len, text);
}

void dx_splices_add(dx_splices *s, size_t off, size_t len, const char *text)
{
    add_owned(s, off, len, es_xstrdup(text));
}

/* By offset; at one offset insertions come before a replacement starting
 * there, each group in the order added. */
static int by_position(const void *pa, const void *pb)
{
    const dx_splice *a = pa, *b = pb;
    if (a->off != b->off)
        return a->off < b->off ? -1 : 1;
    if ((a->len == 0) != (b->len == 0))
        return a->len == 0 ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

int dx_splices_apply(dx_splices *s, const char *src, size_t n, char **out, size_t *outlen,
                     es_err *e)
{
    qsort(s->v, s->n, sizeof *s->v, by_position);
    dx_buf b = {0};
    size_t at = 0;
    for (size_t i = 0; i < s->n; i++) {
        const dx_splice *sp = &s->v[i];
        if (sp->off < at || sp->off + sp->len > n) {
            dx_buf_free(&b);
            return es_err_set(e, 0, NULL, "internal error: overlapping XML edits");
        }
        dx_buf_add(&b, src + at, sp->off - at);
        dx_buf_adds(&b, sp->text);
        at = sp->off + sp->len;
    }
    dx_buf_add(&b, src + at, n - at);
    return dx_buf_take(&b, out, outlen, e);
}

void dx_splices_free(dx_splices *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].text);
    free(s->v);
    memset(s, 0, sizeof *s);
}
