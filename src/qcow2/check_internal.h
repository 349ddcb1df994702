/* Shared state of one qcow2 check pass (check*.c only). */
#ifndef ES_QCOW2_CHECK_INTERNAL_H
#define ES_QCOW2_CHECK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "qcow2/check.h"
#include "qcow2/header.h"
#include "util/err.h"
#include "util/fileio.h"
#include "util/imglock.h"

/* Cluster types, as QEMU's qcow2_get_cluster_type() classifies L2 entries. */
typedef enum {
    QCOW2_CT_UNALLOCATED,
    QCOW2_CT_ZERO_PLAIN,
    QCOW2_CT_ZERO_ALLOC,
    QCOW2_CT_NORMAL,
    QCOW2_CT_COMPRESSED,
} qcow2_cluster_type;

#define QCOW2_L2_BITMAP_ALL_ALLOC 0x00000000ffffffffull
#define QCOW2_L2_BITMAP_ALL_ZEROES 0xffffffff00000000ull

typedef struct qcow2_snap_entry {
    uint64_t l1_offset;
    uint32_t l1_size;
    uint32_t extra_data_size;
    char *id;
    char *name;
} qcow2_snap_entry;

typedef struct qcow2_check_ctx {
    const char *path;
    es_file *file;
    es_imglock lock;  /* held on file's descriptor while the pass runs */
    FILE *log;
    const es_progress_sink *progress; /* the walk of the active L1 table (may be NULL) */
    const char *progress_disk, *progress_image;
    unsigned fix;     /* repair bits only */
    qcow2_check_result *res;

    qcow2_header hdr;
    uint64_t file_size;
    uint64_t virtual_size;
    uint32_t cluster_bits;
    uint64_t cluster_size;
    bool subclusters;         /* extended L2 entries */
    bool data_file;           /* external data file: data clusters are not refcounted */
    uint32_t l2_entry_bytes;  /* 8 or 16 */
    uint64_t l2_entries;      /* entries per L2 table */
    uint32_t refcount_order;  /* refcount width = 1 << order bits */
    uint64_t refcount_max;
    uint64_t rb_entries;      /* refcounts per refcount block */
    uint32_t csize_shift;     /* compressed descriptor layout */
    uint64_t csize_mask;
    uint64_t coffset_mask;

    /* The on-disk refcount table (host order), loaded whole: <= 8 MiB by
     * the header's limit; replaced after a rebuild. */
    uint64_t reftable_offset;
    uint32_t reftable_clusters;
    uint64_t *reftable;
    uint64_t reftable_entries;

    /* One cached refcount block (on-disk format), written back when dirty. */
    uint8_t *rb;
    uint64_t rb_offset;
    bool rb_valid;
    bool rb_dirty;
    bool corruption_signalled;

    /* In-memory refcounts computed from the references ("IMRT" in QEMU).
     * One counter per host cluster of the FILE (never per virtual cluster),
     * stored exactly like a refcount block, at the image's own refcount
     * width: memory equals QEMU's for the same file, counters saturate at
     * the same maximum (QEMU reports "overflow" there), and a slice can be
     * written out unchanged as a refcount block when rebuilding.
     * imrt_n entries; the buffer is a whole number of clusters. */
    uint8_t *imrt;
    uint64_t imrt_n;
    uint64_t imrt_bytes;

    /* Internal snapshot table as read by the check. */
    qcow2_snap_entry *snaps;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t snapshots_size;

    /* Bitmaps extension (only when the autoclear bit says it is valid). */
    uint32_t nb_bitmaps;
    uint64_t bitmap_dir_offset;
    uint64_t bitmap_dir_size;

    /* LUKS header area (crypto header extension). */
    uint64_t crypto_offset;
    uint64_t crypto_length;

    uint8_t *l2;  /* one L2 table */
} qcow2_check_ctx;

/* --- check.c: small helpers shared by the check files --- */
/* Read n bytes at off; bytes past end of file read as zeroes (as QEMU's
 * block layer does), so a truncated image is checked, not refused. */
