/* Which parts of the guest range something above BASE covers, as runs of
 * block status, resolved one window at a time from TOP down: each image's
 * tables are walked once per window (empty L1 ranges skipped in one step),
 * so the work grows with the images and their metadata, not with the
 * product of depth and allocated clusters, nor with the virtual size. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/commit_internal.h"
#include "util/xalloc.h"

/* First image in [from, until) (following backing links) that says
 * something about off; *found false when none does. */
static int chain_first(es_image *from, es_image *until, uint64_t off, uint64_t max,
                       commit_seg *seg, bool *found, es_err *e)
{
    *found = false;
    seg->guest = off;
    seg->len = max;
    for (es_image *img = from; img && img != until; img = img->backing) {
        if (off >= img->virtual_size) {
            /* A shorter image reads as zeroes past its end and hides what
             * is below it, whatever its backing holds. */
            seg->kind = SEG_ZERO;
            seg->src = img;
            *found = true;
            return 0;
        }
        es_block_status bs;
        if (es_image_block_status(img, off, seg->len, &bs, e) < 0)
            return -1;
        if (bs.len == 0 || bs.len > seg->len)
            return es_err_set(e, EIO, img->filename,
                              "internal error: block status at 0x%llx returned %llu bytes",
                              (unsigned long long)off, (unsigned long long)bs.len);
        seg->len = bs.len;
        if (bs.kind == ES_BS_UNALLOC)
            continue;
        *found = true;
        seg->src = img;
        seg->host = bs.host_off;
        seg->kind = bs.kind == ES_BS_DATA ? SEG_DATA : bs.kind == ES_BS_ZERO ? SEG_ZERO : SEG_COMP;
        return 0;
    }
    return 0;
}

int commit_below_shows(commit_ctx *c, uint64_t off, uint64_t len, bool *shows, es_err *e)
{
    *shows = false;
    if (c->raw_base)
        return 0;
    uint64_t end = off + len;
    while (off < end) {
        commit_seg s;
        bool found;
        if (chain_first(c->base->backing, NULL, off, end - off, &s, &found, e) < 0)
            return -1;
        if (found && s.kind != SEG_ZERO) {
            *shows = true;
            return 0;
        }
        off += s.len;
    }
    return 0;
}

static void grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return;
    size_t n = *cap ? *cap * 2 : 256;
    while (n < need)
        n *= 2;
    *arr = es_xreallocarray(*arr, n, elem);
    *cap = n;
}

static bool batch_full(const commit_ctx *c)
{
    return c->nops >= COMMIT_BATCH_MAX_OPS || c->nsegs >= COMMIT_BATCH_SEG_CAP ||
           (uint64_t)c->nops * c->unit >= COMMIT_BATCH_MAX_BYTES;
}

static void push_seg(commit_ctx *c, uint64_t guest, uint64_t len, commit_seg_kind kind,
                     es_image *src, uint64_t host)
{
    grow((void **)&c->wsegs, &c->wsegs_cap, c->nwsegs + 1, sizeof *c->wsegs);
    c->wsegs[c->nwsegs++] = (commit_seg){guest, len, kind, src, host};
}

/* Append [lo, hi) to gap list k, merged with the last one if they touch. */
static void push_gap(commit_ctx *c, int k, uint64_t lo, uint64_t hi)
{
    size_t n = c->ngaps[k];
    if (n && c->gaps[k][n - 1].hi == lo) {
        c->gaps[k][n - 1].hi = hi;
        return;
    }
    grow((void **)&c->gaps[k], &c->gaps_cap[k], n + 1, sizeof *c->gaps[k]);
    c->gaps[k][c->ngaps[k]++] = (commit_gap){lo, hi};
}

/* False when img surely says nothing about [lo, hi): no L2 table there (one
 * L1 test per table span). Past its end it reads as zeroes, so true. */
static bool may_cover(const es_image *img, uint64_t lo, uint64_t hi)
{
    if (img->format != ES_FMT_QCOW2 || hi > img->virtual_size)
        return true;
    uint32_t shift = img->cluster_bits + (uint32_t)__builtin_ctzll(img->l2_entries);
    for (uint64_t i = lo >> shift; i <= (hi - 1) >> shift; i++)
        if (i >= img->l1_size || img->l1[i])
            return true; /* block status validates the entry */
    return false;
}

/* What img says about the window's uncovered ranges (gap list 0): the
 * ranges it covers become segments, the rest gap list 1, then the two
 * swap. One status run serves every gap it spans, so the image's tables
 * are walked once per window, whatever lies above it. */
