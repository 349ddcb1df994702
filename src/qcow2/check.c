/* qcow2 check: set-up, the order of the passes (QEMU's
 * qcow2_co_check_locked + qcow2_check_refcounts) and the public API. */
#include "qcow2/check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/check_internal.h"
#include "qcow2/format.h"
#include "util/xalloc.h"

#define HEADER_READ_MAX (1u << QCOW2_MAX_CLUSTER_BITS)
#define BITMAPS_EXT_BYTES 24
#define CRYPTO_EXT_BYTES 16
#define MAX_BITMAPS 65535
#define MAX_BITMAP_DIR_BYTES (1024ull * MAX_BITMAPS)
#define CRYPT_LUKS 2
#define AUTOCLEAR_KNOWN (QCOW2_AUTOCLEAR_BITMAPS | QCOW2_AUTOCLEAR_DATA_FILE_RAW)

/* ---- helpers shared by check*.c ---- */

int check_pread(qcow2_check_ctx *c, void *buf, size_t n, uint64_t off, es_err *e)
{
    size_t got = 0;
    if (off < c->file_size && es_file_pread_some(c->file, buf, n, off, &got, e) < 0)
        return -1;
    if (got < n)
        memset((uint8_t *)buf + got, 0, n - got);
    return 0;
}

void check_log(qcow2_check_ctx *c, const char *fmt, ...)
{
    if (!c->log)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(c->log, fmt, ap);
    va_end(ap);
}

qcow2_cluster_type check_cluster_type(const qcow2_check_ctx *c, uint64_t l2e)
{
    if (l2e & QCOW2_OFLAG_COMPRESSED)
        return QCOW2_CT_COMPRESSED;
    if ((l2e & QCOW2_OFLAG_ZERO) && !c->subclusters)
        return (l2e & QCOW2_L2E_OFFSET_MASK) ? QCOW2_CT_ZERO_ALLOC : QCOW2_CT_ZERO_PLAIN;
    if (!(l2e & QCOW2_L2E_OFFSET_MASK))
        /* With a data file offset 0 is valid; COPIED then marks it allocated. */
        return (c->data_file && (l2e & QCOW2_OFLAG_COPIED)) ? QCOW2_CT_NORMAL
                                                            : QCOW2_CT_UNALLOCATED;
    return QCOW2_CT_NORMAL;
}

uint64_t check_l2_entry(const qcow2_check_ctx *c, const uint8_t *l2, uint64_t i)
{
    return be64_load(l2 + i * c->l2_entry_bytes);
}

uint64_t check_l2_bitmap(const qcow2_check_ctx *c, const uint8_t *l2, uint64_t i)
{
    return c->subclusters ? be64_load(l2 + i * c->l2_entry_bytes + 8) : 0;
}

void check_parse_compressed(const qcow2_check_ctx *c, uint64_t l2e, uint64_t *coffset,
                            uint64_t *csize)
{
    *coffset = l2e & c->coffset_mask;
    uint64_t sectors = ((l2e >> c->csize_shift) & c->csize_mask) + 1;
    *csize = sectors * 512 - (*coffset & 511);
}

/* ---- set-up ---- */

int qcow2_check_is_qcow2(const char *path, bool *is_qcow2, es_err *e)
{
    es_file *f;
    uint8_t magic[4];
    size_t got;
    *is_qcow2 = false;
    if (es_file_open(&f, path, O_RDONLY, 0, e) < 0)
        return -1;
    int r = es_file_pread_some(f, magic, sizeof magic, 0, &got, e);
    es_file_close(f);
    if (r < 0)
        return -1;
    *is_qcow2 = got == sizeof magic && be32_load(magic) == QCOW2_MAGIC;
    return 0;
}

