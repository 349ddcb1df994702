/* Block exports (NBD, FUSE, vhost-user) of a disk being committed.
 *
 * Once an active commit's job is pending, QEMU drains the VM's writes to
 * the disk until job-finalize, but not an export's: on QEMU 7.2 a write
 * through an export of the disk's node then completes into TOP and is lost
 * at the switch (BASE never gets it; docs/online.md, Caveats). During the
 * copy ("running"/"ready") the job copies such writes, so only the pending
 * state is dangerous, and extsnap needs it (all disks switch together).
 * So a commit of a disk is refused, before anything changes, when a
 * writable export serves one of the disk's nodes from the active layer down
 * to BASE (its root node too). Read-only exports are let through (they are
 * what tests and tools use as a -blockdev node's only user): their readers
 * see TOP, then BASE with the same data, and the pivot moves them along
 * with the devices. Whether an export writes is read from the block graph
 * (qmp_export.h); when QEMU cannot tell, every export counts as writable.
 *
 * An export on a node that merely has the disk's node below it (the
 * fleecing overlay of libvirt's pull-mode backup, a plain qcow2 overlay
 * over the disk) is not this check's business: its writes land in its own
 * node, which the commit leaves alone, so none is lost. Such an overlay is
 * another chain reading BASE, which snap_online_commit_plan refuses anyway
 * (tried on QEMU 7.2: "QEMU also reads this image through node fl"); a
 * pull-mode backup's job and busy bitmap are refused too.
 *
 * Checked twice: when planning (dry run too), and once every job is pending,
 * before the first finalize, for an export added while QEMU copied; a
 * refusal there cancels the jobs, nothing is switched and the export's
 * writes stay in TOP. */
#ifndef ES_ONLINE_EXPORTS_H
#define ES_ONLINE_EXPORTS_H

#include <stddef.h>

#include "online/online_chain.h"
#include "qmp/qmp_client.h"
#include "qmp/qmp_nodes.h"
#include "util/err.h"

/* -1 (e naming the disk, the export and its node) when a writable export of QEMU
 * serves ch's root node or one of ch->nodes[0..last], directly or through
 * filter nodes (a job's mirror_top). A QEMU without query-block-exports is
 * not checked. */
int snap_online_exports_refuse(qmp_client *c, const qmp_chain *ch, size_t last,
                               const char *disk, es_err *e);

/* The same for n planned commits whose jobs are pending. */
int snap_online_exports_refuse_pending(qmp_client *c, const snap_online_commit *ocs, size_t n,
                                       es_err *e);

#endif
