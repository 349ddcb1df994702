/* The internal snapshot table of a qcow2 image (docs/interop/qcow2.txt,
 * "Snapshots"): nb_snapshots variable-length entries starting at
 * snapshots_offset, each padded to a multiple of 8 bytes. Read-only view;
 * entry_offset/entry_size let a writer copy an entry byte for byte. */
#ifndef ES_QCOW2_SNAPSHOT_TABLE_H
#define ES_QCOW2_SNAPSHOT_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "qcow2/header.h"
#include "util/err.h"
#include "util/fileio.h"

/* QEMU's limits (block/qcow2.h): extra data per entry, whole table. */
#define QCOW2_SNAPSHOT_MAX_EXTRA_DATA 1024u
#define QCOW2_SNAPSHOT_TABLE_MAX_BYTES (1024ull * QCOW2_MAX_SNAPSHOTS)
#define QCOW2_SNAPSHOT_ICOUNT_NONE UINT64_MAX /* icount disabled or not recorded */

typedef struct qcow2_snapshot {
    uint64_t l1_table_offset;
    uint32_t l1_size;
    char *id;              /* unique ID string, NUL-terminated copy */
    char *name;            /* name, NUL-terminated copy */
    uint32_t date_sec;
    uint32_t date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t vm_state_size; /* the 64-bit field when extra data has it, else the 32-bit one */
    uint32_t extra_data_size;
    bool has_disk_size;     /* extra data holds the snapshot's virtual disk size */
    uint64_t disk_size;
    uint64_t icount;        /* QCOW2_SNAPSHOT_ICOUNT_NONE when absent or disabled */
    uint64_t entry_offset;  /* file offset of this entry */
    uint32_t entry_size;    /* bytes, padding included */
} qcow2_snapshot;

typedef struct qcow2_snapshot_table {
    qcow2_snapshot *entries;
    uint32_t count;
    uint64_t table_bytes;   /* bytes from snapshots_offset to the end of the last entry */
} qcow2_snapshot_table;

/* Read and validate the table that header `h` describes from file f
 * (file_size bytes long). Every length is checked against the table limit
 * and the file size; each snapshot's L1 table must be cluster aligned and
 * inside the file. `path` names the file in errors. An image without
 * snapshots gives an empty table. */
int qcow2_snapshot_table_read(es_file *f, const qcow2_header *h, uint64_t file_size,
                              const char *path, qcow2_snapshot_table *out, es_err *e);

void qcow2_snapshot_table_free(qcow2_snapshot_table *t);

#endif
