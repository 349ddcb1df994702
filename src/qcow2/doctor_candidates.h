/* The chain doctor's search for a missing backing file (doctor.c's helper):
 * the files of some directories that could be it, ranked by evidence. */
#ifndef ES_QCOW2_DOCTOR_CANDIDATES_H
#define ES_QCOW2_DOCTOR_CANDIDATES_H

#include <stddef.h>
#include <stdint.h>

#include "qcow2/doctor.h"
#include "qcow2/image.h"
#include "util/err.h"

/* Identity of a file, to tell when two names are one file. */
typedef struct qcow2_doctor_id {
    uint64_t dev, ino;
} qcow2_doctor_id;

/* The image whose backing file is missing, and where it sits. */
typedef struct qcow2_doctor_orphan {
    const es_image *child;        /* open, without its backing */
    const char *missing_display;  /* where its backing name resolves (host name) */
    const qcow2_doctor_id *chain; /* the chain from the top image down to child */
    size_t nchain;
} qcow2_doctor_orphan;

/* Look for the missing backing file of o->child in opts' directories (or,
 * with none, in the child's directory and the missing name's), and rank what
 * is there. Every file listed is in *out; *chosen is the index of the one
 * to use, or -1: none eligible, or a tie at the top (never guessed).
 *
 * The rules (README "img doctor"): a candidate is never proposed when it is
 * part of a chain that contains the child (a loop), its virtual size is not
 * the child's, or its format is not the one the child names; with no format
 * named only qcow2 files are considered (any file opens as raw). Evidence:
 * the missing name's file name (2 points), the child's cluster size (1).
 * When several tie at the top, their guest content decides, if it clearly
 * does (doctor_content.h). */
int qcow2_doctor_find_candidates(const qcow2_doctor_orphan *o, const qcow2_doctor_opts *opts,
                                 qcow2_doctor_candidate **out, size_t *n, long *chosen,
                                 es_err *e);

void qcow2_doctor_candidates_free(qcow2_doctor_candidate *c, size_t n);

/* The identity of the open image. */
qcow2_doctor_id qcow2_doctor_id_of(const es_image *img);

#endif
