#include "qcow2/map_status.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "qcow2/format.h"

/* What one image says about a range, in QEMU's block-status terms. */
typedef struct layer_status {
    uint64_t len;
    bool allocated; /* data or zeroes here: the backing is not consulted */
    bool zero;
    bool data;
    bool has_offset;
    uint64_t offset;
} layer_status;

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Raw files: data and holes as the file system reports them (QEMU's
 * file-posix driver does the same with SEEK_DATA/SEEK_HOLE). Only the file
 * position is queried here; no data is read. */
static void raw_status(const es_image *img, uint64_t off, uint64_t n, layer_status *ls)
{
    int fd = img->file->fd;
    ls->allocated = true;
    ls->has_offset = true;
    ls->offset = off;
    ls->len = n;
    off_t data = lseek(fd, (off_t)off, SEEK_DATA);
    if (data < 0) {
        if (errno == ENXIO)
            ls->zero = true; /* a hole up to the end of the file */
        else
            ls->data = true; /* no information: everything is data */
        return;
    }
    if ((uint64_t)data > off) {
        ls->zero = true;
        ls->len = min_u64(n, (uint64_t)data - off);
        return;
    }
    ls->data = true;
    off_t hole = lseek(fd, (off_t)off, SEEK_HOLE);
    if (hole > (off_t)off)
        ls->len = min_u64(n, (uint64_t)hole - off);
}

/* qcow2: es_image_block_status() plus the host offsets QEMU reports for
 * preallocated zero clusters and for unallocated subclusters of an
 * allocated cluster. Those runs are cut at cluster boundaries, since the
 * engine's runs do not follow host offsets for them. */
static int qcow2_status(es_image *img, uint64_t off, uint64_t n, layer_status *ls, es_err *e)
{
    es_block_status bs;
    if (es_image_block_status(img, off, n, &bs, e) < 0)
        return -1;
    if (bs.len == 0 || bs.len > n)
        return es_err_set(e, EIO, img->filename, "internal error: block status of %llu bytes at 0x%llx",
                          (unsigned long long)bs.len, (unsigned long long)off);
    const uint64_t cs = img->cluster_size;
    const uint64_t in_cluster = off & (cs - 1);
    const uint64_t to_cluster_end = cs - in_cluster;
    const uint64_t host_cluster = bs.l2_entry & QCOW2_L2E_OFFSET_MASK;
    ls->len = bs.len;
    switch (bs.kind) {
    case ES_BS_DATA:
        ls->allocated = ls->data = ls->has_offset = true;
        ls->offset = bs.host_off;
        break;
    case ES_BS_COMPRESSED:
        ls->allocated = ls->data = true;
        break;
    case ES_BS_ZERO:
        /* A zero cluster (or zero subclusters) may keep its host cluster. */
        ls->allocated = ls->zero = true;
        ls->len = min_u64(ls->len, to_cluster_end);
        if (host_cluster) {
            ls->has_offset = true;
            ls->offset = host_cluster + in_cluster;
        }
        break;
    case ES_BS_UNALLOC:
        if (!img->extended_l2)
            break;
        if (host_cluster) {
            ls->has_offset = true;
            ls->offset = host_cluster + in_cluster;
            ls->len = min_u64(ls->len, to_cluster_end);
        } else {
            /* A later cluster of the run may have a host cluster: stop at
             * this cluster's end where an L2 table exists, else at the end
             * of the L1 entry's range (nothing allocated there). */
            uint32_t l1_shift = img->cluster_bits + (uint32_t)__builtin_ctzll(img->l2_entries);
            uint64_t l1_idx = off >> l1_shift;
            if (l1_idx < img->l1_size && (img->l1[l1_idx] & QCOW2_L1E_OFFSET_MASK))
                ls->len = min_u64(ls->len, to_cluster_end);
            else if (l1_shift < 64)
                ls->len = min_u64(ls->len, ((l1_idx + 1) << l1_shift) - off);
        }
        break;
    }
    return 0;
}

static int layer_status_get(es_image *img, uint64_t off, uint64_t n, layer_status *ls, es_err *e)
{
    memset(ls, 0, sizeof *ls);
    if (img->format == ES_FMT_RAW) {
        raw_status(img, off, n, ls);
        return 0;
    }
    return qcow2_status(img, off, n, ls, e);
}

int es_map_status_get(es_image *top, uint64_t off, uint64_t max_len, es_map_status *st, es_err *e)
{
    memset(st, 0, sizeof *st);
    if (off >= top->virtual_size || max_len == 0)
        return es_err_set(e, EINVAL, top->filename, "internal error: map status at 0x%llx",
                          (unsigned long long)off);
    es_image *img = top;
    uint64_t n = max_len;
    for (int depth = 0;; depth++) {
        n = min_u64(n, img->virtual_size - off);
        layer_status ls;
        if (layer_status_get(img, off, n, &ls, e) < 0)
            return -1;
        n = ls.len;
        st->len = n;
        st->depth = depth;
        st->layer = img;
        st->has_offset = ls.has_offset;
        st->offset = ls.offset;
        st->data = ls.data;
        st->zero = ls.zero;
        if (ls.allocated) {
            st->present = true;
            return 0;
        }
        /* Unallocated: the backing decides, unless there is none or it is
         * shorter than off; then this image reads as zeroes here. */
        es_image *b = img->backing;
        if (!b || off >= b->virtual_size) {
            st->zero = true;
            return 0;
        }
        img = b;
    }
}
