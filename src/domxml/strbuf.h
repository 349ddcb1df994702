/* A growable string formatting code can append to freely (running out of
 * memory ends the process, util/xalloc.h). Internal to domxml. */
#ifndef ES_DOMXML_STRBUF_H
#define ES_DOMXML_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

typedef struct dx_buf {
    char *data; /* always NUL-terminated once anything was added */
    size_t len, cap;
} dx_buf;

void dx_buf_add(dx_buf *b, const char *s, size_t n);
void dx_buf_adds(dx_buf *b, const char *s);
void dx_buf_addf(dx_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s escaped the way libvirt escapes text and attribute values:
 * < > & ' " become entities, other control characters than tab, newline and
 * carriage return are dropped (they are not valid XML 1.0). */
void dx_buf_add_escaped(dx_buf *b, const char *s);
/* Take the string out (*out malloc'd, never NULL) and reset b. Returns 0. */
int dx_buf_take(dx_buf *b, char **out, size_t *len, es_err *e);
void dx_buf_free(dx_buf *b);

/* strdup that tolerates NULL; sets *dst (freeing its old value). */
int dx_strset(char **dst, const char *src, es_err *e);

#endif
