/* Changing the backing file a qcow2 image names, without touching its data
 * (qemu-img rebase -u); the safe rebase (qcow2/rebase_safe.h) ends with it. */
#ifndef ES_QCOW2_REBASE_H
#define ES_QCOW2_REBASE_H

#include <stdbool.h>

#include "util/err.h"
#include "util/fileio.h"

/* Rewrite the backing file name and the backing format extension of the
 * qcow2 image open (read-write) in f, in one write of cluster 0, flushed.
 * name NULL or "" removes the backing file, and format must then be NULL;
 * otherwise format is required. Every other header field and extension is
 * kept byte for byte (unknown autoclear bits are cleared, as any writer that
 * does not know them must). The new backing file is not looked at. Fails,
 * leaving the file unchanged, when the image is not qcow2, is marked
 * corrupt, or the new header does not fit in cluster 0. Flags:
 * QCOW2_REBASE_DRY, every check and nothing written; QCOW2_REBASE_RESTORING,
 * a backing name without a format is accepted (qcow2_rebase_restore). */
enum { QCOW2_REBASE_DRY = 1u, QCOW2_REBASE_RESTORING = 2u };
int qcow2_rebase_header(es_file *f, const char *name, const char *format, unsigned flags,
                        es_err *e);

/* rebase -u: qcow2_rebase_header on path, opened and locked here. */
int qcow2_rebase_unsafe(const char *path, const char *name, const char *format, es_err *e);

/* The same to put back a header as it was (a rollback): a backing name
 * without a backing format is accepted then, since old images have them
 * and undoing a repair of one must restore it exactly. */
int qcow2_rebase_restore(const char *path, const char *name, const char *format, es_err *e);

#endif
