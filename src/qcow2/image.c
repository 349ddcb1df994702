/* Opening an image and its backing chain. */
#include "qcow2/image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qcow2/format.h"
#include "qcow2/l2_cache.h"
#include "qcow2/overlap.h"
#include "qcow2/refcount.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

static int parse_format_name(const char *name, const char *path, es_img_format *fmt, es_err *e)
{
    if (strcmp(name, "qcow2") == 0)
        *fmt = ES_FMT_QCOW2;
    else if (strcmp(name, "raw") == 0)
        *fmt = ES_FMT_RAW;
    else
        return es_err_set(e, 0, path, "image format '%s' is not supported (only qcow2 and raw)",
                          name);
    return 0;
}

/* Probe like QEMU: qcow2 magic means qcow2, anything else is raw. */
static int probe_format(es_image *img, es_img_format *fmt, es_err *e)
{
    uint8_t magic[4];
    size_t got = 0;
    if (es_file_pread_some(img->file, magic, sizeof magic, 0, &got, e) < 0)
        return -1;
    *fmt = got == sizeof magic && be32_load(magic) == QCOW2_MAGIC ? ES_FMT_QCOW2 : ES_FMT_RAW;
    return 0;
}

/* Header checks that depend on how the image is used. */
static int refuse_unsupported(const es_image *img, es_err *e)
{
    const qcow2_header *h = &img->hdr;
    if (h->crypt_method != 0)
        return es_err_set(e, 0, img->filename,
                          "encrypted images are not supported (encryption method %u)",
                          h->crypt_method);
    if (h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE)
        return es_err_set(e, 0, img->filename,
                          "image keeps its data in an external data file%s%s%s; external data "
                          "files are not supported",
                          h->data_file ? " ('" : "", h->data_file ? h->data_file : "",
                          h->data_file ? "')" : "");
    if (img->writable && (h->incompatible_features & QCOW2_INCOMPAT_CORRUPT))
        return es_err_set(e, 0, img->filename,
                          "image is marked corrupt; run 'extsnap img check -r all'");
    if (img->writable && (h->incompatible_features & QCOW2_INCOMPAT_DIRTY))
        return es_err_set(e, 0, img->filename,
                          "image has the dirty bit set (refcounts may be stale after an unclean "
                          "shutdown with lazy refcounts); run 'extsnap img check -r all' (or "
                          "'qemu-img check -r all') before writing to it");
    return 0;
}

static int load_l1(es_image *img, es_err *e)
{
    img->l1_size = img->hdr.l1_size;
    if (img->l1_size == 0)
        return 0;
    /* l1_size * 8 <= 32 MiB and inside the file: checked by the header parser. */
    size_t bytes = (size_t)img->l1_size * 8;
    img->l1 = es_xmalloc(bytes);
    if (es_file_pread(img->file, img->l1, bytes, img->hdr.l1_table_offset, e) < 0)
        return es_err_prefix(e, "reading L1 table");
    /* Entries are validated where they are used (cluster.c), so that a
     * damaged entry does not hide the rest of the image from check/repair. */
    for (uint32_t i = 0; i < img->l1_size; i++)
        img->l1[i] = be64_load(&img->l1[i]);
    return 0;
}

static int open_qcow2(es_image *img, es_err *e)
{
    /* Learn the cluster size from the fixed header, then read cluster 0. */
    uint8_t first[QCOW2_HEADER_LEN_WRITTEN];
    size_t got = 0;
    if (es_file_pread_some(img->file, first, sizeof first, 0, &got, e) < 0)
        return -1;
    uint32_t bits = got >= 24 ? be32_load(first + 20) : QCOW2_MIN_CLUSTER_BITS;
    if (bits < QCOW2_MIN_CLUSTER_BITS || bits > QCOW2_MAX_CLUSTER_BITS)
        bits = QCOW2_MIN_CLUSTER_BITS; /* the parser reports it */
    uint64_t want = 1ull << bits;
    if (want > img->file_size)
        want = img->file_size;
    uint8_t *c0 = es_xmalloc(want);
    int r = es_file_pread_some(img->file, c0, want, 0, &got, e);
    if (r == 0)
        r = qcow2_header_parse(&img->hdr, c0, got, img->file_size, img->filename, e);
    free(c0);
    if (r < 0)
        return -1;
    if (refuse_unsupported(img, e) < 0)
        return -1;

    const qcow2_header *h = &img->hdr;
    img->cluster_bits = h->cluster_bits;
    img->cluster_size = 1ull << h->cluster_bits;
    img->extended_l2 = (h->incompatible_features & QCOW2_INCOMPAT_EXTL2) != 0;
    img->l2_entry_bytes = img->extended_l2 ? 16 : 8;
    img->l2_entries = img->cluster_size / img->l2_entry_bytes;
    img->subcluster_size = img->extended_l2 ? img->cluster_size / QCOW2_SUBCLUSTERS : img->cluster_size;
    img->refcount_bits = 1u << h->refcount_order;
    img->virtual_size = h->size;
    if (load_l1(img, e) < 0)
        return -1;
    return qcow2_l2_cache_new(&img->l2_cache, (size_t)img->cluster_size, e);
}

/* Is the file already open somewhere in the chain starting at top? */
static const es_image *chain_find(const es_image *top, uint64_t dev, uint64_t ino)
{
    for (const es_image *i = top; i; i = i->backing)
        if (i->st_dev == dev && i->st_ino == ino)
            return i;
    return NULL;
}

