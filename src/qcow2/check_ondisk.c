/* The refcounts the image itself stores: refcount table, one cached
 * refcount block, and the overlap check that guards every repair write. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/check_internal.h"
#include "qcow2/format.h"

int ondisk_load_reftable(qcow2_check_ctx *c, es_err *e)
{
    uint64_t bytes = (uint64_t)c->reftable_clusters * c->cluster_size;
    uint8_t *raw = malloc(bytes ? (size_t)bytes : 1);
    uint64_t *t = calloc(bytes / 8 ? (size_t)(bytes / 8) : 1, sizeof *t);
    if (!raw || !t) {
        free(raw);
        free(t);
        return es_err_set(e, ENOMEM, c->path, "out of memory for the refcount table");
    }
    if (check_pread(c, raw, (size_t)bytes, c->reftable_offset, e) < 0) {
        free(raw);
        free(t);
        return es_err_prefix(e, "cannot read the refcount table");
    }
    for (uint64_t i = 0; i < bytes / 8; i++)
        t[i] = be64_load(raw + 8 * i);
    free(raw);
    free(c->reftable);
    c->reftable = t;
    c->reftable_entries = bytes / 8;
    return 0;
}

void ondisk_drop_cache(qcow2_check_ctx *c)
{
    c->rb_valid = false;
    c->rb_dirty = false;
}

int ondisk_writeback(qcow2_check_ctx *c, es_err *e)
{
    if (!c->rb_valid || !c->rb_dirty)
        return 0;
    if (ondisk_overlap_check(c, OVL_REFBLOCK, c->rb_offset, c->cluster_size, e) < 0)
        return -1;
    if (es_file_pwrite(c->file, c->rb, c->cluster_size, c->rb_offset, e) < 0)
        return -1;
    c->rb_dirty = false;
    if (c->rb_offset + c->cluster_size > c->file_size)
        c->file_size = c->rb_offset + c->cluster_size;
    return 0;
}

/* Locate the refblock holding `cluster`: 0 with *off = 0 when there is
 * none, 1 when its offset is unaligned, 0 with the block cached otherwise. */
static int load_refblock(qcow2_check_ctx *c, uint64_t cluster, uint64_t *off, es_err *e)
{
    uint64_t idx = cluster / c->rb_entries;
    *off = idx < c->reftable_entries ? c->reftable[idx] & QCOW2_REFT_OFFSET_MASK : 0;
    if (*off == 0)
        return 0;
    if (*off & (c->cluster_size - 1)) {
        if (!c->corruption_signalled) {
            c->corruption_signalled = true;
            check_log(c,
                      "qcow2: Image is corrupt: Refblock offset %#llx unaligned (reftable "
                      "index: %#llx); further non-fatal corruption events will be suppressed\n",
                      (unsigned long long)*off, (unsigned long long)idx);
        }
        return 1;
    }
    if (c->rb_valid && c->rb_offset == *off)
        return 0;
    if (ondisk_writeback(c, e) < 0)
        return -1;
    c->rb_valid = false;
    if (check_pread(c, c->rb, c->cluster_size, *off, e) < 0)
        return -1;
    c->rb_offset = *off;
    c->rb_valid = true;
    return 0;
}

int ondisk_get_refcount(qcow2_check_ctx *c, uint64_t cluster, uint64_t *rc, es_err *e)
{
    uint64_t off;
    *rc = 0;
    int r = load_refblock(c, cluster, &off, e);
    if (r != 0 || off == 0)
        return r;
    *rc = refarray_get(c->rb, c->refcount_order, cluster % c->rb_entries);
    return 0;
}

