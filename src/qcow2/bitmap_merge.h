/* Keeping BASE's persistent dirty bitmaps true across a commit, as QEMU and
 * libvirt do together: QEMU's block-commit marks in BASE's enabled bitmaps
 * every range it copies (everything the images above BASE allocate), and
 * libvirt then merges the same-named bitmaps of the images above BASE into
 * BASE's (block-dirty-bitmap-merge). Disabled bitmaps stay untouched.
 *
 * The new bitmaps are computed before the commit's first write and
 * written (qcow2/bitmap_store.h) before any data reaches BASE: a crash
 * after that leaves bits set for clusters not yet changed (a larger backup,
 * never a missed change), and a re-run sets the same bits again. */
#ifndef ES_QCOW2_BITMAP_MERGE_H
#define ES_QCOW2_BITMAP_MERGE_H

#include <stdbool.h>
#include <stdint.h>

#include "qcow2/bitmap_adopt.h"
#include "qcow2/bitmap_bits.h"
#include "qcow2/bitmap_dir.h"
#include "qcow2/image.h"

typedef struct qcow2_bitmap_merge {
    qcow2_bitmap_dir dir;     /* BASE's directory */
    qcow2_bitmap_bits *bits;  /* per entry: new content (enabled ones), else empty */
    qcow2_bitmap_adopt adopt; /* new bitmaps, after BASE's */
    uint64_t need_clusters;   /* new clusters the write may take */
} qcow2_bitmap_merge;

/* Refusals, before anything is read beyond the directories: a bitmap of
 * BASE or of an image above it marked in use (QEMU stopped without storing
 * it: inconsistent), or BASE with bitmaps growing to new_size. */
int qcow2_bitmap_merge_refuse(es_image *top, es_image *base, uint64_t new_size, es_err *e);

/* Compute BASE's new bitmaps for committing the images from top down to
 * (not including) base, over guest bytes [0, top_size). Writes nothing.
 * Refuses what the write could not do: a new bitmap in a BASE that would
 * grow, is qcow2 version 2 or has no room for the bitmaps extension. */
int qcow2_bitmap_merge_prepare(es_image *top, es_image *base, uint64_t top_size,
                               qcow2_bitmap_merge *m, es_err *e);
/* Write them (nothing to do when no bitmap of BASE changes or is added). */
int qcow2_bitmap_merge_write(es_image *base, const qcow2_bitmap_merge *m, es_err *e);
void qcow2_bitmap_merge_free(qcow2_bitmap_merge *m);

#endif
