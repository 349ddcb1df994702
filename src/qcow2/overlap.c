#include "qcow2/overlap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/bitmap_dir.h"
#include "qcow2/format.h"
#include "qcow2/refcount.h"
#include "qcow2/snapshot_table.h"
#include "util/xalloc.h"

#define HDR_INCOMPAT 72
#define L1_CHUNK_ENTRIES 4096

/* Clusters [start, end) (bytes, cluster aligned) holding structures of
 * the kinds in `kind` (more than one bit: an L2 table shared by the
 * active L1 and a snapshot's). */
typedef struct ol_region {
    uint64_t start, end;
    unsigned kind;
} ol_region;

typedef struct ol_vec {
    ol_region *v;
    size_t n, cap;
} ol_vec;

/* Declared (opaque) in image.h. */
struct qcow2_overlap {
    ol_vec fixed;  /* snapshot and bitmap structures: read once */
    ol_vec all;    /* fixed + what the header, L1 and refcount table name: sorted, disjoint */
    bool stale;    /* a table moved: rebuild before any check */
    bool stale_l2; /* L1 entries changed: rebuild before checking anything but L1 entries */
};

/* The structure a kind names in messages ("active L1 table"). */
static const char *qcow2_overlap_name(unsigned kind)
{
    static const char *const names[] = {
        "qcow2 header",   "active L1 table", "active L2 table", "refcount table",
        "refcount block", "snapshot table",  "inactive L1 table", "inactive L2 table",
        "bitmap directory", "bitmap table",
    };
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
        if (kind & (1u << i))
            return names[i];
    return "metadata";
}

static int vec_add(ol_vec *v, const es_image *img, uint64_t off, uint64_t len, unsigned kind,
                   es_err *e)
{
    if (len == 0)
        return 0;
    uint64_t cs = img->cluster_size;
    if (off > UINT64_MAX - len - cs)
        return es_err_set(e, 0, img->filename, "the %s at 0x%llx lies beyond any file",
                          qcow2_overlap_name(kind), (unsigned long long)off);
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        v->v = es_xreallocarray(v->v, cap, sizeof *v->v);
        v->cap = cap;
    }
    v->v[v->n++] = (ol_region){off & ~(cs - 1), (off + len + cs - 1) & ~(cs - 1), kind};
    return 0;
}

/* An L1 or refcount table entry's table offset, or 0 when it names none
 * usable (a broken entry is refused by the code that follows it). */
static uint64_t table_at(const es_image *img, uint64_t ent, uint64_t mask, uint64_t reserved)
{
    uint64_t off = ent & mask;
    if (!off || (ent & reserved) || (off & (img->cluster_size - 1)))
        return 0;
    return off;
}

/* The L2 tables a snapshot's L1 table names (read from the file). */
static int add_snapshot_l2s(ol_vec *v, es_image *img, const qcow2_snapshot *sn, uint8_t *chunk,
                            es_err *e)
{
    for (uint32_t base = 0; base < sn->l1_size; base += L1_CHUNK_ENTRIES) {
        uint32_t n = sn->l1_size - base < L1_CHUNK_ENTRIES ? sn->l1_size - base : L1_CHUNK_ENTRIES;
        if (es_file_pread(img->file, chunk, (size_t)n * 8, sn->l1_table_offset + (uint64_t)base * 8,
                          e) < 0)
            return es_err_prefix(e, "reading the L1 table of snapshot %s", sn->id);
        for (uint32_t k = 0; k < n; k++) {
            uint64_t l2 = table_at(img, be64_load(chunk + 8 * k), QCOW2_L1E_OFFSET_MASK,
                                   QCOW2_L1E_RESERVED_MASK);
            if (l2 && vec_add(v, img, l2, img->cluster_size, QCOW2_OL_INACTIVE_L2, e) < 0)
                return -1;
        }
    }
    return 0;
}

