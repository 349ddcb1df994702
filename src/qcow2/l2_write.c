#include "qcow2/l2_write.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/format.h"
#include "qcow2/host_write.h"
#include "qcow2/l2_cache.h"
#include "qcow2/overlap.h"
#include "qcow2/refcount.h"
#include "util/xalloc.h"

#define HDR_L1_SIZE 36 /* u32 l1_size, then u64 l1_table_offset at 40 */

static uint32_t l1_shift(const es_image *img)
{
    return img->cluster_bits + (uint32_t)__builtin_ctzll(img->l2_entries);
}

uint64_t qcow2_l1_size_for(const es_image *img, uint64_t virtual_size)
{
    uint32_t shift = l1_shift(img);
    return (virtual_size + (1ull << shift) - 1) >> shift;
}

int qcow2_l1_table_offset(es_image *img, uint64_t l1_idx, uint64_t *l2_off, es_err *e)
{
    *l2_off = 0;
    if (l1_idx >= img->l1_size)
        return 0;
    uint64_t l1e = img->l1[l1_idx];
    if (l1e & QCOW2_L1E_RESERVED_MASK)
        return es_err_set(e, 0, img->filename, "L1 entry %llu (0x%016llx) has reserved bits set",
                          (unsigned long long)l1_idx, (unsigned long long)l1e);
    uint64_t off = l1e & QCOW2_L1E_OFFSET_MASK;
    if (off & (img->cluster_size - 1))
        return es_err_set(e, 0, img->filename,
                          "L1 entry %llu: L2 table offset 0x%llx is not cluster aligned",
                          (unsigned long long)l1_idx, (unsigned long long)off);
    if (off && off >= img->file_size)
        return es_err_set(e, 0, img->filename,
                          "L2 table at 0x%llx lies beyond end of file (L1 entry %llu)",
                          (unsigned long long)off, (unsigned long long)l1_idx);
    *l2_off = off;
    return 0;
}

int qcow2_l2_lookup(es_image *img, uint64_t off, uint64_t *entry, uint64_t *bitmap, es_err *e)
{
    *entry = *bitmap = 0;
    uint64_t l2_off;
    if (qcow2_l1_table_offset(img, off >> l1_shift(img), &l2_off, e) < 0)
        return -1;
    if (!l2_off)
        return 0;
    const uint8_t *table;
    if (qcow2_l2_get(img, l2_off, &table, e) < 0)
        return -1;
    const uint8_t *p = table + ((off >> img->cluster_bits) & (img->l2_entries - 1)) * img->l2_entry_bytes;
    *entry = be64_load(p);
    if (img->extended_l2)
        *bitmap = be64_load(p + 8);
    return 0;
}

int qcow2_l2_target_plan(es_image *img, uint64_t l1_idx, bool dry, qcow2_l2_target *t,
                         bool *needs_cluster, es_err *e)
{
    t->l1_idx = l1_idx;
    *needs_cluster = false;
    uint64_t cur;
    if (qcow2_l1_table_offset(img, l1_idx, &cur, e) < 0)
        return -1;
    if (cur) {
        uint64_t rc;
        if (qcow2_refcount_get(img, cur >> img->cluster_bits, &rc, e) < 0)
            return -1;
        if (rc == 0)
            return es_err_set(e, 0, img->filename,
                              "L2 table at 0x%llx (L1 entry %llu) has refcount 0; run "
                              "'extsnap img check -r all'",
                              (unsigned long long)cur, (unsigned long long)l1_idx);
        if (rc == 1) {
            t->l2_off = t->src_off = cur;
            return 0;
        }
        if (img->hdr.nb_snapshots == 0)
            return qcow2_refuse_unshared(img, "L2 table", cur, rc, e);
    }
    /* Absent, or shared with an internal snapshot: a new cluster. */
    *needs_cluster = true;
    t->src_off = cur;
    t->l2_off = 0;
    if (dry)
        return 0;
    return qcow2_alloc_cluster(img, &t->l2_off, e);
}

int qcow2_l2_target_write(es_image *img, const qcow2_l2_target *t, const qcow2_l2_update *u,
                          size_t n, uint8_t *scratch, es_err *e)
{
    size_t cs = (size_t)img->cluster_size;
    if (t->src_off) {
        const uint8_t *src;
        if (qcow2_l2_get(img, t->src_off, &src, e) < 0)
            return -1;
        memcpy(scratch, src, cs);
    } else {
        memset(scratch, 0, cs);
    }
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t idx = (u[i].guest >> img->cluster_bits) & (img->l2_entries - 1);
        uint8_t *p = scratch + idx * img->l2_entry_bytes;
        be64_store(p, u[i].entry);
        if (img->extended_l2)
            be64_store(p + 8, u[i].bitmap);
        lo = idx < lo ? idx : lo;
        hi = idx > hi ? idx : hi;
    }
    int r;
    if (qcow2_l2_target_is_new(t) || n == 0) {
        r = qcow2_host_write(img, QCOW2_OL_ACTIVE_L2, scratch, cs, t->l2_off, e);
    } else {
        size_t from = (size_t)(lo * img->l2_entry_bytes);
        size_t to = (size_t)((hi + 1) * img->l2_entry_bytes);
        r = qcow2_host_write(img, QCOW2_OL_ACTIVE_L2, scratch + from, to - from,
                             t->l2_off + from, e);
    }
    qcow2_l2_cache_invalidate(img, t->l2_off);
    if (r < 0)
        return es_err_prefix(e, "writing L2 table at 0x%llx", (unsigned long long)t->l2_off);
    return 0;
}

