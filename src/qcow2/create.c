/* Writing a new qcow2 or raw image. The metadata layout comes from
 * create_layout.c; this file checks options, opens the backing chain,
 * builds the header and writes everything in a crash-safe order. */
#include "qcow2/create.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qcow2/create_layout.h"
#include "qcow2/format.h"
#include "qcow2/header.h"
#include "qcow2/image.h"
#include "util/fileio.h"
#include "util/imglock.h"
#include "util/xalloc.h"

void qcow2_create_opts_init(qcow2_create_opts *o)
{
    memset(o, 0, sizeof *o);
    o->cluster_size = 65536;
    o->version = 3;
    o->refcount_bits = 16;
    o->compression_type = QCOW2_COMPRESSION_ZLIB;
}

static int log2_exact(uint64_t v)
{
    if (v == 0 || (v & (v - 1)))
        return -1;
    int n = 0;
    while (v >>= 1)
        n++;
    return n;
}

int qcow2_create_check_opts(const qcow2_create_opts *o, es_err *e)
{
    int cb = log2_exact(o->cluster_size);
    if (cb < QCOW2_MIN_CLUSTER_BITS || cb > QCOW2_MAX_CLUSTER_BITS)
        return es_err_set(e, 0, NULL,
                          "cluster size must be a power of two between 512 and 2048k (got %u)",
                          o->cluster_size);
    if (o->version != 2 && o->version != 3)
        return es_err_set(e, 0, NULL, "qcow2 version must be 2 (compat=0.10) or 3 (compat=1.1)");
    int ro = log2_exact(o->refcount_bits);
    if (ro < 0 || ro > QCOW2_MAX_REFCOUNT_ORDER)
        return es_err_set(e, 0, NULL,
                          "refcount width must be a power of two and may not exceed 64 bits (got %u)",
                          o->refcount_bits);
    if (o->version == 2) {
        const char *what = o->refcount_bits != 16  ? "refcount widths other than 16 bits"
                           : o->lazy_refcounts     ? "lazy refcounts"
                           : o->extended_l2        ? "extended L2 entries"
                           : o->compression_type   ? "compression types other than zlib"
                                                   : NULL;
        if (what)
            return es_err_set(e, 0, NULL, "%s need compat=1.1 (qcow2 version 3)", what);
    }
    if (o->compression_type > QCOW2_COMPRESSION_ZSTD)
        return es_err_set(e, 0, NULL, "unknown compression type %u", o->compression_type);
    if (o->extended_l2 && cb < QCOW2_MIN_CLUSTER_BITS_EXTL2)
        return es_err_set(e, 0, NULL,
                          "extended L2 entries need a cluster size of at least 16384 bytes");
    bool has_backing = o->backing_file && o->backing_file[0];
    if (has_backing) {
        if (!o->backing_format || !o->backing_format[0])
            return es_err_set(e, 0, NULL, "backing file specified without backing format (-F)");
        if (strcmp(o->backing_format, "qcow2") != 0 && strcmp(o->backing_format, "raw") != 0)
            return es_err_set(e, 0, NULL, "backing format '%s' is not supported (qcow2 or raw)",
                              o->backing_format);
        if (strlen(o->backing_file) > QCOW2_MAX_BACKING_NAME)
            return es_err_set(e, 0, NULL, "backing file name too long (%zu bytes, max %d)",
                              strlen(o->backing_file), QCOW2_MAX_BACKING_NAME);
    } else if (o->backing_format && o->backing_format[0]) {
        return es_err_set(e, 0, NULL, "backing format given without a backing file");
    }
    if (!o->size_set && (!has_backing || o->unsafe))
        return es_err_set(e, 0, NULL,
                          has_backing ? "a size is required with -u (the backing file is not opened)"
                                      : "image creation needs a size");
    if (o->size_set && o->size > QCOW2_CREATE_MAX_SIZE)
        return es_err_set(e, EFBIG, NULL, "invalid image size (must be at most %llu bytes)",
                          (unsigned long long)QCOW2_CREATE_MAX_SIZE);
    return 0;
}

