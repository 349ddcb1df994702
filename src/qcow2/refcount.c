/* Refcount table, refcount block cache and refcount arithmetic. */
#include "qcow2/refcount.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/compress.h"
#include "qcow2/format.h"
#include "qcow2/host_write.h"
#include "qcow2/overlap.h"
#include "qcow2/refcount_grow.h"
#include "util/xalloc.h"

#define RB_CACHE_BUDGET (4u << 20) /* bytes of cached refcount blocks */
#define RB_CACHE_MAX_SLOTS 16
#define RB_CACHE_MIN_SLOTS 2

typedef struct rb_slot {
    uint64_t rt_idx;  /* which refcount table entry the block belongs to */
    uint64_t off;     /* its host offset */
    uint8_t *data;    /* cluster_size bytes, on-disk form */
    uint64_t last_use;
    bool used;
    bool dirty;
} rb_slot;

/* Declared (opaque) in image.h. */
struct qcow2_refblock_cache {
    rb_slot *slots;
    size_t nslots;
    uint64_t clock;
    uint64_t free_hint; /* no free cluster below this index */
};

uint64_t qcow2_refblock_entries(const es_image *img)
{
    return img->cluster_size * 8 / img->refcount_bits;
}

static uint64_t qcow2_refcount_max(const es_image *img)
{
    return img->refcount_bits == 64 ? UINT64_MAX : (1ull << img->refcount_bits) - 1;
}

uint64_t qcow2_refblock_entry_get(const uint8_t *block, uint64_t i, uint32_t bits)
{
    if (bits < 8) {
        uint64_t bit = i * bits;
        return (uint64_t)(block[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
    }
    const uint8_t *p = block + i * (bits / 8);
    switch (bits) {
    case 8: return p[0];
    case 16: return be16_load(p);
    case 32: return be32_load(p);
    default: return be64_load(p);
    }
}

void qcow2_refblock_entry_set(uint8_t *block, uint64_t i, uint32_t bits, uint64_t value)
{
    if (bits < 8) {
        uint64_t bit = i * bits;
        uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit % 8));
        uint8_t *b = &block[bit / 8];
        *b = (uint8_t)((*b & ~mask) | ((value << (bit % 8)) & mask));
        return;
    }
    uint8_t *p = block + i * (bits / 8);
    switch (bits) {
    case 8: p[0] = (uint8_t)value; break;
    case 16: be16_store(p, (uint16_t)value); break;
    case 32: be32_store(p, (uint32_t)value); break;
    default: be64_store(p, value); break;
    }
}

int qcow2_refcount_open(es_image *img, es_err *e)
{
    if (img->rb_cache)
        return 0;
    if (img->format != ES_FMT_QCOW2)
        return es_err_set(e, EINVAL, img->filename, "refcounts: not a qcow2 image");
    const qcow2_header *h = &img->hdr;
    uint64_t cs = img->cluster_size;
    uint64_t bytes = (uint64_t)h->refcount_table_clusters * cs;
    if (h->refcount_table_clusters == 0 || bytes > QCOW2_MAX_REFTABLE_BYTES)
        return es_err_set(e, 0, img->filename, "refcount table of %u clusters is invalid",
                          h->refcount_table_clusters);
    if (h->refcount_table_offset == 0 || (h->refcount_table_offset & (cs - 1)) ||
        h->refcount_table_offset >= img->file_size)
        return es_err_set(e, 0, img->filename, "refcount table offset 0x%llx is invalid",
                          (unsigned long long)h->refcount_table_offset);
    struct qcow2_refblock_cache *c = es_xcalloc(1, sizeof *c);
    uint64_t *rt = es_xmalloc(bytes);
    size_t n = RB_CACHE_BUDGET / cs;
    n = n > RB_CACHE_MAX_SLOTS ? RB_CACHE_MAX_SLOTS : n < RB_CACHE_MIN_SLOTS ? RB_CACHE_MIN_SLOTS : n;
    c->slots = es_xcalloc(n, sizeof *c->slots);
    c->nslots = n;
    size_t got = 0;
    if (es_file_pread_some(img->file, rt, bytes, h->refcount_table_offset, &got, e) < 0) {
        free(rt);
        free(c->slots);
        free(c);
        return es_err_prefix(e, "reading the refcount table");
    }
    memset((uint8_t *)rt + got, 0, bytes - got);
    uint64_t entries = bytes / 8;
    for (uint64_t i = 0; i < entries; i++)
        rt[i] = be64_load(&rt[i]);
    free(img->reftable);
    img->reftable = rt;
    img->reftable_entries = entries;
    img->rb_cache = c;
    return 0;
}

