#include "snap/ops/verify_report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/str.h"
#include "util/strv.h"
#include "util/xalloc.h"

const char *snap_severity_name(snap_severity s)
{
    return s == SNAP_SEV_ERROR ? "error" : "warning";
}

void snap_verify_report_free(snap_verify_report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].file);
        free(r->v[i].message);
    }
    free(r->v);
    memset(r, 0, sizeof *r);
}

int snap_verify_problemv(snap_verify_report *r, es_err *e, const char *code,
                         snap_severity sev, const char *file, const char *fmt, va_list ap)
{
    snap_problem *v = es_xreallocarray(r->v, r->n + 1, sizeof *v);
    r->v = v;
    snap_problem *p = &v[r->n];
    memset(p, 0, sizeof *p);
    p->code = code;
    p->severity = sev;
    if (vasprintf(&p->message, fmt, ap) < 0)
        es_oom();
    r->n++;
    return es_strdup(file, &p->file, e);
}
