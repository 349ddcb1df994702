/* Shared state of one commit (qcow2/commit*.c only).
 *
 * The guest range of TOP is processed in batches of "ops", one op per BASE
 * cluster (a 64 KiB unit for a raw BASE) that something above BASE covers.
 * An op lists the segments that cover it: data in some image above BASE
 * (host offset), a compressed cluster there, or zeroes. */
#ifndef ES_QCOW2_COMMIT_INTERNAL_H
#define ES_QCOW2_COMMIT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qcow2/bitmap_merge.h"
#include "qcow2/commit.h"
#include "qcow2/commit_writer.h"
#include "qcow2/image.h"
#include "qcow2/l2_write.h"
#include "qcow2/reclaim.h"
#include "util/imglock.h"

#define COMMIT_RAW_UNIT (64u << 10)        /* op size for a raw BASE */
#define COMMIT_CHUNK_BYTES (8u << 20)      /* per data buffer (two): bounded memory */
#define COMMIT_BATCH_MAX_OPS 32768u        /* ops per allocation batch */
#define COMMIT_BATCH_MAX_BYTES (1ull << 30)
#define COMMIT_BATCH_SEG_CAP 65536u        /* segments per batch (soft) */
/* Guest span resolved at once by the scan (commit_scan.c): its segments and
 * uncovered ranges are held in memory, at worst one per 512-byte
 * subcluster, so a few MiB. */
#define COMMIT_SCAN_WINDOW (64ull << 20)

typedef enum { SEG_ZERO, SEG_DATA, SEG_COMP } commit_seg_kind;

typedef struct commit_seg {
    uint64_t guest;
    uint64_t len;
    commit_seg_kind kind;
    es_image *src;  /* DATA/COMP: the image holding it */
    uint64_t host;  /* DATA: host offset of `guest` in src */
} commit_seg;

/* A guest range nothing above BASE covers yet (scan of one window). */
typedef struct commit_gap {
    uint64_t lo, hi;
} commit_gap;

typedef enum { OP_NONE, OP_ENTRY, OP_DATA } commit_op_action;
typedef enum { FREE_NONE, FREE_HOST, FREE_COMP } commit_free_kind;

typedef struct commit_op {
    uint64_t guest;    /* start of the BASE cluster / unit */
    uint64_t eff_end;  /* min(guest + unit, new virtual size) */
    uint32_t seg_first, nseg;
    commit_op_action action;
    bool need_alloc;   /* dest is a newly allocated cluster */
    /* per subcluster (bit 0 only with standard L2 / raw) */
    uint32_t full_mask;  /* fully covered from above */
    uint32_t any_mask;   /* covered at least partly */
    uint32_t zero_mask;  /* fully covered, by zeroes only */
    uint32_t write_mask; /* written to dest */
    uint64_t old_entry, old_bitmap;
    uint64_t dest;     /* host offset the data goes to */
    uint64_t new_entry, new_bitmap;
    commit_free_kind free_kind;
    uint64_t free_val; /* host offset, or the compressed L2 entry */
    int sort_depth;    /* source order: image depth, host offset */
    uint64_t sort_host;
} commit_op;

typedef struct commit_free {
    commit_free_kind kind;
    uint64_t val;
} commit_free;

typedef struct commit_ctx {
    es_image *top;
    es_image *base;       /* writable */
    const es_commit_opts *opts;
    es_imglock *locks;    /* TOP .. BASE, in chain order */
    size_t nlocks;
    bool raw_base;
    uint64_t unit;        /* op size: BASE cluster size (raw: COMMIT_RAW_UNIT) */
    uint32_t nsub;        /* subclusters per op: 32 with extended L2, else 1 */
    uint64_t sub;         /* unit / nsub */
    uint64_t top_size;    /* commit covers [0, top_size) */
    uint64_t old_size;    /* BASE virtual size before */
    uint64_t new_size;    /* max(old, top) */
    uint64_t soft_zero_end; /* [old_size, this): zero where below BASE shows */

    /* scan state of one window (commit_scan.c) */
    commit_seg *wsegs;    /* what covers the window, in guest order */
    size_t nwsegs, wsegs_cap;
    commit_gap *gaps[2];  /* still uncovered: before and after one layer */
    size_t ngaps[2], gaps_cap[2];

    /* dry run: its only batch as collected, when one batch covers it all
     * (the commit then runs it without scanning again; segs unchanged) */
    commit_op *kept_ops;
    size_t kept_nops;

    /* batch state */
    commit_seg *segs;
    size_t nsegs, segs_cap;
    commit_op *ops;
    size_t nops, ops_cap;
    uint32_t *order;      /* op indices in source order */
    qcow2_l2_target *targets;
    size_t ntargets, targets_cap;
    commit_free *frees;
    size_t nfrees, frees_cap;
    qcow2_l2_update *updates;
    size_t updates_cap;
    uint8_t *bufs[2];     /* COMMIT_CHUNK_BYTES each: one filled, one written */
    int cur;              /* the one being filled */
    commit_writer *writer;
    uint8_t *scratch;     /* one cluster */

    /* dry run totals (space check, progress) */
    uint64_t need_clusters;   /* qcow2: new clusters (data + L2 tables) */
    uint64_t write_bytes;     /* bytes that will be written as data */
    uint64_t total_bytes;     /* guest bytes covered from above */
    uint64_t done_bytes;
    uint64_t last_counted_l1; /* dry: last L1 index counted (+1), 0 = none */
    qcow2_reclaim reclaim;    /* what an interrupted earlier run left in BASE */
    qcow2_bitmap_merge bitmaps; /* BASE's bitmaps after the commit */
    /* dry: file-system blocks that writes in place fill (commit_space.c) */
    uint64_t fill_bytes;      /* holes of BASE's file the data lands in */
    uint64_t fs_block;        /* BASE's file-system block size, 0 until known */
    uint64_t data_lo, data_hi; /* last extent of BASE's file found allocated */
    uint64_t holes_l1;        /* last L1 index whose L2 table was looked at (+1), 0 = none */
} commit_ctx;

/* commit_scan.c */
/* Does anything below BASE possibly show non-zero data in [off, off+len)? */
int commit_below_shows(commit_ctx *c, uint64_t off, uint64_t len, bool *shows, es_err *e);
/* Fill c->ops/c->segs with the ops starting at *pos (advanced); stops at a
 * batch limit (at an op boundary) or at the end of TOP. */
int commit_collect_batch(commit_ctx *c, uint64_t *pos, es_err *e);

/* commit_plan.c: decide what each op does to BASE (reads BASE metadata;
 * allocates nothing). */
int commit_classify(commit_ctx *c, commit_op *op, es_err *e);

/* commit_batch.c */
/* Dry run of one collected batch: count what it needs (space check). */
int commit_batch_count(commit_ctx *c, es_err *e);
/* Execute one collected batch with the full ordering discipline. */
int commit_batch_run(commit_ctx *c, es_err *e);

/* Tell the caller how far the copy got (es_commit_opts.progress). */
static inline void commit_report_progress(const commit_ctx *c)
{
    es_progress_report(&c->opts->progress, "commit",
                       c->opts->progress_disk ? c->opts->progress_disk : c->top->filename,
                       c->top->filename, c->done_bytes, c->total_bytes);
}

/* commit_data.c: read the sources of one chunk of data ops and hand it to
 * the writer (commit_writer_wait() before anything depends on the data). */
int commit_data_chunk(commit_ctx *c, const uint32_t *idx, size_t n, es_err *e);

#endif
