/* Compressed clusters: decode the L2 descriptor and inflate one cluster
 * (zlib = raw deflate, zstd = one frame, both followed by slack bytes). */
#ifndef ES_QCOW2_COMPRESS_H
#define ES_QCOW2_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "qcow2/image.h"

/* Byte range of a compressed cluster from its L2 entry (word 0): host byte
 * offset (not aligned) and the number of bytes to read, per the descriptor
 * layout that depends on cluster_bits. Pure arithmetic, no validation. */
void qcow2_compressed_range(uint32_t cluster_bits, uint64_t l2_entry, uint64_t *host_off,
                            uint64_t *nbytes);

/* Read and decompress the compressed cluster described by l2_entry into out
 * (cluster_size bytes). Validates the range against the file: it must start
 * inside the file; bytes past the end read as zeroes (QEMU does not pad the
 * last compressed cluster), and then decompression decides. */
int qcow2_read_compressed_cluster(es_image *img, uint64_t l2_entry, uint8_t *out, es_err *e);

#endif
