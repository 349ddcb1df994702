/* A growable list of strings. */
#ifndef ES_UTIL_STRV_H
#define ES_UTIL_STRV_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

typedef struct es_strv {
    char **v;
    size_t n;
} es_strv;

int es_strv_add(es_strv *s, const char *str, es_err *e);
int es_strv_addf(es_strv *s, es_err *e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool es_strv_has(const es_strv *s, const char *str);
void es_strv_free(es_strv *s);

#endif
