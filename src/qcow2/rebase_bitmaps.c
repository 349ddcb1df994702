/* The safe rebase keeps IMAGE's persistent dirty bitmaps true, as qemu-img
 * rebase (7.2) does: its copies go through QEMU's block layer, which sets
 * in every enabled bitmap the bits of each range written. qemu-img writes
 * the 512-byte sectors where the old and the new chain differ (its
 * compare_buffers), so those sectors are marked here, whatever extsnap
 * writes around them to fill whole clusters: the bits come out the same.
 * Disabled bitmaps are left alone.
 *
 * The bits of a batch are written (qcow2/bitmap_store.h, crash safe) before
 * any of its data: a crash leaves bits for clusters not yet written (a
 * larger incremental backup), never a written cluster without its bit. A
 * re-run marks the same ranges again, and writes nothing when the bitmaps
 * hold them already. */
#include <stdlib.h>
#include <string.h>

#include "qcow2/bitmap_bits.h"
#include "qcow2/bitmap_dir.h"
#include "qcow2/bitmap_store.h"
#include "qcow2/rebase_internal.h"
#include "util/xalloc.h"

#define SECTOR 512u

int rebase_bitmaps_load(rebase_ctx *c, es_err *e)
{
    es_image *img = c->img;
    rebase_bitmaps *b = &c->bm;
    if (!qcow2_has_bitmaps(img))
        return 0;
    qcow2_bitmap_dir d;
    if (qcow2_bitmap_dir_read(img->file, &img->hdr, img->file_size, img->filename, &d, e) < 0)
        return -1;
    if (d.count == 0)
        return 0;
    b->bits = es_xcalloc(d.count, sizeof *b->bits);
    b->names = es_xcalloc(d.count, sizeof *b->names);
    b->changed = es_xcalloc(d.count, sizeof *b->changed);
    int r = 0;
    for (uint32_t i = 0; r == 0 && i < d.count; i++) {
        const qcow2_bitmap *bm = &d.entries[i];
        if (bm->flags & QCOW2_BITMAP_FLAG_IN_USE) {
            r = es_err_set(e, 0, img->filename,
                           "bitmap '%s' is marked in use: a QEMU using the image stopped without "
                           "storing it, so it is inconsistent; remove it first ('qemu-img bitmap "
                           "--remove')",
                           bm->name);
            break;
        }
        /* Every bitmap is read, the disabled ones too: an inconsistent
         * one is refused here, before anything is written. */
        qcow2_bitmap_bits bits;
        if (qcow2_bitmap_bits_load(img, bm, &bits, e) < 0) {
            r = -1;
            break;
        }
        if (!(bm->flags & QCOW2_BITMAP_FLAG_AUTO)) {
            qcow2_bitmap_bits_free(&bits);
            continue;
        }
        b->bits[b->n] = bits;
        b->names[b->n] = es_xstrdup(bm->name);
        b->n++;
    }
    qcow2_bitmap_dir_free(&d);
    return r;
}

/* Are all the bits covering [off, off+len) set already? */
static bool all_set(const qcow2_bitmap_bits *b, uint64_t off, uint64_t len)
{
    uint64_t first = off >> b->granularity_bits, last = (off + len - 1) >> b->granularity_bits;
    if (last >= b->nbits)
        last = b->nbits ? b->nbits - 1 : 0;
    for (uint64_t i = first; i <= last && i < b->nbits; i++)
        if (!qcow2_bitmap_bits_get(b, i))
            return false;
    return true;
}

static void mark(rebase_bitmaps *b, uint64_t off, uint64_t len)
{
    for (uint32_t i = 0; i < b->n; i++)
        if (!all_set(&b->bits[i], off, len)) {
            qcow2_bitmap_bits_mark(&b->bits[i], off, len);
            b->changed[i] = true;
        }
}

void rebase_bitmaps_mark_diff(rebase_ctx *c, uint64_t guest, const uint8_t *old,
                              const uint8_t *new_, uint64_t len)
{
    rebase_bitmaps *b = &c->bm;
    if (b->n == 0)
        return;
    uint64_t run = 0, run_len = 0;
    for (uint64_t p = 0; p < len; p += SECTOR) {
        uint64_t n = len - p < SECTOR ? len - p : SECTOR;
        if (memcmp(old + p, new_ + p, n)) {
            if (!run_len)
                run = p;
            run_len = p + n - run;
        } else if (run_len) {
            mark(b, guest + run, run_len);
            run_len = 0;
        }
    }
    if (run_len)
        mark(b, guest + run, run_len);
}

int rebase_bitmaps_write(rebase_ctx *c, es_err *e)
{
    es_image *img = c->img;
    rebase_bitmaps *b = &c->bm;
    bool any = false;
    for (uint32_t i = 0; i < b->n; i++)
        any |= b->changed[i];
    if (!any)
        return 0;
    /* The directory as it is now (an earlier batch may have moved
     * tables): unchanged bitmaps are kept where they are. */
    qcow2_bitmap_dir d;
    if (qcow2_bitmap_dir_read(img->file, &img->hdr, img->file_size, img->filename, &d, e) < 0)
        return -1;
    qcow2_bitmap_out *out = es_xcalloc(d.count ? d.count : 1, sizeof *out);
    for (uint32_t k = 0; k < d.count; k++) {
        const qcow2_bitmap *bm = &d.entries[k];
        out[k] = (qcow2_bitmap_out){.name = bm->name,
                                    .flags = bm->flags,
                                    .granularity_bits = bm->granularity_bits,
                                    .keep = bm};
        for (uint32_t i = 0; i < b->n; i++)
            if (b->changed[i] && !strcmp(b->names[i], bm->name)) {
                out[k].keep = NULL;
                out[k].bits = &b->bits[i];
            }
    }
    int r = d.count ? qcow2_bitmap_dir_replace(img, out, d.count, e)
                    : es_err_set(e, 0, img->filename, "internal error: bitmaps vanished");
    free(out);
    qcow2_bitmap_dir_free(&d);
    if (r == 0)
        memset(b->changed, 0, b->n * sizeof *b->changed);
    return r;
}

void rebase_bitmaps_free(rebase_bitmaps *b)
{
    for (uint32_t i = 0; i < b->n; i++) {
        qcow2_bitmap_bits_free(&b->bits[i]);
        free(b->names[i]);
    }
    free(b->bits);
    free(b->names);
    free(b->changed);
    memset(b, 0, sizeof *b);
}
