/* References: walk every structure of the image and count, per host
 * cluster, how many things point at it (QEMU's calculate_refcounts and the
 * L1/L2/bitmap/refblock walks it calls, with the same checks and counts). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/check_internal.h"
#include "qcow2/format.h"
#include "util/xalloc.h"

#define L1_CHUNK_ENTRIES 4096 /* L1 tables are read in pieces of this many entries */

/* Bitmaps extension limits (QEMU block/qcow2-bitmap.c). */
#define BME_MAX_TABLE_SIZE 0x8000000u
#define BME_MAX_PHYS_SIZE 0x20000000ull
#define BME_MIN_GRANULARITY_BITS 9
#define BME_MAX_GRANULARITY_BITS 31
#define BME_MAX_NAME_SIZE 1023
#define BME_RESERVED_FLAGS 0xfffffffcu
#define BME_TYPE_DIRTY_TRACKING 1
#define BME_ENTRY_RESERVED_MASK 0xff000000000001feull
#define BME_ENTRY_OFFSET_MASK 0x00fffffffffffe00ull
#define BME_ENTRY_ALL_ONES 1ull
#define BME_DIR_ENTRY_BYTES 24

/* Turn a cluster whose offset is unaligned but which holds no data into a
 * zero cluster (QEMU's fix_l2_entry_by_zero). Returns 0 when fixed, 1 when
 * the write failed (counted, the walk goes on), -1 when the entry lies on
 * other metadata (the walk stops). */
static int fix_l2_entry_by_zero(qcow2_check_ctx *c, uint64_t l2_offset, uint64_t i, bool active,
                                es_err *e)
{
    uint8_t *ent = c->l2 + i * c->l2_entry_bytes;
    if (c->subclusters) {
        uint64_t bm = be64_load(ent + 8);
        bm |= bm << 32; /* allocated subclusters become zero */
        bm &= QCOW2_L2_BITMAP_ALL_ZEROES;
        be64_store(ent, 0);
        be64_store(ent + 8, bm);
    } else {
        be64_store(ent, QCOW2_OFLAG_ZERO);
    }
    uint64_t where = l2_offset + i * c->l2_entry_bytes;
    es_err werr;
    if (ondisk_overlap_check(c, active ? OVL_ACTIVE_L2 : OVL_INACTIVE_L2, where,
                             c->l2_entry_bytes, e) < 0) {
        check_log(c, "ERROR: Overlap check failed\n");
        c->res->check_errors++;
        return -1;
    }
    if (es_file_pwrite(c->file, ent, c->l2_entry_bytes, where, &werr) < 0 ||
        es_file_flush(c->file, &werr) < 0) {
        check_log(c, "ERROR: Failed to overwrite L2 table entry: %s\n", werr.msg);
        c->res->check_errors++;
        return 1;
    }
    c->res->corruptions--;
    c->res->corruptions_fixed++;
    return 0;
}

/* A compressed cluster's L2 entry l2e (index i): its checks, and the host
 * range it references counted. */
static int check_compressed_entry(qcow2_check_ctx *c, uint64_t i, uint64_t l2e, uint64_t bm,
                                  bool frag, es_err *e)
{
    qcow2_check_result *res = c->res;
    if (l2e & QCOW2_OFLAG_COPIED) {
        check_log(c,
                  "ERROR: coffset=0x%llx: copied flag must never be set for compressed "
                  "clusters\n",
                  (unsigned long long)(l2e & c->coffset_mask));
        l2e &= ~QCOW2_OFLAG_COPIED;
        res->corruptions++;
    }
    if (c->data_file) {
        check_log(c, "ERROR compressed cluster %llu with data file, entry=0x%llx\n",
                  (unsigned long long)i, (unsigned long long)l2e);
        res->corruptions++;
        return 0;
    }
    if (bm) {
        check_log(c,
                  "ERROR compressed cluster %llu with non-zero subcluster allocation "
                  "bitmap, entry=0x%llx\n",
                  (unsigned long long)i, (unsigned long long)l2e);
        res->corruptions++;
        return 0;
    }
    uint64_t coffset, csize;
    check_parse_compressed(c, l2e, &coffset, &csize);
    if (imrt_inc_range(c, coffset, csize, e) < 0)
        return -1;
    if (frag) {
        /* Compressed clusters count as fragmented by nature. */
        res->allocated_clusters++;
        res->compressed_clusters++;
        res->fragmented_clusters++;
    }
    return 0;
}

