#include "qcow2/snapshot_table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/format.h"
#include "util/xalloc.h"

#define ENTRY_FIXED_BYTES 40u
#define EXTRA_VM_STATE_END 8u   /* extra data must reach here for the 64-bit VM state size */
#define EXTRA_DISK_SIZE_END 16u
#define EXTRA_ICOUNT_END 24u
/* Largest variable part of one entry: extra data, ID and name (u16 lengths). */
#define ENTRY_VAR_MAX (QCOW2_SNAPSHOT_MAX_EXTRA_DATA + 2u * 0xffffu)

static int dup_string(char **out, const uint8_t *p, size_t n, uint32_t index, const char *what,
                      uint64_t entry_off, const char *path, es_err *e)
{
    if (memchr(p, '\0', n))
        return es_err_set(e, 0, path, "snapshot %u (entry at 0x%llx): %s holds a NUL byte", index,
                          (unsigned long long)entry_off, what);
    *out = es_xstrdup_len(p, n);
    return 0;
}

/* The snapshot's own L1 table must be a plausible table inside the file. */
static int check_snapshot_l1(const qcow2_snapshot *sn, uint32_t index, uint64_t cluster_size,
                             uint64_t file_size, const char *path, es_err *e)
{
    if (sn->l1_size == 0)
        return 0;
    if ((uint64_t)sn->l1_size * 8 > QCOW2_MAX_L1_BYTES)
        return es_err_set(e, 0, path, "snapshot %u ('%s'): L1 table too large (%u entries)", index,
                          sn->name, sn->l1_size);
    if (sn->l1_table_offset == 0 || sn->l1_table_offset % cluster_size)
        return es_err_set(e, 0, path,
                          "snapshot %u ('%s'): L1 table offset 0x%llx is not cluster aligned or is zero",
                          index, sn->name, (unsigned long long)sn->l1_table_offset);
    if (sn->l1_table_offset > file_size || (uint64_t)sn->l1_size * 8 > file_size - sn->l1_table_offset)
        return es_err_set(e, 0, path,
                          "snapshot %u ('%s'): L1 table at 0x%llx (%u entries) lies beyond end of "
                          "file (0x%llx)",
                          index, sn->name, (unsigned long long)sn->l1_table_offset, sn->l1_size,
                          (unsigned long long)file_size);
    return 0;
}

/* Parse entry `index` at file offset `off`. var is a scratch buffer of
 * ENTRY_VAR_MAX bytes. */
