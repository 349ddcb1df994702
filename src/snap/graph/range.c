#include "snap/graph/range.h"

#include <stdlib.h>
#include <string.h>

void snap_repls_free(snap_repls *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].to);
        free(r->v[i].to_format);
    }
    free(r->v);
    memset(r, 0, sizeof *r);
}

bool snap_range_has(const snap_range *r, const domxml_snapshot *s)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i] == s)
            return true;
    return false;
}
