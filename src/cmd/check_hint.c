#include "cmd/check_hint.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define CHECK_HINT "'extsnap img check"

void es_img_check_hint(es_err *e, const char *root)
{
    char *at = strstr(e->msg, CHECK_HINT);
    char *end = at ? strchr(at + 1, '\'') : NULL; /* its closing quote */
    if (!end || !e->path[0])
        return;
    char rest[ES_ERR_MSG_MAX];
    snprintf(rest, sizeof rest, "%s", end);
    bool under = root && root[0];
    size_t off = (size_t)(end - e->msg);
    /* Paths are shown plain in these messages; quote none here either. */
    snprintf(end, sizeof e->msg - off, "%s%s %s%s", under ? " --root " : "", under ? root : "",
             e->path, rest);
}
