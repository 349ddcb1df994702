/* Replays QEMU 7.2's cluster allocator as it runs during `qemu-img create`
 * (learned from its behaviour and checked byte for byte against qemu-img
 * output in tests/e2e/t_img_create.sh). All positions are cluster indices;
 * every refcount involved is 0 or 1. */
#include "qcow2/create_layout.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/format.h"
#include "util/xalloc.h"

enum { SIM_OK = 0, SIM_AGAIN = 1 }; /* SIM_AGAIN: restart the free-space search; -1: error */

/* Far above anything a legal layout needs (32 MiB L1 + 8 MiB refcount table
 * in 512-byte clusters, plus refcount blocks), far below a memory problem. */
#define SIM_MAX_CLUSTERS (1ull << 22)
#define SIM_MAX_RETRIES (1ull << 22)

typedef struct sim {
    qcow2_create_layout *lay;
    uint64_t rpb;           /* refcounts per refcount block */
    uint64_t per_rt_cluster;/* reftable entries per cluster */
    uint64_t *rt;           /* reftable: refblock cluster index per entry, 0 = none */
    uint64_t rt_size;       /* entries */
    uint64_t rt_cluster;    /* where the current reftable lives */
    uint64_t free_index;    /* where the next free-space search starts */
    uint64_t end;           /* clusters written so far (file end, cluster granular) */
    es_err *e;
} sim;

static int sim_error(sim *s, int err, const char *what)
{
    return es_err_set(s->e, err, NULL, "planning the new image's metadata: %s", what);
}

static void note_written(sim *s, uint64_t first, uint64_t count)
{
    if (first + count > s->end)
        s->end = first + count;
}

static uint8_t get_rc(const sim *s, uint64_t c)
{
    uint64_t idx = c / s->rpb;
    if (idx >= s->rt_size || s->rt[idx] == 0)
        return 0;
    return c < s->lay->refcount_len ? s->lay->refcount[c] : 0;
}

static int set_rc(sim *s, uint64_t c, uint8_t v)
{
    qcow2_create_layout *lay = s->lay;
    if (c >= lay->refcount_len) {
        if (v == 0)
            return 0;
        if (c >= SIM_MAX_CLUSTERS)
            return sim_error(s, EFBIG, "image metadata too large");
        uint64_t len = lay->refcount_len ? lay->refcount_len : 1024;
        while (len <= c)
            len *= 2;
        uint8_t *n = es_xrealloc(lay->refcount, len);
        memset(n + lay->refcount_len, 0, len - lay->refcount_len);
        lay->refcount = n;
        lay->refcount_len = len;
    }
    lay->refcount[c] = v;
    return 0;
}

/* A refcount block starts out zeroed. */
static void clear_block_range(sim *s, uint64_t idx)
{
    uint64_t first = idx * s->rpb;
    if (first >= s->lay->refcount_len)
        return;
    uint64_t n = s->lay->refcount_len - first < s->rpb ? s->lay->refcount_len - first : s->rpb;
    memset(s->lay->refcount + first, 0, n);
}

/* First run of n clusters whose refcount is 0, searching from free_index on
 * (clusters with no refcount block count as free). */
static uint64_t alloc_noref(sim *s, uint64_t n)
{
    for (;;) {
        uint64_t i;
        for (i = 0; i < n; i++)
            if (get_rc(s, s->free_index++) != 0)
                break;
        if (i == n)
            return s->free_index - n;
    }
}

static int update_refcount(sim *s, uint64_t start, uint64_t n, int delta);
static int grow_reftable(sim *s, uint64_t start, uint64_t new_idx, uint64_t new_block);

/* Make sure the refcount block covering cluster c exists. Creating one
 * places it in a free cluster (self-describing when it falls in its own
 * range) and asks the caller to search for free space again; when the
 * refcount table is too small it is replaced by a bigger one. */
static int ensure_refblock(sim *s, uint64_t c)
{
    uint64_t idx = c / s->rpb;
    if (idx < s->rt_size && s->rt[idx])
        return SIM_OK;
    uint64_t nb = alloc_noref(s, 1);
    if (nb / s->rpb == idx) {
        clear_block_range(s, idx);
        if (set_rc(s, nb, 1) < 0)
            return -1;
    } else {
        int r = update_refcount(s, nb, 1, +1);
        if (r != SIM_OK)
            return r;
        clear_block_range(s, idx);
    }
    note_written(s, nb, 1);
    if (idx < s->rt_size) {
        s->rt[idx] = nb;
        return SIM_AGAIN;
    }
    uint64_t top = (c > nb ? c : nb) + 1;
    uint64_t blocks_used = top / s->rpb + (top % s->rpb != 0);
    if (grow_reftable(s, blocks_used * s->rpb, idx, nb) < 0)
        return -1;
    return SIM_AGAIN;
}

