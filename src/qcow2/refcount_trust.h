/* Before a writer trusts an image's refcounts to find free clusters: the
 * clusters holding the image's own metadata must be counted as in use, or
 * the allocator hands one out and a data write lands on it (QEMU stops such
 * a write with its metadata overlap check and marks the image corrupt).
 * Checked once, before anything is written; work proportional to the
 * metadata (L1 entries, refcount table entries, snapshot L1 tables). */
#ifndef ES_QCOW2_REFCOUNT_TRUST_H
#define ES_QCOW2_REFCOUNT_TRUST_H

#include "qcow2/image.h"

/* Fails, naming the first structure found, when a cluster of the header,
 * the active L1 table, an active L2 table, the refcount table, a refcount
 * block, the snapshot table or a snapshot's L1 or L2 table has refcount
 * 0, or when the refcount table names one refcount block twice.
 * Opens the image's refcounts (qcow2_refcount_open) when needed. */
int qcow2_refcount_check_metadata(es_image *img, es_err *e);

#endif