static int build_fixed(ol_vec *v, es_image *img, es_err *e)
{
    qcow2_snapshot_table t;
    if (qcow2_snapshot_table_read(img->file, &img->hdr, img->file_size, img->filename, &t, e) < 0)
        return -1;
    int r = vec_add(v, img, img->hdr.snapshots_offset, t.table_bytes, QCOW2_OL_SNAPSHOT_TABLE, e);
    uint8_t *chunk = r == 0 && t.count ? es_xmalloc(L1_CHUNK_ENTRIES * 8) : NULL;
    for (uint32_t i = 0; r == 0 && i < t.count; i++) {
        const qcow2_snapshot *sn = &t.entries[i];
        r = vec_add(v, img, sn->l1_table_offset, (uint64_t)sn->l1_size * 8, QCOW2_OL_INACTIVE_L1,
                    e);
        if (r == 0)
            r = add_snapshot_l2s(v, img, sn, chunk, e);
    }
    free(chunk);
    qcow2_snapshot_table_free(&t);
    if (r < 0)
        return -1;
    qcow2_bitmap_dir d;
    if (qcow2_bitmap_dir_read(img->file, &img->hdr, img->file_size, img->filename, &d, e) < 0)
        return -1;
    const qcow2_ext *ext = d.count ? qcow2_header_find_ext(&img->hdr, QCOW2_EXT_BITMAPS) : NULL;
    if (ext)
        r = vec_add(v, img, be64_load(ext->data + 16), be64_load(ext->data + 8),
                    QCOW2_OL_BITMAP_DIR, e);
    for (uint32_t i = 0; r == 0 && i < d.count; i++)
        r = vec_add(v, img, d.entries[i].table_offset, (uint64_t)d.entries[i].table_size * 8,
                    QCOW2_OL_BITMAP_TABLE, e);
    qcow2_bitmap_dir_free(&d);
    return r;
}

static int cmp_region(const void *pa, const void *pb)
{
    const ol_region *a = pa, *b = pb;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    if (a->end != b->end)
        return a->end < b->end ? -1 : 1;
    return a->kind < b->kind ? -1 : a->kind > b->kind;
}

/* Sort, merge the same table named twice (an L2 table the active L1 and
 * snapshots share), and refuse structures that share clusters otherwise.
 * Returns 1 for such an overlap (e says which), -1 on other errors. */
static int settle(ol_vec *v, const es_image *img, es_err *e)
{
    qsort(v->v, v->n, sizeof *v->v, cmp_region);
    size_t m = 0;
    const unsigned l2s = QCOW2_OL_ACTIVE_L2 | QCOW2_OL_INACTIVE_L2;
    for (size_t i = 0; i < v->n; i++) {
        ol_region *r = &v->v[i];
        if (m) {
            ol_region *p = &v->v[m - 1];
            if (p->start == r->start && p->end == r->end && !(p->kind & ~l2s) &&
                !(r->kind & ~l2s)) {
                p->kind |= r->kind;
                continue;
            }
            if (r->start < p->end) {
                es_err_set(e, 0, img->filename,
                           "metadata structures overlap: the %s at 0x%llx and the %s at 0x%llx "
                           "share the cluster at 0x%llx; the image is corrupt (see 'extsnap img "
                           "check')",
                           qcow2_overlap_name(p->kind), (unsigned long long)p->start,
                           qcow2_overlap_name(r->kind), (unsigned long long)r->start,
                           (unsigned long long)r->start);
                return 1;
            }
        }
        v->v[m++] = *r;
    }
    v->n = m;
    return 0;
}

/* The fixed part plus what the header, the L1 table and the refcount
 * table (in memory) name now. */
static int build_all(struct qcow2_overlap *o, es_image *img, es_err *e)
{
    ol_vec *v = &o->all;
    v->n = 0;
    for (size_t i = 0; i < o->fixed.n; i++)
        if (vec_add(v, img, o->fixed.v[i].start, o->fixed.v[i].end - o->fixed.v[i].start,
                    o->fixed.v[i].kind, e) < 0)
            return -1;
    const qcow2_header *h = &img->hdr;
    if (vec_add(v, img, 0, img->cluster_size, QCOW2_OL_HEADER, e) < 0 ||
        vec_add(v, img, h->l1_table_offset, (uint64_t)img->l1_size * 8, QCOW2_OL_ACTIVE_L1, e) < 0 ||
        vec_add(v, img, h->refcount_table_offset,
                (uint64_t)h->refcount_table_clusters * img->cluster_size, QCOW2_OL_REFTABLE, e) < 0)
        return -1;
    for (uint64_t i = 0; i < img->reftable_entries; i++) {
        uint64_t rb = table_at(img, img->reftable[i], QCOW2_REFT_OFFSET_MASK,
                               QCOW2_REFT_RESERVED_MASK);
        if (rb && vec_add(v, img, rb, img->cluster_size, QCOW2_OL_REFBLOCK, e) < 0)
            return -1;
    }
    for (uint32_t i = 0; i < img->l1_size; i++) {
        uint64_t l2 = table_at(img, img->l1[i], QCOW2_L1E_OFFSET_MASK, QCOW2_L1E_RESERVED_MASK);
        if (l2 && vec_add(v, img, l2, img->cluster_size, QCOW2_OL_ACTIVE_L2, e) < 0)
            return -1;
    }
    int r = settle(v, img, e);
    if (r == 0)
        o->stale = o->stale_l2 = false;
    return r;
}

void qcow2_overlap_close(es_image *img)
{
    struct qcow2_overlap *o = img->overlap;
    if (!o)
        return;
    free(o->fixed.v);
    free(o->all.v);
    free(o);
    img->overlap = NULL;
}