static int update_refcount(sim *s, uint64_t start, uint64_t n, int delta)
{
    uint64_t last_idx = UINT64_MAX;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t c = start + k;
        if (c / s->rpb != last_idx) {
            int r = ensure_refblock(s, c);
            if (r != SIM_OK) {
                if (r == SIM_AGAIN && s->free_index > start)
                    s->free_index = start;
                /* Undo what this call already counted. */
                if (k && update_refcount(s, start, k, -delta) < 0)
                    return -1;
                return r;
            }
            last_idx = c / s->rpb;
        }
        int v = get_rc(s, c) + delta;
        if (v < 0 || v > 1)
            return sim_error(s, 0, "internal error: unexpected refcount");
        if (v == 0 && c < s->free_index)
            s->free_index = c;
        if (set_rc(s, c, (uint8_t)v) < 0)
            return -1;
    }
    return SIM_OK;
}

/* Refcount blocks needed to cover `clusters` clusters plus the refcount
 * structures themselves; with `generous`, QEMU adds room for growth. */
static uint64_t refblocks_needed(const sim *s, uint64_t clusters, bool generous)
{
    uint64_t table = 0, blocks = 0, n = 0, last;
    do {
        last = n;
        uint64_t all = clusters + table + blocks;
        blocks = all / s->rpb + (all % s->rpb != 0);
        table = blocks / s->per_rt_cluster + (blocks % s->per_rt_cluster != 0);
        n = clusters + blocks + table;
        if (n == last && generous) {
            clusters += table / 2 + (table % 2);
            n = 0;
            generous = false;
        }
    } while (n != last);
    return blocks;
}

/* Replace the refcount table by a bigger one placed at cluster `start`
 * (after any new refcount blocks it needs there), with new_block hooked at
 * new_idx; the old table's clusters are freed. */
static int grow_reftable(sim *s, uint64_t start, uint64_t new_idx, uint64_t new_block)
{
    uint64_t total = refblocks_needed(s, start, true);
    uint64_t size = total + total / 2 + (total % 2);
    size = (size + s->per_rt_cluster - 1) / s->per_rt_cluster * s->per_rt_cluster;
    if (size * 8 > QCOW2_MAX_REFTABLE_BYTES)
        return sim_error(s, EFBIG, "refcount table would exceed 8 MiB");
    if (new_idx >= total)
        return sim_error(s, 0, "internal error: refcount block outside the new table");
    uint64_t *nt = es_xcalloc(size, sizeof *nt);
    memcpy(nt, s->rt, (s->rt_size < size ? s->rt_size : size) * sizeof *nt);
    nt[new_idx] = new_block;

    uint64_t area_idx = start / s->rpb, extra = 0;
    for (uint64_t i = area_idx; i < total; i++)
        extra += nt[i] == 0;
    uint64_t table_cluster = start + extra, table_clusters = size / s->per_rt_cluster;
    uint64_t end = table_cluster + table_clusters;
    uint64_t block = start;
    for (uint64_t i = area_idx; i < total; i++) {
        if (!nt[i]) {
            nt[i] = block++;
            clear_block_range(s, i);
        }
        uint64_t first = i * s->rpb;
        for (uint64_t j = first > start ? first : start; j < end && j < first + s->rpb; j++)
            if (set_rc(s, j, 1) < 0) {
                free(nt);
                return -1;
            }
    }
    note_written(s, start, end - start);

    /* The old table stays on disk as it was, in clusters that are now free. */
    qcow2_create_layout *lay = s->lay;
    qcow2_stale_table *st = es_xreallocarray(lay->stale, lay->n_stale + 1, sizeof *st);
    lay->stale = st;
    st[lay->n_stale++] = (qcow2_stale_table){s->rt_cluster, s->rt_size, s->rt};
    uint64_t old_cluster = s->rt_cluster, old_clusters = s->rt_size / s->per_rt_cluster;
    s->rt = nt;
    s->rt_size = size;
    s->rt_cluster = table_cluster;
    int r = update_refcount(s, old_cluster, old_clusters, -1);
    if (r < 0)
        return -1;
    if (r != SIM_OK)
        return sim_error(s, 0, "internal error: freeing the old refcount table");
    return 0;
}

/* QEMU's cluster allocation: search, count, and start over whenever
 * counting had to create refcount structures. */
