#include "qcow2/info.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/format.h"
#include "util/xalloc.h"

static int copy_str(char **dst, const char *src, es_err *e)
{
    *dst = NULL;
    if (!src)
        return 0;
    (void)e;
    *dst = es_xstrdup(src);
    return 0;
}

static int gather_backing(es_image *img, es_image_info *out, es_err *e)
{
    const char *name = img->hdr.backing_file;
    if (!name)
        return 0;
    if (copy_str(&out->backing_filename, name, e) < 0 ||
        copy_str(&out->backing_format, img->hdr.backing_format, e) < 0)
        return -1;
    if (img->backing_resolved)
        return copy_str(&out->full_backing_filename, img->backing_resolved, e);
    /* Chain not opened: resolve the name the way opening it would. A name
     * that cannot be followed (a protocol) is shown as written, as QEMU does. */
    char *display = NULL, *open_path = NULL;
    es_err ignored;
    if (es_backing_resolve(img->filename, name, NULL, &display, &open_path, &ignored) < 0)
        return copy_str(&out->full_backing_filename, name, e);
    free(open_path);
    out->full_backing_filename = display;
    return 0;
}

static int gather_qcow2(es_image *img, es_image_info *out, es_err *e)
{
    const qcow2_header *h = &img->hdr;
    out->cluster_size = img->cluster_size;
    out->qcow2_version = h->version;
    out->dirty = (h->incompatible_features & QCOW2_INCOMPAT_DIRTY) != 0;
    out->corrupt = (h->incompatible_features & QCOW2_INCOMPAT_CORRUPT) != 0;
    out->extended_l2 = img->extended_l2;
    out->lazy_refcounts = (h->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS) != 0;
    out->compression_type = h->compression_type == QCOW2_COMPRESSION_ZSTD ? "zstd" : "zlib";
    out->refcount_bits = img->refcount_bits;
    if (gather_backing(img, out, e) < 0)
        return -1;
    if (qcow2_snapshot_table_read(img->file, h, img->file_size, img->filename, &out->snapshots,
                                  e) < 0)
        return -1;
    return qcow2_bitmap_dir_read(img->file, h, img->file_size, img->filename, &out->bitmaps, e);
}

int es_image_info_gather(es_image *img, es_image_info *out, es_err *e)
{
    memset(out, 0, sizeof *out);
    out->filename = img->filename;
    out->format = img->format;
    out->virtual_size = img->virtual_size;
    uint64_t allocated;
    if (es_file_allocated(img->file, &allocated, NULL) == 0) {
        out->has_actual_size = true;
        out->actual_size = allocated;
    }
    if (img->format == ES_FMT_QCOW2 && gather_qcow2(img, out, e) < 0) {
        es_image_info_free(out);
        return -1;
    }
    return 0;
}

void es_image_info_free(es_image_info *info)
{
    if (!info)
        return;
    free(info->backing_filename);
    free(info->full_backing_filename);
    free(info->backing_format);
    qcow2_snapshot_table_free(&info->snapshots);
    qcow2_bitmap_dir_free(&info->bitmaps);
    memset(info, 0, sizeof *info);
}
