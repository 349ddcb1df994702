/* Guest reads through the backing chain (what the VM sees). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/compress.h"
#include "qcow2/image.h"

/* Read host bytes; whatever lies past the end of the file reads as zeroes
 * (raw images, and a last cluster QEMU did not fill). */
static int read_host(es_image *img, uint8_t *buf, uint64_t len, uint64_t host_off, es_err *e)
{
    size_t got = 0;
    if (host_off < img->file_size &&
        es_file_pread_some(img->file, buf, (size_t)len, host_off, &got, e) < 0)
        return -1;
    if (got < len)
        memset(buf + got, 0, (size_t)(len - got));
    return 0;
}

/* Copy [off, off+len) of the compressed cluster given by l2_entry; the last
 * decompressed cluster is kept so small reads do not inflate it each time. */
static int read_compressed(es_image *img, uint64_t l2_entry, uint8_t *buf, uint64_t len,
                           uint64_t off, es_err *e)
{
    if (!img->zcluster)
        img->zcluster = es_io_alloc(img->cluster_size);
    if (img->zcluster_entry != l2_entry) {
        img->zcluster_entry = 0;
        if (qcow2_read_compressed_cluster(img, l2_entry, img->zcluster, e) < 0)
            return -1;
        img->zcluster_entry = l2_entry;
    }
    memcpy(buf, img->zcluster + (off & (img->cluster_size - 1)), (size_t)len);
    return 0;
}

int es_image_read(es_image *img, void *buf, uint64_t len, uint64_t off, es_err *e)
{
    uint8_t *p = buf;
    while (len > 0) {
        if (off >= img->virtual_size) {
            /* Beyond this image: zeroes (an overlay may be larger than its backing). */
            memset(p, 0, (size_t)len);
            return 0;
        }
        es_block_status bs;
        if (es_image_block_status(img, off, len, &bs, e) < 0)
            return -1;
        uint64_t n = bs.len;
        if (n == 0 || n > len)
            return es_err_set(e, EIO, img->filename,
                              "internal error: empty block status at 0x%llx",
                              (unsigned long long)off);
        int r = 0;
        switch (bs.kind) {
        case ES_BS_DATA:
            r = read_host(img, p, n, bs.host_off, e);
            break;
        case ES_BS_ZERO:
            memset(p, 0, (size_t)n);
            break;
        case ES_BS_COMPRESSED:
            r = read_compressed(img, bs.l2_entry, p, n, off, e);
            break;
        case ES_BS_UNALLOC:
            if (img->backing)
                r = es_image_read(img->backing, p, n, off, e);
            else
                memset(p, 0, (size_t)n);
            break;
        }
        if (r < 0)
            return -1;
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}
