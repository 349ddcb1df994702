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
#include "util/fileio.h"

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
    if (es_fs_statvfs(path, &st) < 0) /* inside --root, like every path operation */
        return es_err_set(e, errno, path, "cannot find the free space of its file system");
    *avail = (uint64_t)st.f_bavail * st.f_frsize;
    return 0;
}

/* The unit the file system allocates in (st_blksize: 4 KiB on ext4, xfs,
 * tmpfs; larger where the file system prefers larger writes, which only
 * makes the estimate safer). */
static uint64_t block_size_of(int fd)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_blksize >= 512 && !(st.st_blksize & (st.st_blksize - 1)))
        return (uint64_t)st.st_blksize;
    return FALLBACK_FS_BLOCK;
}

static uint64_t fs_block(commit_ctx *c)
{
    if (!c->fs_block)
        c->fs_block = block_size_of(c->base->file->fd);
    return c->fs_block;
}

/* The last extent of BASE's file found allocated: ops mostly land in one. */
typedef struct extent_cache {
    uint64_t lo, hi;
} extent_cache;

/* Bytes of [off, off + len), widened to whole file-system blocks of bs,
 * that are holes in the file (or lie past its end): a write there makes
 * the file system allocate them. A file system without SEEK_DATA reports
 * the whole file as data (the kernel's generic answer), so nothing counts
 * there: such file systems do not make holes. */
static uint64_t hole_bytes(int fd, uint64_t bs, extent_cache *x, uint64_t off, uint64_t len)
{
    uint64_t a = off / bs * bs, end = (off + len + bs - 1) / bs * bs;
    uint64_t holes = 0;
    while (a < end) {
        if (a >= x->lo && a < x->hi) {
            a = x->hi;
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
        x->lo = data;
        x->hi = ((uint64_t)h + bs - 1) / bs * bs;
        if (x->hi <= data) /* defensive: always move on */
            x->hi = data + bs;
        a = x->hi;
    }
    return holes;
}

/* The same for BASE, through the dry run's cache. */
static uint64_t base_holes(commit_ctx *c, uint64_t off, uint64_t len)
{
    extent_cache x = {c->data_lo, c->data_hi};
    uint64_t n = hole_bytes(c->base->file->fd, fs_block(c), &x, off, len);
    c->data_lo = x.lo;
    c->data_hi = x.hi;
    return n;
}

/* The L2 table of the op's L1 entry is rewritten in place when BASE owns it
 * alone (a shared or missing one is a new cluster, counted whole): a table
 * a sparse copy (cp --sparse=always, extsnap setup) turned into holes then
 * takes space again. */
static void count_l2_table(commit_ctx *c, const commit_op *op)
{
    es_image *b = c->base;
    uint64_t l1 = op->guest >> (b->cluster_bits + (uint32_t)__builtin_ctzll(b->l2_entries));
    if (c->holes_l1 == l1 + 1)
        return;
    c->holes_l1 = l1 + 1;
    if (l1 >= b->l1_size || !(b->l1[l1] & QCOW2_OFLAG_COPIED))
        return;
    uint64_t off = b->l1[l1] & QCOW2_L1E_OFFSET_MASK;
    if (off)
        c->fill_bytes += base_holes(c, off, b->cluster_size);
}

void commit_space_count_op(commit_ctx *c, const commit_op *op)
{
    /* A new cluster is counted whole (need_clusters); only writes into
     * space BASE's file already has can fill its holes. */
    if (c->raw_base) { /* the covered bytes, zeroes too, are written */
        for (uint32_t i = 0; i < op->nseg; i++) {
            const commit_seg *s = &c->segs[op->seg_first + i];
            c->fill_bytes += base_holes(c, s->guest, s->len);
        }
        return;
    }
    if (op->action != OP_NONE)
        count_l2_table(c, op);
    if (op->action != OP_DATA || op->need_alloc)
        return;
    for (uint32_t k = 0; k < c->nsub;) {
        if (!(op->write_mask & (1u << k))) {
            k++;
            continue;
        }
        uint32_t k1 = k;
        while (k1 < c->nsub && (op->write_mask & (1u << k1)))
            k1++;
        c->fill_bytes += base_holes(c, op->dest + k * c->sub, (k1 - k) * c->sub);
        k = k1;
    }
}

/* Clusters of refcount structures that allocating n more clusters can need
 * (they count themselves): the worst case puts every new cluster past the
 * end of the file, so every range up to there without a refcount block
 * gets one, and ranges past the refcount table make it grow (as
 * refcount_grow.c does: the blocks and a table at least half as large
 * again). Repeated until the structures' own clusters are covered too. */
uint64_t qcow2_space_refcount_growth(const es_image *b, uint64_t n)
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

/* Holes in the tables every commit may rewrite in place: the refcount
 * blocks (any of them may count a new or a released cluster) and the L1
 * table. Zero unless a sparse copy made holes of them. */
static uint64_t table_holes(const commit_ctx *c)
{
    es_image *b = c->base;
    int fd = b->file->fd;
    uint64_t bs = c->fs_block ? c->fs_block : block_size_of(fd);
    extent_cache x = {0, 0};
    uint64_t n = hole_bytes(fd, bs, &x, b->hdr.l1_table_offset, (uint64_t)b->l1_size * 8);
    for (uint64_t i = 0; b->reftable && i < b->reftable_entries; i++) {
        uint64_t off = b->reftable[i] & QCOW2_REFT_OFFSET_MASK;
        if (off)
            n += hole_bytes(fd, bs, &x, off, b->cluster_size);
    }
    return n;
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
        n += qcow2_space_refcount_growth(b, n);
    else if (n) /* refcounts not loaded: a block per range, and a new table */
        n += n / (qcow2_refblock_entries(b) - 1) + 2 + (b->hdr.refcount_table_clusters + 1) * 2;
    uint64_t bytes = n * cs;
    /* Clusters smaller than the file system's blocks: the last one may
     * start a block of its own. */
    uint64_t bs = c->fs_block ? c->fs_block : block_size_of(b->file->fd);
    if (n && cs < bs)
        bytes = (bytes + bs - 1) / bs * bs + bs;
    return bytes + c->fill_bytes + table_holes(c);
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
