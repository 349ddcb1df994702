/* The bitmaps of TOP that BASE lacks, carried into BASE by a commit as
 * libvirt does after QEMU's block-commit (qemuBlockBitmapsHandleCommitFinish):
 * a name counts only when its chain is valid, that is present in TOP and
 * in consecutive images below it, nowhere after the first image without
 * it, and enabled (recording) and consistent wherever present. BASE gets
 * a new persistent, enabled bitmap of that name at the granularity of
 * TOP's, holding the union of the same-named bitmaps of the images from
 * TOP down to the one above BASE. It gets no bits for what the commit
 * copies: it did not exist when those clusters were written, and what
 * they changed since the bitmap was added is in the merged bitmaps.
 *
 * A name some image between TOP and BASE has but TOP lacks is not carried
 * (as libvirt): TOP did not record the guest's writes in it, so a bitmap
 * built from it would miss changes and an incremental backup taken from
 * it would silently lose data; without it the backup tool finds its
 * bitmap gone and takes a full backup. Invalid chains are dropped for the
 * same reason. */
#ifndef ES_QCOW2_BITMAP_ADOPT_H
#define ES_QCOW2_BITMAP_ADOPT_H

#include <stdint.h>

#include "qcow2/bitmap_bits.h"
#include "qcow2/image.h"

typedef struct qcow2_bitmap_adopt {
    uint32_t count;
    char **names;
    qcow2_bitmap_bits *bits; /* content, at TOP's granularity, BASE's size */
} qcow2_bitmap_adopt;

/* Compute the bitmaps BASE gets for committing the images from top down
 * to (not including) base. Reads the whole chain's bitmap directories and
 * the merged bitmaps; writes nothing. */
int qcow2_bitmap_adopt_prepare(es_image *top, es_image *base, qcow2_bitmap_adopt *a, es_err *e);
void qcow2_bitmap_adopt_free(qcow2_bitmap_adopt *a);

#endif