static void image_free_one(es_image *img)
{
    if (!img)
        return;
    qcow2_l2_cache_free(img->l2_cache);
    /* Drops (never writes) cached refcount blocks: writers flush before closing. */
    qcow2_refcount_close(img);
    qcow2_overlap_close(img);
    es_file_close(img->file);
    qcow2_header_free(&img->hdr);
    free(img->l1);
    free(img->reftable);
    free(img->zcluster);
    free(img->zinput);
    free(img->filename);
    free(img->open_path);
    free(img->backing_resolved);
    free(img);
}

/* Open one image (no backing). For a backing file, `naming` is the image
 * whose header names it and `chain` the top of the chain opened so far: the
 * file must not already be part of it. */
static int open_one(es_image **out, const char *display, const char *open_path,
                    const char *format, bool writable, bool force_share,
                    const es_image *chain, const es_image *naming, es_err *e)
{
    *out = NULL;
    es_image *img = es_xcalloc(1, sizeof *img);
    img->filename = es_xstrdup(display);
    img->open_path = es_xstrdup(open_path);
    img->writable = writable;
    if (es_file_open(&img->file, open_path, writable ? O_RDWR : O_RDONLY, 0, e) < 0) {
        int err = e ? e->errnum : 0;
        if (err == ESPIPE) /* es_file_open's FIFO refusal */
            es_err_set(e, 0, naming ? naming->filename : display,
                       naming ? "backing file %s is a FIFO, not an image file"
                              : "not an image file but a FIFO",
                       display);
        else if (naming && strcmp(display, open_path) != 0)
            es_err_set(e, err, naming->filename, "cannot open backing file %s (at %s)", display,
                       open_path);
        else if (naming)
            es_err_set(e, err, naming->filename, "cannot open backing file %s", display);
        else
            es_err_set(e, err, display, "cannot open");
        goto fail;
    }
    struct stat st;
    if (fstat(img->file->fd, &st) < 0) {
        es_err_set(e, errno, display, "cannot stat");
        goto fail;
    }
    img->st_dev = (uint64_t)st.st_dev;
    img->st_ino = (uint64_t)st.st_ino;
    if (chain && chain_find(chain, img->st_dev, img->st_ino)) {
        es_err_set(e, 0, naming ? naming->filename : display,
                   "backing chain loop: %s is already in the chain", display);
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        es_err_set(e, EISDIR, display, "cannot open image");
        goto fail;
    }
    /* Like QEMU: read-write users lock out other writers and VMs; readers
     * refuse an image someone writes (no torn metadata) and keep writers out. */
    if (!force_share &&
        (writable ? es_imglock_acquire_write(img->file->fd, display, &img->lock, e)
                  : es_imglock_acquire_read(img->file->fd, display, &img->lock, e)) < 0)
        goto fail;
    if (es_file_size(img->file, &img->file_size, e) < 0)
        goto fail;
    es_img_format fmt;
    if (format ? parse_format_name(format, display, &fmt, e) : probe_format(img, &fmt, e))
        goto fail;
    img->format = fmt;
    if (fmt == ES_FMT_QCOW2) {
        if (open_qcow2(img, e) < 0)
            goto fail;
    } else {
        /* QEMU counts a raw image in whole 512-byte sectors; the tail past
         * the end of the file reads as zeroes. */
        img->virtual_size = img->file_size > UINT64_MAX - 511 ? img->file_size
                                                              : (img->file_size + 511) & ~511ull;
    }
    *out = img;
    return 0;
fail:
    image_free_one(img);
    return -1;
}

/* Open the backing file of `img` (the current bottom of the chain). */
static int open_backing(es_image *top, es_image *img, const char *root, bool force_share,
                        es_err *e)
{
    const char *name = img->hdr.backing_file;
    if (img->depth + 1 > ES_CHAIN_MAX_DEPTH)
        return es_err_set(e, 0, img->filename,
                          "backing chain is deeper than %d images (at backing file '%s')",
                          ES_CHAIN_MAX_DEPTH, name);
    char *display = NULL, *open_path = NULL;
    if (es_backing_resolve(img->filename, name, root, &display, &open_path, e) < 0)
        return -1;
    const char *format = img->hdr.backing_format;
    img->backing_format_probed = format == NULL;
    es_image *b = NULL;
    int r = open_one(&b, display, open_path, format, false, force_share, top, img, e);
    if (r == 0) {
        b->depth = img->depth + 1;
        img->backing = b;
        img->backing_resolved = display;
        display = NULL;
    }
    free(display);
    free(open_path);
    return r;
}

int es_image_open(es_image **out, const char *path, const es_open_opts *opts, es_err *e)
{
    static const es_open_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    *out = NULL;
    if (opts->writable && opts->force_share)
        return es_err_set(e, EINVAL, path, "--force-share can only be used to read images");
    char *open_path = NULL;
    if (es_root_resolve(opts->root, path, &open_path, e) < 0)
        return -1;
    es_image *top = NULL;
    int r = open_one(&top, path, open_path, opts->format, opts->writable, opts->force_share,
                     NULL, NULL, e);
    free(open_path);
    if (r < 0)
        return -1;
    if (!opts->no_backing) {
        for (es_image *img = top; img->format == ES_FMT_QCOW2 && img->hdr.backing_file;
             img = img->backing) {
            if (open_backing(top, img, opts->root, opts->force_share, e) < 0) {
                es_image_close(top);
                return -1;
            }
        }
    }
    *out = top;
    return 0;
}

void es_image_close(es_image *img)
{
    while (img) {
        es_image *next = img->backing;
        image_free_one(img);
        img = next;
    }
}