/* The extensions QEMU validates at open time, with its rules. */
static int parse_extensions(qcow2_check_ctx *c, es_err *e)
{
    const qcow2_ext *bm = qcow2_header_find_ext(&c->hdr, QCOW2_EXT_BITMAPS);
    if (bm) {
        if (bm->len != BITMAPS_EXT_BYTES)
            return es_err_set(e, 0, c->path, "bitmaps extension: invalid length %u", bm->len);
        /* Without the autoclear bit a program that does not know bitmaps
         * wrote the image: QEMU ignores them (their clusters are leaks). */
        if (c->hdr.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS) {
            uint32_t nb = be32_load(bm->data), reserved = be32_load(bm->data + 4);
            uint64_t size = be64_load(bm->data + 8), off = be64_load(bm->data + 16);
            if (reserved)
                return es_err_set(e, 0, c->path, "bitmaps extension: reserved field is not zero");
            if (nb > MAX_BITMAPS)
                return es_err_set(e, 0, c->path, "bitmaps extension: %u bitmaps, maximum %d", nb,
                                  MAX_BITMAPS);
            if (nb == 0)
                return es_err_set(e, 0, c->path, "bitmaps extension with zero bitmaps");
            if (off & (c->cluster_size - 1))
                return es_err_set(e, 0, c->path,
                                  "bitmaps extension: invalid bitmap directory offset 0x%llx",
                                  (unsigned long long)off);
            if (size > MAX_BITMAP_DIR_BYTES)
                return es_err_set(e, 0, c->path, "bitmap directory too large (%llu bytes)",
                                  (unsigned long long)size);
            c->nb_bitmaps = nb;
            c->bitmap_dir_size = size;
            c->bitmap_dir_offset = off;
        }
    }
    const qcow2_ext *cr = qcow2_header_find_ext(&c->hdr, QCOW2_EXT_CRYPTO);
    if (cr) {
        if (c->hdr.crypt_method != CRYPT_LUKS)
            return es_err_set(e, 0, c->path,
                              "crypto header extension only expected with LUKS encryption");
        if (cr->len != CRYPTO_EXT_BYTES)
            return es_err_set(e, 0, c->path, "crypto header extension: invalid length %u",
                              cr->len);
        c->crypto_offset = be64_load(cr->data);
        c->crypto_length = be64_load(cr->data + 8);
        if (c->crypto_offset & (c->cluster_size - 1))
            return es_err_set(e, 0, c->path,
                              "crypto header offset 0x%llx is not a multiple of the cluster size",
                              (unsigned long long)c->crypto_offset);
        if (c->crypto_length > (1ull << 62) - c->crypto_offset)
            return es_err_set(e, 0, c->path, "crypto header length too large");
    }
    return 0;
}

/* Everything but opening the file (c->file, c->path, c->log, c->fix set). */
static int init_ctx(qcow2_check_ctx *c, es_err *e)
{
    const char *path = c->path;
    if (es_file_size(c->file, &c->file_size, e) < 0)
        return -1;
    size_t want = c->file_size < HEADER_READ_MAX ? (size_t)c->file_size : HEADER_READ_MAX;
    uint8_t *buf = es_xmalloc(want);
    if (es_file_pread(c->file, buf, want, 0, e) < 0) {
        free(buf);
        return -1;
    }
    /* Tables past the end of the file are not an open error here: QEMU
     * reads them as zeroes and the check reports what they break. */
    int r = qcow2_header_parse(&c->hdr, buf, want, UINT64_MAX, path, e);
    free(buf);
    if (r < 0)
        return -1;
    const qcow2_header *h = &c->hdr;
    if (h->crypt_method > CRYPT_LUKS)
        return es_err_set(e, 0, path, "unsupported encryption method %u", h->crypt_method);
    c->virtual_size = h->size;
    c->cluster_bits = h->cluster_bits;
    c->cluster_size = 1ull << h->cluster_bits;
    c->subclusters = h->incompatible_features & QCOW2_INCOMPAT_EXTL2;
    c->data_file = h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE;
    c->l2_entry_bytes = c->subclusters ? 16 : 8;
    c->l2_entries = c->cluster_size / c->l2_entry_bytes;
    c->refcount_order = h->refcount_order;
    c->refcount_max = h->refcount_order == 6 ? UINT64_MAX : (1ull << (1u << h->refcount_order)) - 1;
    c->rb_entries = (c->cluster_size * 8) >> h->refcount_order;
    c->csize_shift = 62 - (c->cluster_bits - 8);
    c->csize_mask = (1ull << (c->cluster_bits - 8)) - 1;
    c->coffset_mask = (1ull << c->csize_shift) - 1;
    c->reftable_offset = h->refcount_table_offset;
    c->reftable_clusters = h->refcount_table_clusters;
    if (parse_extensions(c, e) < 0)
        return -1;
    c->l2 = es_io_alloc((size_t)c->cluster_size);
    c->rb = es_io_alloc((size_t)c->cluster_size);
    return ondisk_load_reftable(c, e);
}

