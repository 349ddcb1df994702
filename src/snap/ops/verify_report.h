/* What verify found: a list of problems, each with a stable code, a
 * severity, the file concerned and a message. Built by verify's checks
 * (verify.c, verify_props.c), printed by cmd. */
#ifndef ES_SNAP_VERIFY_REPORT_H
#define ES_SNAP_VERIFY_REPORT_H

#include <stdarg.h>
#include <stddef.h>

#include "util/err.h"

typedef enum { SNAP_SEV_WARNING, SNAP_SEV_ERROR } snap_severity;

typedef struct snap_problem {
    const char *code;      /* stable identifier: "missing-image", "corrupt-image" ... */
    snap_severity severity;
    char *file;            /* the file concerned, as libvirt names it (NULL: none) */
    char *message;
} snap_problem;

typedef struct snap_verify_report {
    snap_problem *v;
    size_t n;
    size_t nimages;        /* images checked with the engine's check */
    size_t nsnapshots;
} snap_verify_report;

void snap_verify_report_free(snap_verify_report *r);

const char *snap_severity_name(snap_severity s);

/* Add a problem to r; -1 only when out of memory. */
int snap_verify_problemv(snap_verify_report *r, es_err *e, const char *code,
                         snap_severity sev, const char *file, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

#endif