/* An allocated (normal or zero-allocated) cluster's L2 entry l2e, index i
 * of the table at l2_offset: its checks (an unaligned entry holding no data
 * is repaired with fix), the fragmentation count (*next_contiguous: where
 * the previous cluster ended) and its cluster counted. */
static int check_allocated_entry(qcow2_check_ctx *c, uint64_t l2_offset, uint64_t i,
                                 uint64_t l2e, uint64_t bm, bool frag, unsigned fix, bool active,
                                 uint64_t *next_contiguous, es_err *e)
{
    qcow2_check_result *res = c->res;
    uint64_t off = l2e & QCOW2_L2E_OFFSET_MASK;
    if ((bm >> 32) & bm) {
        res->corruptions++;
        check_log(c,
                  "ERROR offset=%llx: Allocated cluster has corrupted subcluster "
                  "allocation bitmap\n",
                  (unsigned long long)off);
    }
    if (off & (c->cluster_size - 1)) {
        res->corruptions++;
        bool has_data = c->subclusters ? (bm & QCOW2_L2_BITMAP_ALL_ALLOC) != 0
                                       : !(l2e & QCOW2_OFLAG_ZERO);
        if (!has_data) {
            check_log(c,
                      "%s offset=%llx: Preallocated cluster is not properly aligned; "
                      "L2 entry corrupted.\n",
                      (fix & QCOW2_CHECK_FIX_ERRORS) ? "Repairing" : "ERROR",
                      (unsigned long long)off);
            if (fix & QCOW2_CHECK_FIX_ERRORS) {
                int r = fix_l2_entry_by_zero(c, l2_offset, i, active, e);
                if (r < 0)
                    return -1;
                if (r == 0)
                    return 0; /* no longer references anything */
            }
        } else {
            check_log(c,
                      "ERROR offset=%llx: Data cluster is not properly aligned; L2 "
                      "entry corrupted.\n",
                      (unsigned long long)off);
        }
    }
    if (frag) {
        res->allocated_clusters++;
        if (*next_contiguous && off != *next_contiguous)
            res->fragmented_clusters++;
        *next_contiguous = off + c->cluster_size;
    }
    if (!c->data_file && imrt_inc_range(c, off, c->cluster_size, e) < 0)
        return -1;
    return 0;
}

static int check_l2(qcow2_check_ctx *c, uint64_t l2_offset, bool frag, unsigned fix, bool active,
                    es_err *e)
{
    qcow2_check_result *res = c->res;
    if (check_pread(c, c->l2, c->cluster_size, l2_offset, e) < 0) {
        check_log(c, "ERROR: I/O error in check_refcounts_l2\n");
        res->check_errors++;
        return -1;
    }
    uint64_t next_contiguous = 0;
    for (uint64_t i = 0; i < c->l2_entries; i++) {
        uint64_t l2e = check_l2_entry(c, c->l2, i), bm = check_l2_bitmap(c, c->l2, i);
        qcow2_cluster_type type = check_cluster_type(c, l2e);
        if (type != QCOW2_CT_COMPRESSED && (l2e & QCOW2_L2E_STD_RESERVED_MASK)) {
            check_log(c, "ERROR found l2 entry with reserved bits set: %llx\n",
                      (unsigned long long)l2e);
            res->corruptions++;
        }
        switch (type) {
        case QCOW2_CT_COMPRESSED:
            if (check_compressed_entry(c, i, l2e, bm, frag, e) < 0)
                return -1;
            break;
        case QCOW2_CT_ZERO_ALLOC:
        case QCOW2_CT_NORMAL:
            if (check_allocated_entry(c, l2_offset, i, l2e, bm, frag, fix, active,
                                      &next_contiguous, e) < 0)
                return -1;
            break;
        case QCOW2_CT_ZERO_PLAIN:
            break;
        case QCOW2_CT_UNALLOCATED:
            if (bm & QCOW2_L2_BITMAP_ALL_ALLOC) {
                res->corruptions++;
                check_log(c, "ERROR: Unallocated cluster has non-zero subcluster allocation "
                             "map\n");
            }
            break;
        }
    }
    return 0;
}

