#include "qcow2/bitmap_adopt.h"

#include <stdlib.h>
#include <string.h>

#include "qcow2/bitmap_dir.h"
#include "util/xalloc.h"

/* The directories of the whole chain, TOP first (an image without bitmaps,
 * a raw one too: empty). */
typedef struct chain_dirs {
    es_image **imgs;
    qcow2_bitmap_dir *dirs;
    bool *unreadable; /* below BASE: a directory that could not be read */
    size_t n;
} chain_dirs;

static void chain_free(chain_dirs *c)
{
    for (size_t i = 0; i < c->n; i++)
        qcow2_bitmap_dir_free(&c->dirs[i]);
    free(c->dirs);
    free(c->imgs);
    free(c->unreadable);
    memset(c, 0, sizeof *c);
}

/* A directory of TOP down to BASE that cannot be read refuses the commit;
 * one below BASE (the commit does not touch those images) only makes every
 * name's chain invalid: nothing is carried rather than a bitmap that might
 * miss changes. */
static int chain_read(es_image *top, es_image *base, chain_dirs *c, es_err *e)
{
    memset(c, 0, sizeof *c);
    for (es_image *i = top; i; i = i->backing)
        c->n++;
    c->imgs = es_xcalloc(c->n, sizeof *c->imgs);
    c->dirs = es_xcalloc(c->n, sizeof *c->dirs);
    c->unreadable = es_xcalloc(c->n, sizeof *c->unreadable);
    bool below = false;
    size_t k = 0;
    for (es_image *i = top; i; i = i->backing, k++) {
        c->imgs[k] = i;
        es_err ignored = {0};
        if (qcow2_has_bitmaps(i) && qcow2_bitmap_dir_read(i->file, &i->hdr, i->file_size,
                                                          i->filename, &c->dirs[k],
                                                          below ? &ignored : e) < 0) {
            if (!below) {
                chain_free(c);
                return -1;
            }
            c->unreadable[k] = true;
        }
        below |= i == base;
    }
    return 0;
}

static const qcow2_bitmap *find(const qcow2_bitmap_dir *d, const char *name)
{
    for (uint32_t i = 0; i < d->count; i++)
        if (!strcmp(d->entries[i].name, name))
            return &d->entries[i];
    return NULL;
}

/* libvirt's rule: from TOP down without a gap, recording and consistent. */
static bool chain_valid(const chain_dirs *c, const char *name)
{
    bool ended = false;
    for (size_t k = 0; k < c->n; k++) {
        if (c->unreadable[k])
            return false;
        const qcow2_bitmap *bm = find(&c->dirs[k], name);
        if (!bm) {
            ended = true;
            continue;
        }
        if (ended || !(bm->flags & QCOW2_BITMAP_FLAG_AUTO) || (bm->flags & QCOW2_BITMAP_FLAG_IN_USE))
            return false;
    }
    return true;
}

/* The union of the same-named bitmaps from TOP down to above BASE. */
static int merge_down(const chain_dirs *c, es_image *base, const qcow2_bitmap *top_bm,
                      qcow2_bitmap_bits *out, es_err *e)
{
    if (qcow2_bitmap_bits_new(out, base, base->virtual_size, top_bm->granularity_bits,
                              top_bm->name, e) < 0)
        return -1;
    for (size_t k = 0; k < c->n && c->imgs[k] != base; k++) {
        const qcow2_bitmap *bm = find(&c->dirs[k], top_bm->name);
        if (!bm)
            break;
        qcow2_bitmap_bits src;
        if (qcow2_bitmap_bits_load(c->imgs[k], bm, &src, e) < 0)
            return -1;
        qcow2_bitmap_bits_merge(out, &src);
        qcow2_bitmap_bits_free(&src);
    }
    return 0;
}

int qcow2_bitmap_adopt_prepare(es_image *top, es_image *base, qcow2_bitmap_adopt *a, es_err *e)
{
    memset(a, 0, sizeof *a);
    if (base->format != ES_FMT_QCOW2 || !qcow2_has_bitmaps(top))
        return 0;
    chain_dirs c;
    if (chain_read(top, base, &c, e) < 0)
        return -1;
    size_t bk = 0;
    while (bk < c.n && c.imgs[bk] != base)
        bk++;
    const qcow2_bitmap_dir *top_dir = &c.dirs[0];
    a->names = es_xcalloc(top_dir->count ? top_dir->count : 1, sizeof *a->names);
    a->bits = es_xcalloc(top_dir->count ? top_dir->count : 1, sizeof *a->bits);
    int r = 0;
    for (uint32_t i = 0; r == 0 && i < top_dir->count; i++) {
        const qcow2_bitmap *bm = &top_dir->entries[i];
        if (bk < c.n && find(&c.dirs[bk], bm->name))
            continue; /* BASE has it: qcow2/bitmap_merge.h */
        if (!chain_valid(&c, bm->name))
            continue;
        r = merge_down(&c, base, bm, &a->bits[a->count], e);
        a->names[a->count++] = es_xstrdup(bm->name);
    }
    chain_free(&c);
    if (r < 0)
        qcow2_bitmap_adopt_free(a);
    return r;
}

void qcow2_bitmap_adopt_free(qcow2_bitmap_adopt *a)
{
    for (uint32_t i = 0; i < a->count; i++) {
        free(a->names[i]);
        qcow2_bitmap_bits_free(&a->bits[i]);
    }
    free(a->names);
    free(a->bits);
    memset(a, 0, sizeof *a);
}