void qcow2_overlap_stale(es_image *img)
{
    if (img->overlap)
        img->overlap->stale = true;
}

void qcow2_overlap_stale_l2(es_image *img)
{
    if (img->overlap)
        img->overlap->stale_l2 = true;
}

/* A map up to date for a write of `what`: 0, 1 when the structures
 * overlap each other, -1. Writing L1 entries one by one (a batch links
 * its new L2 tables) needs no rebuild per entry: where the L1 table lies
 * has not changed, and the next write of anything else rebuilds once. */
static int ensure(es_image *img, unsigned what, es_err *e)
{
    const struct qcow2_overlap *o = img->overlap;
    if (o && !o->stale && (!o->stale_l2 || what == QCOW2_OL_ACTIVE_L1))
        return 0;
    if (img->format != ES_FMT_QCOW2)
        return es_err_set(e, EINVAL, img->filename, "internal error: overlap map of a raw image");
    if (qcow2_refcount_open(img, e) < 0)
        return -1;
    if (!img->overlap) {
        struct qcow2_overlap *o = es_xcalloc(1, sizeof *o);
        img->overlap = o;
        if (build_fixed(&o->fixed, img, e) < 0) {
            qcow2_overlap_close(img);
            return -1;
        }
    }
    return build_all(img->overlap, img, e);
}

int qcow2_overlap_open(es_image *img, es_err *e)
{
    return ensure(img, QCOW2_OL_DATA, e) == 0 ? 0 : -1;
}

/* 0: no overlap; 1: overlap (e says with what); -1: the map failed. */
static int find(es_image *img, unsigned what, uint64_t off, uint64_t len, es_err *e)
{
    if (len == 0)
        return 0;
    int r = ensure(img, what, e);
    if (r != 0)
        return r;
    const ol_vec *v = &img->overlap->all;
    uint64_t cs = img->cluster_size;
    uint64_t start = off & ~(cs - 1);
    uint64_t last = off > UINT64_MAX - len ? UINT64_MAX : off + len;
    uint64_t end = last > UINT64_MAX - cs ? UINT64_MAX : (last + cs - 1) & ~(cs - 1);
    size_t lo = 0, hi = v->n; /* first region ending after start */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v->v[mid].end <= start)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < v->n && v->v[i].start < end; i++) {
        unsigned other = v->v[i].kind & ~what;
        if (other) {
            es_err_set(e, 0, img->filename,
                       "Preventing invalid write on metadata (overlaps with %s): writing %s at "
                       "0x%llx (%llu bytes) would overwrite the %s at 0x%llx",
                       qcow2_overlap_name(other), what ? qcow2_overlap_name(what) : "guest data",
                       (unsigned long long)off, (unsigned long long)len,
                       qcow2_overlap_name(other), (unsigned long long)v->v[i].start);
            return 1;
        }
    }
    return 0;
}

int qcow2_overlap_check(es_image *img, unsigned what, uint64_t off, uint64_t len, es_err *e)
{
    return find(img, what, off, len, e) == 0 ? 0 : -1;
}

/* QEMU's reaction to an overlap found while writing: the corrupt bit, so
 * that nothing opens the image for writing before it is repaired. */
static void mark_corrupt(es_image *img)
{
    if (img->hdr.version < 3 || (img->hdr.incompatible_features & QCOW2_INCOMPAT_CORRUPT))
        return;
    uint64_t inc = img->hdr.incompatible_features | QCOW2_INCOMPAT_CORRUPT;
    uint8_t b[8];
    be64_store(b, inc);
    if (es_file_flush(img->file, NULL) == 0 && es_file_pwrite(img->file, b, 8, HDR_INCOMPAT, NULL) == 0 &&
        es_file_flush(img->file, NULL) == 0)
        img->hdr.incompatible_features = inc;
}

int qcow2_write_guard(es_image *img, unsigned what, uint64_t off, uint64_t len, es_err *e)
{
    if (img->format != ES_FMT_QCOW2 || len == 0)
        return 0;
    if (img->writes_stopped)
        return es_err_set(e, EIO, img->filename,
                          "not written: an earlier write to this image would have overwritten "
                          "its metadata");
    if (what == QCOW2_OL_ALL)
        return 0;
    int r = find(img, what, off, len, e);
    if (r <= 0)
        return r;
    img->writes_stopped = true;
    mark_corrupt(img);
    if (e) {
        size_t n = strlen(e->msg);
        snprintf(e->msg + n, sizeof e->msg - n, "; %s",
                 img->hdr.incompatible_features & QCOW2_INCOMPAT_CORRUPT
                     ? "image marked as corrupt, nothing more written"
                     : "nothing more written");
    }
    return -1;
}
