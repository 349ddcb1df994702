/* The merge engine the commands pass to snap_execute (snap_env.merge,
 * exec.h): the offline qcow2
 * commit engine (qcow2/commit.h) copying everything the overlay TOP (and
 * any image between it and BASE) holds into BASE, which survives. TOP is
 * kept as it is (the plan deletes it after the commit point), so running
 * the same merge again after a crash finishes the job with the same
 * result: the data copied is always read from the untouched TOP chain. */
#ifndef ES_SNAP_MERGE_H
#define ES_SNAP_MERGE_H

#include "snap/txn/plan.h"
#include "util/err.h"
#include "util/progress.h"

/* m->top and m->base are paths as seen under root. */
int snap_merge_qcow2(const char *root, const snap_merge *m, const es_progress_sink *pr,
                     es_err *e);

#endif
