/* An open disk image (qcow2 or raw) and its backing chain: the engine's
 * central object. Read side here; writers add to it in their own files. */
#ifndef ES_QCOW2_IMAGE_H
#define ES_QCOW2_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "qcow2/header.h"
#include "util/err.h"
#include "util/fileio.h"
#include "util/imglock.h"

#define ES_CHAIN_MAX_DEPTH 256

typedef enum { ES_FMT_RAW = 0, ES_FMT_QCOW2 = 1 } es_img_format;

typedef struct es_open_opts {
    bool writable;       /* open read-write (top image only; backing stays read-only) */
    bool no_backing;     /* do not open the backing chain */
    const char *format;  /* "raw", "qcow2" or NULL to probe */
    const char *root;    /* --root DIR: absolute backing names are resolved under it */
    bool force_share;    /* read even if another process holds write locks */
} es_open_opts;

struct qcow2_l2_cache;
struct qcow2_refblock_cache;
struct qcow2_overlap;

typedef struct es_image {
    char *filename;      /* path as given by the caller (or as resolved for backings) */
    char *open_path;     /* path actually opened (under --root when given) */
    es_file *file;
    es_img_format format;
    bool writable;
    uint64_t file_size;
    uint64_t virtual_size;

    /* qcow2 only */
    qcow2_header hdr;
    uint32_t cluster_bits;
    uint64_t cluster_size;
    bool extended_l2;
    uint32_t l2_entry_bytes;   /* 8 or 16 */
    uint64_t l2_entries;       /* entries per L2 table */
    uint64_t subcluster_size;  /* cluster_size/32 with extended L2, else cluster_size */
    uint32_t refcount_bits;
    uint64_t *l1;              /* host-endian copy of the L1 table (l1_size entries) */
    uint32_t l1_size;
    uint64_t *reftable;        /* host-endian refcount table */
    uint64_t reftable_entries;
    struct qcow2_l2_cache *l2_cache;
    struct qcow2_refblock_cache *rb_cache;
    struct qcow2_overlap *overlap; /* metadata map for the overlap checks (overlap.h) */
    bool writes_stopped;       /* a write would have hit metadata: no more writes */

    /* chain */
    struct es_image *backing;  /* NULL at the bottom */
    char *backing_resolved;    /* resolved path of the backing file (as QEMU shows it) */
    int depth;                 /* 0 for the top image */
    bool backing_format_probed; /* header names a backing file but no backing format:
                                   the backing's format was probed (as QEMU would) */

    /* identity of the open file, to detect loops in the chain */
    uint64_t st_dev;
    uint64_t st_ino;

    /* QEMU-compatible image lock held on file->fd: write mode when
     * writable, read mode otherwise, nothing with force_share. */
    es_imglock lock;

    /* last decompressed cluster (read.c), allocated on first use */
    uint8_t *zcluster;         /* cluster_size bytes */
    uint8_t *zinput;           /* compressed bytes, up to 2 clusters */
    uint64_t zcluster_entry;   /* L2 entry the cached cluster came from, 0 = none */
} es_image;

/* Open an image and (unless no_backing) its whole backing chain. Backing
 * names resolve against the directory of the image naming them; protocol
 * names are refused; loops and depth > ES_CHAIN_MAX_DEPTH are errors. */
int es_image_open(es_image **out, const char *path, const es_open_opts *opts, es_err *e);
/* Close an image and its backing chain. */
void es_image_close(es_image *img);

/* What one image (not the chain) says about guest range [off, off+len). */
typedef enum {
    ES_BS_UNALLOC = 0, /* not here: look in the backing file */
    ES_BS_DATA,        /* data at host_off (contiguous for the whole run) */
    ES_BS_ZERO,        /* reads as zeroes; backing not consulted */
    ES_BS_COMPRESSED,  /* one compressed cluster (run never spans clusters) */
} es_bs_kind;

typedef struct es_block_status {
    es_bs_kind kind;
    uint64_t len;       /* run length from off, all of the same kind (and contiguous host) */
    uint64_t host_off;  /* DATA: host offset of guest offset off */
    uint64_t l2_entry;  /* raw L2 entry word 0 (qcow2) for callers that need it */
    uint64_t l2_bitmap; /* extended L2: the entry's subcluster bitmap (word 1), else 0 */
} es_block_status;

/* Status of the run starting at off (at most max_len bytes). off past the
 * virtual size reports ES_BS_ZERO-free UNALLOC with len = max_len. */
int es_image_block_status(es_image *img, uint64_t off, uint64_t max_len, es_block_status *bs,
                          es_err *e);

/* Guest read through the chain: what the VM sees. */
int es_image_read(es_image *img, void *buf, uint64_t len, uint64_t off, es_err *e);

/* Resolve a backing name as QEMU does: relative to the directory of `from`
 * (the path of the image naming it); under root when given. Returns a
 * malloc'd path in *out_display (as QEMU reports full-backing-filename) and
 * *out_open (the path to open, under root). Protocol names are refused. */
int es_backing_resolve(const char *from, const char *name, const char *root, char **out_display,
                       char **out_open, es_err *e);

/* QEMU's path_has_protocol(): a ':' before any '/' makes the name a protocol
 * ("nbd:host:port", "json:{...}", even "a:b.qcow2"); such names are never
 * followed. */
bool es_backing_has_protocol(const char *name);

#endif
