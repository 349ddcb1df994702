/* Block status of a guest range through a whole chain, with the meaning
 * `qemu-img map --output=json` gives its fields (QEMU 7.2 qemu-img.c
 * get_block_status() over block/io.c bdrv_block_status()):
 *  - depth: the first image, from the top, that decides the range (allocated
 *    there, or the bottom / an image whose backing is shorter than offset);
 *  - present: data or zeroes are allocated in that image;
 *  - zero / data: reads as zeroes / has data;
 *  - offset: host offset in that image when the range maps to one (normal
 *    clusters, preallocated zero clusters, unallocated subclusters of an
 *    allocated cluster, raw files), absent for compressed clusters.
 * Runs may be shorter than what QEMU reports at once (one cluster for zero
 * clusters, say): callers merge adjacent runs with equal fields. The work is
 * proportional to the L1/L2 entries present, not to the virtual size. */
#ifndef ES_QCOW2_MAP_STATUS_H
#define ES_QCOW2_MAP_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include "qcow2/image.h"
#include "util/err.h"

typedef struct es_map_status {
    uint64_t len;           /* run length from the queried offset */
    int depth;              /* 0 = top */
    const es_image *layer;  /* the image at depth */
    bool present;
    bool zero;
    bool data;
    bool has_offset;
    uint64_t offset;        /* host offset in layer of the queried offset */
} es_map_status;

/* Status of [off, off + max_len) of top's guest view; off must be below
 * top's virtual size. */
int es_map_status_get(es_image *top, uint64_t off, uint64_t max_len, es_map_status *st,
                      es_err *e);

#endif
