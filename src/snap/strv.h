/* Small string helpers for the snapshot manager: a growable list of strings
 * and allocation that reports through es_err. */
#ifndef ES_SNAP_STRV_H
#define ES_SNAP_STRV_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

typedef struct snap_strv {
    char **v;
    size_t n;
} snap_strv;

int snap_strv_add(snap_strv *s, const char *str, es_err *e);
int snap_strv_addf(snap_strv *s, es_err *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool snap_strv_has(const snap_strv *s, const char *str);
void snap_strv_free(snap_strv *s);

/* *out = copy of s (NULL stays NULL). */
int snap_strdup(const char *s, char **out, es_err *e);
/* *out = malloc'd formatted string. */
int snap_asprintf(char **out, es_err *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Equal strings, NULL equal only to NULL. */
bool snap_streq(const char *a, const char *b);

#endif