static int alloc_clusters(sim *s, uint64_t n, uint64_t *out)
{
    for (uint64_t tries = 0; tries < SIM_MAX_RETRIES; tries++) {
        uint64_t c = alloc_noref(s, n);
        int r = update_refcount(s, c, n, +1);
        if (r < 0)
            return -1;
        if (r == SIM_OK) {
            *out = c;
            return 0;
        }
    }
    return sim_error(s, 0, "internal error: cluster allocation does not converge");
}

/* Convert cluster indices to byte offsets for the writer. */
static void finish(sim *s)
{
    qcow2_create_layout *lay = s->lay;
    uint32_t cb = lay->cluster_bits;
    for (size_t i = 0; i < lay->n_stale; i++) {
        qcow2_stale_table *st = &lay->stale[i];
        st->offset <<= cb;
        for (uint64_t j = 0; j < st->entries; j++)
            st->table[j] <<= cb;
    }
    for (uint64_t j = 0; j < s->rt_size; j++)
        s->rt[j] <<= cb;
    lay->reftable = s->rt;
    lay->reftable_entries = s->rt_size;
    lay->reftable_offset = s->rt_cluster << cb;
    s->rt = NULL;
    uint64_t end = s->end << cb;
    if (lay->l1_size && lay->l1_offset + lay->l1_size * 8 > end)
        end = lay->l1_offset + lay->l1_size * 8;
    lay->file_end = end;
}

int qcow2_create_plan(qcow2_create_layout *lay, uint32_t cluster_bits, uint32_t refcount_order,
                      uint64_t l1_size, es_err *e)
{
    memset(lay, 0, sizeof *lay);
    if (cluster_bits < QCOW2_MIN_CLUSTER_BITS || cluster_bits > QCOW2_MAX_CLUSTER_BITS ||
        refcount_order > QCOW2_MAX_REFCOUNT_ORDER)
        return es_err_set(e, EINVAL, NULL, "invalid cluster size or refcount width");
    if (l1_size * 8 > QCOW2_MAX_L1_BYTES)
        return es_err_set(e, EFBIG, NULL, "L1 table would exceed 32 MiB");
    uint64_t cs = 1ull << cluster_bits;
    lay->cluster_bits = cluster_bits;
    lay->refcount_order = refcount_order;
    lay->refcounts_per_block = cs * 8 >> refcount_order;
    lay->l1_size = l1_size;

    sim s = {.lay = lay, .rpb = lay->refcounts_per_block, .per_rt_cluster = cs / 8, .e = e};
    /* What qemu-img writes first: header, a one-cluster refcount table in
     * cluster 1 whose first entry points at an empty refcount block in
     * cluster 2; then it counts those three clusters. */
    s.rt_size = s.per_rt_cluster;
    s.rt = es_xcalloc(s.rt_size, sizeof *s.rt);
    s.rt[0] = 2;
    s.rt_cluster = 1;
    note_written(&s, 0, 3);
    uint64_t first, l1 = 0;
    if (alloc_clusters(&s, 3, &first) < 0)
        goto fail;
    if (first != 0) {
        sim_error(&s, 0, "internal error: header not at cluster 0");
        goto fail;
    }
    if (l1_size) {
        uint64_t bytes = l1_size * 8;
        if (alloc_clusters(&s, (bytes + cs - 1) >> cluster_bits, &l1) < 0)
            goto fail;
        lay->l1_offset = l1 << cluster_bits;
    }
    finish(&s);
    return 0;
fail:
    free(s.rt);
    qcow2_create_layout_free(lay);
    return -1;
}

void qcow2_create_layout_free(qcow2_create_layout *lay)
{
    for (size_t i = 0; i < lay->n_stale; i++)
        free(lay->stale[i].table);
    free(lay->stale);
    free(lay->reftable);
    free(lay->refcount);
    memset(lay, 0, sizeof *lay);
}

void qcow2_create_layout_refblock(const qcow2_create_layout *lay, uint64_t index, uint8_t *buf)
{
    uint64_t cs = 1ull << lay->cluster_bits, rpb = lay->refcounts_per_block;
    uint32_t bits = 1u << lay->refcount_order;
    memset(buf, 0, cs);
    for (uint64_t j = 0; j < rpb; j++) {
        uint64_t c = index * rpb + j;
        if (c >= lay->refcount_len)
            break;
        if (!lay->refcount[c])
            continue;
        if (bits >= 8) /* big-endian value of bits/8 bytes: set its last byte */
            buf[(j + 1) * (bits / 8) - 1] = 1;
        else /* sub-byte widths are packed from the least significant bit */
            buf[j * bits / 8] |= (uint8_t)(1u << (j * bits % 8));
    }
}