void qcow2_refcount_close(es_image *img)
{
    struct qcow2_refblock_cache *c = img->rb_cache;
    if (!c)
        return;
    for (size_t i = 0; i < c->nslots; i++)
        free(c->slots[i].data);
    free(c->slots);
    free(c);
    img->rb_cache = NULL;
    free(img->reftable);
    img->reftable = NULL;
    img->reftable_entries = 0;
}

static int write_slot(es_image *img, rb_slot *s, es_err *e)
{
    if (qcow2_host_write(img, QCOW2_OL_REFBLOCK, s->data, img->cluster_size, s->off, e) < 0)
        return es_err_prefix(e, "writing refcount block");
    s->dirty = false;
    return 0;
}

/* Write every dirty cached block (no fdatasync). */
static int qcow2_refcount_writeback(es_image *img, es_err *e)
{
    struct qcow2_refblock_cache *c = img->rb_cache;
    if (!c)
        return 0;
    /* In host order: fewer seeks, and the fault-injection points are stable. */
    for (;;) {
        rb_slot *next = NULL;
        for (size_t i = 0; i < c->nslots; i++)
            if (c->slots[i].used && c->slots[i].dirty && (!next || c->slots[i].off < next->off))
                next = &c->slots[i];
        if (!next)
            return 0;
        if (write_slot(img, next, e) < 0)
            return -1;
    }
}

int qcow2_refcount_flush(es_image *img, es_err *e)
{
    if (qcow2_refcount_writeback(img, e) < 0)
        return -1;
    return es_file_flush(img->file, e);
}

/* Host offset of refcount block rt_idx, validated; 0 when absent. */
static int refblock_offset(es_image *img, uint64_t rt_idx, uint64_t *off, es_err *e)
{
    *off = 0;
    if (rt_idx >= img->reftable_entries)
        return 0;
    uint64_t ent = img->reftable[rt_idx];
    if (ent & QCOW2_REFT_RESERVED_MASK)
        return es_err_set(e, 0, img->filename,
                          "refcount table entry %llu (0x%016llx) has reserved bits set",
                          (unsigned long long)rt_idx, (unsigned long long)ent);
    uint64_t o = ent & QCOW2_REFT_OFFSET_MASK;
    if (o & (img->cluster_size - 1))
        return es_err_set(e, 0, img->filename,
                          "refcount block %llu at 0x%llx is not cluster aligned",
                          (unsigned long long)rt_idx, (unsigned long long)o);
    if (o && o >= img->file_size)
        return es_err_set(e, 0, img->filename,
                          "refcount block %llu at 0x%llx lies beyond end of file (0x%llx)",
                          (unsigned long long)rt_idx, (unsigned long long)o,
                          (unsigned long long)img->file_size);
    *off = o;
    return 0;
}

/* The cached block rt_idx (loaded on demand); *slot NULL when it is absent. */
static int get_block(es_image *img, uint64_t rt_idx, rb_slot **slot, es_err *e)
{
    struct qcow2_refblock_cache *c = img->rb_cache;
    *slot = NULL;
    rb_slot *victim = NULL;
    for (size_t i = 0; i < c->nslots; i++) {
        rb_slot *s = &c->slots[i];
        if (s->used && s->rt_idx == rt_idx) {
            s->last_use = ++c->clock;
            *slot = s;
            return 0;
        }
        if (!victim || !s->used || (victim->used && s->last_use < victim->last_use))
            victim = s;
    }
    uint64_t off;
    if (refblock_offset(img, rt_idx, &off, e) < 0)
        return -1;
    if (!off)
        return 0;
    if (victim->used && victim->dirty && write_slot(img, victim, e) < 0)
        return -1;
    victim->used = false;
    if (!victim->data)
        victim->data = es_io_alloc(img->cluster_size);
    size_t got = 0;
    if (es_file_pread_some(img->file, victim->data, img->cluster_size, off, &got, e) < 0)
        return es_err_prefix(e, "reading refcount block %llu", (unsigned long long)rt_idx);
    memset(victim->data + got, 0, img->cluster_size - got);
    victim->rt_idx = rt_idx;
    victim->off = off;
    victim->used = true;
    victim->dirty = false;
    victim->last_use = ++c->clock;
    *slot = victim;
    return 0;
}

