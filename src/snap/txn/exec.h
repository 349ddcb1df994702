/* Carrying out a plan with its journal, all or nothing (plan.h gives the
 * order). The steps are exported for recovery (recover.h), which replays
 * them from the journal: every step is idempotent. */
#ifndef ES_SNAP_EXEC_H
#define ES_SNAP_EXEC_H

#include <stdbool.h>

#include "snap/context.h"
#include "snap/txn/journal.h"
#include "snap/txn/plan.h"
#include "util/err.h"
#include "util/progress.h"

/* The merge step: make m->base hold everything m->top holds (the qcow2
 * commit engine, snap/txn/merge.h, passed in as snap_env.merge). It runs after the
 * journal entered phase "merge" and again, from the start, whenever recovery
 * finds the journal there, so it must be idempotent: the top image still
 * holds all its data until the plan's deletes run after the commit point,
 * and the chain above it reads the same meanwhile. root is --root. */
typedef int (*snap_merge_fn)(const char *root, const snap_merge *m, const es_progress_sink *pr,
                             es_err *e);

/* Execute p on the domain of c: journal, overlays, merges, rebases, XML
 * files, commit point, deletes, journal removed. A failure before the
 * commit point undoes everything done so far (the error says so); a failure
 * after it (or in the merge phase) leaves the journal for 'extsnap recover'
 * and says that too. */
int snap_execute(snap_ctx *c, const snap_plan *p, es_err *e);

/* The steps (root: --root; j: the journal; env: --root and the merge engine). */
int snap_rollback(const char *root, const snap_journal *j, const snap_plan *p, es_err *e);
int snap_rollforward(const snap_env *env, const snap_journal *j, const snap_plan *p,
                     snap_phase phase, es_err *e);

#endif
