/* The safe rebase: refusals, then the batches, then the header (see
 * rebase_safe.h for why this order is crash safe). */
#include "qcow2/rebase_safe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qcow2/format.h"
#include "qcow2/host_write.h"
#include "qcow2/l2_write.h"
#include "qcow2/overlap.h"
#include "qcow2/rebase.h"
#include "qcow2/rebase_internal.h"
#include "qcow2/reclaim.h"
#include "qcow2/refcount.h"
#include "qcow2/refcount_trust.h"
#include "util/fileio.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

#define HDR_AUTOCLEAR 88

/* Open the new backing chain, named as IMAGE's header will name it
 * (relative to IMAGE's directory), read-only with read locks; and refuse a
 * chain that contains IMAGE (the file at path): that would be a loop. */
static int open_new_chain(const char *path, const es_rebase_opts *o, es_image **out, es_err *e)
{
    *out = NULL;
    char *display = NULL, *open_path = NULL, *given = NULL;
    int r = -1;
    if (es_backing_resolve(path, o->backing, o->root, &display, &open_path, e) < 0)
        return es_err_prefix(e, "new backing file");
    es_open_opts oo = {.format = o->backing_format, .root = o->root};
    if (es_image_open(out, display, &oo, e) < 0) {
        es_err_prefix(e, "cannot open the new backing file");
        goto done;
    }
    struct stat st;
    if (es_root_resolve(o->root, path, &given, e) < 0)
        goto done;
    if (es_fs_stat(given, &st) == 0)
        for (es_image *i = *out; i; i = i->backing)
            if (i->st_dev == (uint64_t)st.st_dev && i->st_ino == (uint64_t)st.st_ino) {
                es_err_set(e, 0, path,
                           "the new backing chain contains the image itself (%s): that would "
                           "be a loop",
                           i->filename);
                goto done;
            }
    r = 0;
done:
    if (r < 0) {
        es_image_close(*out);
        *out = NULL;
    }
    free(display);
    free(open_path);
    free(given);
    return r;
}

/* The first image of the new chain that is also in the old chain (the same
 * file, opened in the same format): the two read the same from there down. */
static void find_shared(rebase_ctx *c)
{
    for (es_image *n = c->newb; n; n = n->backing)
        for (es_image *o = c->img->backing; o; o = o->backing)
            if (n->st_dev == o->st_dev && n->st_ino == o->st_ino && n->format == o->format) {
                c->shared_new = n;
                c->shared_old = o;
                return;
            }
}

static int refuse(es_image *img, bool compress, es_err *e)
{
    if (img->format != ES_FMT_QCOW2)
        return es_err_set(e, 0, img->filename,
                          "not a qcow2 image (raw images have no backing file)");
    if (img->extended_l2)
        return es_err_set(e, 0, img->filename,
                          "images with extended L2 entries (subclusters) are not supported by "
                          "the safe rebase%s; use qemu-img rebase",
                          compress ? " (nor compressed clusters with them)" : "");
    if (compress && img->hdr.compression_type != QCOW2_COMPRESSION_ZLIB &&
        img->hdr.compression_type != QCOW2_COMPRESSION_ZSTD)
        return es_err_set(e, 0, img->filename, "-c: unknown compression type %u in the header",
                          (unsigned)img->hdr.compression_type);
    return 0;
}

/* Before the first data write: what an interrupted earlier run left,
 * autoclear bits of structures not maintained here, an L1 table too short
 * for the virtual size. */
static int prepare(es_image *img, const qcow2_reclaim *rc, es_err *e)
{
    if (qcow2_reclaim_apply(img, rc, e) < 0)
        return -1;
    /* The bitmaps are kept up to date (rebase_bitmaps.c): their bit stays. */
    uint64_t keep = img->hdr.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS;
    if (img->hdr.version >= 3 && img->hdr.autoclear_features != keep) {
        uint8_t z[8];
        be64_store(z, keep);
        if (qcow2_header_patch(img, HDR_AUTOCLEAR, z, 8, e) < 0 || es_file_flush(img->file, e) < 0)
            return -1;
        img->hdr.autoclear_features = keep;
    }
    uint64_t l1_need = qcow2_l1_size_for(img, img->virtual_size);
    if (l1_need > UINT32_MAX)
        return es_err_set(e, EFBIG, img->filename, "virtual size too large for an L1 table");
    return qcow2_l1_grow(img, (uint32_t)l1_need, e);
}

