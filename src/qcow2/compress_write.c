#include "qcow2/compress_write.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "qcow2/format.h"
#include "qcow2/refcount.h"

/* QEMU's parameters: raw deflate with a 4 KiB window, default level. */
#define ZLIB_WINDOW_BITS (-12)
#define ZLIB_MEM_LEVEL 9

static int zlib_compress(const es_image *img, const uint8_t *in, uint8_t *out, size_t cap,
                         size_t *out_len, es_err *e)
{
    size_t cs = img->cluster_size;
    if (cs > UINT_MAX)
        return es_err_set(e, EINVAL, img->filename, "cluster too large for zlib");
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, ZLIB_WINDOW_BITS, ZLIB_MEM_LEVEL,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return es_err_set(e, ENOMEM, img->filename, "cannot initialise zlib");
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)cs;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int r = deflate(&z, Z_FINISH);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    if (r == Z_STREAM_END)
        return 1;
    if (r == Z_OK || r == Z_BUF_ERROR)
        return 0; /* the output did not fit */
    return es_err_set(e, 0, img->filename, "zlib compression failed (%d)", r);
}

static int zstd_compress(const es_image *img, const uint8_t *in, uint8_t *out, size_t cap,
                         size_t *out_len, es_err *e)
{
    size_t r = ZSTD_compress(out, cap, in, img->cluster_size, ZSTD_CLEVEL_DEFAULT);
    if (ZSTD_isError(r)) {
        if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall)
            return 0;
        return es_err_set(e, 0, img->filename, "zstd compression failed: %s",
                          ZSTD_getErrorName(r));
    }
    *out_len = r;
    return 1;
}

int qcow2_compress_cluster(const es_image *img, const uint8_t *in, uint8_t *out, size_t *out_len,
                           es_err *e)
{
    /* Less than a cluster, as QEMU asks: else it is stored uncompressed. */
    size_t cap = img->cluster_size - 1;
    switch (img->hdr.compression_type) {
    case QCOW2_COMPRESSION_ZLIB:
        return zlib_compress(img, in, out, cap, out_len, e);
    case QCOW2_COMPRESSION_ZSTD:
        return zstd_compress(img, in, out, cap, out_len, e);
    default:
        return es_err_set(e, 0, img->filename, "unknown compression type %u",
                          (unsigned)img->hdr.compression_type);
    }
}

/* Can the cluster holding z->cur take one more reference? Narrow
 * refcounts (refcount_bits 1 to 8) fill up: then the next compressed
 * cluster starts a cluster of its own, as QEMU's allocator does. */
static int tail_has_room(es_image *img, const qcow2_zalloc *z, bool *room, es_err *e)
{
    uint64_t rc;
    if (qcow2_refcount_get(img, z->cur / img->cluster_size, &rc, e) < 0)
        return -1;
    uint64_t max = img->refcount_bits >= 64 ? UINT64_MAX : (1ull << img->refcount_bits) - 1;
    *room = rc < max;
    return 0;
}

/* The descriptor holds the host offset in x bits (qcow2_compressed_entry):
 * a compressed cluster must end below 2^x. */
static int check_reach(const es_image *img, uint64_t off, uint64_t n, es_err *e)
{
    uint32_t x = 62 - (img->cluster_bits - 8);
    if (off + n > (1ull << x))
        return es_err_set(e, EFBIG, img->filename,
                          "a compressed cluster at 0x%llx is past what its L2 entry can name",
                          (unsigned long long)off);
    return 0;
}

int qcow2_alloc_bytes(es_image *img, qcow2_zalloc *z, uint64_t n, uint64_t *off, es_err *e)
{
    const uint64_t cs = img->cluster_size;
    if (n == 0 || n >= cs)
        return es_err_set(e, EINVAL, img->filename, "internal error: %llu compressed bytes",
                          (unsigned long long)n);
    bool room = false;
    if (z->cur < z->end && tail_has_room(img, z, &room, e) < 0)
        return -1;
    if (!room)
        z->cur = z->end; /* no tail to share */
    /* The tail of the last cluster is referenced already by the compressed
     * clusters before: one more reference for this one. */
    if (z->end - z->cur >= n) {
        if (check_reach(img, z->cur, n, e) < 0 || qcow2_refcount_add(img, z->cur / cs, 1, e) < 0)
            return -1;
        *off = z->cur;
        z->cur += n;
        return 0;
    }
    uint64_t fresh;
    if (qcow2_alloc_cluster(img, &fresh, e) < 0) /* refcount 1: this cluster's */
        return -1;
    uint64_t at = z->cur < z->end && fresh == z->end ? z->cur : fresh;
    if (check_reach(img, at, n, e) < 0)
        return -1;
    /* It follows the last one: run on from its tail. */
    if (at != fresh && qcow2_refcount_add(img, z->cur / cs, 1, e) < 0)
        return -1;
    *off = at;
    z->cur = *off + n;
    z->end = fresh + cs;
    return 0;
}

uint64_t qcow2_compressed_entry(const es_image *img, uint64_t off, uint64_t n)
{
    /* Bits 0..x-1: the byte offset; x..61: sectors beyond the first. */
    uint32_t x = 62 - (img->cluster_bits - 8);
    uint64_t extra = ((off + n - 1) >> 9) - (off >> 9);
    return QCOW2_OFLAG_COMPRESSED | off | (extra << x);
}
