/* QEMU's block exports (query-block-exports): NBD, FUSE or vhost-user
 * servers that read and write a block node for clients outside the VM. */
#ifndef ES_QMP_EXPORT_H
#define ES_QMP_EXPORT_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "qmp/qmp_client.h"
#include "util/err.h"

typedef struct qmp_block_export {
    char *id;        /* block-export-add's id (block-export-del takes it) */
    char *type;      /* "nbd", "fuse", "vhost-user-blk" ... */
    char *node_name; /* the node it serves; a job's filter node while one runs above it */
    bool shutting_down;
    bool may_write;  /* writable, or not known to be read-only (see below) */
} qmp_block_export;

typedef struct qmp_block_exports {
    qmp_block_export *v;
    size_t n;
} qmp_block_exports;

/* Parse query-block-exports' return (an array). Entries without an id or
 * node-name make it fail: nothing QEMU sends is trusted. */
int qmp_block_exports_from_reply(json_object *ret, qmp_block_exports *out, es_err *e);

/* query-block-exports does not say whether an export is writable; the block
 * graph does: an export's BlockBackend is a parent of its node without a
 * name (a device's has the device's id) that holds the "write" permission.
 * Mark may_write from graph (x-debug-query-block-graph's return; NULL:
 * unknown, every export may write). A job's own BlockBackend on the same
 * node would also count: that errs on the side of writable. */
void qmp_block_exports_mark_writable(qmp_block_exports *x, json_object *graph);

/* Ask QEMU, with may_write marked. A QEMU without the command (before 5.2:
 * CommandNotFound) gives an empty list and *known = false. */
int qmp_block_exports_query(qmp_client *c, qmp_block_exports *out, bool *known, es_err *e);

void qmp_block_exports_free(qmp_block_exports *x);

#endif
