/* Shared state of one safe rebase (qcow2/rebase_*.c only). The guest range
 * of IMAGE is processed in batches of candidate clusters: clusters IMAGE
 * does not hold where the old or the new backing chain may show data
 * (rebase_scan.c), compared and written batch by batch (rebase_batch.c). */
#ifndef ES_QCOW2_REBASE_INTERNAL_H
#define ES_QCOW2_REBASE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

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
} rebase_op;

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
} rebase_ctx;

/* rebase_scan.c: fill c->ops with the candidate clusters from *pos on
 * (advanced), at most c->batch_max; c->nops == 0 at the end. Reads
 * metadata only (block status of IMAGE and of both chains). */
int rebase_collect_batch(rebase_ctx *c, uint64_t *pos, es_err *e);
/* Ask the kernel to read the L2 tables of both chains ahead of the scan. */
void rebase_prefetch_metadata(rebase_ctx *c);

/* rebase_batch.c: compare the batch's clusters in both chains and write
 * the differing ones into IMAGE, in crash-safe order. */
int rebase_batch_run(rebase_ctx *c, es_err *e);

#endif
