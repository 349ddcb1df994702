/* A new overlay takes over the incremental-backup bitmaps of the image it
 * covers, as libvirt does when it creates an external snapshot of a
 * running VM (block-dirty-bitmap-add, persistent, in the snapshot's
 * transaction): one empty, enabled bitmap of the same name and granularity
 * per enabled bitmap of the backing image. From then on the overlay's
 * bitmaps record the guest's writes, and a commit merges them back. */
#ifndef ES_QCOW2_BITMAP_INHERIT_H
#define ES_QCOW2_BITMAP_INHERIT_H

#include "qcow2/image.h"

/* overlay: a new qcow2 image opened writable with its backing chain, that
 * nothing uses yet (its header is rewritten whole). Nothing to do when the
 * backing image has no enabled bitmap. Bitmaps of the backing image marked
 * in use (inconsistent: QEMU stopped without storing them) are refused. */
int qcow2_bitmaps_inherit(es_image *overlay, es_err *e);

#endif
