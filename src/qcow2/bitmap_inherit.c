#include "qcow2/bitmap_inherit.h"

#include <stdlib.h>

#include "qcow2/bitmap_dir.h"
#include "qcow2/bitmap_store.h"
#include "util/xalloc.h"

int qcow2_bitmaps_inherit(es_image *overlay, es_err *e)
{
    es_image *below = overlay->backing;
    if (!below || !qcow2_has_bitmaps(below))
        return 0;
    qcow2_bitmap_dir d;
    if (qcow2_bitmap_dir_read(below->file, &below->hdr, below->file_size, below->filename, &d,
                              e) < 0)
        return -1;
    qcow2_bitmap_out *out = es_xcalloc(d.count ? d.count : 1, sizeof *out);
    qcow2_bitmap_bits *bits = es_xcalloc(d.count ? d.count : 1, sizeof *bits);
    uint32_t n = 0;
    int r = 0;
    for (uint32_t i = 0; r == 0 && i < d.count; i++) {
        const qcow2_bitmap *bm = &d.entries[i];
        if (bm->flags & QCOW2_BITMAP_FLAG_IN_USE)
            r = es_err_set(e, 0, below->filename,
                           "bitmap '%s' is marked in use: a QEMU using the image stopped without "
                           "storing it, so it is inconsistent; remove it first ('qemu-img bitmap "
                           "--remove')",
                           bm->name);
        else if (bm->flags & QCOW2_BITMAP_FLAG_AUTO) {
            r = qcow2_bitmap_bits_new(&bits[n], overlay, overlay->virtual_size,
                                      bm->granularity_bits, bm->name, e);
            out[n] = (qcow2_bitmap_out){.name = bm->name,
                                        .flags = QCOW2_BITMAP_FLAG_AUTO,
                                        .granularity_bits = bm->granularity_bits,
                                        .bits = &bits[n]};
            n++;
        }
    }
    if (r == 0 && n)
        r = qcow2_bitmap_dir_replace(overlay, out, n, e);
    for (uint32_t i = 0; i < n; i++)
        qcow2_bitmap_bits_free(&bits[i]);
    free(bits);
    free(out);
    qcow2_bitmap_dir_free(&d);
    return r;
}