int ondisk_set_refcount(qcow2_check_ctx *c, uint64_t cluster, uint64_t rc, es_err *e)
{
    uint64_t off;
    int r = load_refblock(c, cluster, &off, e);
    if (r < 0)
        return -1;
    if (r > 0 || off == 0)
        return es_err_set(e, EIO, c->path, "no usable refcount block for cluster %llu",
                          (unsigned long long)cluster);
    if (rc > c->refcount_max)
        return es_err_set(e, EINVAL, c->path, "refcount %llu does not fit %u bits",
                          (unsigned long long)rc, 1u << c->refcount_order);
    refarray_set(c->rb, c->refcount_order, cluster % c->rb_entries, rc);
    c->rb_dirty = true;
    return 0;
}

/* --- overlap check --- */

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return alen && blen && a < b + blen && b < a + alen;
}

/* Does [off, off+len) touch an active L2 table? Reads the active L1. */
static int hits_active_l2(qcow2_check_ctx *c, uint64_t off, uint64_t len, bool *hit, es_err *e)
{
    *hit = false;
    uint8_t buf[4096];
    uint32_t per = sizeof buf / 8;
    for (uint32_t base = 0; base < c->hdr.l1_size && !*hit; base += per) {
        uint32_t n = c->hdr.l1_size - base < per ? c->hdr.l1_size - base : per;
        if (check_pread(c, buf, (size_t)n * 8, c->hdr.l1_table_offset + (uint64_t)base * 8, e) < 0)
            return -1;
        for (uint32_t k = 0; k < n && !*hit; k++) {
            uint64_t l2 = be64_load(buf + 8 * k) & QCOW2_L1E_OFFSET_MASK;
            *hit = l2 && ranges_overlap(off, len, l2, c->cluster_size);
        }
    }
    return 0;
}

int ondisk_overlap_check(qcow2_check_ctx *c, unsigned ignore, uint64_t off, uint64_t len,
                         es_err *e)
{
    const char *what = NULL;
    if (len == 0)
        return 0;
    if (off < c->cluster_size) {
        what = "qcow2_header";
        goto overlap;
    }
    /* Compare whole clusters, as QEMU does. */
    uint64_t start = off & ~(c->cluster_size - 1);
    uint64_t end = (off + len + c->cluster_size - 1) & ~(c->cluster_size - 1);
    off = start;
    len = end - start;
    if (!(ignore & OVL_ACTIVE_L1) &&
        ranges_overlap(off, len, c->hdr.l1_table_offset, (uint64_t)c->hdr.l1_size * 8)) {
        what = "active L1 table";
        goto overlap;
    }
    if (ranges_overlap(off, len, c->reftable_offset, c->reftable_entries * 8)) {
        what = "refcount table";
        goto overlap;
    }
    if (ranges_overlap(off, len, c->snapshots_offset, c->snapshots_size)) {
        what = "snapshot table";
        goto overlap;
    }
    for (uint32_t i = 0; i < c->nb_snapshots; i++) {
        if (ranges_overlap(off, len, c->snaps[i].l1_offset, (uint64_t)c->snaps[i].l1_size * 8)) {
            what = "inactive L1 table";
            goto overlap;
        }
    }
    if (!(ignore & OVL_REFBLOCK)) {
        for (uint64_t i = 0; i < c->reftable_entries; i++) {
            uint64_t rb = c->reftable[i] & QCOW2_REFT_OFFSET_MASK;
            if (rb && ranges_overlap(off, len, rb, c->cluster_size)) {
                what = "refcount block";
                goto overlap;
            }
        }
    }
    if (c->nb_bitmaps && ranges_overlap(off, len, c->bitmap_dir_offset, c->bitmap_dir_size)) {
        what = "bitmap directory";
        goto overlap;
    }
    if (!(ignore & OVL_ACTIVE_L2)) {
        bool hit;
        if (hits_active_l2(c, off, len, &hit, e) < 0)
            return -1;
        if (hit) {
            what = "active L2 table";
            goto overlap;
        }
    }
    return 0;
overlap:
    return es_err_set(e, EIO, c->path,
                      "preventing invalid write on metadata at 0x%llx (overlaps with %s)",
                      (unsigned long long)off, what);
}
