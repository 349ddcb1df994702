/* Rebuild the refcount structure from the computed references.
 *
 * Unlike QEMU (which fills holes), the new refcount blocks and table are
 * appended at the end of the file, where nothing can be overwritten:
 *   1. write the new refcount blocks, then the new refcount table, past EOF;
 *   2. flush;
 *   3. switch the header's refcount table offset and size with one 12-byte
 *      write, flush.
 * A crash before step 3 leaves the old structure in force and only some
 * unreferenced bytes past the old end; after it the new one is complete.
 * The old structure's clusters are leaked by the switch; the caller's next
 * comparison frees them, as QEMU does. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/check_internal.h"
#include "qcow2/format.h"

/* Does refblock range `idx` hold any non-zero computed refcount? */
static bool range_used(const qcow2_check_ctx *c, uint64_t idx)
{
    uint64_t bytes = c->cluster_size; /* one refblock's worth of the array */
    uint64_t from = idx * bytes;
    if (from >= c->imrt_bytes)
        return false;
    const uint8_t *p = c->imrt + from;
    for (uint64_t i = 0; i < bytes; i++)
        if (p[i])
            return true;
    return false;
}

int check_rebuild_refcounts(qcow2_check_ctx *c, es_err *e)
{
    uint64_t rbe = c->rb_entries, cs = c->cluster_size;
    /* First cluster past everything: the file end and every counted cluster. */
    uint64_t start = check_clusters(c, c->file_size);
    if (c->imrt_n > start)
        start = c->imrt_n;
    uint64_t used_below = 0; /* used refblock ranges wholly below `start` */
    for (uint64_t idx = 0; idx < start / rbe; idx++)
        used_below += range_used(c, idx);
    bool partial_used = (start % rbe) && range_used(c, start / rbe);

    /* k new clusters at [start, start+k) need refblocks for every used range
     * plus the ranges they occupy, and a table for all of them: iterate to
     * the fixed point (k only grows, and each block covers >= 64 clusters). */
    uint64_t k = 0, nrb = 0, rt_clusters = 0, rt_entries = 0;
    for (;;) {
        uint64_t end = start + k; /* exclusive */
        uint64_t first_new = start / rbe, last = end ? (end - 1) / rbe : 0;
        nrb = used_below;
        if (k == 0)
            nrb += partial_used;
        else
            nrb += last - first_new + 1;
        uint64_t top = k ? last : (used_below || partial_used ? start / rbe : 0);
        rt_entries = top + 1;
        rt_clusters = (rt_entries * 8 + cs - 1) / cs;
        uint64_t need = nrb + rt_clusters;
        if (need <= k)
            break;
        k = need;
    }
    if (rt_clusters * cs > QCOW2_MAX_REFTABLE_BYTES)
        return es_err_set(e, EFBIG, c->path, "rebuilt refcount table would be too large");

    uint64_t end = start + k;
    if (imrt_resize(c, end, e) < 0)
        return -1;
    /* The new blocks and table (and any slack of the fixed point) count once. */
    for (uint64_t i = start; i < end; i++)
        refarray_set(c->imrt, c->refcount_order, i, 1);

    uint64_t entries_alloc = rt_clusters * cs / 8;
    uint64_t *table = calloc((size_t)entries_alloc, sizeof *table);
    uint8_t *buf = malloc((size_t)(rt_clusters * cs));
    if (!table || !buf) {
        free(table);
        free(buf);
        return es_err_set(e, ENOMEM, c->path, "out of memory for the new refcount table");
    }
    uint64_t next = start;
    int ret = 0;
    for (uint64_t idx = 0; idx < rt_entries && ret == 0; idx++) {
        if (!range_used(c, idx))
            continue;
        uint64_t off = next++ * cs;
        table[idx] = off;
        /* A refblock is exactly the matching slice of the array. */
        ret = es_file_pwrite(c->file, c->imrt + idx * cs, (size_t)cs, off, e);
    }
    uint64_t rt_offset = next * cs;
    if (ret == 0 && next + rt_clusters > end)
        ret = es_err_set(e, EIO, c->path, "internal error: rebuilt refcount layout overflows");
    if (ret == 0) {
        memset(buf, 0, (size_t)(rt_clusters * cs));
        for (uint64_t i = 0; i < entries_alloc; i++)
            be64_store(buf + 8 * i, table[i]);
        ret = es_file_pwrite(c->file, buf, (size_t)(rt_clusters * cs), rt_offset, e);
    }
    free(buf);
    if (ret == 0)
        ret = es_file_flush(c->file, e);
    if (ret == 0) {
        uint8_t hdr[12];
        be64_store(hdr, rt_offset);
        be32_store(hdr + 8, (uint32_t)rt_clusters);
        ret = es_file_pwrite(c->file, hdr, sizeof hdr, 48, e);
        if (ret == 0)
            ret = es_file_flush(c->file, e);
    }
    if (ret < 0) {
        free(table);
        check_log(c, "ERROR writing the new refcount structure: %s\n", e->msg);
        return -1;
    }
    free(c->reftable);
    c->reftable = table;
    c->reftable_entries = entries_alloc;
    c->reftable_offset = rt_offset;
    c->reftable_clusters = (uint32_t)rt_clusters;
    c->hdr.refcount_table_offset = rt_offset;
    c->hdr.refcount_table_clusters = (uint32_t)rt_clusters;
    if (end * cs > c->file_size)
        c->file_size = end * cs;
    ondisk_drop_cache(c);
    return 0;
}
