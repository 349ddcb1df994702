/* Changing the backing file a qcow2 image names, without touching its data
 * (qemu-img rebase -u). */
#ifndef ES_QCOW2_REBASE_H
#define ES_QCOW2_REBASE_H

#include "util/err.h"
#include "util/fileio.h"

/* Same, opening path itself. */
int qcow2_rebase_unsafe(const char *path, const char *name, const char *format, es_err *e);

/* The same to put back a header as it was (a rollback): a backing name
 * without a backing format is accepted then, since old images have them
 * and undoing a repair of one must restore it exactly. */
int qcow2_rebase_restore(const char *path, const char *name, const char *format, es_err *e);

#endif
