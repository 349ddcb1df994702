/* Error values that carry what failed, on which file, and errno.
 * Every fallible function takes an `es_err *` and returns -1 after filling it
 * (es_err_set returns -1 so callers can write `return es_err_set(...)`). */
#ifndef ES_UTIL_ERR_H
#define ES_UTIL_ERR_H

#include <stddef.h>

#define ES_ERR_MSG_MAX 1024
#define ES_ERR_PATH_MAX 4096

typedef struct es_err {
    int errnum;                  /* errno value, 0 when not an OS error */
    char path[ES_ERR_PATH_MAX];  /* file the error is about, "" if none */
    char msg[ES_ERR_MSG_MAX];    /* what failed, without path or strerror */
} es_err;

/* Fill e (if non-NULL) and return -1. errnum may be 0. path may be NULL. */
int es_err_set(es_err *e, int errnum, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prefix more context to an existing message: "ctx: old message". Returns -1. */
int es_err_prefix(es_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Render "path: msg: strerror(errnum)" (parts omitted when empty) into buf. */
const char *es_err_str(const es_err *e, char *buf, size_t len);

void es_err_clear(es_err *e);

#endif
