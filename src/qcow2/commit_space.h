/* The free-space estimate of a commit: one figure for every caller (img
 * commit through es_commit, delete and commit of a domain through
 * es_commit_estimate), computed by the dry run from the allocation maps:
 * the clusters BASE must newly allocate (data, L2 tables, a larger L1
 * table, the refcount blocks and refcount table they need) plus the holes
 * of BASE's file that writes in place fill (a BASE made with
 * preallocation=metadata, a sparse raw BASE, tables a sparse copy turned
 * into holes), at file-system block granularity. Never less than what the
 * commit makes the file system allocate; more only where a new cluster
 * reuses space the file already has, or a table with holes is only partly
 * rewritten. */
#ifndef ES_QCOW2_COMMIT_SPACE_H
#define ES_QCOW2_COMMIT_SPACE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct commit_ctx;
struct commit_op;

/* Dry run, once per classified op: the holes its in-place writes fill. */
void commit_space_count_op(struct commit_ctx *c, const struct commit_op *op);
/* Bytes BASE's file may grow by on its file system (after the dry run). */
uint64_t commit_space_needed(const struct commit_ctx *c);
/* ENOSPC error (need and free, human units and bytes) when it does not fit. */
int commit_space_check(const struct commit_ctx *c, es_err *e);

struct es_image;
/* Clusters of refcount structures (blocks, a grown table) that allocating
 * n more clusters past the end of img's file can need, their own included:
 * the worst case, for a free-space bound (the commit's, the rebase's). */
uint64_t qcow2_space_refcount_growth(const struct es_image *img, uint64_t n);

/* n in human units: "512 bytes", "1.5 MiB". */
const char *es_space_human(uint64_t n, char *buf, size_t len);
/* Bytes an unprivileged writer may still use on the file system holding
 * path (f_bavail). */
int es_space_free(const char *path, uint64_t *avail, es_err *e);

#endif
