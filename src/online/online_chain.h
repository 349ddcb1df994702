/* A live commit planned against what QEMU has open: which node is TOP,
 * which is BASE, active or intermediate, the backing name QEMU writes, and
 * afterwards which files QEMU still uses.
 *
 * Files are compared by identity (device and inode) with the names QEMU
 * reports (json:{...} pseudo names reduced to their plain path), so a
 * relative name, a symlink or a QEMU name seen under --root all match. */
#ifndef ES_SNAP_ONLINE_CHAIN_H
#define ES_SNAP_ONLINE_CHAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "qmp/qmp_client.h"
#include "qmp/qmp_job.h"
#include "qmp/qmp_nodes.h"
#include "util/err.h"

/* Do a (QEMU's name for a file) and b (a path on this system) name the same
 * file? QEMU's name is also tried under root (a VM whose paths are libvirt's
 * logical paths). */
bool snap_online_same_file(const char *qemu_name, const char *path, const char *root);

typedef struct snap_online_commit {
    qmp_chain chain;        /* the chain of the device when planned: [0] active layer */
    size_t top, base;       /* indexes into chain.nodes */
    bool active;            /* top is the active layer: commit with pivot */
    char *backing_file;     /* intermediate: name QEMU writes into the image above top */
    char *job_id;
    qmp_commit_spec spec;   /* for qmp_commit_run; points into the fields above */
    const char *disk;       /* the domain's disk name for messages (borrowed), NULL:
                               spec.device */
} snap_online_commit;

typedef struct snap_online_commit_args {
    const char *device;       /* BlockBackend name, qdev id or node name (block-commit's device) */
    const char *top;          /* TOP's path on this system */
    const char *base;         /* BASE's path, NULL: the image right below TOP */
    const char *backing_file; /* intermediate: name to write above TOP; NULL: BASE's
                                 name as the chain names it (kept relative only where
                                 it still resolves to BASE from the overlay above TOP) */
    const char *root;         /* --root, for matching QEMU's names; NULL: none */
    const char *job_id;       /* NULL: "extsnap-<device>" (QEMU forbids '#' in job ids) */
    unsigned long long speed; /* bytes per second, 0: unlimited */
} snap_online_commit_args;

/* Find TOP and BASE in the device's chain and check that the commit is
 * possible and harmless: TOP above BASE, BASE not read by another chain in
 * QEMU (a commit, even a cancelled one, writes into BASE), and for an
 * active commit a user (device or export) to pivot. */
int snap_online_commit_plan(qmp_client *c, const snap_online_commit_args *a,
                            snap_online_commit *out, es_err *e);
void snap_online_commit_clear(snap_online_commit *oc);

/* The images that leave the chain when the commit succeeds: TOP (for an
 * active commit, also nothing above it exists) down to the image above
 * BASE. [first, last) into oc->chain.nodes. */
void snap_online_commit_merged(const snap_online_commit *oc, size_t *first, size_t *last);

typedef enum snap_file_use {
    SNAP_FILE_CLOSED,  /* no block node of QEMU has the file open */
    SNAP_FILE_IDLE,    /* a node has it open, but no device, export or job uses it */
    SNAP_FILE_IN_USE,  /* part of what a device, export or job reads or writes */
} snap_file_use;

/* How QEMU uses the file at path; *node (malloc'd, may be NULL) names the
 * node that has it open. Without x-debug-query-block-graph any open file
 * counts as in use. */
int snap_online_file_use(qmp_client *c, const char *path, const char *root, snap_file_use *use,
                         char **node, es_err *e);

/* Close the idle nodes that have path open (blockdev-del of the nodes no
 * one uses, format node before its protocol node), so QEMU lets go of a
 * merged file. Nodes QEMU will not delete are left alone. Returns how the
 * file is used afterwards. */
int snap_online_release_file(qmp_client *c, const char *path, const char *root,
                             snap_file_use *use, es_err *e);

const char *snap_file_use_name(snap_file_use u);

/* Does a device, an export or a job use the block node called name (so a
 * pivot or a snapshot on it changes what the VM sees)? Without
 * x-debug-query-block-graph: assumed yes. */
int snap_online_node_used(qmp_client *c, const char *name, bool *used, es_err *e);

#endif
