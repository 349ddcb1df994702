#include "qcow2/bitmap_bits.h"

#include <stdlib.h>
#include <string.h>

#include "qcow2/format.h"
#include "util/fileio.h"
#include "util/xalloc.h"

uint64_t qcow2_bitmap_data_bytes(uint64_t size, uint8_t g)
{
    uint64_t nbits = (size >> g) + ((size & ((1ull << g) - 1)) != 0);
    return (nbits + 7) / 8;
}

uint64_t qcow2_bitmap_table_entries(const es_image *img, uint64_t size, uint8_t g)
{
    uint64_t bytes = qcow2_bitmap_data_bytes(size, g);
    uint64_t n = (bytes + img->cluster_size - 1) / img->cluster_size;
    return n ? n : 1; /* a bitmap always has a table */
}

uint64_t qcow2_bitmap_clusters(const es_image *img, uint64_t size, uint8_t g)
{
    uint64_t n = qcow2_bitmap_table_entries(img, size, g);
    return n + (n * 8 + img->cluster_size - 1) / img->cluster_size;
}

int qcow2_bitmap_bits_new(qcow2_bitmap_bits *b, const es_image *img, uint64_t size, uint8_t g,
                          const char *name, es_err *e)
{
    memset(b, 0, sizeof *b);
    uint64_t bytes = qcow2_bitmap_data_bytes(size, g);
    if (bytes > QCOW2_BITMAP_MAX_BYTES)
        return es_err_set(e, 0, img->filename,
                          "bitmap '%s' would need %llu bytes, more than the %llu QEMU allows", name,
                          (unsigned long long)bytes, (unsigned long long)QCOW2_BITMAP_MAX_BYTES);
    b->nbits = (size >> g) + ((size & ((1ull << g) - 1)) != 0);
    b->granularity_bits = g;
    b->bits = es_xcalloc(bytes ? bytes : 1, 1);
    return 0;
}

/* Bits past nbits in the last byte stay clear (an all-ones cluster sets them). */
static void clear_tail(qcow2_bitmap_bits *b)
{
    if (b->nbits % 8)
        b->bits[b->nbits / 8] &= (uint8_t)((1u << (b->nbits % 8)) - 1);
}

int qcow2_bitmap_bits_load(es_image *img, const qcow2_bitmap *bm, qcow2_bitmap_bits *b,
                           es_err *e)
{
    uint64_t size = img->virtual_size, cs = img->cluster_size;
    if (qcow2_bitmap_bits_new(b, img, size, bm->granularity_bits, bm->name, e) < 0)
        return -1;
    uint64_t bytes = qcow2_bitmap_data_bytes(size, bm->granularity_bits);
    if ((uint64_t)bm->table_size * cs < bytes) {
        qcow2_bitmap_bits_free(b);
        return es_err_set(e, 0, img->filename,
                          "bitmap '%s': its table (%u entries) is too small for the virtual size",
                          bm->name, bm->table_size);
    }
    uint64_t n = (bytes + cs - 1) / cs;
    uint8_t *table = es_xmalloc(n * 8);
    int r = es_file_pread(img->file, table, n * 8, bm->table_offset, e);
    for (uint64_t i = 0; r == 0 && i < n; i++) {
        uint64_t ent = be64_load(table + i * 8), off = ent & QCOW2_BMT_OFFSET_MASK;
        uint64_t pos = i * cs, len = bytes - pos < cs ? bytes - pos : cs;
        if ((ent & QCOW2_BMT_RESERVED_MASK) || (off && (ent & QCOW2_BMT_ALL_ONES)) || off % cs ||
            off > img->file_size || (off && img->file_size - off < len))
            r = es_err_set(e, 0, img->filename, "bitmap '%s': invalid bitmap table entry 0x%llx",
                           bm->name, (unsigned long long)ent);
        else if (off)
            r = es_file_pread(img->file, b->bits + pos, len, off, e);
        else if (ent & QCOW2_BMT_ALL_ONES)
            memset(b->bits + pos, 0xff, len);
    }
    free(table);
    if (r < 0) {
        qcow2_bitmap_bits_free(b);
        return es_err_prefix(e, "reading bitmap '%s'", bm->name);
    }
    clear_tail(b);
    return 0;
}

void qcow2_bitmap_bits_free(qcow2_bitmap_bits *b)
{
    free(b->bits);
    memset(b, 0, sizeof *b);
}

static void set_bit_range(uint8_t *bits, uint64_t first, uint64_t last)
{
    while (first <= last && first % 8) {
        bits[first / 8] |= (uint8_t)(1u << (first % 8));
        first++;
    }
    if (first > last)
        return;
    uint64_t whole = (last + 1 - first) / 8;
    memset(bits + first / 8, 0xff, whole);
    for (first += whole * 8; first <= last; first++)
        bits[first / 8] |= (uint8_t)(1u << (first % 8));
}

void qcow2_bitmap_bits_mark(qcow2_bitmap_bits *b, uint64_t off, uint64_t len)
{
    if (len == 0 || b->nbits == 0)
        return;
    uint64_t first = off >> b->granularity_bits;
    uint64_t end = off + len < off ? UINT64_MAX : off + len;
    uint64_t last = (end - 1) >> b->granularity_bits;
    if (first >= b->nbits)
        return;
    if (last >= b->nbits)
        last = b->nbits - 1;
    set_bit_range(b->bits, first, last);
}

void qcow2_bitmap_bits_merge(qcow2_bitmap_bits *dst, const qcow2_bitmap_bits *src)
{
    uint64_t bytes = (src->nbits + 7) / 8;
    if (src->granularity_bits == dst->granularity_bits) {
        uint64_t n = bytes < (dst->nbits + 7) / 8 ? bytes : (dst->nbits + 7) / 8;
        for (uint64_t i = 0; i < n; i++)
            dst->bits[i] |= src->bits[i];
        clear_tail(dst);
        return;
    }
    uint8_t g = src->granularity_bits;
    for (uint64_t i = 0; i < bytes; i++) {
        if (!src->bits[i])
            continue;
        for (unsigned k = 0; k < 8; k++)
            if (src->bits[i] >> k & 1)
                qcow2_bitmap_bits_mark(dst, (i * 8 + k) << g, 1ull << g);
    }
}
