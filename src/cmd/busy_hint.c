#include "cmd/busy_hint.h"

#include <stdio.h>
#include <string.h>

#include "util/imglock.h"

void es_busy_hint(es_err *e, const char *hint)
{
    if (!es_imglock_conflict(e))
        return;
    size_t n = strlen(e->msg);
    snprintf(e->msg + n, sizeof e->msg - n, "; %s", hint);
}
