/* One batch of a safe rebase: read the candidate clusters through the old
 * chain (IMAGE itself: it does not hold them, so it shows its backing) and
 * through the new chain, a chunk at a time, and note which differ; then
 * write those into IMAGE, in the order that keeps IMAGE consistent and its
 * guest view unchanged at every instant. A batch covers up to 256 MiB of
 * guest data with two fdatasyncs (three with new L2 tables), whatever the
 * number of chunks:
 *
 *  1. allocate clusters for new L2 tables (or copies of tables shared with
 *     internal snapshots) and for the data (refcounts in the cache)
 *  2. flush refcounts: from now on the new clusters may be pointed at
 *  3. write the data (read again from the old chain), then fdatasync:
 *     unlike a commit (which a re-run rewrites from the unchanged images
 *     above), an L2 entry made durable before its data would show stale
 *     bytes that no re-run repairs, since the cluster then belongs to IMAGE
 *  4. write the L2 tables with the new entries
 *  5. if new tables: fdatasync, then point the L1 entries at them
 *  6. if shared tables were copied: fdatasync, then release the old ones
 *
 * Before step 1, the bits of the batch's writes reach IMAGE's enabled
 * bitmaps (rebase_bitmaps.c). With -c, step 1 allocates only the tables:
 * the compressed bytes are allocated as each cluster is compressed, written
 * (to clusters nothing points at), and their refcounts flushed together
 * with the data after the last chunk, before step 4.
 *
 * A new entry is either a data cluster holding what the old chain showed
 * (compressed or not) or (version 3) a zero cluster where the old chain
 * showed zeroes: either reads exactly as the old chain did, so a crash at
 * any point leaves the guest view as it was (and leaked clusters at worst). */
#include <stdlib.h>
#include <string.h>

#include "qcow2/compress_write.h"
#include "qcow2/format.h"
#include "qcow2/host_write.h"
#include "qcow2/overlap.h"
#include "qcow2/prefetch.h"
#include "qcow2/rebase_internal.h"
#include "qcow2/refcount.h"
#include "util/xalloc.h"

static uint32_t l1_shift(const es_image *img)
{
    return img->cluster_bits + (uint32_t)__builtin_ctzll(img->l2_entries);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    /* memcmp against itself shifted by one word: no zero page needed */
    if (n < 16)
        return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
    static const uint8_t z[16];
    return !memcmp(p, z, 16) && !memcmp(p, p + 16, n - 16);
}

/* Read [a, b) of the guest through chain into buf; past the chain's end
 * (or without a chain) zeroes. */
static int read_side(es_image *chain, uint8_t *buf, uint64_t a, uint64_t b, es_err *e)
{
    uint64_t end = chain ? chain->virtual_size : 0;
    uint64_t n = a >= end ? 0 : (b < end ? b : end) - a;
    if (n && es_image_read(chain, buf, n, a, e) < 0)
        return -1;
    memset(buf + n, 0, (size_t)(b - a - n));
    return 0;
}

/* Read [a, b) of the old chain into buf (IMAGE holds none of it, so
 * reading IMAGE reads the old chain); the part past IMAGE's end (its last
 * cluster may be partial) as zeroes. */
static int read_old(rebase_ctx *c, uint8_t *buf, uint64_t a, uint64_t b, es_err *e)
{
    uint64_t vis = b < c->size ? b : c->size;
    if (es_image_read(c->img, buf, vis - a, a, e) < 0)
        return es_err_prefix(e, "reading the old backing chain");
    memset(buf + (vis - a), 0, (size_t)(b - vis));
    return 0;
}

/* Decide ops[from, to) (at most chunk_max): read both sides, run by run of
 * adjacent clusters, and compare cluster by cluster. */
