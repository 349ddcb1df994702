#include "qcow2/bitmap_ext.h"

#include <string.h>

#include "qcow2/bitmap_dir.h"
#include "qcow2/format.h"
#include "qcow2/host_write.h"
#include "qcow2/overlap.h"
#include "util/fileio.h"
#include "util/xalloc.h"

#define EXT_BYTES 24u
#define HDR_BACKING_OFFSET 8
#define HDR_AUTOCLEAR 88

static uint64_t exts_start(const qcow2_header *h)
{
    return h->version == 2 ? QCOW2_V2_HEADER_LEN : h->header_length;
}

/* Where the end marker is: past every extension. */
static uint64_t end_marker(const qcow2_header *h)
{
    uint64_t pos = exts_start(h);
    for (size_t i = 0; i < h->n_exts; i++)
        pos += 8 + (((uint64_t)h->exts[i].len + 7) & ~7ull);
    return pos;
}

/* Where the backing name goes when it has to make room: past the new end
 * marker and past its current place (the copy never overwrites it). */
static uint64_t moved_name_offset(const qcow2_header *h)
{
    uint64_t need = end_marker(h) + 8 + EXT_BYTES + 8;
    uint64_t after = h->backing_file_offset + h->backing_file_size;
    return ((need > after ? need : after) + 7) & ~7ull;
}

static bool name_in_the_way(const qcow2_header *h)
{
    return h->backing_file_offset &&
           h->backing_file_offset < end_marker(h) + 8 + EXT_BYTES + 8;
}

static const qcow2_ext *ignored_ext(const es_image *img)
{
    return qcow2_header_find_ext(&img->hdr, QCOW2_EXT_BITMAPS);
}

int qcow2_bitmap_ext_can_switch(const es_image *img, es_err *e)
{
    const qcow2_header *h = &img->hdr;
    if (qcow2_has_bitmaps(img))
        return 0;
    if (h->version < 3)
        return es_err_set(e, 0, img->filename,
                          "persistent bitmaps need qcow2 version 3 (compat=1.1); upgrade it "
                          "first ('qemu-img amend -o compat=1.1')");
    const qcow2_ext *old = ignored_ext(img);
    if (old)
        return old->len == EXT_BYTES
                   ? 0
                   : es_err_set(e, 0, img->filename,
                                "the image holds a bitmaps header extension of %u bytes that "
                                "QEMU ignores: no bitmaps are added over it",
                                old->len);
    uint64_t end = name_in_the_way(h) ? moved_name_offset(h) + h->backing_file_size
                                      : end_marker(h) + 8 + EXT_BYTES + 8;
    if (end > img->cluster_size || end > img->file_size)
        return es_err_set(e, 0, img->filename,
                          "no room in the image's first cluster for the bitmaps header extension");
    return 0;
}

static int flush(es_image *img, es_err *e)
{
    return es_file_flush(img->file, e);
}

/* Move the backing name out of the extension's way: copy, then offset. */
static int move_name(es_image *img, es_err *e)
{
    qcow2_header *h = &img->hdr;
    uint64_t to = moved_name_offset(h);
    uint8_t off[8];
    be64_store(off, to);
    if (qcow2_host_write(img, QCOW2_OL_HEADER, h->backing_file, h->backing_file_size, to, e) < 0 ||
        flush(img, e) < 0 || qcow2_header_patch(img, HDR_BACKING_OFFSET, off, 8, e) < 0 ||
        flush(img, e) < 0)
        return es_err_prefix(e, "moving the backing file name");
    h->backing_file_offset = to;
    return 0;
}

static int set_autoclear(es_image *img, es_err *e)
{
    uint8_t v[8];
    be64_store(v, img->hdr.autoclear_features | QCOW2_AUTOCLEAR_BITMAPS);
    if (flush(img, e) < 0 || qcow2_header_patch(img, HDR_AUTOCLEAR, v, 8, e) < 0 ||
        flush(img, e) < 0)
        return -1;
    img->hdr.autoclear_features |= QCOW2_AUTOCLEAR_BITMAPS;
    return 0;
}

