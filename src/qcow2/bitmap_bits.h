/* The content of one persistent dirty bitmap (docs/interop/qcow2.txt,
 * "Bitmaps"), held in memory: bit i covers guest bytes [i << g, (i+1) << g)
 * with g the granularity bits, least significant bit of each byte first.
 * Its size follows the virtual size (a 1 TiB disk at QEMU's default 64 KiB
 * granularity: 2 MiB), as in QEMU, which holds its bitmaps in memory too. */
#ifndef ES_QCOW2_BITMAP_BITS_H
#define ES_QCOW2_BITMAP_BITS_H

#include <stdbool.h>
#include <stdint.h>

#include "qcow2/bitmap_dir.h"
#include "qcow2/image.h"

/* Bitmap table entries (QEMU's BME_TABLE_ENTRY_*). */
#define QCOW2_BMT_OFFSET_MASK 0x00fffffffffffe00ull
#define QCOW2_BMT_ALL_ONES 1ull
#define QCOW2_BMT_RESERVED_MASK 0xff000000000001feull

/* Largest bitmap held in memory (QEMU's BME_MAX_PHYS_SIZE). */
#define QCOW2_BITMAP_MAX_BYTES (64ull << 20)

typedef struct qcow2_bitmap_bits {
    uint8_t *bits;
    uint64_t nbits;
    uint8_t granularity_bits;
} qcow2_bitmap_bits;

/* Bytes of bitmap data for a disk of `size` bytes at granularity 2^g. */
uint64_t qcow2_bitmap_data_bytes(uint64_t size, uint8_t g);
/* Entries of the bitmap table QEMU writes for that bitmap. */
uint64_t qcow2_bitmap_table_entries(const es_image *img, uint64_t size, uint8_t g);
/* Clusters that bitmap takes when written anew: its data clusters (at most
 * one per table entry) and its table; for free-space bounds. */
uint64_t qcow2_bitmap_clusters(const es_image *img, uint64_t size, uint8_t g);

/* An all-clear bitmap for a disk of `size` bytes; -1 when it would exceed
 * QCOW2_BITMAP_MAX_BYTES. */
int qcow2_bitmap_bits_new(qcow2_bitmap_bits *b, const es_image *img, uint64_t size, uint8_t g,
                          const char *name, es_err *e);
/* Read bitmap bm of img (its table and data clusters) for the image's
 * virtual size. Entries are validated as QEMU does; an invalid one, or a
 * table too small for the virtual size, is an error naming the bitmap. */
int qcow2_bitmap_bits_load(es_image *img, const qcow2_bitmap *bm, qcow2_bitmap_bits *b,
                           es_err *e);
void qcow2_bitmap_bits_free(qcow2_bitmap_bits *b);

/* Set the bits covering guest bytes [off, off+len) (clipped to the bitmap). */
void qcow2_bitmap_bits_mark(qcow2_bitmap_bits *b, uint64_t off, uint64_t len);
/* dst |= src, across granularities: every range a set bit of src covers
 * is marked in dst. */
void qcow2_bitmap_bits_merge(qcow2_bitmap_bits *dst, const qcow2_bitmap_bits *src);
static inline bool qcow2_bitmap_bits_get(const qcow2_bitmap_bits *b, uint64_t bit)
{
    return bit < b->nbits && (b->bits[bit / 8] >> (bit % 8)) & 1;
}

#endif