static int run(rebase_ctx *c, const es_rebase_opts *o, es_err *e)
{
    es_image *img = c->img;
    const char *name = o->backing && o->backing[0] ? o->backing : NULL;
    /* The checks below and the scan read these tables: all at once. */
    rebase_prefetch_metadata(c);
    /* Every refusal before the first write: the new header must fit, the
     * refcounts must cover the metadata, no structures overlap, and the
     * check passes (what an interrupted run left is known then). */
    if (qcow2_rebase_header(img->file, name, name ? o->backing_format : NULL, QCOW2_REBASE_DRY, e) < 0)
        return -1;
    if (qcow2_refcount_check_metadata(img, e) < 0 || qcow2_overlap_open(img, e) < 0)
        return -1;
    qcow2_reclaim rc;
    if (qcow2_reclaim_survey(img, &rc, e) < 0 || rebase_bitmaps_load(c, e) < 0)
        return -1;
    find_shared(c);
    c->cs = img->cluster_size;
    c->size = img->virtual_size;
    c->chunk_max = REBASE_CHUNK_BYTES / c->cs;
    c->batch_max = REBASE_BATCH_MAX_BYTES / c->cs;
    if (c->batch_max > REBASE_BATCH_MAX_OPS)
        c->batch_max = REBASE_BATCH_MAX_OPS;
    c->ops = es_xcalloc(c->batch_max, sizeof *c->ops);
    c->old_buf = es_io_alloc(REBASE_CHUNK_BYTES);
    c->new_buf = es_io_alloc(REBASE_CHUNK_BYTES);
    c->scratch = es_io_alloc(c->cs);
    c->compress = o->compress;
    if (c->compress)
        c->zbuf = es_io_alloc(REBASE_CHUNK_BYTES);
    if (rebase_space_check(c, e) < 0)
        return -1;
    /* First write from here on. */
    if (prepare(img, &rc, e) < 0)
        return -1;
    uint64_t pos = 0;
    for (;;) {
        if (rebase_collect_batch(c, &pos, e) < 0)
            return -1;
        if (c->nops == 0)
            break;
        if (rebase_batch_run(c, e) < 0)
            return -1;
    }
    /* Refcounts released last and the last L2 tables and L1 entries are
     * made durable here: the header must not name the new backing file
     * before every cluster it needs is in IMAGE on disk. */
    if (qcow2_refcount_flush(img, e) < 0)
        return -1;
    /* IMAGE now holds every cluster where the chains differ: only now may
     * its header name the new backing file. */
    return qcow2_rebase_header(img->file, name, name ? o->backing_format : NULL, 0, e);
}

int qcow2_rebase_safe(const char *path, const es_rebase_opts *o, es_err *e)
{
    const bool has_new = o->backing && o->backing[0];
    if (has_new && (!o->backing_format || !o->backing_format[0]))
        return es_err_set(e, 0, path, "a backing file needs a backing format");
    if (!has_new && o->backing_format)
        return es_err_set(e, 0, path, "a backing format without a backing file");
    rebase_ctx c;
    memset(&c, 0, sizeof c);
    /* The new chain first: its read locks and IMAGE's write lock would
     * collide on a loop, which is refused here with its own message. */
    if (has_new && open_new_chain(path, o, &c.newb, e) < 0)
        return -1;
    es_open_opts oo = {.writable = true, .format = o->format, .root = o->root};
    int r = es_image_open(&c.img, path, &oo, e);
    if (r == 0)
        r = refuse(c.img, o->compress, e);
    if (r == 0)
        r = run(&c, o, e);
    free(c.ops);
    free(c.old_buf);
    free(c.new_buf);
    free(c.scratch);
    free(c.zbuf);
    rebase_bitmaps_free(&c.bm);
    free(c.targets);
    free(c.frees);
    free(c.updates);
    /* On an error the cached refcounts are dropped unwritten (a leak at
     * worst); on success everything was flushed. */
    if (c.img && c.img->format == ES_FMT_QCOW2)
        qcow2_refcount_close(c.img);
    es_image_close(c.img);
    es_image_close(c.newb);
    return r;
}
