/* String helpers every layer shares: copies and formatting in the shape of
 * fallible calls (they return 0; running out of memory ends the process,
 * util/xalloc.h), and the one rule for telling a path from a name. */
#ifndef ES_UTIL_STR_H
#define ES_UTIL_STR_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

/* *out = copy of s (NULL stays NULL). */
int es_strdup(const char *s, char **out, es_err *e);
/* *out = the n bytes at s (which may hold NULs) and a terminating NUL. */
int es_strdup_len(const void *s, size_t n, char **out, es_err *e);
/* *out = malloc'd formatted string. */
int es_asprintf(char **out, es_err *e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Equal strings, NULL equal only to NULL. */
bool es_streq(const char *a, const char *b);

/* A command-line argument naming a domain is a path to its XML file
 * instead when it contains '/' or ends in ".xml". */
bool es_looks_like_path(const char *arg);

/* The directory part of path, malloc'd: "." when it names none, "/" for
 * a name at the top. */
char *es_path_dir(const char *path);

/* dst = src with each control character (below 0x20, and 0x7f) written as an
 * escape (\n, \t, \r, \xHH), so a message naming a file or a value
 * read from one stays one line; truncated to fit len (len > 0). */
void es_str_escape_ctl(char *dst, size_t len, const char *src);

#endif
