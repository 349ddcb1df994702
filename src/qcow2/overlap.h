/* Metadata overlap checks (the idea of QEMU's qcow2 overlap checks): every
 * write into a qcow2 image says what it writes, and is refused when it
 * would land on metadata of another kind (header and its extensions in
 * cluster 0, active and inactive L1 tables, active and inactive L2 tables,
 * refcount table and blocks, snapshot table, bitmap directory and bitmap
 * tables). A write onto metadata means the image is corrupt (say an L2
 * entry points into the L1 table): writing would destroy it.
 *
 * The map is built once per image (lazily, at its first check): the
 * structures' clusters as sorted, disjoint regions, so a check is a binary
 * search per write extent. Active L2 tables and refcount blocks come from
 * the in-memory L1 and refcount tables; a write that changes where tables
 * live (L1, refcount table, header) marks the map stale, and the next
 * check rebuilds that part. Snapshot and bitmap structures are read once
 * (nothing in extsnap writes them). Building refuses an image whose
 * structures overlap each other. */
#ifndef ES_QCOW2_OVERLAP_H
#define ES_QCOW2_OVERLAP_H

#include <stdint.h>

#include "qcow2/image.h"

/* What a write writes: guest data (overlaps every kind), or metadata of
 * these kinds (regions of the same kind are its own, not overlaps). */
#define QCOW2_OL_DATA 0u
#define QCOW2_OL_HEADER (1u << 0)
#define QCOW2_OL_ACTIVE_L1 (1u << 1)
#define QCOW2_OL_ACTIVE_L2 (1u << 2)
#define QCOW2_OL_REFTABLE (1u << 3)
#define QCOW2_OL_REFBLOCK (1u << 4)
#define QCOW2_OL_SNAPSHOT_TABLE (1u << 5)
#define QCOW2_OL_INACTIVE_L1 (1u << 6)
#define QCOW2_OL_INACTIVE_L2 (1u << 7)
#define QCOW2_OL_BITMAP_DIR (1u << 8)
#define QCOW2_OL_BITMAP_TABLE (1u << 9)
/* Replacing all metadata at once (emptying an image from scratch). */
#define QCOW2_OL_ALL 0x3ffu

/* Build the map now (refusing an image whose structures overlap each
 * other); idempotent. Opens the image's refcounts. */
int qcow2_overlap_open(es_image *img, es_err *e);
/* Free the map (it is built again when needed). */
void qcow2_overlap_close(es_image *img);
/* Where tables live changed (L1 or refcount table rewritten, header
 * patched): rebuild the derived part before the next check. */
void qcow2_overlap_stale(es_image *img);
/* L1 entries changed (L2 tables linked or unlinked). */
void qcow2_overlap_stale_l2(es_image *img);

/* 0 when the write of [off, off+len) as `what` touches no metadata but
 * its own kind; else -1 with e saying "Preventing invalid write on
 * metadata (overlaps with <structure> at 0x...)". Writes nothing. */
int qcow2_overlap_check(es_image *img, unsigned what, uint64_t off, uint64_t len, es_err *e);

/* The check every writer of an image goes through before writing: on an
 * overlap, the image is marked corrupt (v3: incompatible bit 1, QEMU's
 * "corrupt" bit) and every later write to it is refused. A raw image has
 * no metadata: always 0. */
int qcow2_write_guard(es_image *img, unsigned what, uint64_t off, uint64_t len, es_err *e);

#endif