int check_pread(qcow2_check_ctx *c, void *buf, size_t n, uint64_t off, es_err *e);
void check_log(qcow2_check_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
qcow2_cluster_type check_cluster_type(const qcow2_check_ctx *c, uint64_t l2e);
uint64_t check_l2_entry(const qcow2_check_ctx *c, const uint8_t *l2, uint64_t i);
uint64_t check_l2_bitmap(const qcow2_check_ctx *c, const uint8_t *l2, uint64_t i);
void check_parse_compressed(const qcow2_check_ctx *c, uint64_t l2e, uint64_t *coffset,
                            uint64_t *csize);
static inline uint64_t check_clusters(const qcow2_check_ctx *c, uint64_t bytes)
{
    return (bytes + c->cluster_size - 1) >> c->cluster_bits;
}

/* --- check_refarray.c: refcount arrays in on-disk refcount-block format --- */
uint64_t refarray_get(const uint8_t *a, uint32_t order, uint64_t i);
void refarray_set(uint8_t *a, uint32_t order, uint64_t i, uint64_t v);
/* Grow the IMRT to hold n entries (new entries zero). */
int imrt_resize(qcow2_check_ctx *c, uint64_t n, es_err *e);
void imrt_clear(qcow2_check_ctx *c);
static inline uint64_t imrt_get(const qcow2_check_ctx *c, uint64_t i)
{
    return i < c->imrt_n ? refarray_get(c->imrt, c->refcount_order, i) : 0;
}
/* QEMU's qcow2_inc_refcounts_imrt(): +1 for every cluster touched by
 * [off, off+size); references past end of file by a cluster or more and
 * counter overflows are corruptions. */
int imrt_inc_range(qcow2_check_ctx *c, uint64_t off, uint64_t size, es_err *e);

/* --- check_snapshots.c --- */
/* QEMU's qcow2_check_read_snapshot_table(). */
int check_read_snapshot_table(qcow2_check_ctx *c, es_err *e);
void check_free_snapshots(qcow2_check_ctx *c);

/* --- check_refs.c: references --- */
/* QEMU's calculate_refcounts(): fill the IMRT from every structure; sets
 * *rebuild when the refcount structure itself is broken. */
int check_calculate_refcounts(qcow2_check_ctx *c, unsigned fix, bool *rebuild, es_err *e);

/* --- check_ondisk.c: on-disk refcounts --- */
int ondisk_load_reftable(qcow2_check_ctx *c, es_err *e);
/* QEMU's qcow2_get_refcount(): 1 when the refblock offset is unaligned
 * (an I/O error for QEMU), 0 on success, -1 on a real I/O error. */
int ondisk_get_refcount(qcow2_check_ctx *c, uint64_t cluster, uint64_t *rc, es_err *e);
int ondisk_set_refcount(qcow2_check_ctx *c, uint64_t cluster, uint64_t rc, es_err *e);
int ondisk_writeback(qcow2_check_ctx *c, es_err *e);
void ondisk_drop_cache(qcow2_check_ctx *c);
/* Refuse a repair write that would land on metadata it is not meant for
 * (QEMU's overlap check). `what` names the structure being written;
 * ignore_* skip the structure itself. Returns -1 with e set on overlap. */
#define OVL_ACTIVE_L1 (1u << 0)
#define OVL_ACTIVE_L2 (1u << 1)
#define OVL_REFBLOCK (1u << 2)
#define OVL_INACTIVE_L2 (1u << 3)
int ondisk_overlap_check(qcow2_check_ctx *c, unsigned ignore, uint64_t off, uint64_t len,
                         es_err *e);

/* --- check_compare.c --- */
/* QEMU's compare_refcounts(). */
int check_compare_refcounts(qcow2_check_ctx *c, qcow2_check_result *res, unsigned fix,
                            bool *rebuild, uint64_t *highest, es_err *e);
/* QEMU's check_oflag_copied(). */
int check_oflag_copied(qcow2_check_ctx *c, qcow2_check_result *res, unsigned fix, es_err *e);

/* --- check_rebuild.c --- */
/* Write a fresh refcount structure built from the IMRT at the end of the
 * file and switch the header to it with one write. */
int check_rebuild_refcounts(qcow2_check_ctx *c, es_err *e);

#endif
