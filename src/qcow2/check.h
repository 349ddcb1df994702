/* Consistency check and repair of one qcow2 image, counting exactly as
 * `qemu-img check` (QEMU 7.2) does, so results can be compared 1:1.
 *
 * The check does its own traversal of the on-disk structures (header, L1/L2,
 * snapshots, bitmaps, refcount table and blocks) and never goes through the
 * normal open path, so it works on images that path would refuse. */
#ifndef ES_QCOW2_CHECK_H
#define ES_QCOW2_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util/err.h"
#include "util/fileio.h"
#include "util/progress.h"

/* Repair modes (bit flags, as QEMU's BdrvCheckMode). */
#define QCOW2_CHECK_FIX_LEAKS 1u  /* -r leaks: lower refcounts that are too high */
#define QCOW2_CHECK_FIX_ERRORS 2u /* with LEAKS = -r all: everything repairable */
#define QCOW2_CHECK_FIX_ALL (QCOW2_CHECK_FIX_LEAKS | QCOW2_CHECK_FIX_ERRORS)
/* Not a repair mode: read without taking QEMU-compatible image locks
 * (qemu-img's -U). Without it a read-only check refuses an image another
 * process writes, and a repair refuses an image anyone else uses. */
#define QCOW2_CHECK_FORCE_SHARE 0x100u

/* QEMU's BdrvCheckResult + BlockFragInfo, field for field. */
typedef struct qcow2_check_result {
    int64_t corruptions;
    int64_t leaks;
    int64_t check_errors;      /* internal errors: the check did not complete */
    int64_t corruptions_fixed;
    int64_t leaks_fixed;
    int64_t image_end_offset;
    int64_t total_clusters;    /* virtual size in clusters */
    int64_t allocated_clusters;
    int64_t fragmented_clusters;
    int64_t compressed_clusters;
} qcow2_check_result;

/* True when the file starts with the qcow2 magic (anything else is treated
 * as raw, which has no check). */
int qcow2_check_is_qcow2(const char *path, bool *is_qcow2, es_err *e);

/* One check pass with the given flags (repair bits, 0 = read only), like QEMU's
 * bdrv_check(). Detail lines ("Leaked cluster ...", "ERROR ...") go to log.
 * Returns 0 when the check completed (res valid; res->check_errors may still
 * be non-zero), -1 when it could not (e says why; res holds what was counted). */
int qcow2_check_pass(const char *path, unsigned fix, FILE *log, qcow2_check_result *res,
                     es_err *e);
/* The same, telling pr (may be NULL) how far the walk of the active L1
 * table got: phase "check" of disk, image name (each NULL: path), guest
 * bytes walked of the virtual size. */
int qcow2_check_pass_progress(const char *path, unsigned fix, FILE *log, const es_progress_sink *pr,
                              const char *disk, const char *name, qcow2_check_result *res,
                              es_err *e);

/* The same pass on a file the caller has open (and locked, as a writer
 * holding the image does): no locks are taken, f stays open. A pass with
 * repair bits needs f open for writing. */
int qcow2_check_pass_file(es_file *f, const char *path, unsigned fix, FILE *log,
                          qcow2_check_result *res, es_err *e);

/* What `qemu-img check [-r ...]` does: one pass with `fix`; if anything was
 * repaired, a second read-only pass whose result is returned, carrying the
 * first pass's *_fixed counts (*repaired tells the caller to say so).
 * Return value as qcow2_check_pass. */
int qcow2_check_image(const char *path, unsigned fix, FILE *log, qcow2_check_result *res,
                      bool *repaired, es_err *e);
/* The same, the first pass telling pr how far it got (as
 * qcow2_check_pass_progress). */
int qcow2_check_image_progress(const char *path, unsigned fix, FILE *log,
                               const es_progress_sink *pr, qcow2_check_result *res,
                               bool *repaired, es_err *e);

#endif
