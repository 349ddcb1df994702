/* Commit: refusals first, then a dry run (free space, progress total), then
 * the batches, BASE's new size, and emptying TOP. */
#include "qcow2/commit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qcow2/bitmap_merge.h"
#include "qcow2/commit_internal.h"
#include "qcow2/commit_space.h"
#include "qcow2/format.h"
#include "qcow2/host_write.h"
#include "qcow2/make_empty.h"
#include "qcow2/overlap.h"
#include "qcow2/refcount.h"
#include "qcow2/refcount_trust.h"
#include "util/fileio.h"
#include "util/imglock.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

#define HDR_SIZE 24
#define HDR_AUTOCLEAR 88

static bool same_file(const char *path, const es_image *img)
{
    struct stat st;
    return es_fs_stat(path, &st) == 0 && img->st_dev == (uint64_t)st.st_dev &&
           img->st_ino == (uint64_t)st.st_ino;
}

es_image *es_commit_find_base(es_image *top, const char *path, es_err *e)
{
    return es_commit_find_base_root(top, path, NULL, e);
}

es_image *es_commit_find_base_root(es_image *top, const char *path, const char *root, es_err *e)
{
    /* Like QEMU: a relative name is taken relative to the directory of
     * each image in turn, and compared with that image's backing file;
     * then as given (relative to the working directory, or under a root
     * from its top). */
    for (es_image *img = top; img->backing; img = img->backing) {
        char *display = NULL, *open_path = NULL;
        if (es_backing_resolve(img->filename, path, root, &display, &open_path, NULL) < 0)
            continue; /* a protocol, or out of the root from here */
        bool hit = same_file(open_path, img->backing);
        free(display);
        free(open_path);
        if (hit)
            return img->backing;
    }
    char *given = NULL;
    if (es_root_resolve(root, path, &given, e) < 0)
        return NULL;
    for (es_image *img = top->backing; img; img = img->backing)
        if (same_file(given, img)) {
            free(given);
            return img;
        }
    struct stat st;
    bool missing = es_fs_stat(given, &st) < 0 && errno == ENOENT;
    free(given);
    if (missing)
        es_err_set(e, 0, path, "BASE is not in the backing chain of TOP (%s): no such file",
                   top->filename);
    else
        es_err_set(e, 0, path, "BASE is not in the backing chain of TOP (%s)", top->filename);
    return NULL;
}

/* The image was opened read-only as part of a chain: open the same file
 * again for writing (before any write, so a read-only file, file system or
 * an immutable flag stops the commit with nothing changed). */
static int reopen_writable(es_image *img, es_imglock *lk, es_err *e)
{
    if (img->writable)
        return 0;
    es_file *f;
    if (es_file_open(&f, img->open_path, O_RDWR, 0, e) < 0)
        return es_err_set(e, e ? e->errnum : 0, img->filename, "cannot open for writing");
    struct stat st;
    if (fstat(f->fd, &st) < 0 || (uint64_t)st.st_dev != img->st_dev ||
        (uint64_t)st.st_ino != img->st_ino) {
        es_file_close(f);
        return es_err_set(e, 0, img->filename, "the file changed while it was open");
    }
    /* The locks follow the descriptor the writes go through. */
    if (es_imglock_move(lk, f->fd, img->filename, e) < 0) {
        es_file_close(f);
        return -1;
    }
    es_file_close(img->file);
    img->file = f;
    img->writable = true;
    return 0;
}

