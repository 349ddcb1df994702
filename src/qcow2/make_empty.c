#include "qcow2/make_empty.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/bitmap_dir.h"
#include "qcow2/compress.h"
#include "qcow2/format.h"
#include "qcow2/host_write.h"
#include "qcow2/l2_cache.h"
#include "qcow2/l2_write.h"
#include "qcow2/overlap.h"
#include "qcow2/reclaim.h"
#include "qcow2/refcount.h"
#include "util/xalloc.h"

#define HDR_INCOMPAT 72
#define HDR_L1_OFFSET 40 /* l1 offset, reftable offset, reftable clusters */
#define FREE_BATCH 65536

static uint64_t l1_clusters(const es_image *img)
{
    return ((uint64_t)img->l1_size * 8 + img->cluster_size - 1) / img->cluster_size;
}

bool qcow2_make_empty_rebuilds(const es_image *img)
{
    return img->hdr.version >= 3 && img->hdr.nb_snapshots == 0 && !qcow2_has_bitmaps(img) &&
           img->hdr.crypt_method == 0 && !(img->hdr.incompatible_features & QCOW2_INCOMPAT_DATA_FILE) &&
           3 + l1_clusters(img) <= img->cluster_size * 8 / img->refcount_bits;
}

static int set_incompat(es_image *img, uint64_t bits, es_err *e)
{
    uint8_t buf[8];
    be64_store(buf, bits);
    if (es_file_flush(img->file, e) < 0 || qcow2_header_patch(img, HDR_INCOMPAT, buf, 8, e) < 0 ||
        es_file_flush(img->file, e) < 0)
        return -1;
    img->hdr.incompatible_features = bits;
    return 0;
}

/* New metadata from scratch: header, reftable at cluster 1, refblock at 2,
 * an empty L1 table from cluster 3 (QEMU's make_completely_empty). */
static int rebuild_empty(es_image *img, es_err *e)
{
    uint64_t cs = img->cluster_size;
    uint64_t l1c = l1_clusters(img);
    if (set_incompat(img, img->hdr.incompatible_features | QCOW2_INCOMPAT_DIRTY, e) < 0)
        return es_err_prefix(e, "marking the image dirty");
    /* From here on the refcounts on disk mean nothing (the dirty bit says so). */
    if (l1c && qcow2_host_write_zeroes(img, QCOW2_OL_ALL, img->hdr.l1_table_offset, l1c * cs, e) < 0)
        return es_err_prefix(e, "clearing the L1 table");
    if (qcow2_host_write_zeroes(img, QCOW2_OL_ALL, cs, (2 + l1c) * cs, e) < 0)
        return es_err_prefix(e, "clearing the new metadata area");
    uint8_t hdr[20];
    be64_store(hdr, 3 * cs);
    be64_store(hdr + 8, cs);
    be32_store(hdr + 16, 1);
    if (qcow2_header_patch(img, HDR_L1_OFFSET, hdr, sizeof hdr, e) < 0 ||
        es_file_flush(img->file, e) < 0)
        return -1;
    img->hdr.l1_table_offset = 3 * cs;
    img->hdr.refcount_table_offset = cs;
    img->hdr.refcount_table_clusters = 1;
    uint8_t ent[8];
    be64_store(ent, 2 * cs);
    if (qcow2_host_write(img, QCOW2_OL_ALL, ent, 8, cs, e) < 0 || es_file_flush(img->file, e) < 0)
        return es_err_prefix(e, "writing the new refcount table");
    uint8_t *block = es_xcalloc(1, cs);
    for (uint64_t c = 0; c < 3 + l1c; c++)
        qcow2_refblock_entry_set(block, c, img->refcount_bits, 1);
    int r = qcow2_host_write(img, QCOW2_OL_ALL, block, cs, 2 * cs, e);
    free(block);
    if (r < 0)
        return es_err_prefix(e, "writing the new refcount block");
    if (set_incompat(img, img->hdr.incompatible_features & ~QCOW2_INCOMPAT_DIRTY, e) < 0)
        return es_err_prefix(e, "marking the image clean");
    if (es_file_truncate(img->file, (3 + l1c) * cs, e) < 0)
        return -1;
    img->file_size = (3 + l1c) * cs;
    if (img->l1)
        memset(img->l1, 0, (size_t)img->l1_size * 8);
    qcow2_l2_cache_clear(img);
    /* The in-memory refcount table and metadata map describe the old
     * structures: drop them (read again if anything follows). */
    qcow2_refcount_close(img);
    qcow2_overlap_close(img);
    return 0;
}

