/* 'doctor DOMAIN': the chain doctor (qcow2/doctor.h) over every chain a
 * domain's files name, plus what only the domain knows: leftovers of
 * interrupted operations, images nothing names, chains that reach into
 * another domain's images. The repairs become one plan of rebases, carried
 * out with the journal like every other domain operation. */
#ifndef ES_SNAP_DOCTOR_H
#define ES_SNAP_DOCTOR_H

#include <stddef.h>

#include "qcow2/doctor.h"
#include "snap/context.h"
#include "snap/ops/verify_report.h"
#include "snap/txn/plan.h"
#include "util/err.h"
#include "util/strv.h"

/* One chain: from an image the domain names that no other image it names
 * uses as backing file (a disk's current image, a branch's overlay). */
typedef struct snap_doctor_chain {
    char *top;               /* as libvirt names it */
    qcow2_doctor_report rep;
} snap_doctor_chain;

typedef struct snap_doctor_report {
    snap_doctor_chain *chains;
    size_t nchains;
    /* Domain-level findings, with verify's codes where verify has them:
     * pending-journal, leftover-journal-tmp, pending-libvirt-files,
     * missing-image, unreferenced-image, shared-image. */
    snap_verify_report domain;
    size_t errors, warnings; /* over everything */
    size_t unrepaired;       /* errors the plan does not repair */
} snap_doctor_report;

/* Diagnose the domain of c (opened; snapshots loaded). search: directories
 * (as seen under root) to look for missing backing files in; empty: the
 * directories holding the domain's images. -1 only when the diagnosis
 * itself fails. */
int snap_doctor(const snap_ctx *c, const es_strv *search, snap_doctor_report *r, es_err *e);

/* The plan that carries out every chain's repairs (rebases; an image two
 * chains share is rebased once). */
int snap_doctor_plan(const snap_ctx *c, const snap_doctor_report *r, snap_plan **out, es_err *e);

void snap_doctor_report_free(snap_doctor_report *r);

#endif
