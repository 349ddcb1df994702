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
/* Extended L2: how far one call may look from off. Where an L2 table exists,
 * one cluster (an unallocated subcluster may have a host cluster, so runs are
 * cut there anyway); elsewhere, to the next L1 entry that has a table. Asking
 * the engine for more would make it walk a long run only to have it cut
 * here, once per cut: quadratic in the virtual size (a 16 TiB image took
 * seconds). */
static uint64_t extended_l2_reach(const es_image *img, uint64_t off, uint64_t n,
                                  uint64_t to_cluster_end)
{
    const uint32_t l1_shift = img->cluster_bits + (uint32_t)__builtin_ctzll(img->l2_entries);
    uint64_t idx = off >> l1_shift;
    if (idx >= img->l1_size)
        return n;
    if (img->l1[idx] & QCOW2_L1E_OFFSET_MASK)
        return min_u64(n, to_cluster_end);
    const uint64_t last = (off + n - 1) >> l1_shift; /* the last L1 entry n reaches */
    while (idx < last && idx + 1 < img->l1_size && !(img->l1[idx + 1] & QCOW2_L1E_OFFSET_MASK))
        idx++;
    if (idx >= last || idx + 1 >= img->l1_size)
        return n;
    return ((idx + 1) << l1_shift) - off;
}

static int qcow2_status(es_image *img, uint64_t off, uint64_t n, layer_status *ls, es_err *e)
{
    const uint64_t cs = img->cluster_size;
    const uint64_t in_cluster = off & (cs - 1);
    const uint64_t to_cluster_end = cs - in_cluster;
    if (img->extended_l2)
        n = extended_l2_reach(img, off, n, to_cluster_end);
    es_block_status bs;
    if (es_image_block_status(img, off, n, &bs, e) < 0)
        return -1;
    if (bs.len == 0 || bs.len > n)
        return es_err_set(e, EIO, img->filename, "internal error: block status of %llu bytes at 0x%llx",
                          (unsigned long long)bs.len, (unsigned long long)off);
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
        /* Within one cluster already (extended_l2_reach) where a table exists. */
        if (host_cluster) {
            ls->has_offset = true;
            ls->offset = host_cluster + in_cluster;
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
