#include "qcow2/refcount_trust.h"

#include <errno.h>
#include <stdlib.h>

#include "qcow2/format.h"
#include "qcow2/refcount.h"
#include "qcow2/snapshot_table.h"
#include "util/xalloc.h"

#define L1_CHUNK_ENTRIES 4096

/* Every cluster of [off, off+len) must have a refcount. */
static int need_counted(es_image *img, uint64_t off, uint64_t len, const char *what, es_err *e)
{
    if (len == 0)
        return 0;
    uint64_t first = off >> img->cluster_bits, last = (off + len - 1) >> img->cluster_bits;
    for (uint64_t k = first; k <= last; k++) {
        uint64_t rc;
        if (qcow2_refcount_get(img, k, &rc, e) < 0)
            return -1;
        if (rc == 0)
            return es_err_set(e, 0, img->filename,
                              "refcounts are inconsistent: the cluster at 0x%llx holds %s but "
                              "its refcount is 0 (a write could overwrite it); run 'extsnap img "
                              "check -r all' first",
                              (unsigned long long)(k << img->cluster_bits), what);
    }
    return 0;
}

/* The L2 tables an L1 entry names (entries that are not plain offsets are
 * left to the code that uses them, which refuses them). */
static int need_l2(es_image *img, uint64_t l1e, const char *what, es_err *e)
{
    uint64_t l2 = l1e & QCOW2_L1E_OFFSET_MASK;
    if (!l2 || (l1e & QCOW2_L1E_RESERVED_MASK) || (l2 & (img->cluster_size - 1)))
        return 0;
    return need_counted(img, l2, img->cluster_size, what, e);
}

static int need_snapshots(es_image *img, es_err *e)
{
    qcow2_snapshot_table t;
    if (qcow2_snapshot_table_read(img->file, &img->hdr, img->file_size, img->filename, &t, e) < 0)
        return -1;
    int r = need_counted(img, img->hdr.snapshots_offset, t.table_bytes, "the snapshot table", e);
    uint8_t *chunk = r == 0 && t.count ? es_xmalloc(L1_CHUNK_ENTRIES * 8) : NULL;
    for (uint32_t i = 0; r == 0 && i < t.count; i++) {
        const qcow2_snapshot *sn = &t.entries[i];
        r = need_counted(img, sn->l1_table_offset, (uint64_t)sn->l1_size * 8,
                         "a snapshot's L1 table", e);
        /* Inside the file: checked by the snapshot table reader. */
        for (uint32_t base = 0; r == 0 && base < sn->l1_size; base += L1_CHUNK_ENTRIES) {
            uint32_t n = sn->l1_size - base < L1_CHUNK_ENTRIES ? sn->l1_size - base
                                                                : L1_CHUNK_ENTRIES;
            r = es_file_pread(img->file, chunk, (size_t)n * 8,
                              sn->l1_table_offset + (uint64_t)base * 8, e);
            for (uint32_t k = 0; r == 0 && k < n; k++)
                r = need_l2(img, be64_load(chunk + 8 * k), "a snapshot's L2 table", e);
        }
    }
    free(chunk);
    qcow2_snapshot_table_free(&t);
    return r;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Each refcount block counts one range of clusters: a block the table
 * names twice is corruption, and would make the search for free clusters
 * scan the same full block once per entry (hours for a crafted table). */
static int no_shared_refblocks(es_image *img, es_err *e)
{
    uint64_t *offs = es_xcalloc(img->reftable_entries, sizeof *offs);
    size_t n = 0;
    for (uint64_t i = 0; i < img->reftable_entries; i++)
        if (img->reftable[i] & QCOW2_REFT_OFFSET_MASK)
            offs[n++] = img->reftable[i] & QCOW2_REFT_OFFSET_MASK;
    qsort(offs, n, sizeof *offs, cmp_u64);
    int r = 0;
    for (size_t i = 1; i < n && r == 0; i++)
        if (offs[i] == offs[i - 1])
            r = es_err_set(e, 0, img->filename,
                           "refcounts are inconsistent: the refcount table names the refcount "
                           "block at 0x%llx more than once; run 'extsnap img check -r all' first",
                           (unsigned long long)offs[i]);
    free(offs);
    return r;
}

int qcow2_refcount_check_metadata(es_image *img, es_err *e)
{
    if (img->format != ES_FMT_QCOW2)
        return 0;
    if (qcow2_refcount_open(img, e) < 0)
        return -1;
    const qcow2_header *h = &img->hdr;
    if (need_counted(img, 0, img->cluster_size, "the header", e) < 0 ||
        need_counted(img, h->l1_table_offset, (uint64_t)img->l1_size * 8, "the L1 table", e) < 0 ||
        need_counted(img, h->refcount_table_offset,
                     (uint64_t)h->refcount_table_clusters * img->cluster_size,
                     "the refcount table", e) < 0)
        return -1;
    if (no_shared_refblocks(img, e) < 0)
        return -1;
    for (uint64_t i = 0; i < img->reftable_entries; i++) {
        uint64_t rb = img->reftable[i] & QCOW2_REFT_OFFSET_MASK;
        if (rb && !(img->reftable[i] & QCOW2_REFT_RESERVED_MASK) &&
            need_counted(img, rb, img->cluster_size, "a refcount block", e) < 0)
            return -1;
    }
    for (uint32_t i = 0; i < img->l1_size; i++)
        if (need_l2(img, img->l1[i], "an L2 table", e) < 0)
            return -1;
    return h->nb_snapshots ? need_snapshots(img, e) : 0;
}
