/* The VM's state besides its disks, kept with each snapshot: the UEFI
 * variables (the config's <os><nvram> file). External snapshots by libvirt
 * keep none of it, so a reverted guest would boot its old disks with
 * today's boot entries and keys.
 *
 *   create   copies the NVRAM file next to the snapshot's first overlay as
 *            <domain>.<snapshot>.nvram (owner, mode, security.* and user.*
 *            extended attributes kept) and records path and copy in the
 *            snapshot's <domain><metadata> (domxml/vmstate.h);
 *   revert / refresh   put the target's copy back over the NVRAM file (the
 *            copy is never written, so any number of reverts can use it);
 *   delete / commit    remove the copies of the snapshots they remove (the
 *            state at such a snapshot no longer exists); delete --metadata
 *            keeps them, as it keeps the snapshot's images;
 *   verify   reports a recorded copy that is missing.
 * The copies and the restore are plan steps (snap_vmcopy in txn/plan.h):
 * journaled, crash-safe, rolled back or finished like the rest.
 * A running VM's NVRAM is consistent only while QEMU is stopped: create on
 * a running VM is refused unless --no-vm-state. A domain without <nvram> has
 * nothing to keep. The vTPM state (swtpm's directory) is not kept yet. */
#ifndef ES_SNAP_VMSTATE_H
#define ES_SNAP_VMSTATE_H

#include <stdbool.h>

#include "domxml/snapshot.h"
#include "snap/context.h"
#include "snap/txn/plan.h"
#include "util/err.h"

/* create: plan saving the config's NVRAM with snapshot s (NULL with
 * --no-metadata: nothing can record it, so nothing is saved, and a note
 * says so); p already holds the overlays. s->domain gets the record (or
 * loses a record that is not s's own). skip: --no-vm-state; running: the VM
 * runs (refused when there is state to save). */
int snap_vmstate_plan_save(snap_ctx *c, const char *name, domxml_snapshot *s, bool skip,
                           bool running, snap_plan *p, es_err *e);

/* revert/refresh to t: plan putting t's saved NVRAM back (skip:
 * --no-vm-state, a note). A snapshot without a copy of its own leaves the
 * NVRAM as it is (a note); a recorded copy that is missing is refused. */
int snap_vmstate_plan_restore(snap_ctx *c, const domxml_snapshot *t, bool skip, snap_plan *p,
                              es_err *e);

/* delete/commit: plan removing s's saved copies once the operation is
 * committed. */
int snap_vmstate_plan_drop(snap_ctx *c, const domxml_snapshot *s, snap_plan *p, es_err *e);

/* The saved NVRAM copy of s (NULL: none of its own). */
const char *snap_vmstate_nvram_copy(const domxml_snapshot *s);

#endif