static int check_l1(qcow2_check_ctx *c, uint64_t l1_offset, uint32_t l1_size, bool frag,
                    unsigned fix, bool active, es_err *e)
{
    if (l1_size == 0)
        return 0;
    if (imrt_inc_range(c, l1_offset, (uint64_t)l1_size * 8, e) < 0)
        return -1;
    uint8_t *chunk = es_xmalloc(L1_CHUNK_ENTRIES * 8);
    int ret = 0;
    /* Progress: guest bytes behind the L1 entries walked, of the virtual size. */
    const es_progress_sink *pr = active ? c->progress : NULL;
    uint64_t per_entry = c->cluster_size * c->l2_entries, vs = c->virtual_size;
    es_progress_report(pr, "check", c->progress_disk, c->progress_image, 0, vs);
    for (uint32_t base = 0; base < l1_size && ret == 0; base += L1_CHUNK_ENTRIES) {
        uint32_t n = l1_size - base < L1_CHUNK_ENTRIES ? l1_size - base : L1_CHUNK_ENTRIES;
        if (check_pread(c, chunk, (size_t)n * 8, l1_offset + (uint64_t)base * 8, e) < 0) {
            check_log(c, "ERROR: I/O error in check_refcounts_l1\n");
            c->res->check_errors++;
            ret = -1;
            break;
        }
        for (uint32_t k = 0; k < n; k++) {
            uint64_t l1e = be64_load(chunk + 8 * k);
            if (!l1e)
                continue;
            if (l1e & QCOW2_L1E_RESERVED_MASK) {
                check_log(c, "ERROR found L1 entry with reserved bits set: %llx\n",
                          (unsigned long long)l1e);
                c->res->corruptions++;
            }
            uint64_t l2_offset = l1e & QCOW2_L1E_OFFSET_MASK;
            if (imrt_inc_range(c, l2_offset, c->cluster_size, e) < 0) {
                ret = -1;
                break;
            }
            if (l2_offset & (c->cluster_size - 1)) {
                check_log(c,
                          "ERROR l2_offset=%llx: Table is not cluster aligned; L1 entry "
                          "corrupted\n",
                          (unsigned long long)l2_offset);
                c->res->corruptions++;
            }
            /* A table wholly past the end of the file reads as zeroes and
             * references nothing: do not walk it (garbage taken for a huge
             * L1 table would cost a whole table walk per entry). */
            if (l2_offset >= c->file_size)
                continue;
            if (check_l2(c, l2_offset, frag, fix, active, e) < 0) {
                ret = -1;
                break;
            }
            uint64_t walked = (uint64_t)(base + k + 1) * per_entry;
            es_progress_report(pr, "check", c->progress_disk, c->progress_image,
                               walked < vs ? walked : vs, vs);
        }
    }
    if (ret == 0)
        es_progress_report(pr, "check", c->progress_disk, c->progress_image, vs, vs);
    free(chunk);
    return ret;
}

/* One bitmap directory entry, validated like QEMU's check_dir_entry(). */
static bool bitmap_entry_valid(const qcow2_check_ctx *c, uint64_t table_off, uint32_t table_size,
                               uint32_t flags, uint8_t type, uint8_t gran, uint16_t name_size)
{
    if (table_size == 0 || table_off == 0 || (table_off & (c->cluster_size - 1)) ||
        table_size > BME_MAX_TABLE_SIZE || gran > BME_MAX_GRANULARITY_BITS ||
        gran < BME_MIN_GRANULARITY_BITS || (flags & BME_RESERVED_FLAGS) ||
        name_size > BME_MAX_NAME_SIZE || type != BME_TYPE_DIRTY_TRACKING)
        return false;
    uint64_t phys = (uint64_t)table_size * c->cluster_size;
    /* QEMU compares with its length in whole sectors. */
    return phys <= BME_MAX_PHYS_SIZE && c->virtual_size / 512 * 512 <= ((phys * 8) << gran);
}

/* Count one bitmap's table and data clusters. Any invalid table entry is a
 * corruption that stops the check (as in QEMU). */
