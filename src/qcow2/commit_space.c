/* The free-space estimate and check of a commit (see commit_space.h). */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "qcow2/commit_internal.h"
#include "qcow2/commit_space.h"
#include "qcow2/format.h"
#include "qcow2/l2_write.h"
#include "qcow2/refcount.h"

#define FALLBACK_FS_BLOCK 4096u

const char *es_space_human(uint64_t n, char *buf, size_t len)
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 6) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu bytes", (unsigned long long)n);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
    return buf;
}

int es_space_free(const char *path, uint64_t *avail, es_err *e)
{
    struct statvfs st;
    if (statvfs(path, &st) < 0)
        return es_err_set(e, errno, path, "cannot find the free space of its file system");
    *avail = (uint64_t)st.f_bavail * st.f_frsize;
    return 0;
}

/* The unit the file system allocates in (st_blksize: 4 KiB on ext4, xfs,
 * tmpfs; larger where the file system prefers larger writes, which only
 * makes the estimate safer). */
static uint64_t fs_block(commit_ctx *c)
{
    if (!c->fs_block) {
        struct stat st;
        uint64_t bs = FALLBACK_FS_BLOCK;
        if (fstat(c->base->file->fd, &st) == 0 && st.st_blksize >= 512 &&
            !(st.st_blksize & (st.st_blksize - 1)))
            bs = (uint64_t)st.st_blksize;
        c->fs_block = bs;
    }
    return c->fs_block;
}

/* Bytes of [off, off + len), widened to whole file-system blocks, that are
 * holes in BASE's file (or lie past its end): a write there makes the file
 * system allocate them. SEEK_DATA/SEEK_HOLE find the extents; the last
 * allocated extent is remembered, as ops mostly land in one. A file system
 * without SEEK_DATA reports the whole file as data (the kernel's generic
 * answer), so nothing counts there: such file systems do not make holes. */
static uint64_t hole_bytes(commit_ctx *c, uint64_t off, uint64_t len)
{
    uint64_t bs = fs_block(c);
    uint64_t a = off / bs * bs, end = (off + len + bs - 1) / bs * bs;
    uint64_t holes = 0;
    int fd = c->base->file->fd;
    while (a < end) {
        if (a >= c->data_lo && a < c->data_hi) {
            a = c->data_hi;
            continue;
        }
        off_t d = lseek(fd, (off_t)a, SEEK_DATA);
        if (d < 0) {
            if (errno == ENXIO) /* no data from a on: a hole up to the end */
                holes += end - a;
            break;
        }
        uint64_t data = (uint64_t)d / bs * bs; /* the block holding data is allocated */
        if (data < a)
            data = a;
        if (data >= end) {
            holes += end - a;
            break;
        }
        holes += data - a;
        off_t h = lseek(fd, d, SEEK_HOLE);
        if (h < 0) { /* cannot tell where the data ends: the rest may be holes */
            holes += end - data;
            break;
        }
        c->data_lo = data;
        c->data_hi = ((uint64_t)h + bs - 1) / bs * bs;
        if (c->data_hi <= data) /* defensive: always move on */
            c->data_hi = data + bs;
        a = c->data_hi;
    }
    return holes;
}

void commit_space_count_op(commit_ctx *c, const commit_op *op)
{
    /* A new cluster is counted whole (need_clusters); only writes into
     * space BASE's file already has can fill its holes. */
    if (op->action != OP_DATA || op->need_alloc)
        return;
    if (c->raw_base) { /* the covered bytes, zeroes too, are written */
        for (uint32_t i = 0; i < op->nseg; i++) {
            const commit_seg *s = &c->segs[op->seg_first + i];
            c->fill_bytes += hole_bytes(c, s->guest, s->len);
        }
        return;
    }
    for (uint32_t k = 0; k < c->nsub;) {
        if (!(op->write_mask & (1u << k))) {
            k++;
            continue;
        }
        uint32_t k1 = k;
        while (k1 < c->nsub && (op->write_mask & (1u << k1)))
            k1++;
        c->fill_bytes += hole_bytes(c, op->dest + k * c->sub, (k1 - k) * c->sub);
        k = k1;
    }
}

/* Clusters of refcount structures that allocating n more clusters can need
 * (they count themselves): the worst case puts every new cluster past the
 * end of the file, so every range up to there without a refcount block
 * gets one, and ranges past the refcount table make it grow (as
 * refcount_grow.c does: the blocks and a table at least half as large
 * again). Repeated until the structures' own clusters are covered too. */
static uint64_t refcount_growth(const es_image *b, uint64_t n)
{
    uint64_t cs = b->cluster_size, rbe = qcow2_refblock_entries(b), per = cs / 8;
    uint64_t end0 = (b->file_size + cs - 1) / cs;
    uint64_t meta = 0;
    for (int round = 0; round < 64; round++) {
        uint64_t end = end0 + n + meta;
        uint64_t ranges = (end + rbe - 1) / rbe;
        uint64_t m = 0;
        for (uint64_t r = 0; r < ranges && r < b->reftable_entries; r++)
            if (!(b->reftable[r] & QCOW2_REFT_OFFSET_MASK))
                m++;
        uint64_t entries = b->reftable_entries, tclusters = b->hdr.refcount_table_clusters;
        if (ranges > entries)
            m += ranges - entries; /* a block for each range past the table */
        while (ranges > entries) { /* each growth: its blocks and new table */
            uint64_t k = 1, nrt;
            for (;;) {
                uint64_t need = (entries + k + per - 1) / per;
                uint64_t roomy = tclusters + (tclusters + 1) / 2;
                nrt = need > roomy ? need : roomy;
                if (k * rbe >= k + nrt)
                    break;
                k++;
            }
            m += k + nrt;
            entries = nrt * per;
            tclusters = nrt;
        }
        if (m <= meta)
            break;
        meta = m;
    }
    return meta;
}

uint64_t commit_space_needed(const commit_ctx *c)
{
    es_image *b = c->base;
    if (c->raw_base)
        return c->fill_bytes;
    uint64_t cs = b->cluster_size;
    uint64_t n = c->need_clusters;
    uint64_t l1_need = qcow2_l1_size_for(b, c->new_size);
    if (l1_need > b->l1_size) /* a new L1 table */
        n += (l1_need * 8 + cs - 1) / cs;
    if (n && b->reftable)
        n += refcount_growth(b, n);
    else if (n) /* refcounts not loaded: a block per range, and a new table */
        n += n / (qcow2_refblock_entries(b) - 1) + 2 + (b->hdr.refcount_table_clusters + 1) * 2;
    return n * cs + c->fill_bytes;
}

int commit_space_check(const commit_ctx *c, es_err *e)
{
    struct statvfs st;
    if (fstatvfs(c->base->file->fd, &st) < 0)
        return es_err_set(e, errno, c->base->filename, "cannot find the free space of its file system");
    uint64_t avail = (uint64_t)st.f_bavail * st.f_frsize;
    uint64_t need = commit_space_needed(c);
    if (need <= avail)
        return 0;
    char hn[32], ha[32];
    return es_err_set(e, ENOSPC, c->base->filename,
                      "not enough free space for the commit: it may need up to %s (%llu bytes), "
                      "the file system has %s (%llu bytes) free; nothing was changed",
                      es_space_human(need, hn, sizeof hn), (unsigned long long)need,
                      es_space_human(avail, ha, sizeof ha), (unsigned long long)avail);
}
