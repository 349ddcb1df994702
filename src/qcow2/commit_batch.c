/* One batch of a commit, with the write ordering that keeps BASE
 * consistent at every instant (reference §5):
 *
 *  1. classify the ops; allocate clusters for new/copied L2 tables, then
 *     for the data, in source order so the data lands contiguously
 *     (refcounts raised in the cache only)
 *  2. flush refcounts (write blocks + fdatasync)  -- only if anything was
 *     allocated: from now on the new clusters may be pointed at
 *  3. write the data (in place into clusters BASE owns alone, or into the
 *     new clusters)
 *  4. write the L2 tables with the new entries
 *  5. if new tables: fdatasync, then point the L1 entries at them
 *  6. if clusters are released: fdatasync, then lower their refcounts
 *
 * No flush between 3 and 4: if a crash persisted an L2 entry before the
 * data it points to, the cluster reads stale bytes, but the metadata is
 * consistent (the refcount was durable before, step 2), and the commit is
 * idempotent: running it again rewrites the same data from the unchanged
 * images above BASE. QEMU accepts the same window for newly allocated
 * clusters. Steps 5 and 6 are real ordering points: a table must be
 * durable before L1 names it, and a pointer must be gone on disk before
 * the refcount that protects its cluster drops. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/commit_internal.h"
#include "qcow2/commit_space.h"
#include "qcow2/format.h"
#include "qcow2/overlap.h"
#include "qcow2/refcount.h"
#include "util/xalloc.h"

static uint32_t l1_shift(const es_image *img)
{
    return img->cluster_bits + (uint32_t)__builtin_ctzll(img->l2_entries);
}

static uint64_t op_covered(const commit_ctx *c, const commit_op *op)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < op->nseg; i++)
        n += c->segs[op->seg_first + i].len;
    return n;
}

/* Planning: a cluster written in place must not be metadata of BASE (its
 * L2 entry points into its own tables: the image is corrupt). */
static int refuse_in_place(const commit_ctx *c, const commit_op *op, es_err *e)
{
    if (c->raw_base || op->action != OP_DATA || op->need_alloc)
        return 0;
    if (qcow2_overlap_check(c->base, QCOW2_OL_DATA, op->dest, c->unit, e) == 0)
        return 0;
    if (e) {
        size_t n = strlen(e->msg);
        snprintf(e->msg + n, sizeof e->msg - n,
                 " (BASE's cluster for guest offset 0x%llx); the image is corrupt, nothing was "
                 "written (see 'extsnap img check')",
                 (unsigned long long)op->guest);
    }
    return -1;
}

int commit_batch_count(commit_ctx *c, es_err *e)
{
    for (size_t i = 0; i < c->nops; i++) {
        commit_op *op = &c->ops[i];
        if (commit_classify(c, op, e) < 0 || refuse_in_place(c, op, e) < 0)
            return -1;
        commit_space_count_op(c, op);
        uint64_t cov = op_covered(c, op);
        c->total_bytes += cov;
        if (op->action == OP_DATA)
            c->write_bytes += c->raw_base ? cov : (uint64_t)__builtin_popcount(op->write_mask) * c->sub;
        if (op->need_alloc)
            c->need_clusters++;
        if (c->raw_base || op->action == OP_NONE)
            continue;
        uint64_t l1 = op->guest >> l1_shift(c->base);
        if (c->last_counted_l1 == l1 + 1)
            continue;
        c->last_counted_l1 = l1 + 1;
        qcow2_l2_target t;
        bool needs;
        if (qcow2_l2_target_plan(c->base, l1, true, &t, &needs, e) < 0)
            return -1;
        if (needs)
            c->need_clusters++;
        else if (qcow2_overlap_check(c->base, QCOW2_OL_ACTIVE_L2, t.l2_off, c->base->cluster_size,
                                     e) < 0)
            return -1;
    }
    return 0;
}

static int add_free(commit_ctx *c, commit_free_kind kind, uint64_t val, es_err *e)
{
    (void)e;
    if (c->nfrees == c->frees_cap) {
        size_t n = c->frees_cap ? c->frees_cap * 2 : 256;
        c->frees = es_xreallocarray(c->frees, n, sizeof *c->frees);
        c->frees_cap = n;
    }
    c->frees[c->nfrees++] = (commit_free){kind, val};
    return 0;
}

/* Step 1a: where each touched L2 table goes. */
static int plan_targets(commit_ctx *c, bool *allocated, es_err *e)
{
    c->ntargets = 0;
    for (size_t i = 0; i < c->nops; i++) {
        const commit_op *op = &c->ops[i];
        if (op->action == OP_NONE)
            continue;
        uint64_t l1 = op->guest >> l1_shift(c->base);
        if (c->ntargets && c->targets[c->ntargets - 1].l1_idx == l1)
            continue;
        if (c->ntargets == c->targets_cap) {
            size_t n = c->targets_cap ? c->targets_cap * 2 : 64;
            c->targets = es_xreallocarray(c->targets, n, sizeof *c->targets);
            c->targets_cap = n;
        }
        qcow2_l2_target *t = &c->targets[c->ntargets++];
        bool needs;
        if (qcow2_l2_target_plan(c->base, l1, false, t, &needs, e) < 0)
            return -1;
        *allocated |= needs;
        /* A table shared with a snapshot was copied: drop our reference to
         * the old one once L1 names the copy. */
        if (needs && t->src_off && add_free(c, FREE_HOST, t->src_off, e) < 0)
            return -1;
    }
    return 0;
}

typedef struct order_key {
    int depth;
    uint64_t host;
    uint64_t guest;
    uint32_t idx;
} order_key;

