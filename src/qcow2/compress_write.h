/* Writing compressed clusters (docs/interop/qcow2.txt, "Compressed
 * Clusters Descriptor"), as QEMU does for qemu-img convert -c: a cluster is
 * compressed with the image's compression type (zlib: raw deflate, zstd:
 * one frame) and stored only when that takes less than a cluster; the
 * compressed clusters are packed byte after byte into host clusters, each
 * host cluster's refcount counting the compressed clusters that touch it.
 * The read side is qcow2/compress.h. */
#ifndef ES_QCOW2_COMPRESS_WRITE_H
#define ES_QCOW2_COMPRESS_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "qcow2/image.h"

/* Compress one cluster (cluster_size bytes at in) into out (cluster_size
 * bytes): 1 and *out_len when it fits in less than a cluster, 0 when it
 * does not (write it uncompressed), -1 on an error. */
int qcow2_compress_cluster(const es_image *img, const uint8_t *in, uint8_t *out, size_t *out_len,
                           es_err *e);

/* The free tail [cur, end) of the host cluster compressed clusters were
 * last packed into; {0, 0} at first. */
typedef struct qcow2_zalloc {
    uint64_t cur, end;
} qcow2_zalloc;

/* Reserve n bytes (0 < n < cluster size) for one compressed cluster: *off.
 * The rest of the last host cluster is used first, then a new one (and the
 * data may run on into it when it follows); every host cluster the bytes
 * touch gets one more reference (in the refcount cache). */
int qcow2_alloc_bytes(es_image *img, qcow2_zalloc *z, uint64_t n, uint64_t *off, es_err *e);

/* The L2 entry of a compressed cluster of n bytes at host byte off. */
uint64_t qcow2_compressed_entry(const es_image *img, uint64_t off, uint64_t n);

#endif