static int refuse(const es_commit_opts *o, es_image *top, es_image *base, es_err *e)
{
    if (top->format != ES_FMT_QCOW2 || !top->backing)
        return es_err_set(e, 0, top->filename, "Image does not have a backing file");
    bool in_chain = false;
    for (es_image *i = top->backing; i; i = i->backing)
        in_chain |= i == base;
    if (!in_chain)
        return es_err_set(e, 0, base->filename, "BASE is not in the backing chain of TOP");
    /* Persistent dirty bitmaps are kept (qcow2/bitmap_merge.h) unless
     * one is inconsistent, or BASE would have to grow under them. */
    uint64_t new_size = top->virtual_size > base->virtual_size ? top->virtual_size
                                                                : base->virtual_size;
    if (qcow2_bitmap_merge_refuse(top, base, new_size, e) < 0)
        return -1;
    if (base->format == ES_FMT_QCOW2) {
        uint64_t inc = base->hdr.incompatible_features;
        if (inc & QCOW2_INCOMPAT_CORRUPT)
            return es_err_set(e, 0, base->filename,
                              "BASE is marked corrupt; run 'extsnap img check -r all' on it first");
        if (inc & QCOW2_INCOMPAT_DIRTY)
            return es_err_set(e, 0, base->filename,
                              "BASE has the dirty bit set (its refcounts may be stale after an "
                              "unclean shutdown with lazy refcounts); run 'extsnap img check -r "
                              "all' on it first");
        if (base->hdr.version < 3 && base->extended_l2)
            return es_err_set(e, 0, base->filename, "extended L2 entries need qcow2 version 3");
    }
    if (!o->keep_top) {
        uint64_t inc = top->hdr.incompatible_features;
        if (inc & QCOW2_INCOMPAT_CORRUPT)
            return es_err_set(e, 0, top->filename,
                              "TOP is marked corrupt; run 'extsnap img check -r all' on it first "
                              "(or keep it with -d)");
        /* A dirty TOP (e.g. an earlier commit stopped while emptying it) is
         * fine when emptying rebuilds its metadata from scratch. */
        if ((inc & QCOW2_INCOMPAT_DIRTY) && !qcow2_make_empty_rebuilds(top))
            return es_err_set(e, 0, top->filename,
                              "TOP has the dirty bit set; run 'extsnap img check -r all' on it "
                              "first (or keep it with -d)");
    }
    return 0;
}

static void ctx_init(commit_ctx *c, es_image *top, es_image *base, const es_commit_opts *o)
{
    memset(c, 0, sizeof *c);
    c->top = top;
    c->base = base;
    c->opts = o;
    c->raw_base = base->format == ES_FMT_RAW;
    c->unit = c->raw_base ? COMMIT_RAW_UNIT : base->cluster_size;
    c->nsub = !c->raw_base && base->extended_l2 ? QCOW2_SUBCLUSTERS : 1;
    c->sub = c->unit / c->nsub;
    c->top_size = top->virtual_size;
    c->old_size = base->virtual_size;
    c->new_size = c->top_size > c->old_size ? c->top_size : c->old_size;
    /* Past BASE's old end its backing could show once BASE grows. */
    uint64_t below = !c->raw_base && base->backing ? base->backing->virtual_size : 0;
    c->soft_zero_end = below < c->new_size ? below : c->new_size;
    if (c->soft_zero_end < c->old_size)
        c->soft_zero_end = c->old_size;
}

static void ctx_free(commit_ctx *c)
{
    commit_writer_stop(c->writer); /* before its buffers go */
    free(c->wsegs);
    free(c->kept_ops);
    free(c->gaps[0]);
    free(c->gaps[1]);
    free(c->segs);
    free(c->ops);
    free(c->order);
    free(c->targets);
    free(c->frees);
    free(c->updates);
    free(c->bufs[0]);
    free(c->bufs[1]);
    free(c->scratch);
    qcow2_bitmap_merge_free(&c->bitmaps);
    /* The locks stay until the descriptors close with the images. */
    free(c->locks);
}

/* TOP emptied entry by entry (not rebuilt from scratch): its refcounts are
 * decremented from its tables, so the two must agree before BASE is
 * written, or the emptying fails half-way after the point of no return. */
static bool empties_in_place(const commit_ctx *c)
{
    return !c->opts->keep_top && !qcow2_make_empty_rebuilds(c->top);
}

static int dry_run(commit_ctx *c, es_err *e)
{
    uint64_t pos = 0;
    for (int batch = 0; pos < c->top_size; batch++) {
        if (commit_collect_batch(c, &pos, e) < 0)
            return -1;
        if (batch == 0 && pos >= c->top_size && c->nops) {
            /* The scan reads only the images above and below BASE, which
             * the commit does not change: its result stays valid. */
            c->kept_ops = es_xreallocarray(NULL, c->nops, sizeof *c->ops);
            memcpy(c->kept_ops, c->ops, c->nops * sizeof *c->ops);
            c->kept_nops = c->nops;
        }
        if (commit_batch_count(c, e) < 0)
            return -1;
        if (c->nops == 0)
            break;
    }
    return 0;
}

