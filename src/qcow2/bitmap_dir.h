/* The persistent dirty bitmap directory of a qcow2 image (docs/interop/
 * qcow2.txt, "Bitmaps"): read-only view of the names and parameters, as
 * `qemu-img info` shows them. The bitmap tables themselves are not read. */
#ifndef ES_QCOW2_BITMAP_DIR_H
#define ES_QCOW2_BITMAP_DIR_H

#include <stdbool.h>
#include <stdint.h>

#include "qcow2/header.h"
#include "util/err.h"
#include "util/fileio.h"

#define QCOW2_BITMAP_MAX_COUNT 65535u
#define QCOW2_BITMAP_MAX_NAME 1023u
#define QCOW2_BITMAP_DIR_MAX_BYTES (1024ull * QCOW2_BITMAP_MAX_COUNT)
#define QCOW2_BITMAP_FLAG_IN_USE (1u << 0)
#define QCOW2_BITMAP_FLAG_AUTO (1u << 1)
#define QCOW2_BITMAP_FLAG_EXTRA_DATA_COMPATIBLE (1u << 2)

typedef struct qcow2_bitmap {
    uint64_t table_offset;
    uint32_t table_size;       /* entries of the bitmap table */
    uint32_t flags;
    uint8_t type;              /* 1 = dirty tracking */
    uint8_t granularity_bits;
    char *name;                /* NUL-terminated copy */
} qcow2_bitmap;

typedef struct qcow2_bitmap_dir {
    qcow2_bitmap *entries;
    uint32_t count;
} qcow2_bitmap_dir;

/* Read the directory named by the bitmaps header extension. Like QEMU, an
 * extension whose autoclear bit is clear (a program that did not know
 * bitmaps wrote the image) is ignored: the result is an empty directory. */
int qcow2_bitmap_dir_read(es_file *f, const qcow2_header *h, uint64_t file_size, const char *path,
                          qcow2_bitmap_dir *out, es_err *e);

void qcow2_bitmap_dir_free(qcow2_bitmap_dir *d);

struct es_image;
/* Does img carry persistent bitmaps QEMU would load (a qcow2 image with
 * the bitmaps extension and its autoclear bit)? */
bool qcow2_has_bitmaps(const struct es_image *img);

#endif
