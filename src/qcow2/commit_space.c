/* The free-space check a commit makes before its first write: the worst
 * case of what BASE can grow by, against what its file system has free. */
#include <errno.h>
#include <stdio.h>
#include <sys/statvfs.h>

#include "qcow2/commit_space.h"
#include "qcow2/l2_write.h"
#include "qcow2/refcount.h"

static const char *human(uint64_t n, char *buf, size_t len)
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 6) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu bytes", (unsigned long long)n);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
    return buf;
}

uint64_t commit_space_needed(const commit_ctx *c)
{
    es_image *b = c->base;
    if (c->raw_base) {
        uint64_t allocated = 0;
        es_err ignore;
        if (es_file_allocated(b->file, &allocated, &ignore) < 0)
            allocated = 0;
        uint64_t sparse = c->new_size > allocated ? c->new_size - allocated : 0;
        return c->write_bytes < sparse ? c->write_bytes : sparse;
    }
    uint64_t cs = b->cluster_size;
    uint64_t n = c->need_clusters;
    uint64_t l1_need = qcow2_l1_size_for(b, c->new_size);
    if (l1_need > b->l1_size) /* a new L1 table, at worst */
        n += (l1_need * 8 + cs - 1) / cs;
    /* Refcount blocks for everything new (they count themselves), and a
     * larger refcount table when the file outgrows the current one. */
    uint64_t rbe = qcow2_refblock_entries(b);
    uint64_t end = (b->file_size + cs - 1) / cs + n;
    uint64_t blocks = n / (rbe > 1 ? rbe - 1 : 1) + 2;
    end += blocks;
    uint64_t rt_needed = end / rbe + 1;
    if (rt_needed > b->reftable_entries) {
        uint64_t entries = rt_needed + rt_needed / 2 + 1;
        blocks += (entries * 8 + cs - 1) / cs + 1;
    }
    return (n + blocks) * cs;
}

int commit_space_check(const commit_ctx *c, es_err *e)
{
    struct statvfs st;
    if (fstatvfs(c->base->file->fd, &st) < 0)
        return es_err_set(e, errno, c->base->filename, "cannot find the free space of its file system");
    uint64_t avail = (uint64_t)st.f_bavail * st.f_frsize;
    uint64_t need = commit_space_needed(c);
    if (need <= avail)
        return 0;
    char hn[32], ha[32];
    return es_err_set(e, ENOSPC, c->base->filename,
                      "not enough free space for the commit: it may need up to %s (%llu bytes), "
                      "the file system has %s (%llu bytes) free; nothing was changed",
                      human(need, hn, sizeof hn), (unsigned long long)need,
                      human(avail, ha, sizeof ha), (unsigned long long)avail);
}
