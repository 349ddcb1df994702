/* Free-space pre-check of a commit (before any write). */
#ifndef ES_QCOW2_COMMIT_SPACE_H
#define ES_QCOW2_COMMIT_SPACE_H

#include <stdint.h>

#include "qcow2/commit_internal.h"

/* Worst case of what BASE may grow by: new clusters for data and L2 tables
 * (counted by the dry run), a new L1 table, refcount blocks and a larger
 * refcount table; for a raw BASE the bytes written into holes or past the
 * end. */
uint64_t commit_space_needed(const commit_ctx *c);
/* ENOSPC error (need and free, human units and bytes) when it does not fit. */
int commit_space_check(const commit_ctx *c, es_err *e);

#endif