/* The commit's batches: the dry run's one when it kept it, else scanned. */
static int run_batches(commit_ctx *c, es_err *e)
{
    if (c->kept_ops) {
        memcpy(c->ops, c->kept_ops, c->kept_nops * sizeof *c->ops);
        c->nops = c->kept_nops;
        return commit_batch_run(c, e);
    }
    uint64_t pos = 0;
    while (pos < c->top_size) {
        if (commit_collect_batch(c, &pos, e) < 0)
            return -1;
        if (c->nops == 0)
            break;
        if (commit_batch_run(c, e) < 0)
            return -1;
    }
    return 0;
}

/* Writes that come before the data: stale autoclear features, L1 growth. */
static int prepare_base(commit_ctx *c, es_err *e)
{
    es_image *b = c->base;
    if (c->raw_base)
        return 0;
    /* A re-run after an interruption takes back what that run left. */
    if (qcow2_reclaim_apply(b, &c->reclaim, e) < 0)
        return -1;
    /* Bits for structures we do not maintain: clear them, as the spec
     * asks of a writer that does not update those structures. The bitmaps
     * bit stays when the bitmaps are kept up to date (below). */
    uint64_t keep = qcow2_has_bitmaps(b) ? QCOW2_AUTOCLEAR_BITMAPS : 0;
    if (b->hdr.version >= 3 && (b->hdr.autoclear_features & ~keep)) {
        uint8_t z[8];
        be64_store(z, b->hdr.autoclear_features & keep);
        if (qcow2_header_patch(b, HDR_AUTOCLEAR, z, 8, e) < 0 || es_file_flush(b->file, e) < 0)
            return -1;
        b->hdr.autoclear_features &= keep;
    }
    /* Before any data reaches BASE (a crash leaves extra bits, never
     * missing ones). */
    if (qcow2_bitmap_merge_write(b, &c->bitmaps, e) < 0)
        return -1;
    uint64_t l1_need = qcow2_l1_size_for(b, c->new_size);
    if (l1_need > UINT32_MAX)
        return es_err_set(e, EFBIG, b->filename, "virtual size too large for an L1 table");
    return qcow2_l1_grow(b, (uint32_t)l1_need, e);
}

/* BASE is complete on disk: now it may grow (last, so that a crash before
 * leaves the old size and a re-run recomputes the same zeroes). */
static int finish_base(commit_ctx *c, es_err *e)
{
    es_image *b = c->base;
    if (c->raw_base) {
        /* Only a larger TOP grows a raw BASE (its last partial sector reads
         * as zeroes without being written). */
        bool grow = c->new_size > c->old_size && b->file_size < c->new_size;
        if (grow && es_file_truncate(b->file, c->new_size, e) < 0)
            return -1;
        if (grow)
            b->file_size = c->new_size;
        if (es_file_flush(b->file, e) < 0)
            return -1;
        b->virtual_size = c->new_size;
        return 0;
    }
    if (qcow2_refcount_flush(b, e) < 0)
        return -1;
    if (c->new_size > c->old_size) {
        uint8_t sz[8];
        be64_store(sz, c->new_size);
        if (qcow2_header_patch(b, HDR_SIZE, sz, 8, e) < 0 || es_file_flush(b->file, e) < 0)
            return es_err_prefix(e, "growing BASE to %llu bytes", (unsigned long long)c->new_size);
        b->hdr.size = c->new_size;
        b->virtual_size = c->new_size;
    }
    return 0;
}

/* QEMU-compatible locks, held until the images are closed: write locks on
 * TOP and BASE (as qemu-img commit takes, -d or not), read locks on the
 * images between (nobody may write them while we copy from them). A VM
 * running on any of them makes the commit fail before anything is written. */
static int lock_chain(commit_ctx *c, es_err *e)
{
    size_t n = 0;
    for (es_image *i = c->top; i; i = i->backing) {
        n++;
        if (i == c->base)
            break;
    }
    c->locks = es_xcalloc(n, sizeof *c->locks);
    c->nlocks = n;
    size_t k = 0;
    for (es_image *i = c->top; k < n; i = i->backing, k++) {
        int r = i == c->top || i == c->base
                    ? es_imglock_acquire_write(i->file->fd, i->filename, &c->locks[k], e)
                    : es_imglock_acquire_read(i->file->fd, i->filename, &c->locks[k], e);
        if (r < 0)
            return -1;
    }
    return 0;
}

