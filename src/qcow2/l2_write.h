/* Changing L1 and L2 entries of a qcow2 image, in the order that keeps the
 * image consistent at every step (a crash leaks, never corrupts):
 *
 *   plan:   qcow2_l2_target_plan() decides where each touched L2 table will
 *           live and allocates clusters for new tables (refcounts in the
 *           cache only): an absent table gets a fresh cluster, a table
 *           shared with an internal snapshot (refcount > 1) is copied to a
 *           fresh cluster (never written in place).
 *   ...     caller flushes refcounts, writes data
 *   write:  qcow2_l2_target_write() writes the table with its new entries
 *           (in place: only the changed span; new: the whole table)
 *   ...     caller flushes
 *   link:   qcow2_l1_set() points the L1 entry at a new table (COPIED set)
 *   ...     caller flushes, then releases the old shared table's reference.
 */
#ifndef ES_QCOW2_L2_WRITE_H
#define ES_QCOW2_L2_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qcow2/image.h"

/* The L2 table offset in L1 entry l1_idx, validated (0 = no table). */
int qcow2_l1_table_offset(es_image *img, uint64_t l1_idx, uint64_t *l2_off, es_err *e);

/* The raw L2 entry (word 0) and, with extended L2, the bitmap (word 1) of
 * the cluster holding guest offset off. Both 0 when there is no table. */
int qcow2_l2_lookup(es_image *img, uint64_t off, uint64_t *entry, uint64_t *bitmap, es_err *e);

typedef struct qcow2_l2_target {
    uint64_t l1_idx;
    uint64_t l2_off;  /* where the table is written */
    uint64_t src_off; /* content to start from: == l2_off in place, another
                         table to copy (shared), or 0 for an empty table */
} qcow2_l2_target;

static inline bool qcow2_l2_target_is_new(const qcow2_l2_target *t)
{
    return t->l2_off != t->src_off;
}

/* Decide where the table for l1_idx will be written; allocates a cluster
 * for a new or copied table (dry: only says whether it would). */
int qcow2_l2_target_plan(es_image *img, uint64_t l1_idx, bool dry, qcow2_l2_target *t,
                         bool *needs_cluster, es_err *e);

/* One changed entry: the cluster at guest offset `guest` gets entry/bitmap. */
typedef struct qcow2_l2_update {
    uint64_t guest;
    uint64_t entry;
    uint64_t bitmap;
} qcow2_l2_update;

/* Write table t with updates u[0..n) (all in t's range, ascending). scratch
 * holds cluster_size bytes. The L2 cache copy is dropped. */
int qcow2_l2_target_write(es_image *img, const qcow2_l2_target *t, const qcow2_l2_update *u,
                          size_t n, uint8_t *scratch, es_err *e);

/* Point L1 entry l1_idx at l2_off (0 = none) in place, with COPIED when the
 * table's refcount is 1; updates img->l1. */
int qcow2_l1_set(es_image *img, uint64_t l1_idx, uint64_t l2_off, es_err *e);

/* Make the L1 table cover at least new_l1_size entries: in place when the
 * current clusters have room, else a new table (written and flushed before
 * the header switches to it; the old one released after). */
int qcow2_l1_grow(es_image *img, uint32_t new_l1_size, es_err *e);

/* L1 entries needed for a virtual size. */
uint64_t qcow2_l1_size_for(const es_image *img, uint64_t virtual_size);

#endif
