/* What a domain plan changes beyond its files, once it ran to its end on a
 * running VM or offline: the snapshots it removed leave the record of
 * inexact ones (snap/ops/inexact.h), which a cancelled online delete or
 * commit may have put them in. The command runs the plan and prints;
 * this decides what else the domain's state becomes. */
#ifndef ES_SNAP_ONLINE_SETTLE_H
#define ES_SNAP_ONLINE_SETTLE_H

#include "snap/context.h"
#include "snap/txn/plan.h"

/* Plan p succeeded on c's domain (not a dry run). Never fails: a record
 * that cannot be updated is a warning on env->log, even with -q (its
 * entries of snapshots that no longer exist are ignored). */
void snap_online_settle(snap_ctx *c, const snap_plan *p);

#endif
