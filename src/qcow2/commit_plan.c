/* What an op does to BASE, from what covers it above and what BASE has
 * there now. The rules (QEMU's results, reference §4):
 * - zeroes over a whole cluster: a zero-flag cluster in a v3 BASE (extended
 *   L2: all-zero subcluster bits), the old host cluster released; in a v2
 *   BASE an unallocated cluster when nothing below BASE would show there,
 *   else explicit zeroes;
 * - anything else: data. It goes in place only into a cluster BASE owns
 *   alone (refcount 1, not compressed); otherwise into a new cluster, and
 *   the old one (shared with an internal snapshot, or compressed) is
 *   released. Parts of the cluster nothing above covers keep BASE's own
 *   view (BASE + below), read back and written with the rest; with
 *   extended L2 only the subclusters that change are written. */
#include <errno.h>
#include <string.h>

#include "qcow2/commit_internal.h"
#include "qcow2/format.h"
#include "qcow2/refcount.h"

#define EXTL2_ALL_ZERO 0xffffffff00000000ull

/* Coverage masks of the op from its segments. */
static void coverage(const commit_ctx *c, commit_op *op)
{
    uint64_t covered[QCOW2_SUBCLUSTERS] = {0};
    uint32_t data = 0;
    for (uint32_t i = 0; i < op->nseg; i++) {
        const commit_seg *s = &c->segs[op->seg_first + i];
        uint64_t a = s->guest - op->guest, b = a + s->len;
        for (uint32_t k = (uint32_t)(a / c->sub); k < c->nsub && k * c->sub < b; k++) {
            uint64_t lo = k * c->sub > a ? k * c->sub : a;
            uint64_t hi = (k + 1) * c->sub < b ? (k + 1) * c->sub : b;
            covered[k] += hi - lo;
            if (s->kind != SEG_ZERO)
                data |= 1u << k;
        }
    }
    op->full_mask = op->any_mask = op->zero_mask = 0;
    for (uint32_t k = 0; k < c->nsub; k++) {
        uint64_t start = op->guest + k * c->sub;
        uint64_t need = 0; /* bytes of the subcluster inside the virtual size */
        if (start < op->eff_end)
            need = op->eff_end - start < c->sub ? op->eff_end - start : c->sub;
        uint32_t bit = 1u << k;
        if (covered[k])
            op->any_mask |= bit;
        if (covered[k] >= need) {
            /* Past the virtual end counts as covered by zeroes. */
            op->full_mask |= bit;
            if (!(data & bit))
                op->zero_mask |= bit;
        }
    }
}

/* BASE's old cluster: host offset (0 = none), compressed?, refcount. */
typedef struct old_state {
    uint64_t host;
    bool compressed;
    bool zero_flag;
    uint64_t rc;
} old_state;

static int old_cluster(commit_ctx *c, commit_op *op, old_state *o, es_err *e)
{
    es_image *b = c->base;
    memset(o, 0, sizeof *o);
    if (qcow2_l2_lookup(b, op->guest, &op->old_entry, &op->old_bitmap, e) < 0)
        return -1;
    uint64_t ent = op->old_entry;
    if (ent & QCOW2_OFLAG_COMPRESSED) {
        o->compressed = true;
        return 0;
    }
    o->host = ent & QCOW2_L2E_OFFSET_MASK;
    o->zero_flag = !b->extended_l2 && b->hdr.version >= 3 && (ent & QCOW2_OFLAG_ZERO);
    if (o->host & (b->cluster_size - 1))
        return es_err_set(e, 0, b->filename,
                          "L2 entry 0x%016llx for guest offset 0x%llx: cluster offset not aligned",
                          (unsigned long long)ent, (unsigned long long)op->guest);
    if (!o->host)
        return 0;
    if (qcow2_refcount_get(b, o->host >> b->cluster_bits, &o->rc, e) < 0)
        return -1;
    if (o->rc == 0)
        return es_err_set(e, 0, b->filename,
                          "cluster at 0x%llx (guest offset 0x%llx) is in use but has refcount 0; "
                          "run 'extsnap img check -r all'",
                          (unsigned long long)o->host, (unsigned long long)op->guest);
    if (o->rc > 1 && b->hdr.nb_snapshots == 0)
        return qcow2_refuse_unshared(b, "cluster", o->host, o->rc, e);
    return 0;
}

