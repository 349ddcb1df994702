/* Where a new qcow2 image puts its metadata: the L1 table, the refcount
 * table and the refcount blocks, placed exactly where `qemu-img create`
 * places them, so that extsnap writes byte-identical images.
 *
 * QEMU creates an image in steps: header in cluster 0, refcount table in
 * cluster 1, one refcount block in cluster 2, then it grows the image to its
 * virtual size through its ordinary cluster allocator, which allocates the
 * L1 table and, when the L1 is beyond what the first refcount block covers,
 * more refcount blocks and possibly a bigger refcount table (the old table's
 * cluster is freed and left behind with its old contents). The planner
 * replays that allocator on an in-memory model (one byte per host cluster,
 * bounded by QEMU's own limits: L1 <= 32 MiB, refcount table <= 8 MiB), and
 * records everything the writer must put in the file. */
#ifndef ES_QCOW2_CREATE_LAYOUT_H
#define ES_QCOW2_CREATE_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* A refcount table QEMU wrote and then replaced by a bigger one: its
 * clusters are free in the end but still hold the old entries on disk. */
typedef struct qcow2_stale_table {
    uint64_t offset;   /* bytes */
    uint64_t entries;  /* number of entries written (whole clusters) */
    uint64_t *table;   /* host offsets, host-endian */
} qcow2_stale_table;

typedef struct qcow2_create_layout {
    uint32_t cluster_bits;
    uint32_t refcount_order;
    uint64_t refcounts_per_block;

    uint64_t l1_size;          /* entries */
    uint64_t l1_offset;        /* 0 when l1_size is 0 */

    uint64_t reftable_offset;
    uint64_t reftable_entries; /* whole clusters' worth */
    uint64_t *reftable;        /* host offsets of refcount blocks (0 = none) */

    uint8_t *refcount;         /* final refcount (0 or 1) of each host cluster */
    uint64_t refcount_len;     /* clusters described by `refcount` */

    qcow2_stale_table *stale;  /* in the order QEMU abandoned them */
    size_t n_stale;

    uint64_t file_end;         /* length of the finished file in bytes */
} qcow2_create_layout;

/* Plan an image with 1 << cluster_bits byte clusters, 1 << refcount_order
 * bit refcounts and l1_size L1 entries. Fails (EFBIG) when QEMU would:
 * L1 or refcount table larger than QEMU allows. */
int qcow2_create_plan(qcow2_create_layout *lay, uint32_t cluster_bits, uint32_t refcount_order,
                      uint64_t l1_size, es_err *e);
void qcow2_create_layout_free(qcow2_create_layout *lay);

/* Fill buf (one cluster) with refcount block `index` of the plan. */
void qcow2_create_layout_refblock(const qcow2_create_layout *lay, uint64_t index, uint8_t *buf);

#endif