/* A refcount block that was just written to disk by the grow code: forget
 * any stale copy (there cannot be one for an absent block, but be safe). */
void qcow2_refcount_forget_block(es_image *img, uint64_t rt_idx)
{
    struct qcow2_refblock_cache *c = img->rb_cache;
    for (size_t i = 0; c && i < c->nslots; i++)
        if (c->slots[i].used && c->slots[i].rt_idx == rt_idx)
            c->slots[i].used = false;
}

int qcow2_refcount_get(es_image *img, uint64_t cluster, uint64_t *rc, es_err *e)
{
    uint64_t rbe = qcow2_refblock_entries(img);
    rb_slot *s;
    if (get_block(img, cluster / rbe, &s, e) < 0)
        return -1;
    *rc = s ? qcow2_refblock_entry_get(s->data, cluster % rbe, img->refcount_bits) : 0;
    return 0;
}

int qcow2_refcount_add(es_image *img, uint64_t cluster, int64_t delta, es_err *e)
{
    uint64_t rbe = qcow2_refblock_entries(img);
    uint64_t rt_idx = cluster / rbe;
    rb_slot *s;
    if (get_block(img, rt_idx, &s, e) < 0)
        return -1;
    if (!s) {
        if (delta < 0)
            return es_err_set(e, 0, img->filename,
                              "refcount of cluster 0x%llx would drop below zero "
                              "(no refcount block covers it)",
                              (unsigned long long)(cluster * img->cluster_size));
        /* Only reached for a cluster the allocator did not hand out: the
         * whole range is free, so its first cluster can hold the block. */
        if (qcow2_refblock_create(img, rt_idx, rt_idx * rbe, e) < 0)
            return -1;
        if (get_block(img, rt_idx, &s, e) < 0)
            return -1;
        if (!s)
            return es_err_set(e, EIO, img->filename, "internal error: new refcount block missing");
    }
    uint64_t i = cluster % rbe;
    uint64_t old = qcow2_refblock_entry_get(s->data, i, img->refcount_bits);
    uint64_t nv;
    if (delta < 0) {
        uint64_t d = (uint64_t)(-(delta + 1)) + 1;
        if (old < d)
            return es_err_set(e, 0, img->filename,
                              "refcount of cluster at 0x%llx would drop below zero (it is %llu)",
                              (unsigned long long)(cluster * img->cluster_size),
                              (unsigned long long)old);
        nv = old - d;
    } else {
        uint64_t d = (uint64_t)delta;
        if (qcow2_refcount_max(img) - old < d)
            return es_err_set(e, 0, img->filename,
                              "refcount of cluster at 0x%llx would overflow %u bits",
                              (unsigned long long)(cluster * img->cluster_size),
                              img->refcount_bits);
        nv = old + d;
    }
    if (nv == old)
        return 0;
    qcow2_refblock_entry_set(s->data, i, img->refcount_bits, nv);
    s->dirty = true;
    if (nv == 0 && cluster < img->rb_cache->free_hint)
        img->rb_cache->free_hint = cluster;
    return 0;
}

int qcow2_refcount_from(es_image *img, uint64_t first, bool clear, uint64_t *n, es_err *e)
{
    *n = 0;
    if (qcow2_refcount_open(img, e) < 0)
        return -1;
    uint64_t rbe = qcow2_refblock_entries(img);
    for (uint64_t rt = first / rbe; rt < img->reftable_entries; rt++) {
        rb_slot *s;
        if (get_block(img, rt, &s, e) < 0)
            return -1;
        for (uint64_t i = rt == first / rbe ? first % rbe : 0; s && i < rbe; i++) {
            if (qcow2_refblock_entry_get(s->data, i, img->refcount_bits) == 0)
                continue;
            (*n)++;
            if (clear) {
                qcow2_refblock_entry_set(s->data, i, img->refcount_bits, 0);
                s->dirty = true;
            }
        }
    }
    if (clear && *n && first < img->rb_cache->free_hint)
        img->rb_cache->free_hint = first;
    return 0;
}

/* Lowest run of n free clusters at or after `from`; missing refcount blocks
 * count as free (they are created when the clusters are taken). *lowest is
 * the first free cluster seen (the new hint). */