/* The extension after the others: its data and the new end marker first,
 * then the autoclear bit (no extension yet: nothing changes for QEMU),
 * then the old end marker becomes the extension's type and length, the
 * switch. */
static int append_ext(es_image *img, const uint8_t *data, es_err *e)
{
    qcow2_header *h = &img->hdr;
    uint64_t at = end_marker(h);
    uint8_t tail[EXT_BYTES + 8] = {0}, head[8];
    memcpy(tail, data, EXT_BYTES);
    be32_store(head, QCOW2_EXT_BITMAPS);
    be32_store(head + 4, EXT_BYTES);
    if (qcow2_host_write(img, QCOW2_OL_HEADER, tail, sizeof tail, at + 8, e) < 0 ||
        set_autoclear(img, e) < 0 || qcow2_host_write(img, QCOW2_OL_HEADER, head, 8, at, e) < 0)
        return es_err_prefix(e, "adding the bitmaps header extension");
    h->exts = es_xreallocarray(h->exts, h->n_exts + 1, sizeof *h->exts);
    h->exts[h->n_exts++] = (qcow2_ext){QCOW2_EXT_BITMAPS, EXT_BYTES, es_xmalloc(EXT_BYTES)};
    memcpy(h->exts[h->n_exts - 1].data, data, EXT_BYTES);
    return 0;
}

/* The byte offset of the extension's data in the file, verified against
 * what is there. */
static int ext_data_offset(es_image *img, uint64_t *off, es_err *e)
{
    const qcow2_header *h = &img->hdr;
    uint64_t pos = exts_start(h);
    for (size_t i = 0; i < h->n_exts; i++) {
        if (h->exts[i].type == QCOW2_EXT_BITMAPS) {
            uint8_t got[8 + EXT_BYTES];
            if (es_file_pread(img->file, got, sizeof got, pos, e) < 0)
                return -1;
            if (be32_load(got) != QCOW2_EXT_BITMAPS || be32_load(got + 4) != EXT_BYTES ||
                memcmp(got + 8, h->exts[i].data, EXT_BYTES))
                return es_err_set(e, 0, img->filename,
                                  "the bitmaps header extension is not where the header says");
            *off = pos + 8;
            return 0;
        }
        pos += 8 + (((uint64_t)h->exts[i].len + 7) & ~7ull);
    }
    return es_err_set(e, 0, img->filename, "internal error: no bitmaps header extension");
}

static int rewrite_ext(es_image *img, const uint8_t *data, es_err *e)
{
    uint64_t off = 0;
    if (ext_data_offset(img, &off, e) < 0 ||
        qcow2_host_write(img, QCOW2_OL_HEADER, data, EXT_BYTES, off, e) < 0)
        return -1;
    for (size_t i = 0; i < img->hdr.n_exts; i++)
        if (img->hdr.exts[i].type == QCOW2_EXT_BITMAPS)
            memcpy(img->hdr.exts[i].data, data, EXT_BYTES);
    return 0;
}

int qcow2_bitmap_ext_switch(es_image *img, uint32_t n, uint64_t dir_size, uint64_t dir_off,
                            es_err *e)
{
    uint8_t ext[EXT_BYTES] = {0};
    be32_store(ext, n);
    be64_store(ext + 8, dir_size);
    be64_store(ext + 16, dir_off);
    int r = 0;
    if (qcow2_has_bitmaps(img)) {
        r = rewrite_ext(img, ext, e); /* the switch */
    } else {
        r = qcow2_bitmap_ext_can_switch(img, e);
        if (r == 0 && !ignored_ext(img)) {
            if (name_in_the_way(&img->hdr))
                r = move_name(img, e);
            if (r == 0)
                r = append_ext(img, ext, e); /* the switch */
        } else if (r == 0) {
            /* Ignored while its autoclear bit is clear: the bit switches. */
            r = rewrite_ext(img, ext, e);
            if (r == 0)
                r = set_autoclear(img, e);
        }
    }
    if (r == 0 && flush(img, e) < 0)
        r = -1;
    if (r < 0)
        return es_err_prefix(e, "switching to the new bitmap directory");
    qcow2_overlap_close(img); /* bitmap structures moved: rebuilt at the next check */
    return 0;
}
