/* Compare the computed references with the stored refcounts (leaks and
 * corruptions, QEMU's compare_refcounts) and the COPIED flags with the
 * stored refcounts (QEMU's check_oflag_copied); repair both on request. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/check_internal.h"
#include "qcow2/format.h"

int check_compare_refcounts(qcow2_check_ctx *c, qcow2_check_result *res, unsigned fix,
                            bool *rebuild, uint64_t *highest, es_err *e)
{
    *highest = 0;
    for (uint64_t i = 0; i < c->imrt_n; i++) {
        uint64_t on_disk, refs = imrt_get(c, i);
        es_err gerr;
        int r = ondisk_get_refcount(c, i, &on_disk, &gerr);
        if (r != 0) {
            check_log(c, "Can't get refcount for cluster %llu: %s\n", (unsigned long long)i,
                      r > 0 ? "Input/output error" : gerr.msg);
            res->check_errors++;
            continue;
        }
        if (on_disk > 0 || refs > 0)
            *highest = i;
        if (on_disk == refs)
            continue;
        int64_t *fixed = NULL;
        if (on_disk == 0)
            *rebuild = true; /* no refcount block can hold it: needs a rebuild */
        else if (on_disk > refs && (fix & QCOW2_CHECK_FIX_LEAKS))
            fixed = &res->leaks_fixed;
        else if (on_disk < refs && (fix & QCOW2_CHECK_FIX_ERRORS))
            fixed = &res->corruptions_fixed;
        check_log(c, "%s cluster %llu refcount=%llu reference=%llu\n",
                  fixed           ? "Repairing"
                  : on_disk < refs ? "ERROR"
                                   : "Leaked",
                  (unsigned long long)i, (unsigned long long)on_disk, (unsigned long long)refs);
        if (fixed) {
            /* Lowering a leak is safe at any time (nothing references the
             * excess) and raising a too-low refcount is always safe. */
            es_err serr;
            if (ondisk_set_refcount(c, i, refs, &serr) == 0) {
                (*fixed)++;
                continue;
            }
            check_log(c, "ERROR could not repair the refcount of cluster %llu: %s\n",
                      (unsigned long long)i, serr.msg);
        }
        if (on_disk < refs)
            res->corruptions++;
        else
            res->leaks++;
    }
    /* Refcounts must be stable before anything relies on them (COPIED). */
    if (fix && (ondisk_writeback(c, e) < 0 || es_file_flush(c->file, e) < 0)) {
        res->check_errors++;
        return -1;
    }
    return 0;
}

/* Write one active L1 entry (8 bytes) and make it durable. */
static int write_l1_entry(qcow2_check_ctx *c, uint64_t index, uint64_t value, es_err *e)
{
    uint8_t b[8];
    uint64_t where = c->hdr.l1_table_offset + index * 8;
    be64_store(b, value);
    if (ondisk_overlap_check(c, OVL_ACTIVE_L1, where, 8, e) < 0 ||
        es_file_pwrite(c->file, b, 8, where, e) < 0 || es_file_flush(c->file, e) < 0)
        return -1;
    return 0;
}