static int scan_layer(commit_ctx *c, es_image *img, es_err *e)
{
    const commit_gap *g = c->gaps[0];
    size_t n = c->ngaps[0];
    uint64_t last = g[n - 1].hi;
    es_block_status bs = {0};
    uint64_t rs = 0, re = 0; /* the run bs describes: [rs, re) */
    c->ngaps[1] = 0;
    for (size_t i = 0; i < n; i++) {
        for (uint64_t x = g[i].lo; x < g[i].hi;) {
            uint64_t hi = g[i].hi;
            if (x >= img->virtual_size) {
                /* A shorter image reads as zeroes past its end and hides
                 * what is below it, whatever its backing holds. */
                push_seg(c, x, hi - x, SEG_ZERO, img, 0);
                break;
            }
            if (x >= re) {
                if (es_image_block_status(img, x, last - x, &bs, e) < 0)
                    return -1;
                if (bs.len == 0 || bs.len > last - x)
                    return es_err_set(e, EIO, img->filename,
                                      "internal error: block status at 0x%llx returned %llu bytes",
                                      (unsigned long long)x, (unsigned long long)bs.len);
                rs = x;
                re = x + bs.len;
            }
            uint64_t end = re < hi ? re : hi;
            if (bs.kind == ES_BS_UNALLOC)
                push_gap(c, 1, x, end);
            else if (bs.kind == ES_BS_DATA)
                push_seg(c, x, end - x, SEG_DATA, img, bs.host_off + (x - rs));
            else
                push_seg(c, x, end - x, bs.kind == ES_BS_ZERO ? SEG_ZERO : SEG_COMP, img,
                         bs.host_off);
            x = end;
        }
    }
    commit_gap *t = c->gaps[0];
    size_t tcap = c->gaps_cap[0];
    c->gaps[0] = c->gaps[1];
    c->gaps_cap[0] = c->gaps_cap[1];
    c->ngaps[0] = c->ngaps[1];
    c->gaps[1] = t;
    c->gaps_cap[1] = tcap;
    c->ngaps[1] = 0;
    return 0;
}

/* An uncovered range in [old_size, soft_zero_end): BASE grows over it and
 * must read as zeroes afterwards, as it did through TOP, where BASE's
 * backing would otherwise show. */
static int soft_zeroes(commit_ctx *c, commit_gap g, es_err *e)
{
    uint64_t lo = g.lo > c->old_size ? g.lo : c->old_size;
    uint64_t hi = g.hi < c->soft_zero_end ? g.hi : c->soft_zero_end;
    while (lo < hi) {
        commit_seg below;
        bool found;
        if (chain_first(c->base->backing, NULL, lo, hi - lo, &below, &found, e) < 0)
            return -1;
        if (found && below.kind != SEG_ZERO)
            push_seg(c, lo, below.len, SEG_ZERO, c->base, 0);
        lo += below.len;
    }
    return 0;
}

static int cmp_guest(const void *pa, const void *pb)
{
    const commit_seg *a = pa, *b = pb;
    return a->guest < b->guest ? -1 : a->guest > b->guest;
}

/* Resolve [lo, hi) top down into c->wsegs (guest order): each image above
 * BASE is asked only about what the ones above it left uncovered (QEMU
 * semantics: a range past an intermediate image's end counts as zeroes),
 * and stops when nothing is left. */
static int scan_window(commit_ctx *c, uint64_t lo, uint64_t hi, es_err *e)
{
    c->nwsegs = 0;
    c->ngaps[0] = 0;
    push_gap(c, 0, lo, hi);
    for (es_image *img = c->top; img && img != c->base && c->ngaps[0]; img = img->backing) {
        if (may_cover(img, c->gaps[0][0].lo, c->gaps[0][c->ngaps[0] - 1].hi) &&
            scan_layer(c, img, e) < 0)
            return -1;
    }
    for (size_t i = 0; i < c->ngaps[0]; i++)
        if (soft_zeroes(c, c->gaps[0][i], e) < 0)
            return -1;
    if (c->nwsegs > 1) /* (qsort of nothing: a null pointer) */
        qsort(c->wsegs, c->nwsegs, sizeof *c->wsegs, cmp_guest);
    return 0;
}

/* Add segment s to the batch, one piece per op (BASE cluster). False when
 * the batch filled up first: *stop is where the next batch starts. */
static bool add_seg(commit_ctx *c, commit_seg s, uint64_t *stop)
{
    uint64_t p = s.guest, len = s.len;
    while (len > 0) {
        uint64_t g = p - p % c->unit;
        commit_op *op = c->nops ? &c->ops[c->nops - 1] : NULL;
        if (!op || op->guest != g) {
            if (batch_full(c)) {
                *stop = p;
                return false;
            }
            grow((void **)&c->ops, &c->ops_cap, c->nops + 1, sizeof *c->ops);
            op = &c->ops[c->nops++];
            memset(op, 0, sizeof *op);
            op->guest = g;
            op->eff_end = g + c->unit < c->new_size ? g + c->unit : c->new_size;
            op->seg_first = (uint32_t)c->nsegs;
        }
        uint64_t piece = g + c->unit - p < len ? g + c->unit - p : len;
        grow((void **)&c->segs, &c->segs_cap, c->nsegs + 1, sizeof *c->segs);
        commit_seg *ns = &c->segs[c->nsegs++];
        *ns = s;
        ns->guest = p;
        ns->len = piece;
        op->nseg++;
        p += piece;
        len -= piece;
        if (s.kind == SEG_DATA)
            s.host += piece;
    }
    return true;
}

int commit_collect_batch(commit_ctx *c, uint64_t *pos, es_err *e)
{
    c->nops = c->nsegs = 0;
    uint64_t p = *pos;
    while (p < c->top_size) {
        uint64_t wend = (p / COMMIT_SCAN_WINDOW + 1) * COMMIT_SCAN_WINDOW;
        if (wend > c->top_size)
            wend = c->top_size;
        if (scan_window(c, p, wend, e) < 0)
            return -1;
        for (size_t i = 0; i < c->nwsegs; i++)
            if (!add_seg(c, c->wsegs[i], pos))
                return 0;
        p = wend;
    }
    *pos = p;
    return 0;
}
