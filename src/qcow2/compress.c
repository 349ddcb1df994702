#include "qcow2/compress.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "qcow2/format.h"
#include "util/xalloc.h"

void qcow2_compressed_range(uint32_t cluster_bits, uint64_t l2_entry, uint64_t *host_off,
                            uint64_t *nbytes)
{
    /* Bits 0..x-1: byte offset; bits x..61: extra 512-byte sectors. */
    uint32_t x = 62 - (cluster_bits - 8);
    uint64_t off = l2_entry & ((1ull << x) - 1);
    uint64_t sectors = ((l2_entry >> x) & ((1ull << (cluster_bits - 8)) - 1)) + 1;
    *host_off = off;
    *nbytes = sectors * 512 - (off & 511);
}

static int zlib_decompress(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len,
                           const char *path, uint64_t host_off, es_err *e)
{
    if (in_len > UINT_MAX || out_len > UINT_MAX)
        return es_err_set(e, 0, path, "compressed cluster at 0x%llx is too large",
                          (unsigned long long)host_off);
    z_stream z;
    memset(&z, 0, sizeof z);
    /* Negative window bits: raw deflate, no zlib header. 15 accepts any window
     * a writer may have used (QEMU compresses with 12). */
    if (inflateInit2(&z, -15) != Z_OK)
        return es_err_set(e, ENOMEM, path, "cannot initialise zlib");
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)in_len;
    z.next_out = out;
    z.avail_out = (uInt)out_len;
    int r = inflate(&z, Z_FINISH);
    size_t produced = out_len - z.avail_out;
    inflateEnd(&z);
    /* Done when exactly one cluster came out; trailing input is slack. */
    if ((r == Z_STREAM_END || r == Z_BUF_ERROR || r == Z_OK) && produced == out_len)
        return 0;
    if (r == Z_STREAM_END || r == Z_BUF_ERROR)
        return es_err_set(e, 0, path,
                          "compressed cluster at 0x%llx decompresses to %zu bytes, expected %zu",
                          (unsigned long long)host_off, produced, out_len);
    return es_err_set(e, 0, path, "compressed cluster at 0x%llx is corrupt (zlib error %d)",
                      (unsigned long long)host_off, r);
}

static int zstd_decompress(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len,
                           const char *path, uint64_t host_off, es_err *e)
{
    ZSTD_DCtx *dctx = es_xcheck(ZSTD_createDCtx());
    ZSTD_inBuffer ib = {in, in_len, 0};
    ZSTD_outBuffer ob = {out, out_len, 0};
    int rc = 0;
    /* Stream until the cluster is full or the frame ends; no length prefix,
     * slack after the frame is ignored. */
    while (ob.pos < ob.size) {
        size_t before_in = ib.pos, before_out = ob.pos;
        size_t r = ZSTD_decompressStream(dctx, &ob, &ib);
        if (ZSTD_isError(r)) {
            rc = es_err_set(e, 0, path, "compressed cluster at 0x%llx is corrupt (zstd: %s)",
                            (unsigned long long)host_off, ZSTD_getErrorName(r));
            break;
        }
        if (r == 0 || (ib.pos == before_in && ob.pos == before_out))
            break; /* frame ended, or no progress possible */
    }
    if (rc == 0 && ob.pos != out_len)
        rc = es_err_set(e, 0, path,
                        "compressed cluster at 0x%llx decompresses to %zu bytes, expected %zu",
                        (unsigned long long)host_off, ob.pos, out_len);
    ZSTD_freeDCtx(dctx);
    return rc;
}

/* Decompress in[0..in_len) into exactly out_len bytes. Trailing input after
 * the compressed stream is ignored (QEMU pads to a sector). Anything that does
 * not produce exactly out_len bytes is an error naming path and host_off.
 * compression_type: QCOW2_COMPRESSION_ZLIB or QCOW2_COMPRESSION_ZSTD. */
static int qcow2_decompress(int compression_type, const uint8_t *in, size_t in_len, uint8_t *out,
                            size_t out_len, const char *path, uint64_t host_off, es_err *e)
{
    switch (compression_type) {
    case QCOW2_COMPRESSION_ZLIB:
        return zlib_decompress(in, in_len, out, out_len, path, host_off, e);
    case QCOW2_COMPRESSION_ZSTD:
        return zstd_decompress(in, in_len, out, out_len, path, host_off, e);
    default:
        return es_err_set(e, 0, path, "unknown compression type %d", compression_type);
    }
}

int qcow2_read_compressed_cluster(es_image *img, uint64_t l2_entry, uint8_t *out, es_err *e)
{
    uint64_t off, nbytes;
    qcow2_compressed_range(img->cluster_bits, l2_entry, &off, &nbytes);
    if (off >= img->file_size)
        return es_err_set(e, 0, img->filename,
                          "compressed cluster at 0x%llx lies beyond end of file (0x%llx)",
                          (unsigned long long)off, (unsigned long long)img->file_size);
    /* nbytes <= 2 clusters by construction of the descriptor. */
    if (!img->zinput)
        img->zinput = es_io_alloc(2 * img->cluster_size);
    size_t got = 0;
    if (es_file_pread_some(img->file, img->zinput, (size_t)nbytes, off, &got, e) < 0)
        return -1;
    if (got < nbytes)
        memset(img->zinput + got, 0, (size_t)(nbytes - got));
    return qcow2_decompress(img->hdr.compression_type, img->zinput, (size_t)nbytes, out,
                            (size_t)img->cluster_size, img->filename, off, e);
}