static int compare_chunk(rebase_ctx *c, size_t from, size_t to, es_err *e)
{
    const uint64_t cs = c->cs;
    for (size_t i = from; i < to;) {
        size_t j = i + 1;
        while (j < to && c->ops[j].guest == c->ops[j - 1].guest + cs)
            j++;
        uint64_t a = c->ops[i].guest, b = c->ops[j - 1].guest + cs;
        uint64_t vis = b < c->size ? b : c->size;
        uint8_t *ob = c->old_buf + (i - from) * cs, *nb = c->new_buf + (i - from) * cs;
        if (read_old(c, ob, a, b, e) < 0)
            return -1;
        if (read_side(c->newb, nb, a, vis, e) < 0)
            return es_err_prefix(e, "reading the new backing chain");
        memset(nb + (vis - a), 0, (size_t)(b - vis));
        for (size_t k = i; k < j; k++) {
            const uint8_t *o = ob + (k - i) * cs, *n = nb + (k - i) * cs;
            rebase_op *op = &c->ops[k];
            if (!memcmp(o, n, cs))
                op->action = RB_SAME;
            else if (c->img->hdr.version >= 3 && all_zero(o, cs))
                op->action = RB_ZERO;
            else
                op->action = RB_DATA;
            uint64_t in_img = vis - op->guest < cs ? vis - op->guest : cs;
            if (op->action != RB_SAME)
                rebase_bitmaps_mark_diff(c, op->guest, o, n, in_img);
        }
        i = j;
    }
    return 0;
}

/* Ask the kernel to read ops[from, to) of both chains in the background:
 * scattered clusters are otherwise read one synchronous request at a time. */
static void prefetch_chunk(rebase_ctx *c, size_t from, size_t to)
{
    for (size_t i = from; i < to;) {
        size_t j = i + 1;
        while (j < to && c->ops[j].guest == c->ops[j - 1].guest + c->cs)
            j++;
        uint64_t a = c->ops[i].guest, len = c->ops[j - 1].guest + c->cs - a;
        es_image_prefetch(c->img, a, len);
        if (c->newb && a < c->newb->virtual_size)
            es_image_prefetch(c->newb, a, len);
        i = j;
    }
}

static int compare(rebase_ctx *c, es_err *e)
{
    /* The whole batch (at most REBASE_BATCH_MAX_BYTES) at once: the disk
     * gets a deep queue of scattered reads instead of one at a time. */
    prefetch_chunk(c, 0, c->nops);
    for (size_t i = 0; i < c->nops; i += c->chunk_max) {
        size_t to = i + c->chunk_max < c->nops ? i + c->chunk_max : c->nops;
        if (compare_chunk(c, i, to, e) < 0)
            return -1;
    }
    return 0;
}

static int plan_and_allocate(rebase_ctx *c, bool *allocated, es_err *e)
{
    c->ntargets = 0;
    c->nfrees = 0;
    for (size_t i = 0; i < c->nops; i++) {
        const rebase_op *op = &c->ops[i];
        if (op->action == RB_SAME)
            continue;
        uint64_t l1 = op->guest >> l1_shift(c->img);
        if (c->ntargets && c->targets[c->ntargets - 1].l1_idx == l1)
            continue;
        if (c->ntargets == c->targets_cap) {
            c->targets_cap = c->targets_cap ? c->targets_cap * 2 : 16;
            c->targets = es_xreallocarray(c->targets, c->targets_cap, sizeof *c->targets);
        }
        qcow2_l2_target *t = &c->targets[c->ntargets++];
        bool needs;
        if (qcow2_l2_target_plan(c->img, l1, false, t, &needs, e) < 0)
            return -1;
        *allocated |= needs;
        if (needs && t->src_off) {
            if (c->nfrees == c->frees_cap) {
                c->frees_cap = c->frees_cap ? c->frees_cap * 2 : 16;
                c->frees = es_xreallocarray(c->frees, c->frees_cap, sizeof *c->frees);
            }
            c->frees[c->nfrees++] = t->src_off;
        }
    }
    /* Compressed clusters get their bytes as they are written. */
    for (size_t i = 0; i < c->nops && !c->compress; i++) {
        rebase_op *op = &c->ops[i];
        if (op->action != RB_DATA)
            continue;
        if (qcow2_alloc_cluster(c->img, &op->dest, e) < 0)
            return -1;
        *allocated = true;
    }
    return 0;
}