static int read_entry(es_file *f, uint64_t off, uint64_t table_start, uint64_t file_size,
                      uint64_t cluster_size, uint32_t index, uint8_t *var, const char *path,
                      qcow2_snapshot *sn, es_err *e)
{
    uint8_t fixed[ENTRY_FIXED_BYTES];
    if (off > file_size || file_size - off < ENTRY_FIXED_BYTES)
        return es_err_set(e, 0, path,
                          "snapshot table entry %u at 0x%llx runs past end of file (0x%llx)", index,
                          (unsigned long long)off, (unsigned long long)file_size);
    if (es_file_pread(f, fixed, sizeof fixed, off, e) < 0)
        return es_err_prefix(e, "reading snapshot table entry %u", index);
    sn->entry_offset = off;
    sn->l1_table_offset = be64_load(fixed);
    sn->l1_size = be32_load(fixed + 8);
    uint32_t id_len = be16_load(fixed + 12), name_len = be16_load(fixed + 14);
    sn->date_sec = be32_load(fixed + 16);
    sn->date_nsec = be32_load(fixed + 20);
    sn->vm_clock_nsec = be64_load(fixed + 24);
    sn->vm_state_size = be32_load(fixed + 32);
    sn->extra_data_size = be32_load(fixed + 36);
    sn->icount = QCOW2_SNAPSHOT_ICOUNT_NONE;

    uint32_t extra = sn->extra_data_size;
    if (extra > QCOW2_SNAPSHOT_MAX_EXTRA_DATA)
        return es_err_set(e, 0, path,
                          "snapshot table entry %u at 0x%llx has %u bytes of extra data (at most %u)",
                          index, (unsigned long long)off, extra, QCOW2_SNAPSHOT_MAX_EXTRA_DATA);
    uint64_t var_len = (uint64_t)extra + id_len + name_len;
    uint64_t entry_len = (ENTRY_FIXED_BYTES + var_len + 7) & ~7ull;
    if (off - table_start + entry_len > QCOW2_SNAPSHOT_TABLE_MAX_BYTES)
        return es_err_set(e, 0, path, "snapshot table at 0x%llx is larger than %llu bytes (entry %u)",
                          (unsigned long long)table_start,
                          (unsigned long long)QCOW2_SNAPSHOT_TABLE_MAX_BYTES, index);
    /* The padding after the last entry may be missing at the end of the file. */
    if (var_len > file_size - off - ENTRY_FIXED_BYTES)
        return es_err_set(e, 0, path,
                          "snapshot table entry %u at 0x%llx (%llu bytes) runs past end of file "
                          "(0x%llx)",
                          index, (unsigned long long)off,
                          (unsigned long long)(ENTRY_FIXED_BYTES + var_len),
                          (unsigned long long)file_size);
    sn->entry_size = (uint32_t)entry_len;
    if (var_len && es_file_pread(f, var, (size_t)var_len, off + ENTRY_FIXED_BYTES, e) < 0)
        return es_err_prefix(e, "reading snapshot table entry %u", index);

    if (extra >= EXTRA_VM_STATE_END)
        sn->vm_state_size = be64_load(var);
    if (extra >= EXTRA_DISK_SIZE_END) {
        sn->has_disk_size = true;
        sn->disk_size = be64_load(var + 8);
    }
    if (extra >= EXTRA_ICOUNT_END)
        sn->icount = be64_load(var + 16);
    if (dup_string(&sn->id, var + extra, id_len, index, "ID string", off, path, e) < 0 ||
        dup_string(&sn->name, var + extra + id_len, name_len, index, "name", off, path, e) < 0)
        return -1;
    return check_snapshot_l1(sn, index, cluster_size, file_size, path, e);
}

int qcow2_snapshot_table_read(es_file *f, const qcow2_header *h, uint64_t file_size,
                              const char *path, qcow2_snapshot_table *out, es_err *e)
{
    memset(out, 0, sizeof *out);
    if (h->nb_snapshots == 0)
        return 0;
    /* The header parser checks these too; repeat them so this stands alone. */
    if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
        return es_err_set(e, 0, path, "too many internal snapshots (%u)", h->nb_snapshots);
    if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS || h->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
        return es_err_set(e, 0, path, "invalid cluster bits %u", h->cluster_bits);
    uint64_t cs = 1ull << h->cluster_bits;
    uint64_t start = h->snapshots_offset;
    if (start == 0 || start % cs)
        return es_err_set(e, 0, path, "snapshot table offset 0x%llx is not cluster aligned or is zero",
                          (unsigned long long)start);
    if (start >= file_size)
        return es_err_set(e, 0, path, "snapshot table at 0x%llx lies beyond end of file (0x%llx)",
                          (unsigned long long)start, (unsigned long long)file_size);

    out->entries = es_xcalloc(h->nb_snapshots, sizeof *out->entries);
    uint8_t *var = es_xmalloc(ENTRY_VAR_MAX);
    uint64_t off = start;
    for (uint32_t i = 0; i < h->nb_snapshots; i++) {
        qcow2_snapshot *sn = &out->entries[i];
        out->count = i + 1; /* so that free() sees the strings of a half-read entry */
        if (read_entry(f, off, start, file_size, cs, i, var, path, sn, e) < 0) {
            free(var);
            qcow2_snapshot_table_free(out);
            return -1;
        }
        off += sn->entry_size;
    }
    free(var);
    out->table_bytes = off - start;
    return 0;
}

void qcow2_snapshot_table_free(qcow2_snapshot_table *t)
{
    if (!t)
        return;
    for (uint32_t i = 0; i < t->count; i++) {
        free(t->entries[i].id);
        free(t->entries[i].name);
    }
    free(t->entries);
    memset(t, 0, sizeof *t);
}
