#include "qcow2/bitmap_merge.h"

#include <stdlib.h>
#include <string.h>

#include "qcow2/bitmap_ext.h"
#include "qcow2/bitmap_store.h"
#include "qcow2/format.h"
#include "util/xalloc.h"

#define STATUS_CHUNK (1ull << 30)

/* An image without bitmaps (a raw one too): an empty directory. */
static int read_dir(es_image *img, qcow2_bitmap_dir *d, es_err *e)
{
    if (!qcow2_has_bitmaps(img)) {
        *d = (qcow2_bitmap_dir){0};
        return 0;
    }
    return qcow2_bitmap_dir_read(img->file, &img->hdr, img->file_size, img->filename, d, e);
}

static int refuse_in_use(es_image *img, const char *role, es_err *e)
{
    qcow2_bitmap_dir d;
    if (read_dir(img, &d, e) < 0)
        return -1;
    int r = 0;
    for (uint32_t i = 0; r == 0 && i < d.count; i++)
        if (d.entries[i].flags & QCOW2_BITMAP_FLAG_IN_USE)
            r = es_err_set(e, 0, img->filename,
                           "%s has bitmap '%s' marked in use: a QEMU using the image stopped "
                           "without storing it, so it is inconsistent; remove it first "
                           "('qemu-img bitmap --remove')",
                           role, d.entries[i].name);
    qcow2_bitmap_dir_free(&d);
    return r;
}

int qcow2_bitmap_merge_refuse(es_image *top, es_image *base, uint64_t new_size, es_err *e)
{
    for (es_image *i = top; i && i != base; i = i->backing)
        if (refuse_in_use(i, i == top ? "TOP" : "an image above BASE", e) < 0)
            return -1;
    if (refuse_in_use(base, "BASE", e) < 0)
        return -1;
    if (qcow2_has_bitmaps(base) && new_size > base->virtual_size)
        return es_err_set(e, 0, base->filename,
                          "BASE has persistent dirty bitmaps and would grow to the size of TOP; "
                          "resize BASE first ('qemu-img resize')");
    return 0;
}

/* Mark in every enabled bitmap of m what img allocates in [0, end). */
static int mark_allocated(es_image *img, uint64_t end, qcow2_bitmap_merge *m, es_err *e)
{
    if (end > img->virtual_size)
        end = img->virtual_size;
    for (uint64_t off = 0; off < end;) {
        es_block_status bs;
        uint64_t max = end - off < STATUS_CHUNK ? end - off : STATUS_CHUNK;
        if (es_image_block_status(img, off, max, &bs, e) < 0)
            return -1;
        if (bs.len == 0)
            return es_err_set(e, 0, img->filename, "internal error: empty block status run");
        if (bs.kind != ES_BS_UNALLOC)
            for (uint32_t i = 0; i < m->dir.count; i++)
                if (m->bits[i].bits)
                    qcow2_bitmap_bits_mark(&m->bits[i], off, bs.len);
        off += bs.len;
    }
    return 0;
}

/* OR the same-named bitmaps of img into m's enabled ones. */
static int merge_named(es_image *img, qcow2_bitmap_merge *m, es_err *e)
{
    qcow2_bitmap_dir d;
    if (read_dir(img, &d, e) < 0)
        return -1;
    int r = 0;
    for (uint32_t k = 0; r == 0 && k < d.count; k++)
        for (uint32_t i = 0; r == 0 && i < m->dir.count; i++) {
            if (!m->bits[i].bits || strcmp(d.entries[k].name, m->dir.entries[i].name))
                continue;
            qcow2_bitmap_bits src;
            r = qcow2_bitmap_bits_load(img, &d.entries[k], &src, e);
            if (r == 0)
                qcow2_bitmap_bits_merge(&m->bits[i], &src);
            qcow2_bitmap_bits_free(&src);
        }
    qcow2_bitmap_dir_free(&d);
    return r;
}