/* Where the old chain holds the cluster at guest offset g whole, as plain
 * data in one image: *src (NULL: not so) and the host offset there, so the
 * cluster is copied file to file (es_file_copy shares it where the file
 * system can: a safe rebase onto a shorter chain then costs metadata, not
 * data). Anything else (compressed, zero, partly allocated subclusters,
 * split host runs, a layer ending inside the cluster) goes through the
 * buffer. */
static int old_source(rebase_ctx *c, uint64_t g, es_image **src, uint64_t *host, es_err *e)
{
    *src = NULL;
    const uint64_t cs = c->cs;
    es_block_status bs;
    for (es_image *l = c->img; l; l = l->backing) {
        if (g + cs > l->virtual_size)
            return 0;
        if (es_image_block_status(l, g, cs, &bs, e) < 0)
            return -1;
        /* IMAGE holds none of it (the scan chose it so); nor do the
         * layers above the one that does */
        if (bs.kind == ES_BS_UNALLOC && bs.len >= cs)
            continue;
        if (l != c->img && bs.kind == ES_BS_DATA && bs.len >= cs) {
            *src = l;
            *host = bs.host_off;
        }
        return 0;
    }
    return 0;
}

/* The end of the run from i of ops going through the buffer (src[] NULL)
 * adjacent in the guest (reads) or in IMAGE's file (by_dest: writes); i
 * + 1 when ops[idx[i]] is copied file to file. */
static size_t buffered_run(const rebase_ctx *c, const size_t *idx, es_image *const *src, size_t i,
                           size_t n, bool by_dest)
{
    size_t j = i + 1;
    if (src[i])
        return j;
    while (j < n && !src[j] &&
           (by_dest ? c->ops[idx[j]].dest == c->ops[idx[j - 1]].dest + c->cs
                    : c->ops[idx[j]].guest == c->ops[idx[j - 1]].guest + c->cs))
        j++;
    return j;
}

/* Step 3: the old chain's content of the data ops a chunk at a time:
 * clusters one image holds whole copied file to file (old_source), the
 * others read again (from the page cache: compare() read them moments
 * ago) and written with one write per run of adjacent host clusters. */
static int write_chunk(rebase_ctx *c, const size_t *idx, size_t n, es_err *e)
{
    const uint64_t cs = c->cs;
    es_image **src = es_xcalloc(n, sizeof *src);
    uint64_t *soff = es_xcalloc(n, sizeof *soff);
    int rc = -1;
    for (size_t i = 0; i < n; i++)
        if (old_source(c, c->ops[idx[i]].guest, &src[i], &soff[i], e) < 0)
            goto out;
    /* The copies' host range, handed to writeback once: the clusters are
     * allocated in order, so it is nearly all written, and one call costs
     * what one per scattered source cluster would many times over. */
    uint64_t wb_lo = UINT64_MAX, wb_hi = 0;
    for (size_t i = 0; i < n;) { /* copies: runs contiguous in the source and in IMAGE */
        size_t j = i + 1;
        if (!src[i]) {
            i = j;
            continue;
        }
        while (j < n && src[j] == src[i] && soff[j] == soff[j - 1] + cs &&
               c->ops[idx[j]].dest == c->ops[idx[j - 1]].dest + cs)
            j++;
        uint64_t len = (j - i) * cs, dest = c->ops[idx[i]].dest;
        if (qcow2_host_copy(c->img, QCOW2_OL_DATA, src[i]->file, soff[i], len, dest, e) < 0) {
            es_err_prefix(e, "copying data");
            goto out;
        }
        if (dest < wb_lo)
            wb_lo = dest;
        if (dest + len > wb_hi)
            wb_hi = dest + len;
        i = j;
    }
    if (wb_hi > wb_lo)
        es_file_start_writeback(c->img->file, wb_lo, wb_hi - wb_lo);
    for (size_t i = 0, j; i < n; i = j) { /* reads: runs of adjacent guest clusters */
        j = buffered_run(c, idx, src, i, n, false);
        if (!src[i] && read_old(c, c->old_buf + i * cs, c->ops[idx[i]].guest,
                                c->ops[idx[j - 1]].guest + cs, e) < 0)
            goto out;
    }
    for (size_t i = 0, j; i < n; i = j) { /* writes: runs of adjacent host clusters */
        j = buffered_run(c, idx, src, i, n, true);
        if (src[i])
            continue;
        uint64_t len = (j - i) * cs;
        if (qcow2_host_write(c->img, QCOW2_OL_DATA, c->old_buf + i * cs, (size_t)len,
                             c->ops[idx[i]].dest, e) < 0) {
            es_err_prefix(e, "writing data");
            goto out;
        }
        /* The fdatasync after the last chunk then waits for less. */
        es_file_start_writeback(c->img->file, c->ops[idx[i]].dest, len);
    }
    rc = 0;
out:
    free(src);
    free(soff);
    return rc;
}

