/* Recovery of an interrupted operation from its journal: before the commit
 * point it is rolled back (overlays removed, every XML file given its old
 * text, backing pointers restored), from the merge phase on it is rolled
 * forward (merges repeated, files written, clean-up finished). Run first by
 * every mutating command, and by 'extsnap recover'. */
#ifndef ES_SNAP_RECOVER_H
#define ES_SNAP_RECOVER_H

#include <stdbool.h>

#include "snap/context.h"
#include "snap/txn/journal.h"
#include "snap/txn/plan.h"
#include "util/err.h"

typedef struct snap_recovery {
    bool found;        /* a journal was there */
    bool rolled_back;  /* else rolled forward */
    snap_phase phase;  /* where the operation had got to */
    snap_plan *plan;   /* what it was */
} snap_recovery;

/* Recover the domain of c (whose lock the caller holds). No journal: found
 * false and nothing done (a stale temporary journal file is removed). */
int snap_recover(snap_ctx *c, snap_recovery *r, es_err *e);
/* Only read what recovery would do (for --dry-run). */
int snap_recover_inspect(snap_ctx *c, snap_recovery *r, es_err *e);
void snap_recovery_clear(snap_recovery *r);

#endif
