#include "snap/txn/recover.h"

#include <string.h>

#include "snap/txn/exec.h"
#include "util/fsutil.h"

void snap_recovery_clear(snap_recovery *r)
{
    snap_plan_free(r->plan);
    memset(r, 0, sizeof *r);
}

int snap_recover_inspect(snap_ctx *c, snap_recovery *r, es_err *e)
{
    memset(r, 0, sizeof *r);
    snap_journal j = {c->journal_path, c->journal_tmp};
    bool exists = false;
    if (snap_journal_exists(&j, &exists, e) < 0)
        return -1;
    if (!exists)
        return 0;
    if (snap_journal_read(&j, &r->plan, &r->phase, e) < 0)
        return -1;
    if (strcmp(r->plan->domain, c->name) != 0) {
        es_err_set(e, 0, c->journal_path, "journal is about domain '%s', not '%s'",
                   r->plan->domain, c->name);
        snap_recovery_clear(r);
        return -1;
    }
    r->found = true;
    r->rolled_back = r->phase == SNAP_PHASE_PREPARE;
    return 0;
}

int snap_recover(snap_ctx *c, snap_recovery *r, es_err *e)
{
    if (snap_recover_inspect(c, r, e) < 0)
        return -1;
    snap_journal j = {c->journal_path, c->journal_tmp};
    if (!r->found) /* a journal write that never reached its rename */
        return es_unlink_if_exists(c->journal_tmp, e);
    int rc = r->rolled_back ? snap_rollback(c->env->root, &j, r->plan, e)
                            : snap_rollforward(c->env, &j, r->plan, r->phase, e);
    if (rc < 0)
        return es_err_prefix(e, "recovering the interrupted %s (phase %s)", r->plan->op,
                             snap_phase_name(r->phase));
    return 0;
}