/* Write the staged compressed bytes [0, *len) at *at. */
static int flush_staged(rebase_ctx *c, uint64_t at, size_t *len, es_err *e)
{
    if (*len == 0)
        return 0;
    if (qcow2_host_write(c->img, QCOW2_OL_DATA, c->zbuf, *len, at, e) < 0)
        return es_err_prefix(e, "writing compressed data");
    es_file_start_writeback(c->img->file, at, *len);
    *len = 0;
    return 0;
}

/* -c: the old chain's content of the data ops, a chunk at a time, each
 * cluster compressed and packed after the previous one (consecutive ones
 * written in one write); a cluster that does not compress to less than a
 * cluster, or the last one when it is partial (a compressed cluster covers
 * a whole cluster), gets a cluster of its own, as without -c. Nothing
 * points at these bytes before the refcounts are flushed. */
static int write_chunk_compressed(rebase_ctx *c, const size_t *idx, size_t n, es_err *e)
{
    const uint64_t cs = c->cs;
    for (size_t i = 0, j; i < n; i = j) {
        j = i + 1;
        while (j < n && c->ops[idx[j]].guest == c->ops[idx[j - 1]].guest + cs)
            j++;
        if (read_old(c, c->old_buf + i * cs, c->ops[idx[i]].guest, c->ops[idx[j - 1]].guest + cs,
                     e) < 0)
            return -1;
    }
    uint64_t run_at = 0;
    size_t run_len = 0;
    for (size_t i = 0; i < n; i++) {
        rebase_op *op = &c->ops[idx[i]];
        const uint8_t *in = c->old_buf + i * cs;
        size_t zlen = 0;
        int fits = 0;
        if (op->guest + cs <= c->size &&
            (fits = qcow2_compress_cluster(c->img, in, c->zbuf + run_len, &zlen, e)) < 0)
            return -1;
        if (!fits) {
            if (qcow2_alloc_cluster(c->img, &op->dest, e) < 0)
                return -1;
            if (qcow2_host_write(c->img, QCOW2_OL_DATA, in, (size_t)cs, op->dest, e) < 0)
                return es_err_prefix(e, "writing data");
            continue;
        }
        uint64_t at;
        if (qcow2_alloc_bytes(c->img, &c->zalloc, zlen, &at, e) < 0)
            return -1;
        op->zentry = qcow2_compressed_entry(c->img, at, zlen);
        if (run_len && at != run_at + run_len) {
            /* Not after the staged bytes: write those, start again. */
            size_t staged = run_len;
            if (flush_staged(c, run_at, &run_len, e) < 0)
                return -1;
            memmove(c->zbuf, c->zbuf + staged, zlen);
        }
        if (!run_len)
            run_at = at;
        run_len += zlen;
        if (run_len + cs > c->chunk_max * cs && flush_staged(c, run_at, &run_len, e) < 0)
            return -1;
    }
    return flush_staged(c, run_at, &run_len, e);
}