static int open_ctx(qcow2_check_ctx *c, const char *path, unsigned fix, FILE *log, es_err *e)
{
    memset(c, 0, sizeof *c);
    c->path = path;
    c->log = log;
    c->fix = fix & QCOW2_CHECK_FIX_ALL;
    if (es_file_open(&c->file, path, c->fix ? O_RDWR : O_RDONLY, 0, e) < 0)
        return -1;
    /* Like qemu-img check: a reader refuses an image someone writes, a
     * repair refuses an image anyone else uses (a running VM above all). */
    if (!(fix & QCOW2_CHECK_FORCE_SHARE) &&
        (c->fix ? es_imglock_acquire_write(c->file->fd, path, &c->lock, e)
                : es_imglock_acquire_read(c->file->fd, path, &c->lock, e)) < 0)
        return -1;
    return init_ctx(c, e);
}

/* keep_file: the caller's file, left open. */
static void close_ctx(qcow2_check_ctx *c, bool keep_file)
{
    check_free_snapshots(c);
    qcow2_header_free(&c->hdr);
    free(c->reftable);
    free(c->imrt);
    free(c->l2);
    free(c->rb);
    es_imglock_release(&c->lock);
    if (c->file && !keep_file)
        es_file_close(c->file);
    memset(c, 0, sizeof *c);
}

/* Rewrite the feature fields (offset 72: incompatible, compatible,
 * autoclear) of a v3 header; one 24-byte write, then flush. */
static int write_features(qcow2_check_ctx *c, uint64_t incompat, uint64_t autoclear, es_err *e)
{
    uint8_t b[24];
    be64_store(b, incompat);
    be64_store(b + 8, c->hdr.compatible_features);
    be64_store(b + 16, autoclear);
    if (es_file_flush(c->file, e) < 0 || es_file_pwrite(c->file, b, sizeof b, 72, e) < 0 ||
        es_file_flush(c->file, e) < 0)
        return -1;
    c->hdr.incompatible_features = incompat;
    c->hdr.autoclear_features = autoclear;
    return 0;
}

/* ---- the passes ---- */

/* QEMU's qcow2_check_refcounts(). */
static int check_refcounts(qcow2_check_ctx *c, qcow2_check_result *res, unsigned fix, es_err *e)
{
    bool rebuild = false;
    uint64_t highest = 0;
    c->res = res;
    res->total_clusters = (int64_t)check_clusters(c, c->virtual_size / 512 * 512);
    if (imrt_resize(c, check_clusters(c, c->file_size), e) < 0) {
        res->check_errors++;
        return -1;
    }
    if (check_calculate_refcounts(c, fix, &rebuild, e) < 0)
        return -1;

    /* With a repair but no rebuild, the comparison runs again with fixing
     * on, from this state. */
    qcow2_check_result pre_compare = *res;
    if (check_compare_refcounts(c, res, 0, &rebuild, &highest, e) < 0)
        return -1;

    if (rebuild && (fix & QCOW2_CHECK_FIX_ERRORS)) {
        qcow2_check_result old = *res;
        int64_t fresh_leaks = 0;
        check_log(c, "Rebuilding refcount structure\n");
        if (check_rebuild_refcounts(c, e) < 0) {
            res->check_errors++;
            return -1;
        }
        res->corruptions = 0;
        res->leaks = 0;
        /* References again, against the new structure. */
        rebuild = false;
        imrt_clear(c);
        if (check_calculate_refcounts(c, 0, &rebuild, e) < 0)
            return -1;
        if (fix & QCOW2_CHECK_FIX_LEAKS) {
            /* The old structure is leaked now: free it. Only leaks that
             * could not be freed are reported. */
            qcow2_check_result scratch = {0};
            if (check_compare_refcounts(c, &scratch, QCOW2_CHECK_FIX_LEAKS, &rebuild, &highest,
                                        e) < 0)
                return -1;
            if (rebuild)
                check_log(c, "ERROR rebuilt refcount structure is still broken\n");
            fresh_leaks = scratch.leaks;
        }
        if (res->corruptions < old.corruptions)
            res->corruptions_fixed += old.corruptions - res->corruptions;
        if (res->leaks < old.leaks)
            res->leaks_fixed += old.leaks - res->leaks;
        res->leaks += fresh_leaks;
    } else if (fix) {
        if (rebuild) {
            check_log(c, "ERROR need to rebuild refcount structures\n");
            res->check_errors++;
            return es_err_set(e, EIO, c->path,
                              "the refcount structure must be rebuilt: use -r all");
        }
        if (res->leaks || res->corruptions) {
            *res = pre_compare;
            if (check_compare_refcounts(c, res, fix, &rebuild, &highest, e) < 0)
                return -1;
        }
    }
    if (check_oflag_copied(c, res, fix, e) < 0)
        return -1;
    res->image_end_offset = (int64_t)((highest + 1) * c->cluster_size);
    return 0;
}

