#include "qcow2/host_write.h"

#include <errno.h>
#include <stdlib.h>

#include "qcow2/overlap.h"
#include "util/xalloc.h"

#define ZERO_CHUNK (1u << 20)

int qcow2_host_write(es_image *img, unsigned what, const void *buf, size_t len, uint64_t off,
                     es_err *e)
{
    if (qcow2_write_guard(img, what, off, len, e) < 0)
        return -1;
    if (es_file_pwrite(img->file, buf, len, off, e) < 0)
        return -1;
    if (off + len > img->file_size)
        img->file_size = off + len;
    /* These tables say where the others live. */
    if (what & QCOW2_OL_REFTABLE)
        qcow2_overlap_stale(img);
    if (what & QCOW2_OL_ACTIVE_L1)
        qcow2_overlap_stale_l2(img);
    return 0;
}

int qcow2_host_copy(es_image *img, unsigned what, es_file *src, uint64_t soff, uint64_t len,
                    uint64_t off, es_err *e)
{
    if (qcow2_write_guard(img, what, off, len, e) < 0)
        return -1;
    if (es_file_copy(src, soff, img->file, off, len, e) < 0)
        return -1;
    if (off + len > img->file_size)
        img->file_size = off + len;
    return 0;
}

int qcow2_host_write_zeroes(es_image *img, unsigned what, uint64_t off, uint64_t len, es_err *e)
{
    if (len == 0)
        return 0;
    size_t chunk = len < ZERO_CHUNK ? (size_t)len : ZERO_CHUNK;
    void *z = es_xcalloc(1, chunk);
    int r = 0;
    while (len > 0 && r == 0) {
        size_t n = len < chunk ? (size_t)len : chunk;
        r = qcow2_host_write(img, what, z, n, off, e);
        off += n;
        len -= n;
    }
    free(z);
    return r;
}

int qcow2_header_patch(es_image *img, uint64_t field_off, const void *buf, size_t len, es_err *e)
{
    if (field_off + len > 512)
        return es_err_set(e, EINVAL, img->filename,
                          "internal error: header patch at 0x%llx is outside the first sector",
                          (unsigned long long)field_off);
    if (img->writes_stopped)
        return qcow2_write_guard(img, QCOW2_OL_HEADER, field_off, len, e);
    if (es_file_pwrite(img->file, buf, len, field_off, e) < 0)
        return es_err_prefix(e, "updating the image header");
    qcow2_overlap_stale(img); /* the header may have moved a table */
    return 0;
}
