/* The bitmaps header extension of a qcow2 image (docs/interop/qcow2.txt,
 * "Bitmaps extension"): the one pointer to the bitmap directory, switched
 * by a single update once the new directory is on disk.
 *
 * An image without the extension gets one in place, each step leaving a
 * valid image that QEMU reads as before: the backing file name moves
 * further into cluster 0 if it lies where the extension goes (the copy
 * written first, then the 8-byte offset field); the extension's data and a
 * new end marker are written past the current end marker; the bitmaps
 * autoclear bit is set (without the extension QEMU finds no bitmap); last
 * the 8 bytes of the old end marker become the extension's type and
 * length, the switch. An extension with its autoclear bit clear (left by
 * another program) is ignored by QEMU and
 * taken over: its data rewritten, then the bit set. */
#ifndef ES_QCOW2_BITMAP_EXT_H
#define ES_QCOW2_BITMAP_EXT_H

#include <stdint.h>

#include "qcow2/image.h"

/* Refuse, before anything is written, an image that cannot get the
 * extension: qcow2 version 2, no room in cluster 0, an ignored extension
 * of the wrong size. Nothing to refuse when it has the extension. */
int qcow2_bitmap_ext_can_switch(const es_image *img, es_err *e);

/* Point the extension at a directory of n entries, dir_size bytes at
 * dir_off (all flushed already); flushed when it returns 0. */
int qcow2_bitmap_ext_switch(es_image *img, uint32_t n, uint64_t dir_size, uint64_t dir_off,
                            es_err *e);

#endif