typedef struct frees {
    uint64_t *val;    /* host offset, or compressed L2 entry with bit 62 */
    size_t n;
} frees;

static int flush_and_free(es_image *img, frees *f, es_err *e)
{
    if (!f->n)
        return 0;
    if (es_file_flush(img->file, e) < 0)
        return -1;
    for (size_t i = 0; i < f->n; i++) {
        int r = (f->val[i] & QCOW2_OFLAG_COMPRESSED) ? qcow2_free_compressed(img, f->val[i], e)
                                                    : qcow2_free_cluster(img, f->val[i], e);
        if (r < 0)
            return -1;
    }
    f->n = 0;
    return 0;
}

/* Queue the clusters entry (word 0) references; returns whether it had any. */
static bool entry_clusters(const es_image *img, uint64_t entry, frees *f)
{
    if (entry & QCOW2_OFLAG_COMPRESSED) {
        f->val[f->n++] = entry & ~QCOW2_OFLAG_COPIED;
        return true;
    }
    uint64_t host = entry & QCOW2_L2E_OFFSET_MASK;
    (void)img;
    if (host)
        f->val[f->n++] = host;
    return host != 0;
}

/* QEMU's fallback: discard every cluster (entries cleared, clusters freed). */
static int discard_all(es_image *img, es_err *e)
{
    if (qcow2_refcount_open(img, e) < 0)
        return -1;
    uint64_t cs = img->cluster_size;
    frees f = {es_xcalloc(FREE_BATCH + img->l2_entries + 1, sizeof(uint64_t)), 0};
    uint8_t *table = es_xmalloc(cs);
    int r = -1;
    for (uint64_t i = 0; i < img->l1_size; i++) {
        uint64_t l2_off, rc;
        if (qcow2_l1_table_offset(img, i, &l2_off, e) < 0)
            goto out;
        if (!l2_off)
            continue;
        if (qcow2_refcount_get(img, l2_off >> img->cluster_bits, &rc, e) < 0)
            goto out;
        const uint8_t *src;
        if (qcow2_l2_get(img, l2_off, &src, e) < 0)
            goto out;
        memcpy(table, src, cs);
        bool changed = false;
        for (uint64_t j = 0; j < img->l2_entries; j++) {
            uint8_t *p = table + j * img->l2_entry_bytes;
            uint64_t ent = be64_load(p);
            uint64_t bm = img->extended_l2 ? be64_load(p + 8) : 0;
            if (!ent && !bm)
                continue;
            entry_clusters(img, ent, &f);
            memset(p, 0, img->l2_entry_bytes);
            changed = true;
        }
        if (rc > 1) {
            /* Shared with a snapshot: unlink it from L1 instead of copying
             * it; the table and what it points to lose our reference. */
            f.val[f.n++] = l2_off;
            if (qcow2_l1_set(img, i, 0, e) < 0)
                goto out;
        } else if (changed) {
            if (qcow2_host_write(img, QCOW2_OL_ACTIVE_L2, table, cs, l2_off, e) < 0)
                goto out;
            qcow2_l2_cache_invalidate(img, l2_off);
        }
        if (f.n >= FREE_BATCH && flush_and_free(img, &f, e) < 0)
            goto out;
    }
    if (flush_and_free(img, &f, e) < 0 || qcow2_refcount_flush(img, e) < 0)
        goto out;
    r = 0;
out:
    free(f.val);
    free(table);
    return r;
}

int qcow2_make_empty(es_image *img, es_err *e)
{
    if (img->format != ES_FMT_QCOW2 || !img->writable)
        return es_err_set(e, EINVAL, img->filename, "internal error: cannot empty this image");
    /* Emptied entry by entry, an interrupted run leaves leaked clusters
     * (released after their entries were cleared): the re-run takes them
     * back. */
    int r = qcow2_make_empty_rebuilds(img) ? rebuild_empty(img, e)
                                           : discard_all(img, e) < 0 ? -1
                                                                     : qcow2_reclaim_leaks(img, e);
    if (r < 0)
        return es_err_prefix(e, "emptying the image after the commit");
    return 0;
}
