/* The write side's view of refcounts: the refcount table (es_image->reftable),
 * a small bounded write-back cache of refcount blocks, and cluster
 * allocation (lowest free cluster first, like QEMU, then the end of file).
 *
 * Ordering rules the callers rely on (reference §5):
 * - increments live in the cache until qcow2_refcount_flush(), which writes
 *   every dirty block and then fdatasyncs: only after that may anything
 *   point at the new clusters. Writing a block early (eviction) is harmless:
 *   a refcount that is too high is a leak, never a corruption.
 * - decrements must be made only after the pointer that referenced the
 *   cluster has been cleared AND flushed; this module cannot know, so the
 *   callers apply them late (see qcow2/commit_batch.c).
 * - new refcount blocks and a grown refcount table are written and flushed
 *   before the refcount table entry / header that points at them.
 * On any error the cache must be dropped with qcow2_refcount_close() without
 * writing it (its dirty blocks may describe a half-done step). */
#ifndef ES_QCOW2_REFCOUNT_H
#define ES_QCOW2_REFCOUNT_H

#include <stdbool.h>
#include <stdint.h>

#include "qcow2/image.h"

/* Load the refcount table into img->reftable and create the block cache.
 * Idempotent. The image must be an open qcow2 image. */
int qcow2_refcount_open(es_image *img, es_err *e);
/* Free the cache and the in-memory table WITHOUT writing anything. */
void qcow2_refcount_close(es_image *img);

/* Entry i of a refcount block (on-disk form) at width `bits` (1..64):
 * sub-byte widths pack from the least significant bit of each byte, wider
 * ones are big-endian. */
uint64_t qcow2_refblock_entry_get(const uint8_t *block, uint64_t i, uint32_t bits);
void qcow2_refblock_entry_set(uint8_t *block, uint64_t i, uint32_t bits, uint64_t value);

/* Refcounts per block. */
uint64_t qcow2_refblock_entries(const es_image *img);

/* A cluster of the active tables (what: "cluster", "L2 table") with
 * refcount rc > 1 in an image without internal snapshots: nothing may
 * share it, so it is used twice (data over metadata, two L2 entries) or
 * its refcount is too high. Copying it on write would leave the other
 * reference inconsistent: refuse. Always -1, e saying so. */
int qcow2_refuse_unshared(const es_image *img, const char *what, uint64_t off, uint64_t rc,
                          es_err *e);

/* Refcount of the cluster with index `cluster` (host offset / cluster size);
 * clusters no refcount block covers have refcount 0. */
int qcow2_refcount_get(es_image *img, uint64_t cluster, uint64_t *rc, es_err *e);
/* Add delta to a cluster's refcount (in the cache). Overflow and underflow
 * are errors naming the cluster. A missing refcount block is created (and
 * flushed, with the table entry) first. */
int qcow2_refcount_add(es_image *img, uint64_t cluster, int64_t delta, es_err *e);

/* Write every dirty cached block, then fdatasync the image: an ordering point. */
int qcow2_refcount_flush(es_image *img, es_err *e);

/* Clusters with index >= first that have a non-zero refcount: *n. With
 * clear, their refcounts drop to 0 (in the cache). For the space past the
 * end of the file, which nothing may reference: an interrupted writer
 * raised those refcounts and stopped before writing the clusters. */
int qcow2_refcount_from(es_image *img, uint64_t first, bool clear, uint64_t *n, es_err *e);

/* Allocate one cluster (refcount 0 -> 1, in the cache): the lowest free one. */
int qcow2_alloc_cluster(es_image *img, uint64_t *host_off, es_err *e);
/* Allocate n contiguous clusters, the lowest run that fits. */
int qcow2_alloc_clusters(es_image *img, uint64_t n, uint64_t *host_off, es_err *e);
/* Drop one reference to the cluster at host_off (cache only; see the rules). */
int qcow2_free_cluster(es_image *img, uint64_t host_off, es_err *e);
/* Drop the references a compressed cluster (its L2 entry) holds on every
 * host cluster its bytes touch. */
int qcow2_free_compressed(es_image *img, uint64_t l2_entry, es_err *e);

#endif