int qcow2_l1_set(es_image *img, uint64_t l1_idx, uint64_t l2_off, es_err *e)
{
    if (l1_idx >= img->l1_size)
        return es_err_set(e, EINVAL, img->filename, "internal error: L1 index %llu out of range",
                          (unsigned long long)l1_idx);
    uint64_t v = l2_off;
    if (l2_off) {
        uint64_t rc;
        if (qcow2_refcount_get(img, l2_off >> img->cluster_bits, &rc, e) < 0)
            return -1;
        if (rc == 1)
            v |= QCOW2_OFLAG_COPIED;
    }
    uint8_t buf[8];
    be64_store(buf, v);
    if (qcow2_host_write(img, QCOW2_OL_ACTIVE_L1, buf, 8,
                         img->hdr.l1_table_offset + l1_idx * 8, e) < 0)
        return es_err_prefix(e, "writing L1 entry %llu", (unsigned long long)l1_idx);
    img->l1[l1_idx] = v;
    return 0;
}

static int set_l1_header(es_image *img, uint32_t size, uint64_t off, es_err *e)
{
    uint8_t buf[12];
    be32_store(buf, size);
    be64_store(buf + 4, off);
    if (qcow2_header_patch(img, HDR_L1_SIZE, buf, sizeof buf, e) < 0 ||
        es_file_flush(img->file, e) < 0)
        return es_err_prefix(e, "switching to the grown L1 table");
    img->hdr.l1_size = size;
    img->hdr.l1_table_offset = off;
    return 0;
}

int qcow2_l1_grow(es_image *img, uint32_t new_size, es_err *e)
{
    uint32_t old_size = img->l1_size;
    if (new_size <= old_size)
        return 0;
    if ((uint64_t)new_size * 8 > QCOW2_MAX_L1_BYTES)
        return es_err_set(e, EFBIG, img->filename, "the L1 table would exceed %u bytes",
                          QCOW2_MAX_L1_BYTES);
    uint64_t cs = img->cluster_size;
    uint64_t old_off = img->hdr.l1_table_offset;
    uint64_t old_clusters = ((uint64_t)old_size * 8 + cs - 1) / cs;
    uint64_t *l1 = es_xrealloc(img->l1, (size_t)new_size * 8);
    img->l1 = l1;
    memset(l1 + old_size, 0, (size_t)(new_size - old_size) * 8);

    if (old_off && (uint64_t)new_size * 8 <= old_clusters * cs) {
        /* Room in the current clusters: zero the new entries, then say so. */
        if (qcow2_host_write_zeroes(img, QCOW2_OL_ACTIVE_L1, old_off + (uint64_t)old_size * 8,
                                    (uint64_t)(new_size - old_size) * 8, e) < 0 ||
            es_file_flush(img->file, e) < 0)
            return es_err_prefix(e, "growing the L1 table");
        if (set_l1_header(img, new_size, old_off, e) < 0)
            return -1;
        img->l1_size = new_size;
        return 0;
    }
    uint64_t n = ((uint64_t)new_size * 8 + cs - 1) / cs;
    uint64_t new_off;
    if (qcow2_alloc_clusters(img, n, &new_off, e) < 0 || qcow2_refcount_flush(img, e) < 0)
        return -1;
    uint8_t *buf = es_xcalloc(1, (size_t)(n * cs));
    for (uint32_t i = 0; i < old_size; i++)
        be64_store(buf + (uint64_t)i * 8, l1[i]);
    int r = qcow2_host_write(img, QCOW2_OL_ACTIVE_L1, buf, (size_t)(n * cs), new_off, e);
    free(buf);
    if (r < 0 || es_file_flush(img->file, e) < 0)
        return es_err_prefix(e, "writing the grown L1 table");
    if (set_l1_header(img, new_size, new_off, e) < 0)
        return -1;
    img->l1_size = new_size;
    /* The header no longer names the old table (flushed): release it. */
    for (uint64_t c = 0; old_off && c < old_clusters; c++)
        if (qcow2_free_cluster(img, old_off + c * cs, e) < 0)
            return -1;
    return 0;
}
