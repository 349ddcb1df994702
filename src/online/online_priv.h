/* Internals shared by the online_*.c files of the snapshot manager. */
#ifndef ES_SNAP_ONLINE_PRIV_H
#define ES_SNAP_ONLINE_PRIV_H

#include <stdbool.h>
#include <stddef.h>

#include "qmp/qmp_job.h"
#include "qmp/qmp_nodes.h"
#include "snap/txn/journal.h"
#include "online/online_chain.h"
#include "online/online_exec.h"

/* Job ids of the domain commands: recovery finds what an interrupted run
 * left in QEMU by this prefix (img commit --qmp uses "extsnap-<device>"). */
#define SNAP_ONLINE_JOB_PREFIX "extsnap-snap-"

void snap_online_actions_clear(snap_online *ol);

/* A copy of a plan with some of its items. */
typedef struct snap_derive {
    bool overlays, merges, rebases, xml, deletes;
    const bool *merge_keep;  /* per merge (with merges); NULL: all */
    const bool *rebase_keep; /* per rebase (with rebases); NULL: all */
    const bool *delete_keep; /* per delete (with deletes); NULL: all */
} snap_derive;
int snap_online_derive(const snap_plan *p, const snap_derive *d, snap_plan **out, es_err *e);

/* Roll p forward from phase (merge or committed) with what QEMU already did
 * left out: backing names QEMU wrote, files QEMU still has open (kept and
 * listed in ol->kept). Removes the journal at the end. */
int snap_online_finish(snap_ctx *c, snap_online *ol, const snap_plan *p, snap_phase phase,
                       es_err *e);

/* block-commit specs for the commit actions of ol. */
int snap_online_commit_specs(snap_ctx *c, snap_online *ol, snap_online_commit **ocs,
                             qmp_commit_spec **specs, size_t *n, es_err *e);
void snap_online_commit_specs_free(snap_online_commit *ocs, qmp_commit_spec *specs, size_t n);

/* libvirtd runs the VM: the files p would write go to the pending
 * directory, and ol gets the virsh commands and what libvirt does not know. */
int snap_online_libvirt_pending(snap_ctx *c, snap_online *ol, const snap_plan *p, es_err *e);

#endif
