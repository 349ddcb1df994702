#include "snap/txn/session.h"

#include <stdbool.h>
#include <stdio.h>

#include "util/fsutil.h"
#include "util/readfile.h"
#include "snap/txn/journal.h"
#include "snap/txn/pending.h"
#include "snap/txn/precond.h"
#include "snap/txn/recover.h"

/* A journal left by an interrupted run: finish or undo it now. */
static int recover_leftover(snap_ctx *c, es_err *e)
{
    snap_journal j = {c->journal_path, c->journal_tmp};
    bool exists = false;
    if (snap_journal_exists(&j, &exists, e) < 0)
        return -1;
    if (!exists) /* a journal write that never reached its rename leaves only litter */
        return c->env->dry_run ? 0 : es_unlink_if_exists(c->journal_tmp, e);
    if (c->env->dry_run) {
        /* A journal recovery cannot read is refused as the real run refuses it. */
        snap_recovery r = {0};
        int rc = snap_recover_inspect(c, &r, e);
        snap_recovery_clear(&r);
        if (rc < 0)
            return -1;
        return es_err_set(e, 0, c->journal_path,
                          "an interrupted extsnap operation on domain %s must be finished or "
                          "undone first; run '%s' (or this command without --dry-run, "
                          "which recovers first)",
                          c->name, snap_ctx_recover_cmd(c));
    }
    snap_recovery r = {0};
    int rc = snap_recover(c, &r, e);
    /* Said even with -q: the user should know their last run did not complete. */
    if (rc == 0 && r.found && c->env->log)
        fprintf(c->env->log, "extsnap: %s: %s an interrupted operation first: %s\n",
                c->env->cmd ? c->env->cmd : "snap", r.rolled_back ? "rolled back" : "finished",
                r.plan && r.plan->summary ? r.plan->summary : "(unknown)");
    snap_recovery_clear(&r);
    return rc;
}

/* Files are only written offline: no libvirtd on that root, VM stopped. */
static int offline_checks(snap_ctx *c, es_err *e)
{
    if (snap_check_no_libvirtd(c->env->root, c->run_dir, e) < 0 ||
        snap_check_vm_stopped(c->env->root, c->run_dir, c->config, e) < 0)
        return -1;
    return 0;
}

static int go_offline(snap_ctx *c, snap_load_mode load, es_err *e)
{
    if (offline_checks(c, e) < 0 || recover_leftover(c, e) < 0)
        return -1;
    return snap_ctx_reload(c, load, e);
}

int snap_session_go_offline(snap_ctx *c, es_err *e)
{
    return go_offline(c, SNAP_LOAD_STRICT, e);
}

bool snap_session_pending(const snap_ctx *c)
{
    snap_journal j = {c->journal_path, c->journal_tmp};
    bool pending = false;
    return snap_journal_exists(&j, &pending, NULL) == 0 && pending;
}

bool snap_session_vm_running(const snap_ctx *c)
{
    es_err e = {0};
    return snap_check_vm_stopped(c->env->root, c->run_dir, c->config, &e) < 0;
}

/* A reader does not recover (it changes nothing) but says that a run was
 * interrupted. */
static void note_pending_journal(const snap_ctx *c)
{
    if (snap_session_pending(c))
        snap_ctx_note(c, "warning: an interrupted operation on domain %s is pending; run '%s'",
                      c->name, snap_ctx_recover_cmd(c));
}

int snap_session_begin(const snap_env *env, const char *arg, snap_open_mode mode, snap_ctx **out,
                       es_err *e)
{
    *out = NULL;
    snap_ctx *c = NULL;
    if (snap_ctx_open_locked(env, arg, mode != SNAP_OPEN_READ, &c, e) < 0)
        return -1;
    if (mode != SNAP_OPEN_READ && !env->dry_run)
        snap_pending_tidy(c); /* libvirt's pending files, once loaded */
    if (mode == SNAP_OPEN_WRITE && snap_session_go_offline(c, e) < 0)
        goto fail;
    if (mode == SNAP_OPEN_WRITE_MARKERS && go_offline(c, SNAP_LOAD_MARKERS, e) < 0)
        goto fail;
    if (mode == SNAP_OPEN_RECOVER && offline_checks(c, e) < 0)
        goto fail;
    if (mode == SNAP_OPEN_READ) {
        if (snap_ctx_reload(c, SNAP_LOAD_TOLERANT, e) < 0)
            goto fail;
        note_pending_journal(c);
    }
    *out = c;
    return 0;
fail:
    snap_ctx_close(c);
    return -1;
}