/* COPIED flags of one L2 table; the table is rewritten when repaired. */
static int oflag_l2(qcow2_check_ctx *c, qcow2_check_result *res, uint64_t l2_offset, bool repair,
                    es_err *e)
{
    if (l2_offset >= c->file_size)
        return 0; /* reads as zeroes: no entry to look at (and no walk to pay for) */
    if (check_pread(c, c->l2, c->cluster_size, l2_offset, e) < 0) {
        check_log(c, "ERROR: Could not read L2 table: %s\n", e->msg);
        res->check_errors++;
        return -1;
    }
    int64_t dirty = 0;
    for (uint64_t j = 0; j < c->l2_entries; j++) {
        uint64_t l2e = check_l2_entry(c, c->l2, j);
        qcow2_cluster_type t = check_cluster_type(c, l2e);
        if (t != QCOW2_CT_NORMAL && t != QCOW2_CT_ZERO_ALLOC)
            continue;
        uint64_t rc = 1;
        es_err gerr;
        if (!c->data_file &&
            ondisk_get_refcount(c, (l2e & QCOW2_L2E_OFFSET_MASK) >> c->cluster_bits, &rc, &gerr))
            continue; /* already reported by the comparison */
        if ((rc == 1) == ((l2e & QCOW2_OFLAG_COPIED) != 0))
            continue;
        res->corruptions++;
        check_log(c, "%s OFLAG_COPIED data cluster: l2_entry=%llx refcount=%llu\n",
                  repair ? "Repairing" : "ERROR", (unsigned long long)l2e,
                  (unsigned long long)rc);
        if (repair) {
            l2e = rc == 1 ? l2e | QCOW2_OFLAG_COPIED : l2e & ~QCOW2_OFLAG_COPIED;
            be64_store(c->l2 + j * c->l2_entry_bytes, l2e);
            dirty++;
        }
    }
    if (dirty == 0)
        return 0;
    if (ondisk_overlap_check(c, OVL_ACTIVE_L2, l2_offset, c->cluster_size, e) < 0) {
        check_log(c, "ERROR: Could not write L2 table; metadata overlap check failed: %s\n",
                  e->msg);
        res->check_errors++;
        return -1;
    }
    if (es_file_pwrite(c->file, c->l2, c->cluster_size, l2_offset, e) < 0) {
        check_log(c, "ERROR: Could not write L2 table: %s\n", e->msg);
        res->check_errors++;
        return -1;
    }
    res->corruptions -= dirty;
    res->corruptions_fixed += dirty;
    return 0;
}

int check_oflag_copied(qcow2_check_ctx *c, qcow2_check_result *res, unsigned fix, es_err *e)
{
    bool repair;
    if (fix & QCOW2_CHECK_FIX_ERRORS)
        repair = true;
    else if (fix & QCOW2_CHECK_FIX_LEAKS)
        /* Only when the refcounts are known to be right by now. */
        repair = !res->check_errors && !res->corruptions && !res->leaks;
    else
        repair = false;

    uint8_t chunk[4096];
    const uint32_t per = sizeof chunk / 8;
    uint32_t l1_size = c->hdr.l1_size;
    int ret = 0;
    for (uint32_t base = 0; base < l1_size && ret == 0; base += per) {
        uint32_t n = l1_size - base < per ? l1_size - base : per;
        if (check_pread(c, chunk, (size_t)n * 8, c->hdr.l1_table_offset + (uint64_t)base * 8,
                        e) < 0) {
            res->check_errors++;
            return -1;
        }
        for (uint32_t k = 0; k < n; k++) {
            uint64_t index = (uint64_t)base + k;
            uint64_t l1e = be64_load(chunk + 8 * k);
            uint64_t l2_offset = l1e & QCOW2_L1E_OFFSET_MASK;
            if (!l2_offset)
                continue;
            uint64_t rc;
            es_err gerr;
            if (ondisk_get_refcount(c, l2_offset >> c->cluster_bits, &rc, &gerr) != 0)
                continue;
            if ((rc == 1) != ((l1e & QCOW2_OFLAG_COPIED) != 0)) {
                res->corruptions++;
                check_log(c, "%s OFLAG_COPIED L2 cluster: l1_index=%llu l1_entry=%llx "
                             "refcount=%llu\n",
                          repair ? "Repairing" : "ERROR", (unsigned long long)index,
                          (unsigned long long)l1e, (unsigned long long)rc);
                if (repair) {
                    l1e = rc == 1 ? l1e | QCOW2_OFLAG_COPIED : l1e & ~QCOW2_OFLAG_COPIED;
                    if (write_l1_entry(c, index, l1e, e) < 0) {
                        res->check_errors++;
                        return -1;
                    }
                    be64_store(chunk + 8 * k, l1e);
                    res->corruptions--;
                    res->corruptions_fixed++;
                }
            }
            if (oflag_l2(c, res, l2_offset, repair, e) < 0) {
                ret = -1;
                break;
            }
        }
    }
    if (ret == 0 && repair && es_file_flush(c->file, e) < 0) {
        res->check_errors++;
        ret = -1;
    }
    return ret;
}