static int write_data(rebase_ctx *c, bool *wrote, es_err *e)
{
    size_t *idx = es_xcalloc(c->chunk_max, sizeof *idx);
    size_t n = 0;
    int r = 0;
    for (size_t i = 0; i <= c->nops && r == 0; i++) {
        if (i < c->nops && c->ops[i].action != RB_DATA)
            continue;
        if (n && (i == c->nops || n == c->chunk_max)) {
            r = c->compress ? write_chunk_compressed(c, idx, n, e) : write_chunk(c, idx, n, e);
            *wrote = true;
            n = 0;
        }
        if (i < c->nops)
            idx[n++] = i;
    }
    free(idx);
    return r;
}

static int write_tables(rebase_ctx *c, es_err *e)
{
    size_t i = 0;
    for (size_t t = 0; t < c->ntargets; t++) {
        const qcow2_l2_target *tg = &c->targets[t];
        size_t n = 0;
        for (; i < c->nops; i++) {
            const rebase_op *op = &c->ops[i];
            if (op->action == RB_SAME)
                continue;
            if ((op->guest >> l1_shift(c->img)) != tg->l1_idx)
                break;
            if (n == c->updates_cap) {
                c->updates_cap = c->updates_cap ? c->updates_cap * 2 : 256;
                c->updates = es_xreallocarray(c->updates, c->updates_cap, sizeof *c->updates);
            }
            uint64_t entry = op->action == RB_ZERO ? QCOW2_OFLAG_ZERO
                             : op->zentry           ? op->zentry
                                                    : op->dest | QCOW2_OFLAG_COPIED;
            c->updates[n++] = (qcow2_l2_update){op->guest, entry, 0};
        }
        if (qcow2_l2_target_write(c->img, tg, c->updates, n, c->scratch, e) < 0)
            return -1;
    }
    return 0;
}

int rebase_batch_run(rebase_ctx *c, es_err *e)
{
    es_image *img = c->img;
    if (compare(c, e) < 0)
        return -1;
    /* The bitmaps first: a crash leaves bits for clusters not yet written,
     * never a written cluster without its bit. */
    if (rebase_bitmaps_write(c, e) < 0)
        return -1;
    bool allocated = false, wrote = false;
    if (plan_and_allocate(c, &allocated, e) < 0)
        return -1;
    if (c->ntargets == 0)
        return 0;
    if (!c->compress && allocated && qcow2_refcount_flush(img, e) < 0)
        return es_err_prefix(e, "making new refcounts durable");
    if (write_data(c, &wrote, e) < 0)
        return -1;
    /* -c: the bytes were allocated as they were written; their refcounts
     * (and the new tables') reach the disk with the data, before any L2
     * entry points at them. */
    if (c->compress && (wrote || allocated) && qcow2_refcount_flush(img, e) < 0)
        return es_err_prefix(e, "making new refcounts durable");
    if (!c->compress && wrote && es_file_flush(img->file, e) < 0)
        return -1;
    if (write_tables(c, e) < 0)
        return -1;
    bool new_tables = false;
    for (size_t t = 0; t < c->ntargets; t++)
        new_tables |= qcow2_l2_target_is_new(&c->targets[t]);
    if (new_tables) {
        if (es_file_flush(img->file, e) < 0)
            return -1;
        for (size_t t = 0; t < c->ntargets; t++)
            if (qcow2_l2_target_is_new(&c->targets[t]) &&
                qcow2_l1_set(img, c->targets[t].l1_idx, c->targets[t].l2_off, e) < 0)
                return -1;
    }
    if (c->nfrees) {
        if (es_file_flush(img->file, e) < 0)
            return -1;
        for (size_t i = 0; i < c->nfrees; i++)
            if (qcow2_free_cluster(img, c->frees[i], e) < 0)
                return es_err_prefix(e, "releasing a copied L2 table");
        c->nfrees = 0;
    }
    return 0;
}
