/* Planning 'commit BASE TOP': the snapshots after BASE up to TOP, on TOP's
 * line of descent, are removed at once and their images merged down into
 * BASE's (BASE "base": the disks' original images), by the range rules of
 * snap/graph/commit_range.h. Refused for a TOP that is a leaf but not
 * current (nothing after it is in use: that is delete's job). */
#ifndef ES_SNAP_COMMIT_H
#define ES_SNAP_COMMIT_H

#include "snap/context.h"
#include "snap/txn/plan.h"
#include "util/err.h"

int snap_plan_commit(snap_ctx *c, const char *base, const char *top, snap_plan **out,
                     es_err *e);

#endif