static int cmp_key(const void *pa, const void *pb)
{
    const order_key *a = pa, *b = pb;
    if (a->depth != b->depth)
        return a->depth < b->depth ? -1 : 1;
    if (a->host != b->host)
        return a->host < b->host ? -1 : 1;
    return a->guest < b->guest ? -1 : a->guest > b->guest;
}

/* Step 1b: data ops in source order, new clusters allocated in that order. */
static int order_and_allocate(commit_ctx *c, size_t *ndata, bool *allocated, es_err *e)
{
    order_key *keys = es_xcalloc(c->nops, sizeof *keys);
    uint32_t *order = es_xreallocarray(c->order, c->nops ? c->nops : 1, sizeof *order);
    c->order = order;
    size_t n = 0;
    for (size_t i = 0; i < c->nops; i++) {
        const commit_op *op = &c->ops[i];
        if (op->action != OP_DATA)
            continue;
        order_key k = {1 << 30, 0, op->guest, (uint32_t)i};
        for (uint32_t j = 0; j < op->nseg; j++) {
            const commit_seg *s = &c->segs[op->seg_first + j];
            if (s->kind == SEG_DATA) {
                k.depth = s->src->depth;
                k.host = s->host;
                break;
            }
        }
        keys[n++] = k;
    }
    qsort(keys, n, sizeof *keys, cmp_key);
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        order[i] = keys[i].idx;
        commit_op *op = &c->ops[keys[i].idx];
        if (!op->need_alloc)
            continue;
        r = qcow2_alloc_cluster(c->base, &op->dest, e);
        *allocated = true;
    }
    free(keys);
    *ndata = n;
    return r;
}

/* Step 4: the new entries, table by table (ops are in guest order). */
static int write_tables(commit_ctx *c, es_err *e)
{
    size_t i = 0;
    for (size_t t = 0; t < c->ntargets; t++) {
        const qcow2_l2_target *tg = &c->targets[t];
        size_t n = 0;
        for (; i < c->nops; i++) {
            const commit_op *op = &c->ops[i];
            if (op->action == OP_NONE)
                continue;
            if ((op->guest >> l1_shift(c->base)) != tg->l1_idx)
                break;
            if (op->new_entry == op->old_entry && op->new_bitmap == op->old_bitmap &&
                !qcow2_l2_target_is_new(tg))
                continue;
            if (n == c->updates_cap) {
                size_t cap = c->updates_cap ? c->updates_cap * 2 : 256;
                c->updates = es_xreallocarray(c->updates, cap, sizeof *c->updates);
                c->updates_cap = cap;
            }
            c->updates[n++] = (qcow2_l2_update){op->guest, op->new_entry, op->new_bitmap};
        }
        if ((n || qcow2_l2_target_is_new(tg)) &&
            qcow2_l2_target_write(c->base, tg, c->updates, n, c->scratch, e) < 0)
            return -1;
    }
    return 0;
}

static int apply_frees(commit_ctx *c, es_err *e)
{
    for (size_t i = 0; i < c->nfrees; i++) {
        const commit_free *f = &c->frees[i];
        int r = f->kind == FREE_COMP ? qcow2_free_compressed(c->base, f->val, e)
                                     : qcow2_free_cluster(c->base, f->val, e);
        if (r < 0)
            return es_err_prefix(e, "releasing an old cluster of BASE");
    }
    c->nfrees = 0;
    return 0;
}

int commit_batch_run(commit_ctx *c, es_err *e)
{
    es_image *b = c->base;
    bool allocated = false;
    c->nfrees = 0;
    for (size_t i = 0; i < c->nops; i++)
        if (commit_classify(c, &c->ops[i], e) < 0)
            return -1;
    if (!c->raw_base && plan_targets(c, &allocated, e) < 0)
        return -1;
    size_t ndata = 0;
    if (order_and_allocate(c, &ndata, &allocated, e) < 0)
        return -1;
    for (size_t i = 0; i < c->nops; i++) {
        commit_op *op = &c->ops[i];
        if (op->free_kind != FREE_NONE && add_free(c, op->free_kind, op->free_val, e) < 0)
            return -1;
        if (op->action == OP_DATA && !c->raw_base)
            op->new_entry = op->dest | QCOW2_OFLAG_COPIED;
    }
    if (allocated && qcow2_refcount_flush(b, e) < 0)
        return es_err_prefix(e, "making new refcounts durable");

    size_t per_chunk = (size_t)(COMMIT_CHUNK_BYTES / c->unit);
    for (size_t i = 0; i < ndata; i += per_chunk) {
        size_t n = ndata - i < per_chunk ? ndata - i : per_chunk;
        if (commit_data_chunk(c, c->order + i, n, e) < 0)
            return -1;
    }
    if (commit_writer_wait(c->writer, e) < 0)
        return -1;
    for (size_t i = 0; i < c->nops; i++)
        if (c->ops[i].action != OP_DATA)
            c->done_bytes += op_covered(c, &c->ops[i]);
    commit_report_progress(c);
    if (c->raw_base)
        return 0;

    if (write_tables(c, e) < 0)
        return -1;
    bool new_tables = false;
    for (size_t t = 0; t < c->ntargets; t++)
        new_tables |= qcow2_l2_target_is_new(&c->targets[t]);
    if (new_tables) {
        if (es_file_flush(b->file, e) < 0)
            return -1;
        for (size_t t = 0; t < c->ntargets; t++)
            if (qcow2_l2_target_is_new(&c->targets[t]) &&
                qcow2_l1_set(b, c->targets[t].l1_idx, c->targets[t].l2_off, e) < 0)
                return -1;
    }
    if (c->nfrees) {
        if (es_file_flush(b->file, e) < 0)
            return -1;
        if (apply_frees(c, e) < 0)
            return -1;
    }
    return 0;
}
