/* Which parts of the guest range something above BASE covers, as runs of
 * block status: work proportional to the allocated clusters (empty L1
 * ranges are skipped in one step), never to the virtual size. */
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

/* First image above BASE (TOP first) that has [off, ...) allocated; a range
 * past an intermediate image's end counts as zeroes (QEMU semantics). In
 * [old_size, soft_zero_end) a range nothing above covers becomes zeroes
 * where something below BASE would otherwise show. *found false = nothing
 * covers [off, off + seg->len). */
static int commit_above_status(commit_ctx *c, uint64_t off, uint64_t max, commit_seg *seg,
                               bool *found, es_err *e)
{
    if (chain_first(c->top, c->base, off, max, seg, found, e) < 0)
        return -1;
    if (*found || off >= c->soft_zero_end)
        return 0;
    if (off < c->old_size) {
        /* Stop the uncovered run where BASE's old end is. */
        if (c->soft_zero_end > c->old_size && seg->len > c->old_size - off)
            seg->len = c->old_size - off;
        return 0;
    }
    /* BASE grows over this range: it must read as zeroes afterwards, as it
     * did through TOP, where BASE's backing would otherwise show. */
    uint64_t len = seg->len;
    if (len > c->soft_zero_end - off)
        len = c->soft_zero_end - off;
    commit_seg below;
    bool below_found;
    if (chain_first(c->base->backing, NULL, off, len, &below, &below_found, e) < 0)
        return -1;
    seg->len = below.len;
    if (below_found && below.kind != SEG_ZERO) {
        seg->kind = SEG_ZERO;
        seg->src = c->base;
        *found = true;
    }
    return 0;
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem, es_err *e)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 256;
    while (n < need)
        n *= 2;
    (void)e;
    *arr = es_xreallocarray(*arr, n, elem);
    *cap = n;
    return 0;
}

static bool batch_full(const commit_ctx *c)
{
    return c->nops >= COMMIT_BATCH_MAX_OPS || c->nsegs >= COMMIT_BATCH_SEG_CAP ||
           (uint64_t)c->nops * c->unit >= COMMIT_BATCH_MAX_BYTES;
}

int commit_collect_batch(commit_ctx *c, uint64_t *pos, es_err *e)
{
    c->nops = c->nsegs = 0;
    uint64_t p = *pos;
    while (p < c->top_size) {
        commit_seg s;
        bool found;
        if (commit_above_status(c, p, c->top_size - p, &s, &found, e) < 0)
            return -1;
        if (!found) {
            p += s.len;
            continue;
        }
        uint64_t len = s.len;
        while (len > 0) {
            uint64_t g = p - p % c->unit;
            commit_op *op = c->nops ? &c->ops[c->nops - 1] : NULL;
            if (!op || op->guest != g) {
                if (batch_full(c)) {
                    *pos = p;
                    return 0;
                }
                if (grow((void **)&c->ops, &c->ops_cap, c->nops + 1, sizeof *c->ops, e) < 0)
                    return -1;
                op = &c->ops[c->nops++];
                memset(op, 0, sizeof *op);
                op->guest = g;
                op->eff_end = g + c->unit < c->new_size ? g + c->unit : c->new_size;
                op->seg_first = (uint32_t)c->nsegs;
            }
            uint64_t piece = g + c->unit - p < len ? g + c->unit - p : len;
            if (grow((void **)&c->segs, &c->segs_cap, c->nsegs + 1, sizeof *c->segs, e) < 0)
                return -1;
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
    }
    *pos = p;
    return 0;
}