/* The feature name table QEMU 7.2 writes, in its order. */
static const struct {
    uint8_t type, bit;
    const char *name;
} feature_names[] = {
    {0, 0, "dirty bit"},      {0, 1, "corrupt bit"},    {0, 2, "external data file"},
    {0, 3, "compression type"}, {0, 4, "extended L2 entries"}, {1, 0, "lazy refcounts"},
    {2, 0, "bitmaps"},        {2, 1, "raw external data"},
};
#define FEATURE_ENTRY_LEN 48

static void add_feature_table(qcow2_header *h)
{
    size_t n = sizeof feature_names / sizeof feature_names[0];
    uint32_t len = (uint32_t)(n * FEATURE_ENTRY_LEN);
    uint8_t *data = es_xcalloc(1, len);
    qcow2_ext *ext = es_xcalloc(1, sizeof *ext);
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = data + i * FEATURE_ENTRY_LEN;
        p[0] = feature_names[i].type;
        p[1] = feature_names[i].bit;
        memcpy(p + 2, feature_names[i].name, strlen(feature_names[i].name));
    }
    *ext = (qcow2_ext){QCOW2_EXT_FEATURE_TABLE, len, data};
    h->exts = ext;
    h->n_exts = 1;
}

/* The header QEMU writes for these options and layout, serialized into
 * cluster0 (one cluster). */
static int build_header(const qcow2_create_opts *o, uint64_t size, const qcow2_create_layout *lay,
                        uint8_t *cluster0, const char *path, es_err *e)
{
    qcow2_header h = {0};
    h.version = o->version;
    h.cluster_bits = lay->cluster_bits;
    h.size = size;
    h.l1_size = (uint32_t)lay->l1_size;
    h.l1_table_offset = lay->l1_offset;
    h.refcount_table_offset = lay->reftable_offset;
    h.refcount_table_clusters = (uint32_t)(lay->reftable_entries * 8 / o->cluster_size);
    h.refcount_order = lay->refcount_order;
    if (o->version == 3) {
        h.header_length = QCOW2_HEADER_LEN_WRITTEN;
        h.compression_type = o->compression_type;
        if (o->extended_l2)
            h.incompatible_features |= QCOW2_INCOMPAT_EXTL2;
        if (o->compression_type != QCOW2_COMPRESSION_ZLIB)
            h.incompatible_features |= QCOW2_INCOMPAT_COMPRESSION;
        if (o->lazy_refcounts)
            h.compatible_features |= QCOW2_COMPAT_LAZY_REFCOUNTS;
        /* QEMU leaves the 392-byte table out of clusters of 4 KiB and less,
         * where it would crowd out the backing file name. */
        if (o->cluster_size > 4096)
            add_feature_table(&h);
    } else {
        h.header_length = QCOW2_V2_HEADER_LEN;
    }
    int r = 0;
    if (o->backing_file && o->backing_file[0])
        r = qcow2_header_set_backing(&h, o->backing_file, o->backing_format, e);
    if (r == 0)
        r = qcow2_header_serialize(&h, cluster0, o->cluster_size, path, e);
    qcow2_header_free(&h);
    return r;
}

/* Open the backing chain to check it and to learn its virtual size. */
static int check_backing(const char *path, const qcow2_create_opts *o, uint64_t *size,
                         uint64_t *dev, uint64_t *ino, es_err *e)
{
    char *display = NULL, *unused = NULL;
    if (es_backing_resolve(path, o->backing_file, NULL, &display, &unused, e) < 0)
        return -1;
    free(unused);
    /* qemu-img create takes no lock on the backing: a VM may be using it. */
    es_open_opts oo = {.root = o->root, .force_share = true};
    es_image *b = NULL;
    int r = es_image_open(&b, display, &oo, e);
    if (r < 0) { /* the message names the file and says what is wrong with it */
        free(display);
        return -1;
    }
    const char *fmt = b->format == ES_FMT_QCOW2 ? "qcow2" : "raw";
    if (strcmp(fmt, o->backing_format) != 0) {
        /* qemu-img would accept -F raw over a qcow2 file, and the guest would
         * then see qcow2 metadata as its disk: refuse both mismatches. */
        r = es_err_set(e, 0, display, "backing file is a %s image, not %s (-F %s)", fmt,
                       o->backing_format, o->backing_format);
    } else {
        *size = b->virtual_size;
        *dev = b->st_dev;
        *ino = b->st_ino;
    }
    es_image_close(b);
    free(display);
    return r;
}

