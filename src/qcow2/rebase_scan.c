/* Which clusters a safe rebase must look at: those IMAGE does not hold
 * itself (its own block status says unallocated) where the old or the new
 * backing chain may show data. Where both chains read zeroes (nothing
 * allocated, zero clusters, holes of a raw file, past a chain's end) they
 * agree, so nothing is read there: the work follows the allocated clusters
 * of the three, never the virtual size (an empty chain of 1 TiB is a few
 * block-status calls). When the chains share an image (the new backing
 * file is in the old chain, or both chains end in the same base), what is
 * decided there or below reads the same on both sides: only what the layers
 * above it hold is compared, as qemu-img does for a new backing file from
 * the old chain. */
#include <errno.h>

#include "qcow2/format.h"
#include "qcow2/map_status.h"
#include "qcow2/rebase_internal.h"

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Is layer `l` of a chain `shared` or below it? */
static bool at_or_below(const es_image *l, const es_image *shared)
{
    return shared && l && l->depth >= shared->depth;
}

/* What one chain shows from off on: *data when it may be non-zero there,
 * *in_shared when the shared image or one below decides; *len shrinks to
 * the run the answer holds for. chain NULL or shorter than off: zeroes. */
static int chain_side(es_image *chain, const es_image *shared, uint64_t off, uint64_t *len,
                      bool *data, bool *in_shared, es_err *e)
{
    *data = *in_shared = false;
    if (!chain || off >= chain->virtual_size)
        return 0;
    es_map_status st;
    if (es_map_status_get(chain, off, min_u64(*len, chain->virtual_size - off), &st, e) < 0)
        return -1;
    if (st.len == 0)
        return es_err_set(e, EIO, chain->filename, "internal error: empty map run at 0x%llx",
                          (unsigned long long)off);
    *data = st.data;
    *in_shared = at_or_below(st.layer, shared);
    *len = min_u64(*len, st.len);
    return 0;
}

/* Add the clusters that [from, to) touches (not added yet); false when the
 * batch is full (c->next then says where to go on). */
static bool emit(rebase_ctx *c, uint64_t from, uint64_t to)
{
    uint64_t first = from & ~(c->cs - 1);
    if (first < c->next)
        first = c->next;
    for (uint64_t g = first; g < to && g < c->size; g += c->cs) {
        if (c->nops == c->batch_max)
            return false;
        c->ops[c->nops++] = (rebase_op){.guest = g, .action = RB_SAME};
        c->next = g + c->cs;
    }
    return true;
}

/* The scan reads the L2 tables of every image it asks, one at a time as it
 * meets them; on a cold cache each is a disk round trip. Hand them all to
 * the kernel at once (a hint: as many tables as the L1 tables name). */
static void prefetch_tables(const es_image *chain)
{
    for (const es_image *i = chain; i; i = i->backing) {
        if (i->format != ES_FMT_QCOW2)
            continue;
        uint64_t lo = 0, len = 0;
        for (uint32_t k = 0; k < i->l1_size; k++) {
            uint64_t off = i->l1[k] & QCOW2_L1E_OFFSET_MASK;
            if (!off || off >= i->file_size)
                continue;
            if (len && off == lo + len) {
                len += i->cluster_size;
                continue;
            }
            if (len)
                es_file_prefetch(i->file, lo, len);
            lo = off;
            len = i->cluster_size;
        }
        if (len)
            es_file_prefetch(i->file, lo, len);
    }
}

void rebase_prefetch_metadata(rebase_ctx *c)
{
    prefetch_tables(c->img);
    prefetch_tables(c->newb);
}

int rebase_collect_batch(rebase_ctx *c, uint64_t *pos, es_err *e)
{
    c->nops = 0;
    if (*pos < c->next)
        *pos = c->next;
    while (*pos < c->size) {
        es_block_status bs;
        if (es_image_block_status(c->img, *pos, c->size - *pos, &bs, e) < 0)
            return -1;
        if (bs.len == 0)
            return es_err_set(e, EIO, c->img->filename, "internal error: empty run at 0x%llx",
                              (unsigned long long)*pos);
        uint64_t end = min_u64(*pos + bs.len, c->size);
        if (bs.kind != ES_BS_UNALLOC) {
            /* IMAGE's own clusters stay as they are. Standard L2 entries:
             * its runs start and end at cluster boundaries. */
            *pos = end;
            if (c->next < end)
                c->next = end;
            continue;
        }
        uint64_t p = *pos;
        while (p < end) {
            uint64_t len = end - p;
            bool od, os, nd, ns; /* old/new: data, decided in the shared part */
            if (chain_side(c->img->backing, c->shared_old, p, &len, &od, &os, e) < 0 ||
                chain_side(c->newb, c->shared_new, p, &len, &nd, &ns, e) < 0)
                return -1;
            bool may_differ = (od || nd) && !(os && ns);
            if (may_differ && !emit(c, p, p + len)) {
                *pos = c->next;
                return 0;
            }
            p += len;
        }
        *pos = end;
    }
    return 0;
}
