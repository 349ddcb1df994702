/* L2 table cache: a fixed number of slots (budget / table size, at least 2),
 * found through a small chained hash on the table's host offset, evicted in
 * least-recently-used order. Memory never exceeds the budget. */
#include "qcow2/l2_cache.h"
#include "util/xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NONE (-1)

typedef struct l2_slot {
    uint64_t off;   /* host offset of the cached table */
    uint8_t *data;  /* table_bytes, allocated on first use of the slot */
    int prev, next; /* LRU list (head = most recent) */
    int hnext;      /* hash chain, or free list when unused */
    int used;
} l2_slot;

struct qcow2_l2_cache {
    size_t table_bytes;
    int nslots;
    l2_slot *slots;
    int *buckets;
    uint32_t bucket_mask;
    int lru_head, lru_tail;
    int free_head;
};

/* Table buffers of all caches. Only the main thread touches L2 caches (the
 * commit's writer thread moves data only). */
static size_t total_bytes;

size_t qcow2_l2_cache_total_bytes(void)
{
    return total_bytes;
}

static uint32_t bucket_of(const struct qcow2_l2_cache *c, uint64_t off)
{
    return (uint32_t)(((off >> 9) * 0x9e3779b97f4a7c15ull) >> 32) & c->bucket_mask;
}

int qcow2_l2_cache_new(struct qcow2_l2_cache **out, size_t table_bytes, es_err *e)
{
    *out = NULL;
    if (table_bytes == 0)
        return es_err_set(e, EINVAL, NULL, "L2 cache: zero table size");
    size_t n = QCOW2_L2_CACHE_BUDGET / table_bytes;
    if (n < 2)
        n = 2;
    uint32_t nb = 1;
    while (nb < 2 * n)
        nb <<= 1;
    struct qcow2_l2_cache *c = es_xcalloc(1, sizeof *c);
    c->slots = es_xcalloc(n, sizeof *c->slots);
    c->buckets = es_xmalloc(nb * sizeof *c->buckets);
    c->table_bytes = table_bytes;
    c->nslots = (int)n;
    c->bucket_mask = nb - 1;
    for (uint32_t i = 0; i < nb; i++)
        c->buckets[i] = NONE;
    for (int i = 0; i < c->nslots; i++)
        c->slots[i].hnext = i + 1 < c->nslots ? i + 1 : NONE;
    c->free_head = 0;
    c->lru_head = c->lru_tail = NONE;
    *out = c;
    return 0;
}

void qcow2_l2_cache_free(struct qcow2_l2_cache *c)
{
    if (!c)
        return;
    if (c->slots)
        for (int i = 0; i < c->nslots; i++)
            if (c->slots[i].data) {
                free(c->slots[i].data);
                total_bytes -= c->table_bytes;
            }
    free(c->slots);
    free(c->buckets);
    free(c);
}

static void lru_unlink(struct qcow2_l2_cache *c, int i)
{
    l2_slot *s = &c->slots[i];
    if (s->prev != NONE)
        c->slots[s->prev].next = s->next;
    else
        c->lru_head = s->next;
    if (s->next != NONE)
        c->slots[s->next].prev = s->prev;
    else
        c->lru_tail = s->prev;
    s->prev = s->next = NONE;
}

static void lru_push_front(struct qcow2_l2_cache *c, int i)
{
    l2_slot *s = &c->slots[i];
    s->prev = NONE;
    s->next = c->lru_head;
    if (c->lru_head != NONE)
        c->slots[c->lru_head].prev = i;
    c->lru_head = i;
    if (c->lru_tail == NONE)
        c->lru_tail = i;
}

static int hash_find(const struct qcow2_l2_cache *c, uint64_t off)
{
    for (int i = c->buckets[bucket_of(c, off)]; i != NONE; i = c->slots[i].hnext)
        if (c->slots[i].off == off)
            return i;
    return NONE;
}

static void hash_remove(struct qcow2_l2_cache *c, int i)
{
    int *link = &c->buckets[bucket_of(c, c->slots[i].off)];
    while (*link != NONE && *link != i)
        link = &c->slots[*link].hnext;
    if (*link == i)
        *link = c->slots[i].hnext;
}

/* Take a slot out of use and put it on the free list (its buffer is kept). */
static void slot_release(struct qcow2_l2_cache *c, int i)
{
    hash_remove(c, i);
    lru_unlink(c, i);
    c->slots[i].used = 0;
    c->slots[i].hnext = c->free_head;
    c->free_head = i;
}

int qcow2_l2_get(es_image *img, uint64_t l2_off, const uint8_t **table, es_err *e)
{
    struct qcow2_l2_cache *c = img->l2_cache;
    *table = NULL;
    int i = hash_find(c, l2_off);
    if (i != NONE) {
        if (c->lru_head != i) {
            lru_unlink(c, i);
            lru_push_front(c, i);
        }
        *table = c->slots[i].data;
        return 0;
    }
    bool two_used = c->lru_tail != NONE && c->lru_tail != c->lru_head;
    if (c->free_head == NONE ||
        (!c->slots[c->free_head].data && two_used &&
         total_bytes + c->table_bytes > QCOW2_L2_CACHE_TOTAL))
        slot_release(c, c->lru_tail); /* its buffer heads the free list now */
    i = c->free_head;
    l2_slot *s = &c->slots[i];
    if (!s->data) {
        s->data = es_io_alloc(c->table_bytes);
        total_bytes += c->table_bytes;
    }
    /* The caller checked that the table starts inside the file; a tail cut
     * off by the end of the file reads as zeroes (unallocated), as in QEMU. */
    size_t got = 0;
    if (es_file_pread_some(img->file, s->data, c->table_bytes, l2_off, &got, e) < 0)
        return es_err_prefix(e, "reading L2 table at 0x%llx", (unsigned long long)l2_off);
    if (got < c->table_bytes)
        memset(s->data + got, 0, c->table_bytes - got);
    c->free_head = s->hnext;
    s->off = l2_off;
    s->used = 1;
    uint32_t b = bucket_of(c, l2_off);
    s->hnext = c->buckets[b];
    c->buckets[b] = i;
    lru_push_front(c, i);
    *table = s->data;
    return 0;
}

void qcow2_l2_cache_invalidate(es_image *img, uint64_t l2_off)
{
    struct qcow2_l2_cache *c = img->l2_cache;
    if (!c)
        return;
    int i = hash_find(c, l2_off);
    if (i != NONE)
        slot_release(c, i);
}

void qcow2_l2_cache_clear(es_image *img)
{
    struct qcow2_l2_cache *c = img->l2_cache;
    if (!c)
        return;
    while (c->lru_head != NONE)
        slot_release(c, c->lru_head);
}
