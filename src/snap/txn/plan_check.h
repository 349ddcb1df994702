/* What executing a plan offline could refuse on, checked before its
 * journal is written, so that a refusal changes nothing and leaves nothing
 * to recover (issue #10, section 1):
 *   - no other process holds QEMU's image locks on an image the plan
 *     merges into, merges from, repoints or deletes (a second VM, a backup
 *     job, qemu-io: they would read a changing or vanishing file);
 *   - the images it writes (merge bases, repointed images) open for writing,
 *     a repointed image's cluster 0 holds its new backing name, and the
 *     directories of the libvirt files it writes can be written;
 *   - every merge passes the commit engine's own checks without writing
 *     (es_commit_estimate: persistent bitmaps, a corrupt or dirty BASE,
 *     metadata it refuses), and the engine's space estimates, summed per
 *     file system over all the plan's merges, fit in the free space.
 * --dry-run runs the same checks. A running VM's chain is changed through
 * QEMU (snap/online_*.c), which holds those locks itself: not checked here. */
#ifndef ES_SNAP_PLAN_CHECK_H
#define ES_SNAP_PLAN_CHECK_H

#include "snap/context.h"
#include "snap/txn/plan.h"
#include "util/err.h"

int snap_plan_check(const snap_ctx *c, const snap_plan *p, es_err *e);

#endif
