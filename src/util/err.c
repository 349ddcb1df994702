#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/str.h"

int es_err_set(es_err *e, int errnum, const char *path, const char *fmt, ...)
{
    if (!e)
        return -1;
    e->errnum = errnum;
    snprintf(e->path, sizeof e->path, "%s", path ? path : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int es_err_prefix(es_err *e, const char *fmt, ...)
{
    if (!e)
        return -1;
    char ctx[ES_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    char old[ES_ERR_MSG_MAX];
    memcpy(old, e->msg, sizeof old);
    /* Truncation is fine: messages are for humans. */
    size_t n = strlen(ctx);
    if (n > sizeof e->msg - 3)
        n = sizeof e->msg - 3;
    memcpy(e->msg, ctx, n);
    memcpy(e->msg + n, ": ", 2);
    size_t room = sizeof e->msg - n - 3, olen = strlen(old);
    if (olen > room)
        olen = room;
    memcpy(e->msg + n + 2, old, olen);
    e->msg[n + 2 + olen] = '\0';
    return -1;
}

/* One line whatever the path or message hold (a file name with a newline,
 * a value read from a file): control characters are escaped. */
const char *es_err_str(const es_err *e, char *buf, size_t len)
{
    if (!e || len == 0)
        return "";
    char raw[ES_ERR_PATH_MAX + ES_ERR_MSG_MAX + 256];
    size_t n = 0, room = sizeof raw;
    raw[0] = '\0';
    if (e->path[0])
        n += (size_t)snprintf(raw + n, room - n, "%s: ", e->path);
    if (n < room)
        n += (size_t)snprintf(raw + n, room - n, "%s", e->msg[0] ? e->msg : "error");
    if (e->errnum && n < room)
        snprintf(raw + n, room - n, ": %s", strerror(e->errnum));
    es_str_escape_ctl(buf, len, raw);
    return buf;
}

void es_err_clear(es_err *e)
{
    if (e)
        memset(e, 0, sizeof *e);
}
