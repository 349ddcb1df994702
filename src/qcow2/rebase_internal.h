/* Shared state of one safe rebase (qcow2/rebase_*.c only). The guest range
 * of IMAGE is processed in batches of candidate clusters: clusters IMAGE
 * does not hold where the old or the new backing chain may show data
 * (rebase_scan.c), compared and written batch by batch (rebase_batch.c). */
#ifndef ES_QCOW2_REBASE_INTERNAL_H
#define ES_QCOW2_REBASE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "qcow2/bitmap_bits.h"
#include "qcow2/compress_write.h"
#include "qcow2/image.h"
#include "qcow2/l2_write.h"
#include "qcow2/rebase_safe.h"

#define REBASE_CHUNK_BYTES (8u << 20)      /* per buffer (old and new content) */
#define REBASE_BATCH_MAX_OPS 32768u        /* candidate clusters per batch */
#define REBASE_BATCH_MAX_BYTES (256u << 20) /* guest bytes per batch: the differing
                                             * ones are read twice, the second time
                                             * from the page cache */

typedef enum { RB_SAME, RB_ZERO, RB_DATA } rebase_action;

typedef struct rebase_op {
    uint64_t guest;   /* cluster offset in IMAGE */
    rebase_action action;
    uint64_t dest;    /* RB_DATA: the new host cluster */
    uint64_t zentry;  /* RB_DATA written compressed: its L2 entry; else 0 */
} rebase_op;

/* IMAGE's enabled persistent bitmaps (rebase_bitmaps.c). */
typedef struct rebase_bitmaps {
    uint32_t n;
    char **names;
    qcow2_bitmap_bits *bits;
    bool *changed;  /* bits set since they were last written */
} rebase_bitmaps;

typedef struct rebase_ctx {
    es_image *img;       /* IMAGE, writable; its backing chain is the old one */
    es_image *newb;      /* the new backing chain; NULL: none */
    /* The first image the two chains share (the same file), in each
     * chain; NULL: none. Where neither chain has anything above it, both
     * read it: they agree without being read. */
    const es_image *shared_old, *shared_new;
    uint64_t cs;         /* IMAGE's cluster size */
    uint64_t size;       /* IMAGE's virtual size */
    uint64_t next;       /* scan: first cluster offset not yet emitted */
    size_t batch_max;    /* clusters per batch */
    size_t chunk_max;    /* clusters per buffer */
    rebase_op *ops;      /* the batch's candidates, ascending */
    size_t nops;
    uint8_t *old_buf, *new_buf; /* chunk_max clusters each */
    qcow2_l2_target *targets;
    size_t ntargets, targets_cap;
    uint64_t *frees;     /* old L2 tables to release once L1 no longer names them */
    size_t nfrees, frees_cap;
    qcow2_l2_update *updates;
    size_t updates_cap;
    uint8_t *scratch;    /* one cluster */
    rebase_bitmaps bm;
    bool compress;       /* -c: data clusters written compressed */
    qcow2_zalloc zalloc; /* -c: where the next compressed cluster goes */
    uint8_t *zbuf;       /* -c: compressed output of a chunk */
} rebase_ctx;

/* rebase_scan.c: fill c->ops with the candidate clusters from *pos on
 * (advanced), at most c->batch_max; c->nops == 0 at the end. Reads
 * metadata only (block status of IMAGE and of both chains). */
int rebase_collect_batch(rebase_ctx *c, uint64_t *pos, es_err *e);
/* Ask the kernel to read the L2 tables of both chains ahead of the scan. */
void rebase_prefetch_metadata(rebase_ctx *c);

/* rebase_space.c: ENOSPC, before the first write, when IMAGE's file
 * system may not hold what the rebase writes (an upper bound); rescans
 * the candidates and leaves the scan at the start. */
int rebase_space_check(rebase_ctx *c, es_err *e);

/* rebase_batch.c: compare the batch's clusters in both chains and write
 * the differing ones into IMAGE, in crash-safe order. */
int rebase_batch_run(rebase_ctx *c, es_err *e);

/* rebase_bitmaps.c: IMAGE's bitmaps, read (refusing in-use and
 * inconsistent ones) before the first write; the 512-byte sectors where a
 * written cluster's old and new content differ marked in the enabled ones
 * (qemu-img writes those); the marks of a batch written before its data. */
int rebase_bitmaps_load(rebase_ctx *c, es_err *e);
void rebase_bitmaps_mark_diff(rebase_ctx *c, uint64_t guest, const uint8_t *old,
                              const uint8_t *new_, uint64_t len);
int rebase_bitmaps_write(rebase_ctx *c, es_err *e);
void rebase_bitmaps_free(rebase_bitmaps *b);

#endif