static int count_bitmap_table(qcow2_check_ctx *c, uint64_t off, uint32_t size, es_err *e)
{
    if (imrt_inc_range(c, off, (uint64_t)size * 8, e) < 0)
        return -1;
    /* Entries past the end of the file read as zeroes, which count nothing:
     * walk only the part inside the file (65535 directory entries naming
     * huge tables past EOF took minutes). */
    uint64_t in_file = off < c->file_size ? (c->file_size - off + 7) / 8 : 0;
    if (in_file < size)
        size = (uint32_t)in_file;
    uint8_t *chunk = es_xmalloc(L1_CHUNK_ENTRIES * 8);
    int ret = 0;
    for (uint32_t base = 0; base < size && ret == 0; base += L1_CHUNK_ENTRIES) {
        uint32_t n = size - base < L1_CHUNK_ENTRIES ? size - base : L1_CHUNK_ENTRIES;
        if (check_pread(c, chunk, (size_t)n * 8, off + (uint64_t)base * 8, e) < 0) {
            c->res->corruptions++;
            ret = -1;
            break;
        }
        for (uint32_t k = 0; k < n; k++) {
            uint64_t ent = be64_load(chunk + 8 * k), data = ent & BME_ENTRY_OFFSET_MASK;
            if ((ent & BME_ENTRY_RESERVED_MASK) ||
                (data && ((ent & BME_ENTRY_ALL_ONES) || (data & (c->cluster_size - 1))))) {
                c->res->corruptions++;
                ret = es_err_set(e, EINVAL, c->path,
                                 "bitmap table at 0x%llx has an invalid entry 0x%llx",
                                 (unsigned long long)off, (unsigned long long)ent);
                break;
            }
            if (data && imrt_inc_range(c, data, c->cluster_size, e) < 0) {
                ret = -1;
                break;
            }
        }
    }
    free(chunk);
    return ret;
}

/* QEMU's qcow2_check_bitmaps_refcounts(). */
static int check_bitmaps(qcow2_check_ctx *c, es_err *e)
{
    if (c->nb_bitmaps == 0)
        return 0;
    if (imrt_inc_range(c, c->bitmap_dir_offset, c->bitmap_dir_size, e) < 0)
        return -1;
    uint64_t size = c->bitmap_dir_size;
    uint8_t *dir = size ? malloc((size_t)size) : NULL;
    if (!dir) {
        c->res->corruptions++;
        return es_err_set(e, size ? ENOMEM : EINVAL, c->path,
                          "cannot load the bitmap directory (%llu bytes)",
                          (unsigned long long)size);
    }
    int ret = check_pread(c, dir, (size_t)size, c->bitmap_dir_offset, e);
    uint64_t pos = 0;
    uint32_t count = 0;
    /* First validate the whole directory, as QEMU loads it before counting. */
    while (ret == 0 && pos < size) {
        const uint8_t *d = dir + pos;
        if (size - pos < BME_DIR_ENTRY_BYTES || ++count > c->nb_bitmaps) {
            ret = es_err_set(e, EINVAL, c->path, "broken bitmap directory at 0x%llx",
                             (unsigned long long)c->bitmap_dir_offset);
            break;
        }
        uint16_t name_size = be16_load(d + 18);
        uint32_t extra = be32_load(d + 20);
        uint64_t ent_len = (BME_DIR_ENTRY_BYTES + (uint64_t)name_size + extra + 7) & ~7ull;
        if (ent_len > size - pos || extra != 0 ||
            !bitmap_entry_valid(c, be64_load(d), be32_load(d + 8), be32_load(d + 12), d[16],
                                d[17], name_size)) {
            ret = es_err_set(e, EINVAL, c->path, "bitmap directory entry %u is invalid", count);
            break;
        }
        pos += ent_len;
    }
    if (ret == 0 && count != c->nb_bitmaps)
        ret = es_err_set(e, EINVAL, c->path,
                         "bitmap directory holds %u bitmaps, the header says %u", count,
                         c->nb_bitmaps);
    if (ret < 0) {
        c->res->corruptions++;
        free(dir);
        return -1;
    }
    for (pos = 0; pos < size && ret == 0;) {
        const uint8_t *d = dir + pos;
        ret = count_bitmap_table(c, be64_load(d), be32_load(d + 8), e);
        pos += (BME_DIR_ENTRY_BYTES + (uint64_t)be16_load(d + 18) + 7) & ~7ull;
    }
    free(dir);
    return ret;
}

/* QEMU's check_refblocks(): count every refcount block; a refblock must be
 * referenced exactly once, aligned, inside the file. */
