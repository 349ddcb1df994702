/* Taking back what an interrupted writer left behind, before writing an
 * image again. A writer raises a cluster's refcount (and makes it durable)
 * before anything points at the cluster, and drops an old cluster's
 * refcount only after nothing points at it any more: stopped in between,
 * it leaves leaked clusters. Inside the file `qemu-img check` reports them;
 * past the end of the file (clusters reserved but never written) it does
 * not, and the next writer would allocate above them, turning them into
 * leaks inside the file. A re-run of the interrupted operation reclaims
 * both first, so it ends with the result an uninterrupted run gives and no
 * leaked cluster.
 *
 * The survey is the engine's check (qemu-img check's rules, read only): an
 * image with corruptions is refused there, before anything is written; its
 * cost is the image's metadata, read once. */
#ifndef ES_QCOW2_RECLAIM_H
#define ES_QCOW2_RECLAIM_H

#include <stdint.h>

#include "qcow2/image.h"

typedef struct qcow2_reclaim {
    int64_t leaks;      /* leaked clusters inside the file */
    uint64_t past_end;  /* clusters past the end of the file with a refcount */
} qcow2_reclaim;

/* Read only. Refuses (-1, e says so) an image whose metadata has
 * corruptions, or that the check cannot complete on. */
int qcow2_reclaim_survey(es_image *img, qcow2_reclaim *r, es_err *e);

/* The survey's refusal alone, for an image written in place that has no
 * leaks to take back (TOP emptied entry by entry): its refcounts are
 * decremented from its tables, which must agree with them. */
int qcow2_refuse_damaged(es_image *img, es_err *e);

/* Reclaim what the survey found (nothing to do: no write). The image must
 * be open for writing and hold no unwritten refcounts; its caches are
 * reloaded afterwards. */
int qcow2_reclaim_apply(es_image *img, const qcow2_reclaim *r, es_err *e);

/* Survey and apply in one go, for an image a writer has just finished
 * with (leaks only; a corrupt image is left alone, not an error). */
int qcow2_reclaim_leaks(es_image *img, es_err *e);

#endif
