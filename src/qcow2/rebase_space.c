/* The free-space check of a safe rebase, before its first write. A full
 * file system half-way through leaves the guest view as it was (the
 * header changes last), but IMAGE's file grown; refusing up front leaves
 * it untouched, as the commit's check does (commit_space.c).
 *
 * The bound counts every candidate cluster (one the scan would compare:
 * IMAGE does not hold it and a chain may show data there) as newly written,
 * although only the differing ones are, plus an L2 table for every L1
 * entry with candidates whose table is missing or shared, a larger L1
 * table, the enabled bitmaps rewritten whole (new data and tables before
 * the old ones are freed) and the refcount structures all that needs. The
 * scan is metadata only, from the tables the first pass cached. */
#include <errno.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "qcow2/bitmap_bits.h"
#include "qcow2/commit_space.h"
#include "qcow2/format.h"
#include "qcow2/rebase_internal.h"

static uint64_t div_up(uint64_t a, uint64_t b)
{
    return (a + b - 1) / b;
}

/* Clusters the candidates of the whole range need: data and L2 tables. */
static int count_candidates(rebase_ctx *c, uint64_t *clusters, es_err *e)
{
    es_image *img = c->img;
    const uint32_t l1_shift = img->cluster_bits + (uint32_t)__builtin_ctzll(img->l2_entries);
    uint64_t pos = 0, n = 0, last_l1 = UINT64_MAX;
    for (;;) {
        if (rebase_collect_batch(c, &pos, e) < 0)
            return -1;
        if (c->nops == 0)
            break;
        for (size_t i = 0; i < c->nops; i++) {
            n++;
            uint64_t l1 = c->ops[i].guest >> l1_shift;
            if (l1 == last_l1)
                continue;
            last_l1 = l1;
            if (l1 >= img->l1_size || !(img->l1[l1] & QCOW2_OFLAG_COPIED))
                n++; /* a new table, or a copy of a shared one */
        }
    }
    /* The real pass scans again from the start. */
    c->next = 0;
    c->nops = 0;
    *clusters = n;
    return 0;
}

/* Clusters of each enabled bitmap written anew: its data and its table. */
static uint64_t bitmaps_clusters(const rebase_ctx *c)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < c->bm.n; i++)
        n += qcow2_bitmap_clusters(c->img, c->size, c->bm.bits[i].granularity_bits);
    if (c->bm.n)
        n += 1; /* the directory (a cluster holds dozens of entries) */
    return n;
}

int rebase_space_check(rebase_ctx *c, es_err *e)
{
    es_image *img = c->img;
    uint64_t n;
    if (count_candidates(c, &n, e) < 0)
        return -1;
    uint64_t l1_need = qcow2_l1_size_for(img, img->virtual_size);
    if (l1_need > img->l1_size)
        n += div_up(l1_need * 8, c->cs);
    n += bitmaps_clusters(c);
    if (n && c->compress)
        n += 1; /* compressed clusters are packed: the last may straddle one */
    if (n == 0)
        return 0;
    n += qcow2_space_refcount_growth(img, n);
    uint64_t need = n * c->cs;
    struct stat st;
    if (fstat(img->file->fd, &st) == 0 && st.st_blksize > 0 && c->cs < (uint64_t)st.st_blksize)
        need += (uint64_t)st.st_blksize; /* the last small cluster may start a block */
    struct statvfs vfs;
    if (fstatvfs(img->file->fd, &vfs) < 0)
        return es_err_set(e, errno, img->filename, "cannot find the free space of its file system");
    uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    if (need <= avail)
        return 0;
    char hn[32], ha[32];
    return es_err_set(e, ENOSPC, img->filename,
                      "not enough free space for the rebase: it may need up to %s (%llu bytes), "
                      "the file system has %s (%llu bytes) free; nothing was changed",
                      es_space_human(need, hn, sizeof hn), (unsigned long long)need,
                      es_space_human(avail, ha, sizeof ha), (unsigned long long)avail);
}