/* Open path for writing a new image: create it exclusively, or take an
 * existing empty regular file. *created tells the caller how to undo. */
static int open_new_file(const char *path, es_file **f, bool *created, es_err *e)
{
    *created = false;
    if (es_file_open(f, path, O_RDWR | O_CREAT | O_EXCL, 0644, e) == 0) {
        *created = true;
        return 0;
    }
    if (!e || e->errnum != EEXIST)
        return -1;
    if (es_file_open(f, path, O_RDWR, 0, e) < 0)
        return -1;
    struct stat st;
    if (fstat((*f)->fd, &st) < 0) {
        es_err_set(e, errno, path, "cannot stat");
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || st.st_size != 0) {
        es_err_set(e, EEXIST, path, "refusing to overwrite an existing %s",
                   S_ISREG(st.st_mode) ? "non-empty file" : "file that is not a regular file");
        goto fail;
    }
    /* Someone else may have it open (a VM about to use a pre-created file). */
    es_imglock lk = {0};
    if (es_imglock_acquire_write((*f)->fd, path, &lk, e) < 0)
        goto fail;
    return 0;
fail:
    es_file_close(*f);
    *f = NULL;
    return -1;
}

/* Write `len` zero bytes at off (an L1 table of up to 32 MiB), in pieces of
 * at most 1 MiB. */
static int write_zeros(es_file *f, uint64_t off, uint64_t len, es_err *e)
{
    size_t chunk = len < (1u << 20) ? (size_t)len : (1u << 20);
    uint8_t *zeros = es_xcalloc(1, chunk);
    int r = 0;
    while (len && r == 0) {
        size_t n = len < chunk ? (size_t)len : chunk;
        r = es_file_pwrite(f, zeros, n, off, e);
        off += n;
        len -= n;
    }
    free(zeros);
    return r;
}

static int write_table(es_file *f, uint8_t *buf, size_t cs, uint64_t off, const uint64_t *t,
                       uint64_t entries, es_err *e)
{
    uint64_t per = cs / 8;
    for (uint64_t i = 0; i < entries; i += per) {
        memset(buf, 0, cs);
        for (uint64_t j = 0; j < per && i + j < entries; j++)
            be64_store(buf + j * 8, t[i + j]);
        if (es_file_pwrite(f, buf, cs, off + i * 8, e) < 0)
            return -1;
    }
    return 0;
}

/* Everything but the header, in an order where later writes overwrite
 * stale bytes the way QEMU's own sequence did. */
static int write_metadata(es_file *f, const qcow2_create_layout *lay, uint8_t *buf, es_err *e)
{
    size_t cs = (size_t)1 << lay->cluster_bits;
    for (size_t i = 0; i < lay->n_stale; i++)
        if (write_table(f, buf, cs, lay->stale[i].offset, lay->stale[i].table,
                        lay->stale[i].entries, e) < 0)
            return -1;
    for (uint64_t i = 0; i < lay->reftable_entries; i++) {
        if (!lay->reftable[i])
            continue;
        qcow2_create_layout_refblock(lay, i, buf);
        if (es_file_pwrite(f, buf, cs, lay->reftable[i], e) < 0)
            return -1;
    }
    if (write_table(f, buf, cs, lay->reftable_offset, lay->reftable, lay->reftable_entries, e) < 0)
        return -1;
    if (lay->l1_size && write_zeros(f, lay->l1_offset, lay->l1_size * 8, e) < 0)
        return -1;
    uint64_t size;
    if (es_file_size(f, &size, e) < 0)
        return -1;
    if (size != lay->file_end)
        return es_err_set(e, 0, f->path, "internal error: new image is %llu bytes, expected %llu",
                          (unsigned long long)size, (unsigned long long)lay->file_end);
    return 0;
}

