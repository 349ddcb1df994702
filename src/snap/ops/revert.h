/* Planning 'revert' (and 'refresh'), the way newer libvirt (>= 9.7) reverts
 * an external snapshot of a shut-off domain (reference libvirt.md §7):
 *   - fresh overlays over the target's saved images (its <domain>'s disk
 *     sources), named <saved-source-minus-ext>.<epoch-seconds>, so a frozen
 *     image is never written and a revert can be repeated any number of
 *     times; readonly disks, cdroms and empty disks keep their image;
 *   - the config becomes the saved <domain> with the new overlays (the
 *     config file's comment block kept);
 *   - branches as newer libvirt records them: a target with children keeps
 *     its <disks> (they back the children) and gets the new overlays in
 *     <revertDisks>; a leaf target gets them as its <disks>;
 *   - the target becomes current; the old current loses its <revertDisks>;
 *   - the state being left is discarded: images above the snapshots'
 *     frozen images in the old config's chains (and the old current's live
 *     overlays) are deleted, but only those nothing else needs (refs.h).
 * "base" means the state before the first snapshot: the root snapshot's
 * saved <domain> (the root above the current snapshot when there are
 * several); afterwards no snapshot is current. */
#ifndef ES_SNAP_REVERT_H
#define ES_SNAP_REVERT_H

#include <stdbool.h>

#include "snap/context.h"
#include "snap/txn/plan.h"
#include "util/err.h"

#define SNAP_BASE_NAME "base"

typedef struct snap_revert_args {
    const char *target; /* a snapshot name or "base" */
    long long now;      /* the epoch for overlay names (the next free second is
                           taken when a name is in use) */
    bool refresh;       /* 'refresh' (back to the current snapshot): the plan's
                           operation and summary say so */
    bool no_vm_state;   /* --no-vm-state: leave the NVRAM as it is (snap/ops/vmstate.h) */
    bool force;         /* also to a snapshot whose saved state is recorded as
                           inexact (snap/ops/inexact.h), refused otherwise */
} snap_revert_args;

/* Plan going back to a->target's saved state as described above. */
int snap_plan_revert_to(snap_ctx *c, const snap_revert_args *a, snap_plan **out, es_err *e);

#endif
