/* External snapshots of several disks at once: one QMP `transaction` of
 * blockdev-snapshot-sync actions, so either every disk gets its new overlay
 * or none does. */
#ifndef ES_QMP_SNAPSHOT_H
#define ES_QMP_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "qmp/qmp_client.h"
#include "util/err.h"

typedef struct qmp_snapshot_spec {
    const char *device;            /* BlockBackend name, or NULL and ... */
    const char *node_name;         /* ... the node to snapshot (e.g. libvirt-1-format) */
    const char *overlay_file;      /* new active image (absolute path) */
    const char *overlay_node_name; /* name for the new node; NULL: QEMU picks #blockNNN */
    const char *format;            /* NULL: "qcow2" */
    bool reuse_existing;           /* overlay already created (mode "existing"); else
                                      QEMU creates it, with an absolute backing name */
} qmp_snapshot_spec;

/* Snapshot n disks (n >= 1) atomically.
 * When the transaction fails QEMU keeps every disk on its old image, but
 * overlay files it already created stay on disk (QEMU 7.2 does not remove
 * them): the caller removes the ones it did not have before.
 * extra (a JSON array, borrowed; NULL: none): more actions in the same
 * transaction, after the snapshots; they may name the new nodes
 * (overlay_node_name), e.g. bitmaps added to the overlays (qmp_bitmap.h). */
int qmp_snapshot_transaction(qmp_client *c, const qmp_snapshot_spec *specs, size_t n,
                             json_object *extra, es_err *e);

#endif
