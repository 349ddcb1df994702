/* Writing a qcow2 image's persistent dirty bitmaps: a new bitmap directory,
 * crash-safely. New bitmap data, tables and directory go to newly
 * allocated clusters (refcounts raised and flushed first); one update of
 * the bitmaps header extension then switches to the new directory; only
 * after that is flushed are the replaced clusters freed. A crash at any
 * point leaves either the old or the new directory, complete, and at worst
 * leaked clusters. */
#ifndef ES_QCOW2_BITMAP_STORE_H
#define ES_QCOW2_BITMAP_STORE_H

#include <stdint.h>

#include "qcow2/bitmap_bits.h"
#include "qcow2/bitmap_dir.h"
#include "qcow2/image.h"

/* One entry of the new directory: either an existing bitmap kept as it is
 * (keep: its table and data stay where they are), or new content. */
typedef struct qcow2_bitmap_out {
    const char *name;
    uint32_t flags;                 /* QCOW2_BITMAP_FLAG_*; never IN_USE */
    uint8_t granularity_bits;
    const qcow2_bitmap *keep;       /* an entry of the current directory, or NULL */
    const qcow2_bitmap_bits *bits;  /* when keep is NULL: the content to write */
} qcow2_bitmap_out;

/* Replace img's bitmap directory (current: the one qcow2_bitmap_dir_read
 * returns, freed afterwards except the kept entries) with out[0..n).
 * img is writable, its refcounts trusted; n > 0. An image without the
 * bitmaps extension gets one, crash-safely too (qcow2/bitmap_ext.h). */
int qcow2_bitmap_dir_replace(es_image *img, const qcow2_bitmap_out *out, uint32_t n, es_err *e);

#endif
