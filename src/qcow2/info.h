/* What `qemu-img info` shows about one image, gathered into a struct.
 * Rendering (human text, JSON) belongs to the command line. */
#ifndef ES_QCOW2_INFO_H
#define ES_QCOW2_INFO_H

#include <stdbool.h>
#include <stdint.h>

#include "qcow2/bitmap_dir.h"
#include "qcow2/image.h"
#include "qcow2/snapshot_table.h"
#include "util/err.h"

typedef struct es_image_info {
    const char *filename;          /* the image's filename (points into the es_image) */
    es_img_format format;
    uint64_t virtual_size;
    bool has_actual_size;
    uint64_t actual_size;          /* bytes allocated on disk */
    bool dirty;                    /* qcow2 dirty bit (lazy refcounts, unclean shutdown) */

    /* Backing file (qcow2 only); all NULL when the image has none. */
    char *backing_filename;        /* as written in the header */
    char *full_backing_filename;   /* resolved against the image's path, as QEMU shows it */
    char *backing_format;          /* backing format extension, NULL if absent */

    /* qcow2 only */
    uint64_t cluster_size;         /* 0 for raw */
    uint32_t qcow2_version;
    const char *compression_type;  /* "zlib" or "zstd" */
    bool lazy_refcounts;
    bool corrupt;
    bool extended_l2;
    uint32_t refcount_bits;
    qcow2_snapshot_table snapshots;
    qcow2_bitmap_dir bitmaps;
} es_image_info;

/* Gather the figures of `img` (this image only, not its backing). When the
 * chain was opened, full_backing_filename is the path the backing was opened
 * by; otherwise the header's name is resolved the same way without opening
 * it (a protocol name is shown as it is, like QEMU). */
int es_image_info_gather(es_image *img, es_image_info *out, es_err *e);

void es_image_info_free(es_image_info *info);

#endif
