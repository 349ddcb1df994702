/* qemu-img rebase -u: a new backing name and format in the header.
 *
 * Why one write is crash safe: the header, its extensions and the backing
 * name all live in cluster 0 (QEMU requires it, and so does the spec), and
 * nothing else does. A cluster is at most 2 MiB, so the new cluster 0 is
 * built in memory and written with a single pwrite of the whole cluster,
 * then flushed. The old bytes stay valid until the write replaces them, so
 * a failed or interrupted write leaves the old header, and a completed one
 * the new header, each consistent on its own; no other metadata changes. */
#include "qcow2/rebase.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/format.h"
#include "qcow2/header.h"
#include "util/imglock.h"
#include "util/xalloc.h"

#define KNOWN_AUTOCLEAR (QCOW2_AUTOCLEAR_BITMAPS | QCOW2_AUTOCLEAR_DATA_FILE_RAW)

/* Read cluster 0 into a new buffer (*len bytes: the cluster, or the whole
 * file if shorter). */
static int read_cluster0(es_file *f, uint8_t **out, size_t *len, uint64_t *cs, uint64_t *file_size,
                         es_err *e)
{
    uint8_t head[QCOW2_V2_HEADER_LEN];
    size_t got = 0;
    *out = NULL;
    if (es_file_size(f, file_size, e) < 0 ||
        es_file_pread_some(f, head, sizeof head, 0, &got, e) < 0)
        return -1;
    if (got < 4 || be32_load(head) != QCOW2_MAGIC)
        return es_err_set(e, 0, f->path, "not a qcow2 image (raw images have no backing file)");
    if (got < sizeof head)
        return es_err_set(e, 0, f->path, "truncated qcow2 header (%zu bytes)", got);
    uint32_t cb = be32_load(head + 20);
    if (cb < QCOW2_MIN_CLUSTER_BITS || cb > QCOW2_MAX_CLUSTER_BITS)
        return es_err_set(e, 0, f->path, "invalid cluster size (cluster_bits %u, must be 9..21)",
                          cb);
    *cs = 1ull << cb;
    size_t n = *file_size < *cs ? (size_t)*file_size : (size_t)*cs;
    uint8_t *buf = es_xmalloc(*cs);
    memset(buf, 0, *cs);
    if (es_file_pread(f, buf, n, 0, e) < 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

int qcow2_rebase_header(es_file *f, const char *name, const char *format, unsigned flags,
                        es_err *e)
{
    bool dry = flags & QCOW2_REBASE_DRY, restoring = flags & QCOW2_REBASE_RESTORING;
    if (name && !name[0])
        name = NULL;
    if (format && !format[0])
        format = NULL;
    if (!name && format)
        return es_err_set(e, 0, f->path, "a backing format without a backing file");
    if (name && !format && !restoring)
        return es_err_set(e, 0, f->path, "a backing file needs a backing format");
    if (name && strlen(name) > QCOW2_MAX_BACKING_NAME)
        return es_err_set(e, 0, f->path, "backing file name too long (%zu bytes, max %d)",
                          strlen(name), QCOW2_MAX_BACKING_NAME);

    uint8_t *old = NULL, *buf = NULL;
    size_t len = 0;
    uint64_t cs = 0, file_size = 0;
    qcow2_header h;
    int r = -1;
    if (read_cluster0(f, &old, &len, &cs, &file_size, e) < 0)
        return -1;
    if (qcow2_header_parse(&h, old, len, file_size, f->path, e) < 0)
        goto out_old;
    if (h.incompatible_features & QCOW2_INCOMPAT_CORRUPT) {
        es_err_set(e, 0, f->path, "image is marked corrupt; repair it before changing its header");
        goto out;
    }
    if (file_size < cs) {
        es_err_set(e, 0, f->path, "file is shorter than one cluster");
        goto out;
    }
    h.autoclear_features &= KNOWN_AUTOCLEAR;
    if (qcow2_header_set_backing(&h, name, format, e) < 0)
        goto out;
    buf = es_xmalloc(cs);
    uint32_t old_hl = h.header_length;
    if (qcow2_header_serialize(&h, buf, cs, f->path, e) < 0) {
        es_err_prefix(e, "new backing file name does not fit");
        goto out;
    }
    /* Header fields newer than this code (header_length > 112) are kept. */
    if (h.version == 3 && old_hl > QCOW2_HEADER_LEN_WRITTEN && h.header_length == old_hl)
        memcpy(buf + QCOW2_HEADER_LEN_WRITTEN, old + QCOW2_HEADER_LEN_WRITTEN,
               old_hl - QCOW2_HEADER_LEN_WRITTEN);
    if (!dry && (es_file_pwrite(f, buf, cs, 0, e) < 0 || es_file_flush(f, e) < 0))
        goto out;
    r = 0;
out:
    qcow2_header_free(&h);
out_old:
    free(buf);
    free(old);
    return r;
}

static int rebase_file(const char *path, const char *name, const char *format, bool restoring,
                       es_err *e)
{
    es_file *f;
    if (es_file_open(&f, path, O_RDWR, 0, e) < 0)
        return -1;
    /* Like qemu-img: no running VM may use the image while its header
     * changes (the locks go away with the descriptor). */
    es_imglock lk = {0};
    int r = es_imglock_acquire_write(f->fd, path, &lk, e);
    if (r == 0)
        r = qcow2_rebase_header(f, name, format, restoring ? QCOW2_REBASE_RESTORING : 0, e);
    es_file_close(f);
    return r;
}

int qcow2_rebase_unsafe(const char *path, const char *name, const char *format, es_err *e)
{
    return rebase_file(path, name, format, false, e);
}

int qcow2_rebase_restore(const char *path, const char *name, const char *format, es_err *e)
{
    return rebase_file(path, name, format, true, e);
}
