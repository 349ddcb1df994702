/* The VM's state besides its disks, kept with each snapshot: the UEFI
 * variables (the config's <os><nvram> file) and the vTPM's state (swtpm's
 * directory, /var/lib/libvirt/swtpm/<uuid>, for a <tpm> with an emulator
 * backend). External snapshots by libvirt keep none of it, so a reverted
 * guest would boot its old disks with today's boot entries and keys
 * (BitLocker's sealed to the TPM among them).
 *
 *   create   copies the NVRAM file and the TPM directory next to the
 *            snapshot's first overlay as <domain>.<snapshot>.nvram and
 *            <domain>.<snapshot>.tpm/ (owner, mode, security.* and user.*
 *            extended attributes kept, file by file) and records paths and
 *            copies in the snapshot's <domain><metadata> (domxml/vmstate.h);
 *   revert / refresh   put the target's copy back over the NVRAM file (the
 *            copy is never written, so any number of reverts can use it);
 *   delete / commit    remove the copies of the snapshots they remove (the
 *            state at such a snapshot no longer exists); delete --metadata
 *            keeps them, as it keeps the snapshot's images;
 *   verify   reports a recorded copy that is missing.
 * The copies and the restore are plan steps (snap_vmcopy in txn/plan.h):
 * journaled, crash-safe, rolled back or finished like the rest.
 * The state is consistent only while QEMU and swtpm are stopped: create on
 * a running VM with such state is refused unless --no-vm-state. A domain
 * with neither has nothing to keep. */
#ifndef ES_SNAP_VMSTATE_H
#define ES_SNAP_VMSTATE_H

#include <stdbool.h>

#include "domxml/snapshot.h"
#include "snap/context.h"
#include "snap/txn/plan.h"
#include "util/err.h"

/* create: plan saving the config's NVRAM and vTPM state with snapshot s (NULL with
 * --no-metadata: nothing can record it, so nothing is saved, and a note
 * says so); p already holds the overlays. s->domain gets the record (or
 * loses a record that is not s's own). skip: --no-vm-state; running: the VM
 * runs (refused when there is state to save). */
int snap_vmstate_plan_save(snap_ctx *c, const char *name, domxml_snapshot *s, bool skip,
                           bool running, snap_plan *p, es_err *e);

/* revert/refresh to t: plan putting t's saved NVRAM and vTPM state back
 * (skip: --no-vm-state, a note). A snapshot without a copy of its own
 * leaves that state as it is (a note); a recorded copy that is missing is
 * refused. */
int snap_vmstate_plan_restore(snap_ctx *c, const domxml_snapshot *t, bool skip, snap_plan *p,
                              es_err *e);

/* delete/commit: plan removing s's saved copies once the operation is
 * committed. */
int snap_vmstate_plan_drop(snap_ctx *c, const domxml_snapshot *s, snap_plan *p, es_err *e);

/* delete --metadata: notes that s's copies stay. */
int snap_vmstate_note_kept(const domxml_snapshot *s, snap_plan *p, es_err *e);

/* The saved copies of s's NVRAM and vTPM state (NULL: none of its own). */
void snap_vmstate_copies(const domxml_snapshot *s, const char **nvram, const char **tpm);

#endif
