#include "snap/graph/naming.h"

#include <string.h>

#include "util/str.h"
#include "util/strv.h"

int snap_overlay_name(const char *source, const char *suffix, char **out, es_err *e)
{
    const char *slash = strrchr(source, '/');
    const char *dot = strrchr(source, '.');
    size_t keep = strlen(source);
    if (dot && (!slash || dot > slash))
        keep = (size_t)(dot - source);
    return es_asprintf(out, e, "%.*s.%s", (int)keep, source, suffix);
}