/* At most a data cluster per table entry, and the table. */
/* BASE's enabled bitmaps; *any: there is one. */
static int prepare_existing(es_image *top, es_image *base, uint64_t top_size,
                            qcow2_bitmap_merge *m, bool *any, es_err *e)
{
    if (read_dir(base, &m->dir, e) < 0)
        return -1;
    m->bits = es_xcalloc(m->dir.count ? m->dir.count : 1, sizeof *m->bits);
    int r = 0;
    for (uint32_t i = 0; r == 0 && i < m->dir.count; i++) {
        const qcow2_bitmap *bm = &m->dir.entries[i];
        if (!(bm->flags & QCOW2_BITMAP_FLAG_AUTO))
            continue; /* disabled: untouched */
        r = qcow2_bitmap_bits_load(base, bm, &m->bits[i], e);
        *any = true;
        m->need_clusters += qcow2_bitmap_clusters(base, base->virtual_size, bm->granularity_bits);
    }
    for (es_image *i = top; r == 0 && *any && i && i != base; i = i->backing)
        r = mark_allocated(i, top_size, m, e);
    for (es_image *i = top; r == 0 && *any && i && i != base; i = i->backing)
        r = merge_named(i, m, e);
    /* A bitmap the commit adds nothing to stays where it is (a re-run of a
     * finished commit writes nothing). */
    for (uint32_t i = 0; r == 0 && i < m->dir.count; i++) {
        if (!m->bits[i].bits)
            continue;
        qcow2_bitmap_bits old;
        r = qcow2_bitmap_bits_load(base, &m->dir.entries[i], &old, e);
        if (r == 0 && !memcmp(old.bits, m->bits[i].bits, (old.nbits + 7) / 8))
            qcow2_bitmap_bits_free(&m->bits[i]);
        qcow2_bitmap_bits_free(&old);
    }
    return r;
}

/* What the new bitmaps need of BASE, checked before the first write. */
static int refuse_adopt(es_image *base, uint64_t top_size, qcow2_bitmap_merge *m, es_err *e)
{
    const qcow2_bitmap_adopt *a = &m->adopt;
    if (a->count == 0)
        return 0;
    if (top_size > base->virtual_size)
        return es_err_set(e, 0, base->filename,
                          "TOP's persistent dirty bitmap '%s' would go into BASE, which would "
                          "grow to the size of TOP; resize BASE first ('qemu-img resize')",
                          a->names[0]);
    if ((uint64_t)m->dir.count + a->count > QCOW2_BITMAP_MAX_COUNT)
        return es_err_set(e, 0, base->filename, "BASE cannot hold %u more bitmaps", a->count);
    if (qcow2_bitmap_ext_can_switch(base, e) < 0)
        return es_err_prefix(e, "BASE cannot receive TOP's persistent dirty bitmap '%s'",
                             a->names[0]);
    for (uint32_t i = 0; i < a->count; i++)
        m->need_clusters +=
            qcow2_bitmap_clusters(base, base->virtual_size, a->bits[i].granularity_bits);
    return 0;
}

int qcow2_bitmap_merge_prepare(es_image *top, es_image *base, uint64_t top_size,
                               qcow2_bitmap_merge *m, es_err *e)
{
    memset(m, 0, sizeof *m);
    bool any = false;
    int r = qcow2_bitmap_adopt_prepare(top, base, &m->adopt, e);
    if (r == 0 && qcow2_has_bitmaps(base))
        r = prepare_existing(top, base, top_size, m, &any, e);
    if (r == 0)
        r = refuse_adopt(base, top_size, m, e);
    if (any || m->adopt.count)
        m->need_clusters += 1 + ((uint64_t)m->dir.count + m->adopt.count) *
                                    (24 + QCOW2_BITMAP_MAX_NAME) / base->cluster_size;
    if (r < 0)
        qcow2_bitmap_merge_free(m);
    return r;
}

int qcow2_bitmap_merge_write(es_image *base, const qcow2_bitmap_merge *m, es_err *e)
{
    bool any = m->adopt.count > 0;
    for (uint32_t i = 0; i < m->dir.count; i++)
        any |= m->bits[i].bits != NULL;
    if (!any)
        return 0;
    uint32_t n = m->dir.count + m->adopt.count;
    qcow2_bitmap_out *out = es_xcalloc(n, sizeof *out);
    for (uint32_t i = 0; i < m->dir.count; i++) {
        const qcow2_bitmap *bm = &m->dir.entries[i];
        out[i] = (qcow2_bitmap_out){.name = bm->name,
                                    .flags = bm->flags,
                                    .granularity_bits = bm->granularity_bits,
                                    .keep = m->bits[i].bits ? NULL : bm,
                                    .bits = m->bits[i].bits ? &m->bits[i] : NULL};
    }
    for (uint32_t i = 0; i < m->adopt.count; i++)
        out[m->dir.count + i] = (qcow2_bitmap_out){
            .name = m->adopt.names[i],
            .flags = QCOW2_BITMAP_FLAG_AUTO,
            .granularity_bits = m->adopt.bits[i].granularity_bits,
            .bits = &m->adopt.bits[i]};
    int r = qcow2_bitmap_dir_replace(base, out, n, e);
    free(out);
    return r;
}

void qcow2_bitmap_merge_free(qcow2_bitmap_merge *m)
{
    for (uint32_t i = 0; m->bits && i < m->dir.count; i++)
        qcow2_bitmap_bits_free(&m->bits[i]);
    free(m->bits);
    qcow2_bitmap_dir_free(&m->dir);
    qcow2_bitmap_adopt_free(&m->adopt);
    memset(m, 0, sizeof *m);
}
