#include "qcow2/bitmap_store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/bitmap_ext.h"
#include "qcow2/format.h"
#include "qcow2/host_write.h"
#include "qcow2/overlap.h"
#include "qcow2/refcount.h"
#include "util/fileio.h"
#include "util/xalloc.h"

#define ENTRY_FIXED_BYTES 24u
#define TYPE_DIRTY_TRACKING 1

/* Where one new bitmap goes. */
typedef struct placed {
    uint64_t table_off;
    uint64_t table_entries;
    uint64_t *table; /* host-endian entries (data cluster offsets, 0 = all clear) */
} placed;

static bool all_zero(const uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static uint64_t entry_bytes(const char *name)
{
    return (ENTRY_FIXED_BYTES + strlen(name) + 7) & ~7ull;
}

static uint64_t clusters_for(const es_image *img, uint64_t bytes)
{
    return (bytes + img->cluster_size - 1) / img->cluster_size;
}

/* Allocate (refcounts in the cache) the data clusters and the table of one
 * new bitmap; all-clear clusters get no cluster, as QEMU stores them. */
static int place_bitmap(es_image *img, const qcow2_bitmap_out *o, placed *p, es_err *e)
{
    uint64_t cs = img->cluster_size;
    uint64_t bytes = qcow2_bitmap_data_bytes(img->virtual_size, o->granularity_bits);
    p->table_entries = qcow2_bitmap_table_entries(img, img->virtual_size, o->granularity_bits);
    if (p->table_entries > UINT32_MAX / 8)
        return es_err_set(e, EFBIG, img->filename, "bitmap '%s' is too large", o->name);
    p->table = es_xcalloc(p->table_entries, sizeof *p->table);
    for (uint64_t i = 0; i * cs < bytes; i++) {
        uint64_t len = bytes - i * cs < cs ? bytes - i * cs : cs;
        if (!all_zero(o->bits->bits + i * cs, len) &&
            qcow2_alloc_cluster(img, &p->table[i], e) < 0)
            return -1;
    }
    return qcow2_alloc_clusters(img, clusters_for(img, p->table_entries * 8), &p->table_off, e);
}

static int write_bitmap(es_image *img, const qcow2_bitmap_out *o, const placed *p, uint8_t *buf,
                        es_err *e)
{
    uint64_t cs = img->cluster_size;
    uint64_t bytes = qcow2_bitmap_data_bytes(img->virtual_size, o->granularity_bits);
    for (uint64_t i = 0; i < p->table_entries; i++) {
        if (!p->table[i])
            continue;
        uint64_t len = bytes - i * cs < cs ? bytes - i * cs : cs;
        memset(buf, 0, cs);
        memcpy(buf, o->bits->bits + i * cs, len);
        if (qcow2_host_write(img, QCOW2_OL_DATA, buf, cs, p->table[i], e) < 0)
            return -1;
    }
    uint64_t tbytes = clusters_for(img, p->table_entries * 8) * cs;
    uint8_t *t = es_xcalloc(1, tbytes);
    for (uint64_t i = 0; i < p->table_entries; i++)
        be64_store(t + i * 8, p->table[i]);
    int r = qcow2_host_write(img, QCOW2_OL_BITMAP_TABLE, t, tbytes, p->table_off, e);
    free(t);
    return r;
}

static uint8_t *serialize_dir(const qcow2_bitmap_out *out, const placed *pl, uint32_t n,
                              uint64_t size)
{
    uint8_t *d = es_xcalloc(1, size);
    uint64_t pos = 0;
    for (uint32_t i = 0; i < n; i++) {
        const qcow2_bitmap_out *o = &out[i];
        uint8_t *p = d + pos;
        size_t nl = strlen(o->name);
        be64_store(p, o->keep ? o->keep->table_offset : pl[i].table_off);
        be32_store(p + 8, o->keep ? o->keep->table_size : (uint32_t)pl[i].table_entries);
        be32_store(p + 12, o->keep ? o->keep->flags : o->flags);
        p[16] = TYPE_DIRTY_TRACKING;
        p[17] = o->granularity_bits;
        be16_store(p + 18, (uint16_t)nl);
        be32_store(p + 20, 0); /* no extra data */
        memcpy(p + ENTRY_FIXED_BYTES, o->name, nl);
        pos += entry_bytes(o->name);
    }
    return d;
}

static bool kept(const qcow2_bitmap *old, const qcow2_bitmap_out *out, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (out[i].keep && out[i].keep->table_offset == old->table_offset)
            return true;
    return false;
}

/* After the switch: the old directory and the tables (with their data) of
 * the bitmaps not kept are no longer referenced. */
static int free_old(es_image *img, const qcow2_bitmap_dir *old, uint64_t old_dir_off,
                    uint64_t old_dir_size, const qcow2_bitmap_out *out, uint32_t n, es_err *e)
{
    uint64_t cs = img->cluster_size;
    for (uint32_t i = 0; i < old->count; i++) {
        const qcow2_bitmap *bm = &old->entries[i];
        if (kept(bm, out, n))
            continue;
        uint8_t *t = es_xmalloc((uint64_t)bm->table_size * 8);
        int r = es_file_pread(img->file, t, (uint64_t)bm->table_size * 8, bm->table_offset, e);
        for (uint32_t k = 0; r == 0 && k < bm->table_size; k++) {
            uint64_t off = be64_load(t + k * 8) & QCOW2_BMT_OFFSET_MASK;
            if (off)
                r = qcow2_free_cluster(img, off, e);
        }
        free(t);
        for (uint64_t k = 0; r == 0 && k < clusters_for(img, (uint64_t)bm->table_size * 8); k++)
            r = qcow2_free_cluster(img, bm->table_offset + k * cs, e);
        if (r < 0)
            return es_err_prefix(e, "freeing the old clusters of bitmap '%s'", bm->name);
    }
    for (uint64_t k = 0; k < clusters_for(img, old_dir_size); k++)
        if (qcow2_free_cluster(img, old_dir_off + k * cs, e) < 0)
            return es_err_prefix(e, "freeing the old bitmap directory");
    return qcow2_refcount_flush(img, e);
}

int qcow2_bitmap_dir_replace(es_image *img, const qcow2_bitmap_out *out, uint32_t n, es_err *e)
{
    if (n == 0 || n > QCOW2_BITMAP_MAX_COUNT)
        return es_err_set(e, EINVAL, img->filename, "internal error: %u bitmaps to store", n);
    qcow2_bitmap_dir old;
    if (qcow2_bitmap_ext_can_switch(img, e) < 0) /* before anything is written */
        return -1;
    if (qcow2_refcount_open(img, e) < 0 ||
        qcow2_bitmap_dir_read(img->file, &img->hdr, img->file_size, img->filename, &old, e) < 0)
        return -1;
    const qcow2_ext *ext = old.count ? qcow2_header_find_ext(&img->hdr, QCOW2_EXT_BITMAPS) : NULL;
    uint64_t old_dir_size = ext ? be64_load(ext->data + 8) : 0;
    uint64_t old_dir_off = ext ? be64_load(ext->data + 16) : 0;
    placed *pl = es_xcalloc(n, sizeof *pl);
    uint8_t *buf = es_io_alloc(img->cluster_size), *dir = NULL;
    uint64_t dir_size = 0, dir_off = 0;
    int r = 0;
    for (uint32_t i = 0; i < n; i++)
        dir_size += entry_bytes(out[i].name);
    if (dir_size > QCOW2_BITMAP_DIR_MAX_BYTES)
        r = es_err_set(e, EFBIG, img->filename, "bitmap directory too large");
    /* 1. Allocate everything new; 2. refcounts to disk; 3. write it. */
    for (uint32_t i = 0; r == 0 && i < n; i++)
        if (!out[i].keep)
            r = place_bitmap(img, &out[i], &pl[i], e);
    if (r == 0)
        r = qcow2_alloc_clusters(img, clusters_for(img, dir_size), &dir_off, e);
    if (r == 0)
        r = qcow2_refcount_flush(img, e);
    for (uint32_t i = 0; r == 0 && i < n; i++)
        if (!out[i].keep)
            r = write_bitmap(img, &out[i], &pl[i], buf, e);
    if (r == 0) {
        dir = serialize_dir(out, pl, n, clusters_for(img, dir_size) * img->cluster_size);
        r = qcow2_host_write(img, QCOW2_OL_BITMAP_DIR, dir,
                             clusters_for(img, dir_size) * img->cluster_size, dir_off, e);
    }
    if (r == 0)
        r = es_file_flush(img->file, e);
    /* 4. The switch; 5. only then the old clusters go. */
    if (r == 0)
        r = qcow2_bitmap_ext_switch(img, n, dir_size, dir_off, e);
    if (r == 0 && old.count)
        r = free_old(img, &old, old_dir_off, old_dir_size, out, n, e);
    for (uint32_t i = 0; i < n; i++)
        free(pl[i].table);
    free(pl);
    free(buf);
    free(dir);
    qcow2_bitmap_dir_free(&old);
    return r < 0 ? es_err_prefix(e, "writing the bitmaps") : 0;
}