static uint64_t round_up_512(uint64_t v)
{
    return (v + 511) & ~511ull;
}

int qcow2_create(const char *path, const qcow2_create_opts *o, es_err *e)
{
    if (qcow2_create_check_opts(o, e) < 0)
        return es_err_prefix(e, "%s", path);
    bool has_backing = o->backing_file && o->backing_file[0];
    uint64_t size = o->size, bdev = 0, bino = 0;
    bool same_check = false;
    if (has_backing && !o->unsafe) {
        uint64_t bsize = 0;
        if (check_backing(path, o, &bsize, &bdev, &bino, e) < 0)
            return -1;
        same_check = true;
        if (!o->size_set)
            size = bsize;
    }
    size = round_up_512(size);

    uint32_t cb = (uint32_t)log2_exact(o->cluster_size);
    uint64_t l2_entries = o->cluster_size / (o->extended_l2 ? 16 : 8);
    uint64_t per_l1 = (uint64_t)o->cluster_size * l2_entries;
    uint64_t l1_size = size / per_l1 + (size % per_l1 != 0);
    if (l1_size > QCOW2_MAX_L1_BYTES / 8)
        return es_err_set(e, EFBIG, path,
                          "image size %llu is too large for qcow2 with %u-byte clusters (try a "
                          "larger cluster size)",
                          (unsigned long long)size, o->cluster_size);

    qcow2_create_layout lay;
    if (qcow2_create_plan(&lay, cb, (uint32_t)log2_exact(o->refcount_bits), l1_size, e) < 0)
        return es_err_prefix(e, "%s", path);
    uint8_t *header = es_xmalloc(o->cluster_size), *buf = es_xmalloc(o->cluster_size);
    es_file *f = NULL;
    bool created = false;
    int r = -1;
    /* The header must fit before anything touches the disk. */
    if (build_header(o, size, &lay, header, path, e) < 0)
        goto out;
    if (open_new_file(path, &f, &created, e) < 0)
        goto out;
    struct stat st;
    if (same_check && fstat(f->fd, &st) == 0 && (uint64_t)st.st_dev == bdev &&
        (uint64_t)st.st_ino == bino) {
        es_err_set(e, 0, path, "the backing file is the image itself");
        goto undo;
    }
    /* Header last: until it lands, the file has no qcow2 magic. */
    if (write_metadata(f, &lay, buf, e) < 0 || es_file_flush(f, e) < 0 ||
        es_file_pwrite(f, header, o->cluster_size, 0, e) < 0 || es_file_flush(f, e) < 0)
        goto undo;
    r = 0;
    goto out;
undo:
    if (created) {
        es_err ignored;
        es_fs_unlink(path, &ignored);
    } else {
        es_err ignored;
        es_file_truncate(f, 0, &ignored);
    }
out:
    es_file_close(f);
    free(header);
    free(buf);
    qcow2_create_layout_free(&lay);
    return r;
}

int raw_create(const char *path, uint64_t size, es_err *e)
{
    if (size > QCOW2_CREATE_MAX_SIZE)
        return es_err_set(e, EFBIG, path, "invalid image size (must be at most %llu bytes)",
                          (unsigned long long)QCOW2_CREATE_MAX_SIZE);
    size = round_up_512(size);
    es_file *f;
    bool created;
    if (open_new_file(path, &f, &created, e) < 0)
        return -1;
    if (es_file_truncate(f, size, e) < 0 || es_file_flush(f, e) < 0) {
        es_err ignored;
        if (created)
            es_fs_unlink(path, &ignored);
        else
            es_file_truncate(f, 0, &ignored);
        es_file_close(f);
        return -1;
    }
    es_file_close(f);
    return 0;
}
