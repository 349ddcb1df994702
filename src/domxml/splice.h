/* A set of replacements of byte ranges in a text, applied in one pass: the
 * way domxml edits a file without touching any byte it does not mean to.
 * Internal to domxml. */
#ifndef ES_DOMXML_SPLICE_H
#define ES_DOMXML_SPLICE_H

#include <stdbool.h>
#include <stddef.h>

#include "domxml/strbuf.h"
#include "util/err.h"

typedef struct dx_splice {
    size_t off, len; /* range replaced; len 0 = insertion at off */
    char *text;      /* replacement, owned */
    size_t seq;      /* order of addition, to keep insertions at one offset in order */
} dx_splice;

typedef struct dx_splices {
    dx_splice *v;
    size_t n, cap;
} dx_splices;

/* Replace [off, off+len) by the contents of b (b is emptied). */
void dx_splices_add_buf(dx_splices *s, size_t off, size_t len, dx_buf *b);
void dx_splices_add(dx_splices *s, size_t off, size_t len, const char *text);
/* Apply to src; overlapping ranges are an error (a bug in the caller). */
int dx_splices_apply(dx_splices *s, const char *src, size_t n, char **out, size_t *outlen,
                     es_err *e);
void dx_splices_free(dx_splices *s);

#endif