static void release_old(commit_op *op, const old_state *o)
{
    if (o->compressed) {
        op->free_kind = FREE_COMP;
        op->free_val = op->old_entry;
    } else if (o->host) {
        op->free_kind = FREE_HOST;
        op->free_val = o->host;
    }
}

static void set_entry(commit_op *op, uint64_t entry, uint64_t bitmap)
{
    op->new_entry = entry;
    op->new_bitmap = bitmap;
    if (op->action == OP_NONE && (entry != op->old_entry || bitmap != op->old_bitmap))
        op->action = OP_ENTRY;
}

static int classify_standard(commit_ctx *c, commit_op *op, const old_state *o, es_err *e)
{
    es_image *b = c->base;
    if (op->zero_mask & 1) {
        if (b->hdr.version >= 3) {
            if (op->old_entry != QCOW2_OFLAG_ZERO)
                release_old(op, o);
            set_entry(op, QCOW2_OFLAG_ZERO, 0);
            return 0;
        }
        bool shows;
        if (commit_below_shows(c, op->guest, op->eff_end - op->guest, &shows, e) < 0)
            return -1;
        if (!shows) {
            if (op->old_entry != 0)
                release_old(op, o);
            set_entry(op, 0, 0);
            return 0;
        }
        /* v2 cannot say "zero": explicit zeroes hide what is below. */
    }
    op->action = OP_DATA;
    op->write_mask = 1;
    if (o->host && !o->compressed && o->rc == 1) {
        op->dest = o->host;
    } else {
        op->need_alloc = true;
        release_old(op, o);
    }
    /* dest is known only after allocation; commit_batch fills the entry. */
    op->new_bitmap = 0;
    return 0;
}

static void classify_extended(commit_op *op, const old_state *o)
{
    uint32_t all = 0xffffffffu;
    if (op->zero_mask == all) {
        if (op->old_entry != 0 || op->old_bitmap != EXTL2_ALL_ZERO)
            release_old(op, o);
        set_entry(op, 0, EXTL2_ALL_ZERO);
        return;
    }
    uint32_t old_alloc = o->compressed ? all : (uint32_t)op->old_bitmap;
    uint32_t old_zero = o->compressed ? 0 : (uint32_t)(op->old_bitmap >> 32);
    uint32_t new_zero = op->zero_mask | (old_zero & ~op->any_mask);
    uint32_t changed = op->any_mask & ~op->zero_mask; /* covered, needs data */
    uint32_t new_alloc = changed | (old_alloc & ~op->any_mask);
    bool reusable = o->host && !o->compressed && o->rc == 1;
    op->new_bitmap = new_alloc | ((uint64_t)new_zero << 32);
    if (new_alloc) {
        if (reusable) {
            op->dest = o->host;
            op->write_mask = changed;
        } else {
            op->need_alloc = true;
            op->write_mask = new_alloc; /* kept subclusters move along */
            release_old(op, o);
        }
        if (op->write_mask)
            op->action = OP_DATA;
        else
            set_entry(op, op->dest | QCOW2_OFLAG_COPIED, op->new_bitmap);
        return;
    }
    /* Only zero bits change: keep a host cluster BASE owns, drop others. */
    if (reusable) {
        set_entry(op, o->host | QCOW2_OFLAG_COPIED, op->new_bitmap);
    } else {
        release_old(op, o);
        set_entry(op, 0, op->new_bitmap);
    }
}

int commit_classify(commit_ctx *c, commit_op *op, es_err *e)
{
    coverage(c, op);
    op->action = OP_NONE;
    op->need_alloc = false;
    op->free_kind = FREE_NONE;
    op->write_mask = 0;
    op->dest = 0;
    if (c->raw_base) {
        op->action = OP_DATA;
        op->dest = op->guest;
        return 0;
    }
    old_state o;
    if (old_cluster(c, op, &o, e) < 0)
        return -1;
    if (c->base->extended_l2) {
        classify_extended(op, &o);
        return 0;
    }
    return classify_standard(c, op, &o, e);
}