static int find_free(es_image *img, uint64_t from, uint64_t n, uint64_t *start, uint64_t *lowest,
                     es_err *e)
{
    uint64_t rbe = qcow2_refblock_entries(img);
    uint64_t run_start = from, run_len = 0;
    uint64_t c = from;
    bool seen = false;
    for (;;) {
        uint64_t rt_idx = c / rbe;
        rb_slot *s;
        if (get_block(img, rt_idx, &s, e) < 0)
            return -1;
        uint64_t block_end = (rt_idx + 1) * rbe;
        if (!s) {
            /* The whole block is free. */
            if (!seen) {
                seen = true;
                *lowest = c;
            }
            if (run_len == 0)
                run_start = c;
            run_len += block_end - c;
            c = block_end;
        } else {
            for (; c < block_end; c++) {
                if (qcow2_refblock_entry_get(s->data, c % rbe, img->refcount_bits) == 0) {
                    if (!seen) {
                        seen = true;
                        *lowest = c;
                    }
                    if (run_len++ == 0)
                        run_start = c;
                    if (run_len >= n)
                        break;
                } else {
                    run_len = 0;
                }
            }
        }
        if (run_len >= n) {
            *start = run_start;
            return 0;
        }
        if (c >= (UINT64_MAX >> img->cluster_bits) - n)
            return es_err_set(e, ENOSPC, img->filename, "no free cluster found");
    }
}

int qcow2_alloc_clusters(es_image *img, uint64_t n, uint64_t *host_off, es_err *e)
{
    if (qcow2_refcount_open(img, e) < 0)
        return -1;
    struct qcow2_refblock_cache *c = img->rb_cache;
    if (n == 0)
        return es_err_set(e, EINVAL, img->filename, "internal error: allocating 0 clusters");
    uint64_t rbe = qcow2_refblock_entries(img);
    uint64_t start = 0, lowest = 0;
    for (;;) {
        if (find_free(img, c->free_hint, n, &start, &lowest, e) < 0)
            return -1;
        c->free_hint = lowest;
        /* Every block covering the run must exist before it is taken. A
         * missing one goes to the lowest free cluster (where a block that
         * counts it exists, or else as the first cluster of its own range),
         * which may push the run further: search again after each. */
        uint64_t missing = UINT64_MAX;
        for (uint64_t rt = start / rbe; rt <= (start + n - 1) / rbe; rt++) {
            uint64_t off;
            if (refblock_offset(img, rt, &off, e) < 0)
                return -1;
            if (!off) {
                missing = rt;
                break;
            }
        }
        if (missing == UINT64_MAX)
            break;
        uint64_t lowest_off;
        if (refblock_offset(img, lowest / rbe, &lowest_off, e) < 0)
            return -1;
        int r = lowest_off ? qcow2_refblock_create(img, missing, lowest, e)
                           : qcow2_refblock_create(img, lowest / rbe, lowest, e);
        if (r < 0)
            return -1;
    }
    for (uint64_t i = 0; i < n; i++)
        if (qcow2_refcount_add(img, start + i, 1, e) < 0)
            return -1;
    if (start == c->free_hint)
        c->free_hint = start + n; /* else a shorter free run lies below */
    *host_off = start << img->cluster_bits;
    return 0;
}

int qcow2_alloc_cluster(es_image *img, uint64_t *host_off, es_err *e)
{
    return qcow2_alloc_clusters(img, 1, host_off, e);
}

int qcow2_free_cluster(es_image *img, uint64_t host_off, es_err *e)
{
    if (qcow2_refcount_open(img, e) < 0)
        return -1;
    return qcow2_refcount_add(img, host_off >> img->cluster_bits, -1, e);
}

int qcow2_free_compressed(es_image *img, uint64_t l2_entry, es_err *e)
{
    if (qcow2_refcount_open(img, e) < 0)
        return -1;
    uint64_t off, nbytes;
    qcow2_compressed_range(img->cluster_bits, l2_entry, &off, &nbytes);
    if (nbytes == 0)
        return 0;
    for (uint64_t c = off >> img->cluster_bits; c <= (off + nbytes - 1) >> img->cluster_bits; c++)
        if (qcow2_refcount_add(img, c, -1, e) < 0)
            return -1;
    return 0;
}

int qcow2_refuse_unshared(const es_image *img, const char *what, uint64_t off, uint64_t rc,
                          es_err *e)
{
    return es_err_set(e, 0, img->filename,
                      "%s at 0x%llx has refcount %llu but the image has no internal snapshot "
                      "to share it: a cluster is used twice or its refcount is too high (which "
                      "a check may not see); nothing was written, and a copy made by qemu-img "
                      "convert is consistent",
                      what, (unsigned long long)off, (unsigned long long)rc);
}
