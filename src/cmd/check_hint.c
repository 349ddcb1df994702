#include "cmd/check_hint.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define CHECK_HINT "'extsnap img check -r all'"

void es_img_check_hint(es_err *e, const char *root)
{
    char *at = strstr(e->msg, CHECK_HINT);
    if (!at || !e->path[0])
        return;
    char rest[ES_ERR_MSG_MAX];
    snprintf(rest, sizeof rest, "%s", at + strlen(CHECK_HINT));
    bool under = root && root[0];
    size_t off = (size_t)(at - e->msg);
    /* Paths are shown plain in these messages; quote none here either. */
    snprintf(at, sizeof e->msg - off, "'extsnap img check -r all%s%s %s'%s",
             under ? " --root " : "", under ? root : "", e->path, rest);
}
