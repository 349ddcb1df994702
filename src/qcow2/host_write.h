/* Writing an image's host file: every write goes through here so that
 * img->file_size stays current (the read side validates offsets against it,
 * and a commit appends clusters it reads back), and so that every write is
 * checked against the image's metadata first (overlap.h: `what` says what
 * is written, QCOW2_OL_DATA for guest data). */
#ifndef ES_QCOW2_HOST_WRITE_H
#define ES_QCOW2_HOST_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "qcow2/image.h"

int qcow2_host_write(es_image *img, unsigned what, const void *buf, size_t len, uint64_t off,
                     es_err *e);
/* Copy len bytes of src at soff to off, file to file (es_file_copy: the
 * extents are shared where src and the image are on one file system that
 * can, e.g. XFS reflink=1 or btrfs, and the offsets are block-aligned). */
int qcow2_host_copy(es_image *img, unsigned what, es_file *src, uint64_t soff, uint64_t len,
                    uint64_t off, es_err *e);
/* Write zeroes over [off, off+len), in bounded pieces. */
int qcow2_host_write_zeroes(es_image *img, unsigned what, uint64_t off, uint64_t len, es_err *e);
/* Overwrite bytes of the fixed header in place (a few bytes inside the first
 * sector: such a write is atomic in practice, which the ordering relies on).
 * The caller updates img->hdr and flushes. */
int qcow2_header_patch(es_image *img, uint64_t field_off, const void *buf, size_t len, es_err *e);

#endif