static int run(commit_ctx *c, es_err *e)
{
    es_image *top = c->top, *base = c->base;
    if (lock_chain(c, e) < 0)
        return -1;
    if (reopen_writable(base, &c->locks[c->nlocks - 1], e) < 0)
        return -1;
    if (!c->opts->keep_top && reopen_writable(top, &c->locks[0], e) < 0)
        return -1;
    if (!c->raw_base && qcow2_refcount_check_metadata(base, e) < 0)
        return -1; /* opens BASE's refcounts; none may leave its metadata free */
    /* The metadata maps every write is checked against (overlap.h): built
     * now, so that structures overlapping each other refuse the commit
     * before anything is written. TOP is written only when emptied in
     * place. */
    if (!c->raw_base && qcow2_overlap_open(base, e) < 0)
        return -1;
    if (empties_in_place(c) && qcow2_overlap_open(top, e) < 0)
        return -1;
    if (!c->raw_base && qcow2_bitmap_merge_prepare(top, base, c->top_size, &c->bitmaps, e) < 0)
        return -1;
    if (dry_run(c, e) < 0)
        return -1;
    c->need_clusters += c->bitmaps.need_clusters;
    if (!c->opts->skip_space_check && commit_space_check(c, e) < 0)
        return -1;
    /* BASE passes the check 'verify' applies (else refused here), and
     * what an interrupted run left is known. */
    if (!c->raw_base && qcow2_reclaim_survey(base, &c->reclaim, e) < 0)
        return -1;
    if (empties_in_place(c) && qcow2_refuse_damaged(c->top, e) < 0)
        return -1;
    c->bufs[0] = es_io_alloc(COMMIT_CHUNK_BYTES);
    c->bufs[1] = es_io_alloc(COMMIT_CHUNK_BYTES);
    c->scratch = es_io_alloc(c->raw_base ? 1 : base->cluster_size);
    if (commit_writer_start(&c->writer, base, e) < 0)
        return -1;
    commit_report_progress(c);
    /* First write from here on. */
    if (prepare_base(c, e) < 0)
        return -1;
    if (run_batches(c, e) < 0)
        return -1;
    if (finish_base(c, e) < 0)
        return -1;
    if (!c->opts->keep_top && qcow2_make_empty(top, e) < 0)
        return -1;
    return 0;
}

int es_commit(es_image *top, es_image *base, const es_commit_opts *o, es_err *e)
{
    static const es_commit_opts defaults = {0};
    if (!o)
        o = &defaults;
    if (refuse(o, top, base, e) < 0)
        return -1;
    commit_ctx c;
    ctx_init(&c, top, base, o);
    int r = run(&c, e);
    ctx_free(&c);
    /* Everything that had to reach the disk was flushed on success; on an
     * error the cached refcounts are dropped unwritten (a leak at worst). */
    if (base->format == ES_FMT_QCOW2)
        qcow2_refcount_close(base);
    qcow2_refcount_close(top);
    return r;
}

int es_commit_estimate(es_image *top, es_image *base, const es_commit_opts *o, uint64_t *need,
                       es_err *e)
{
    static const es_commit_opts defaults = {0};
    if (!o)
        o = &defaults;
    *need = 0;
    if (refuse(o, top, base, e) < 0)
        return -1;
    commit_ctx c;
    ctx_init(&c, top, base, o);
    /* run()'s checks before its first write, in its order, minus locks and
     * reopening (the caller checks those its own way). */
    int r = c.raw_base ? 0 : qcow2_refcount_check_metadata(base, e);
    if (r == 0 && !c.raw_base)
        r = qcow2_overlap_open(base, e);
    if (r == 0 && empties_in_place(&c))
        r = qcow2_overlap_open(top, e);
    if (r == 0 && !c.raw_base)
        r = qcow2_bitmap_merge_prepare(top, base, c.top_size, &c.bitmaps, e);
    if (r == 0)
        r = dry_run(&c, e);
    c.need_clusters += c.bitmaps.need_clusters;
    if (r == 0)
        *need = commit_space_needed(&c);
    if (r == 0 && !c.raw_base)
        r = qcow2_reclaim_survey(base, &c.reclaim, e);
    if (r == 0 && empties_in_place(&c))
        r = qcow2_refuse_damaged(top, e);
    ctx_free(&c);
    if (base->format == ES_FMT_QCOW2)
        qcow2_refcount_close(base);
    qcow2_refcount_close(top);
    return r;
}