static int check_refblocks(qcow2_check_ctx *c, unsigned fix, bool *rebuild, es_err *e)
{
    qcow2_check_result *res = c->res;
    /* Growth limit for refblocks outside the image, fixed before the first
     * growth: measured against the grown size it compounded (each entry
     * could double the file: 8 TiB from a 192 KiB image). */
    const uint64_t grow_limit = 2 * c->file_size + (1ull << 30);
    for (uint64_t i = 0; i < c->reftable_entries; i++) {
        uint64_t raw = c->reftable[i], off = raw & QCOW2_REFT_OFFSET_MASK;
        uint64_t cluster = off >> c->cluster_bits;
        if (raw & QCOW2_REFT_RESERVED_MASK) {
            check_log(c, "ERROR refcount table entry %llu has reserved bits set\n",
                      (unsigned long long)i);
            res->corruptions++;
            *rebuild = true;
            continue;
        }
        if (off & (c->cluster_size - 1)) {
            check_log(c,
                      "ERROR refcount block %llu is not cluster aligned; refcount table entry "
                      "corrupted\n",
                      (unsigned long long)i);
            res->corruptions++;
            *rebuild = true;
            continue;
        }
        if (cluster >= c->imrt_n) {
            res->corruptions++;
            check_log(c, "%s refcount block %llu is outside image\n",
                      (fix & QCOW2_CHECK_FIX_ERRORS) ? "Repairing" : "ERROR",
                      (unsigned long long)i);
            if (!(fix & QCOW2_CHECK_FIX_ERRORS))
                continue;
            /* Grow the file so the block exists (it reads as zeroes). Unlike
             * QEMU, refuse absurd sizes: the refcount array follows the size. */
            es_err terr;
            uint64_t new_size = off + c->cluster_size;
            if (new_size > grow_limit) {
                check_log(c, "ERROR could not resize image: refusing to grow the file to %llu "
                             "bytes\n",
                          (unsigned long long)new_size);
                *rebuild = true;
                continue;
            }
            if (es_file_truncate(c->file, new_size, &terr) < 0) {
                check_log(c, "ERROR could not resize image: %s\n", terr.msg);
                *rebuild = true;
                continue;
            }
            c->file_size = new_size;
            if (imrt_resize(c, check_clusters(c, new_size), e) < 0) {
                res->check_errors++;
                return -1;
            }
            res->corruptions--;
            res->corruptions_fixed++;
            if (imrt_inc_range(c, off, c->cluster_size, e) < 0)
                return -1;
            continue;
        }
        if (off != 0) {
            if (imrt_inc_range(c, off, c->cluster_size, e) < 0)
                return -1;
            uint64_t rc = imrt_get(c, cluster);
            if (rc != 1) {
                check_log(c, "ERROR refcount block %llu refcount=%llu\n", (unsigned long long)i,
                          (unsigned long long)rc);
                res->corruptions++;
                *rebuild = true;
            }
        }
    }
    return 0;
}

int check_calculate_refcounts(qcow2_check_ctx *c, unsigned fix, bool *rebuild, es_err *e)
{
    qcow2_check_result *res = c->res;
    /* header */
    if (imrt_inc_range(c, 0, c->cluster_size, e) < 0)
        return -1;
    /* active L1 and everything below it */
    if (check_l1(c, c->hdr.l1_table_offset, c->hdr.l1_size, true, fix, true, e) < 0)
        return -1;
    /* internal snapshots */
    if (c->data_file && c->nb_snapshots) {
        check_log(c, "ERROR %u snapshots in image with data file\n", c->nb_snapshots);
        res->corruptions++;
    }
    for (uint32_t i = 0; i < c->nb_snapshots; i++) {
        const qcow2_snap_entry *sn = &c->snaps[i];
        if (sn->l1_offset & (c->cluster_size - 1)) {
            check_log(c,
                      "ERROR snapshot %s (%s) l1_offset=%#llx: L1 table is not cluster "
                      "aligned; snapshot table entry corrupted\n",
                      sn->id, sn->name, (unsigned long long)sn->l1_offset);
            res->corruptions++;
            continue;
        }
        if ((uint64_t)sn->l1_size > QCOW2_MAX_L1_BYTES / 8) {
            check_log(c,
                      "ERROR snapshot %s (%s) l1_size=%#x: L1 table is too large; snapshot "
                      "table entry corrupted\n",
                      sn->id, sn->name, sn->l1_size);
            res->corruptions++;
            continue;
        }
        if (check_l1(c, sn->l1_offset, sn->l1_size, false, fix, false, e) < 0)
            return -1;
    }
    if (imrt_inc_range(c, c->snapshots_offset, c->snapshots_size, e) < 0)
        return -1;
    /* refcount table */
    if (imrt_inc_range(c, c->reftable_offset, c->reftable_entries * 8, e) < 0)
        return -1;
    /* LUKS header */
    if (c->crypto_length && imrt_inc_range(c, c->crypto_offset, c->crypto_length, e) < 0)
        return -1;
    if (check_bitmaps(c, e) < 0)
        return -1;
    return check_refblocks(c, fix, rebuild, e);
}
