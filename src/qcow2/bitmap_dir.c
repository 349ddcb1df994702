#include "qcow2/bitmap_dir.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/format.h"
#include "qcow2/image.h"
#include "util/xalloc.h"

#define EXT_BYTES 24u
#define ENTRY_FIXED_BYTES 24u
#define MIN_GRANULARITY_BITS 9
#define MAX_GRANULARITY_BITS 31
#define KNOWN_FLAGS (QCOW2_BITMAP_FLAG_IN_USE | QCOW2_BITMAP_FLAG_AUTO | QCOW2_BITMAP_FLAG_EXTRA_DATA_COMPATIBLE)
#define TYPE_DIRTY_TRACKING 1

static int read_entry(es_file *f, uint64_t off, uint64_t dir_end, uint64_t cs, uint32_t index,
                      const char *path, qcow2_bitmap *bm, uint64_t *entry_len, es_err *e)
{
    uint8_t fixed[ENTRY_FIXED_BYTES];
    if (off > dir_end || dir_end - off < ENTRY_FIXED_BYTES)
        return es_err_set(e, 0, path, "bitmap directory entry %u at 0x%llx runs past the directory",
                          index, (unsigned long long)off);
    if (es_file_pread(f, fixed, sizeof fixed, off, e) < 0)
        return es_err_prefix(e, "reading bitmap directory entry %u", index);
    bm->table_offset = be64_load(fixed);
    bm->table_size = be32_load(fixed + 8);
    bm->flags = be32_load(fixed + 12);
    bm->type = fixed[16];
    bm->granularity_bits = fixed[17];
    uint32_t name_len = be16_load(fixed + 18);
    uint32_t extra = be32_load(fixed + 20);
    uint64_t var_len = (uint64_t)extra + name_len;
    if (var_len > dir_end - off - ENTRY_FIXED_BYTES)
        return es_err_set(e, 0, path, "bitmap directory entry %u at 0x%llx runs past the directory",
                          index, (unsigned long long)off);
    *entry_len = (ENTRY_FIXED_BYTES + var_len + 7) & ~7ull; /* padded to 8 */
    if (name_len == 0 || name_len > QCOW2_BITMAP_MAX_NAME)
        return es_err_set(e, 0, path, "bitmap directory entry %u at 0x%llx: invalid name length %u",
                          index, (unsigned long long)off, name_len);
    bm->name = es_xmalloc(name_len + 1);
    if (es_file_pread(f, bm->name, name_len, off + ENTRY_FIXED_BYTES + extra, e) < 0)
        return es_err_prefix(e, "reading bitmap directory entry %u", index);
    bm->name[name_len] = '\0';
    if (strlen(bm->name) != name_len)
        return es_err_set(e, 0, path, "bitmap directory entry %u at 0x%llx: name holds a NUL byte",
                          index, (unsigned long long)off);
    if (bm->type != TYPE_DIRTY_TRACKING || bm->granularity_bits < MIN_GRANULARITY_BITS ||
        bm->granularity_bits > MAX_GRANULARITY_BITS || (bm->flags & ~KNOWN_FLAGS) ||
        bm->table_size == 0 || bm->table_offset == 0 || bm->table_offset % cs)
        return es_err_set(e, 0, path,
                          "bitmap '%s' (directory entry at 0x%llx) is invalid: type %u, granularity "
                          "bits %u, flags 0x%x, table at 0x%llx with %u entries",
                          bm->name, (unsigned long long)off, bm->type, bm->granularity_bits,
                          bm->flags, (unsigned long long)bm->table_offset, bm->table_size);
    return 0;
}

int qcow2_bitmap_dir_read(es_file *f, const qcow2_header *h, uint64_t file_size, const char *path,
                          qcow2_bitmap_dir *out, es_err *e)
{
    memset(out, 0, sizeof *out);
    const qcow2_ext *ext = qcow2_header_find_ext(h, QCOW2_EXT_BITMAPS);
    if (!ext || !(h->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
        return 0;
    if (ext->len != EXT_BYTES)
        return es_err_set(e, 0, path, "bitmaps header extension has %u bytes, expected %u", ext->len,
                          EXT_BYTES);
    uint32_t count = be32_load(ext->data);
    uint64_t dir_size = be64_load(ext->data + 8), dir_off = be64_load(ext->data + 16);
    uint64_t cs = 1ull << h->cluster_bits;
    if (count == 0 || count > QCOW2_BITMAP_MAX_COUNT)
        return es_err_set(e, 0, path, "bitmaps header extension: invalid bitmap count %u", count);
    if (dir_size > QCOW2_BITMAP_DIR_MAX_BYTES || dir_size < (uint64_t)count * ENTRY_FIXED_BYTES)
        return es_err_set(e, 0, path, "bitmaps header extension: invalid directory size %llu",
                          (unsigned long long)dir_size);
    if (dir_off == 0 || dir_off % cs || dir_off > file_size || dir_size > file_size - dir_off)
        return es_err_set(e, 0, path,
                          "bitmap directory at 0x%llx (%llu bytes) is not cluster aligned or lies "
                          "beyond end of file (0x%llx)",
                          (unsigned long long)dir_off, (unsigned long long)dir_size,
                          (unsigned long long)file_size);
    out->entries = es_xcalloc(count, sizeof *out->entries);
    uint64_t off = dir_off, end = dir_off + dir_size;
    for (uint32_t i = 0; i < count; i++) {
        out->count = i + 1;
        uint64_t len = 0;
        if (read_entry(f, off, end, cs, i, path, &out->entries[i], &len, e) < 0) {
            qcow2_bitmap_dir_free(out);
            return -1;
        }
        off += len;
    }
    return 0;
}

bool qcow2_has_bitmaps(const es_image *img)
{
    return img->format == ES_FMT_QCOW2 &&
           (img->hdr.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS) &&
           qcow2_header_find_ext(&img->hdr, QCOW2_EXT_BITMAPS);
}

void qcow2_bitmap_dir_free(qcow2_bitmap_dir *d)
{
    if (!d)
        return;
    for (uint32_t i = 0; i < d->count; i++)
        free(d->entries[i].name);
    free(d->entries);
    memset(d, 0, sizeof *d);
}