static void add_counts(qcow2_check_result *out, const qcow2_check_result *in)
{
    out->corruptions += in->corruptions;
    out->leaks += in->leaks;
    out->check_errors += in->check_errors;
    out->corruptions_fixed += in->corruptions_fixed;
    out->leaks_fixed += in->leaks_fixed;
}

/* QEMU's qcow2_co_check_locked(). */
static int check_locked(qcow2_check_ctx *c, qcow2_check_result *result, es_err *e)
{
    qcow2_check_result snap = {0}, refs = {0};
    memset(result, 0, sizeof *result);
    c->res = &snap;
    if (check_read_snapshot_table(c, e) < 0) {
        add_counts(result, &snap);
        return -1;
    }
    int r = check_refcounts(c, &refs, c->fix, e);
    *result = refs; /* allocation figures come from the refcount pass */
    add_counts(result, &snap);
    if (r < 0)
        return -1;
    /* Snapshot table entries QEMU would rewrite with -r all are left as
     * they are: extsnap does not rewrite snapshot tables. */
    if (c->fix && result->check_errors == 0 && result->corruptions == 0 && c->hdr.version >= 3) {
        uint64_t incompat = c->hdr.incompatible_features &
                            ~(QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT);
        if (incompat != c->hdr.incompatible_features &&
            write_features(c, incompat, c->hdr.autoclear_features, e) < 0)
            return -1;
    }
    return 0;
}

int qcow2_check_pass(const char *path, unsigned fix, FILE *log, qcow2_check_result *res,
                     es_err *e)
{
    return qcow2_check_pass_progress(path, fix, log, NULL, NULL, NULL, res, e);
}

int qcow2_check_pass_progress(const char *path, unsigned fix, FILE *log, const es_progress_sink *pr,
                              const char *disk, const char *name, qcow2_check_result *res,
                              es_err *e)
{
    qcow2_check_ctx c;
    memset(res, 0, sizeof *res);
    int r = open_ctx(&c, path, fix, log, e);
    c.progress = pr;
    c.progress_disk = disk ? disk : path;
    c.progress_image = name ? name : path;
    /* Writers must drop autoclear bits they do not know before writing. */
    if (r == 0 && c.fix && c.hdr.version >= 3 && (c.hdr.autoclear_features & ~AUTOCLEAR_KNOWN))
        r = write_features(&c, c.hdr.incompatible_features,
                           c.hdr.autoclear_features & AUTOCLEAR_KNOWN, e);
    if (r == 0)
        r = check_locked(&c, res, e);
    close_ctx(&c, false);
    return r;
}

int qcow2_check_pass_file(es_file *f, const char *path, unsigned fix, FILE *log,
                          qcow2_check_result *res, es_err *e)
{
    qcow2_check_ctx c;
    memset(res, 0, sizeof *res);
    memset(&c, 0, sizeof c);
    c.path = path;
    c.log = log;
    c.fix = fix & QCOW2_CHECK_FIX_ALL;
    c.file = f;
    int r = init_ctx(&c, e);
    if (r == 0)
        r = check_locked(&c, res, e);
    close_ctx(&c, true);
    return r;
}

int qcow2_check_image(const char *path, unsigned fix, FILE *log, qcow2_check_result *res,
                      bool *repaired, es_err *e)
{
    return qcow2_check_image_progress(path, fix, log, NULL, res, repaired, e);
}

int qcow2_check_image_progress(const char *path, unsigned fix, FILE *log,
                               const es_progress_sink *pr, qcow2_check_result *res,
                               bool *repaired, es_err *e)
{
    *repaired = false;
    if (qcow2_check_pass_progress(path, fix, log, pr, NULL, NULL, res, e) < 0)
        return -1;
    if (res->corruptions_fixed || res->leaks_fixed) {
        int64_t cf = res->corruptions_fixed, lf = res->leaks_fixed;
        *repaired = true;
        int r = qcow2_check_pass(path, fix & QCOW2_CHECK_FORCE_SHARE, log, res, e);
        res->corruptions_fixed = cf;
        res->leaks_fixed = lf;
        if (r < 0)
            return -1;
    }
    return 0;
}
