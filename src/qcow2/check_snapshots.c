/* Internal snapshot table, read the way QEMU's check reads it
 * (qcow2_check_read_snapshot_table): entries are 8-byte aligned, a 40-byte
 * fixed part, extra data, id string, name string. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/check_internal.h"
#include "qcow2/format.h"
#include "util/xalloc.h"

#define SNAP_HEADER_BYTES 40
#define SNAP_KNOWN_EXTRA_BYTES 24     /* vm_state_size_large, disk_size, icount */
#define SNAP_V3_MIN_EXTRA_BYTES 16    /* v3 entries must carry the first two */
#define SNAP_MAX_EXTRA_BYTES 1024     /* QCOW_MAX_SNAPSHOT_EXTRA_DATA */
#define SNAP_MAX_TABLE_BYTES (64ull << 20) /* QCOW_MAX_SNAPSHOTS_SIZE */
#define SNAP_NAME_KEEP 64             /* names are kept only for messages */

void check_free_snapshots(qcow2_check_ctx *c)
{
    for (uint32_t i = 0; i < c->nb_snapshots && c->snaps; i++) {
        free(c->snaps[i].id);
        free(c->snaps[i].name);
    }
    free(c->snaps);
    c->snaps = NULL;
    c->nb_snapshots = 0;
    c->snapshots_size = 0;
}

/* Read a string of len bytes at off, keeping at most SNAP_NAME_KEEP. */
static char *read_name(qcow2_check_ctx *c, uint64_t off, uint32_t len, es_err *e)
{
    uint32_t keep = len < SNAP_NAME_KEEP ? len : SNAP_NAME_KEEP;
    char *s = es_xmalloc(keep + 1);
    if (check_pread(c, s, keep, off, e) < 0) {
        free(s);
        return NULL;
    }
    s[keep] = '\0';
    return s;
}

static int fail(qcow2_check_ctx *c, es_err *e)
{
    c->res->check_errors++;
    check_log(c, "ERROR failed to read the snapshot table: %s\n", e->msg);
    es_err_prefix(e, "failed to read the snapshot table");
    check_free_snapshots(c);
    return -1;
}

int check_read_snapshot_table(qcow2_check_ctx *c, es_err *e)
{
    uint32_t n = c->hdr.nb_snapshots;
    c->snapshots_offset = c->hdr.snapshots_offset;
    /* QEMU validates the pointer even when there are no snapshots. */
    if ((c->snapshots_offset & (c->cluster_size - 1)) ||
        c->snapshots_offset > (uint64_t)INT64_MAX - (uint64_t)n * SNAP_HEADER_BYTES) {
        c->res->check_errors++;
        check_log(c, "ERROR snapshot table offset invalid\n");
        c->snapshots_offset = 0;
        return es_err_set(e, EINVAL, c->path, "snapshot table offset 0x%llx is invalid",
                          (unsigned long long)c->hdr.snapshots_offset);
    }
    if (n == 0)
        return 0;
    c->snaps = es_xcalloc(n, sizeof *c->snaps);
    uint64_t off = c->snapshots_offset, table_len = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t h[SNAP_HEADER_BYTES], extra[SNAP_KNOWN_EXTRA_BYTES];
        table_len = (table_len + 7) & ~7ull;
        off = (off + 7) & ~7ull;
        if (check_pread(c, h, sizeof h, off, e) < 0)
            return fail(c, e);
        off += sizeof h;
        qcow2_snap_entry *sn = &c->snaps[i];
        c->nb_snapshots = i + 1; /* so a failure frees what was read */
        sn->l1_offset = be64_load(h);
        sn->l1_size = be32_load(h + 8);
        uint32_t id_len = be16_load(h + 12), name_len = be16_load(h + 14);
        sn->extra_data_size = be32_load(h + 36);
        if (sn->extra_data_size > SNAP_MAX_EXTRA_BYTES) {
            /* QEMU drops the excess only with -r all and then rewrites the
             * table; extsnap does not rewrite snapshot tables. */
            es_err_set(e, EFBIG, c->path,
                       "too much extra metadata in snapshot table entry %u (%u > %u bytes)", i,
                       sn->extra_data_size, SNAP_MAX_EXTRA_BYTES);
            return fail(c, e);
        }
        uint32_t known = sn->extra_data_size < sizeof extra ? sn->extra_data_size : sizeof extra;
        if (check_pread(c, extra, known, off, e) < 0)
            return fail(c, e);
        off += sn->extra_data_size; /* unknown extra data is skipped */
        if (!(sn->id = read_name(c, off, id_len, e)))
            return fail(c, e);
        off += id_len;
        if (!(sn->name = read_name(c, off, name_len, e)))
            return fail(c, e);
        off += name_len;
        table_len += SNAP_HEADER_BYTES + (uint64_t)sn->extra_data_size + id_len + name_len;
        if (table_len > SNAP_MAX_TABLE_BYTES) {
            es_err_set(e, EFBIG, c->path, "snapshot table is too big (%u overhanging snapshots)",
                       n - i);
            return fail(c, e);
        }
    }
    c->snapshots_size = off - c->snapshots_offset;

    if (c->hdr.version >= 3) {
        for (uint32_t i = 0; i < c->nb_snapshots; i++) {
            if (c->snaps[i].extra_data_size < SNAP_V3_MIN_EXTRA_BYTES) {
                c->res->corruptions++;
                check_log(c, "ERROR snapshot table entry %u is incomplete\n", i);
            }
        }
    }
    return 0;
}
