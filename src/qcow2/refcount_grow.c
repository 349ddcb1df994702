#include "qcow2/refcount_grow.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/format.h"
#include "qcow2/host_write.h"
#include "qcow2/overlap.h"
#include "qcow2/refcount.h"
#include "util/xalloc.h"

#define HDR_REFTABLE_OFFSET 48 /* u64 offset, then u32 clusters at 56 */

/* A block in the table's range, placed at cluster `at`: inside its own
 * range it counts itself; elsewhere `at` must be free in a block that
 * exists, and its refcount is raised and flushed first. The block is
 * written and flushed before the table entry names it. */
static int create_in_table(es_image *img, uint64_t rt_idx, uint64_t at, es_err *e)
{
    uint64_t cs = img->cluster_size;
    uint64_t rbe = qcow2_refblock_entries(img);
    bool self = at / rbe == rt_idx;
    if (!self && qcow2_refcount_add(img, at, 1, e) < 0)
        return -1;
    uint8_t *block = es_xcalloc(1, cs);
    if (self)
        qcow2_refblock_entry_set(block, at % rbe, img->refcount_bits, 1);
    int r = qcow2_host_write(img, QCOW2_OL_REFBLOCK, block, cs, at << img->cluster_bits, e);
    free(block);
    if (r < 0 || (self ? es_file_flush(img->file, e) : qcow2_refcount_flush(img, e)) < 0)
        return es_err_prefix(e, "adding refcount block %llu", (unsigned long long)rt_idx);
    uint8_t ent[8];
    be64_store(ent, at << img->cluster_bits);
    if (qcow2_host_write(img, QCOW2_OL_REFTABLE, ent, 8,
                         img->hdr.refcount_table_offset + rt_idx * 8, e) < 0 ||
        es_file_flush(img->file, e) < 0)
        return es_err_prefix(e, "entering refcount block %llu in the refcount table",
                             (unsigned long long)rt_idx);
    img->reftable[rt_idx] = at << img->cluster_bits;
    qcow2_refcount_forget_block(img, rt_idx);
    return 0;
}

/* Blocks first..first+k-1 followed by a new table of nrt clusters, all at
 * cluster first*rbe, the blocks covering themselves and the table. */
static int grow_table(es_image *img, uint64_t first, es_err *e)
{
    uint64_t cs = img->cluster_size;
    uint64_t rbe = qcow2_refblock_entries(img);
    uint64_t per_cluster = cs / 8;
    uint64_t old_clusters = img->hdr.refcount_table_clusters;
    uint64_t k = 1, nrt;
    for (;;) {
        uint64_t need = (first + k + per_cluster - 1) / per_cluster;
        uint64_t roomy = old_clusters + (old_clusters + 1) / 2; /* some headroom */
        nrt = need > roomy ? need : roomy;
        if (k * rbe >= k + nrt)
            break;
        k++;
    }
    if (nrt * cs > QCOW2_MAX_REFTABLE_BYTES || nrt > UINT32_MAX)
        return es_err_set(e, EFBIG, img->filename,
                          "the refcount table would grow beyond %u bytes",
                          QCOW2_MAX_REFTABLE_BYTES);
    uint64_t start = first * rbe;
    if (start > (QCOW2_REFT_OFFSET_MASK >> img->cluster_bits) - k - nrt)
        return es_err_set(e, EFBIG, img->filename, "image file would grow too large");
    size_t bytes = (size_t)((k + nrt) * cs);
    uint8_t *buf = es_xcalloc(1, bytes);
    for (uint64_t c = 0; c < k + nrt; c++) /* cluster start+c lives in block c / rbe */
        qcow2_refblock_entry_set(buf + (c / rbe) * cs, c % rbe, img->refcount_bits, 1);
    uint8_t *table = buf + k * cs;
    for (uint64_t i = 0; i < img->reftable_entries; i++)
        be64_store(table + i * 8, img->reftable[i]);
    for (uint64_t j = 0; j < k; j++)
        be64_store(table + (first + j) * 8, (start + j) << img->cluster_bits);
    uint64_t new_off = (start + k) << img->cluster_bits;
    int r = qcow2_host_write(img, QCOW2_OL_REFBLOCK | QCOW2_OL_REFTABLE, buf, bytes,
                             start << img->cluster_bits, e);
    if (r == 0)
        r = es_file_flush(img->file, e);
    if (r < 0) {
        free(buf);
        return es_err_prefix(e, "growing the refcount table");
    }
    uint8_t hdr[12];
    be64_store(hdr, new_off);
    be32_store(hdr + 8, (uint32_t)nrt);
    if (qcow2_header_patch(img, HDR_REFTABLE_OFFSET, hdr, sizeof hdr, e) < 0 ||
        es_file_flush(img->file, e) < 0) {
        free(buf);
        return es_err_prefix(e, "switching to the grown refcount table");
    }
    /* The header names the new table now: switch the in-memory copy. */
    uint64_t new_entries = nrt * per_cluster;
    uint64_t *rt = es_xmalloc(new_entries * 8);
    for (uint64_t i = 0; i < new_entries; i++)
        rt[i] = be64_load(table + i * 8);
    free(buf);
    uint64_t old_off = img->hdr.refcount_table_offset;
    free(img->reftable);
    img->reftable = rt;
    img->reftable_entries = new_entries;
    img->hdr.refcount_table_offset = new_off;
    img->hdr.refcount_table_clusters = (uint32_t)nrt;
    for (uint64_t j = 0; j < k; j++)
        qcow2_refcount_forget_block(img, first + j);
    /* Nothing points at the old table any more (flushed above). */
    for (uint64_t c = 0; c < old_clusters; c++)
        if (qcow2_free_cluster(img, old_off + c * cs, e) < 0)
            return -1;
    return 0;
}

int qcow2_refblock_create(es_image *img, uint64_t rt_idx, uint64_t at, es_err *e)
{
    uint64_t rbe = qcow2_refblock_entries(img);
    if (rt_idx >= img->reftable_entries)
        return grow_table(img, rt_idx, e);
    if (at / rbe != rt_idx && at / rbe >= img->reftable_entries)
        return es_err_set(e, EINVAL, img->filename,
                          "internal error: refcount block placed outside the table's range");
    return create_in_table(img, rt_idx, at, e);
}
