/* Opening a domain whose VM may be running, and recovering an interrupted
 * operation while it runs (online_exec.h has the design). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qmp/qmp_json.h"
#include "snap/txn/exec.h"
#include "snap/txn/session.h"
#include "util/fsutil.h"
#include "util/readfile.h"
#include "snap/ops/inexact.h"
#include "online/online_bitmaps.h"
#include "online/online_exports.h"
#include "online/online_connect.h"
#include "online/online_exec.h"
#include "online/online_priv.h"
#include "snap/txn/recover.h"
#include "util/xalloc.h"

#define SETTLE_TIMEOUT_MS 60000

void snap_online_close(snap_online *ol)
{
    if (!ol)
        return;
    qmp_client_close(ol->qmp);
    snap_qmp_socket_clear(&ol->sock);
    snap_online_actions_clear(ol);
    free(ol->pending_dir);
    es_strv_free(&ol->virsh);
    es_strv_free(&ol->unknown);
    es_strv_free(&ol->kept);
    es_strv_free(&ol->notes);
    free(ol->recovered_summary);
    snap_plan_free(ol->recovered_plan);
    free(ol);
}

/* ---- jobs an interrupted run left in QEMU ---- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Before the point of no return they are cancelled (nothing changes), after
 * it finalized (QEMU switches the disks, as the journal says it did). */
static int settle_jobs(snap_online *ol, bool forward, es_err *e)
{
    for (int waited = 0;; waited += 100) {
        json_object *list = NULL;
        if (qmp_execute(ol->qmp, "query-block-jobs", NULL, &list, e) < 0)
            return -1;
        size_t ours = 0;
        int rc = 0;
        for (size_t i = 0; rc == 0 && json_object_is_type(list, json_type_array) &&
                           i < json_object_array_length(list);
             i++) {
            json_object *job = json_object_array_get_idx(list, i);
            const char *id = qmp_json_str(job, "device");
            const char *status = qmp_json_str(job, "status");
            if (!id || strncmp(id, SNAP_ONLINE_JOB_PREFIX, strlen(SNAP_ONLINE_JOB_PREFIX)) != 0)
                continue;
            ours++;
            if (waited)
                continue; /* commands were sent on the first round */
            if (forward && status && strcmp(status, "pending") == 0) {
                json_object *args = json_object_new_object();
                json_object_object_add(args, "id", json_object_new_string(id));
                rc = qmp_execute(ol->qmp, "job-finalize", args, NULL, e);
                json_object_put(args);
            } else if (!forward || !status || strcmp(status, "concluded") != 0) {
                rc = qmp_block_job_cancel(ol->qmp, id, e);
            }
        }
        json_object_put(list);
        if (rc < 0)
            return -1;
        if (!ours) {
            /* Their events are of no use to the jobs that follow. */
            qmp_msg *ev;
            while (qmp_next_event(ol->qmp, 0, &ev, NULL) > 0)
                qmp_msg_free(ev);
            return 0;
        }
        if (waited >= SETTLE_TIMEOUT_MS)
            return es_err_set(e, 0, qmp_client_name(ol->qmp),
                              "extsnap's block jobs left by an interrupted run did not end");
        sleep_ms(100);
    }
}

/* ---- recovery ---- */

/* Did the transaction of an interrupted create happen (an overlay is what
 * QEMU writes into)? */
static int snapshot_happened(snap_ctx *c, snap_online *ol, const snap_plan *p, bool *yes,
                             es_err *e)
{
    *yes = false;
    es_strv in = {0}, out = {0};
    int rc = 0;
    for (size_t i = 0; i < p->noverlays && rc == 0; i++) {
        char *host;
        if (snap_ctx_host(c, p->overlays[i].path, &host, e) < 0) {
            rc = -1;
            break;
        }
        snap_file_use use = SNAP_FILE_CLOSED;
        rc = snap_online_file_use(ol->qmp, host, c->env->root, &use, NULL, e);
        free(host);
        if (rc == 0)
            rc = es_strv_add(use == SNAP_FILE_IN_USE ? &in : &out, p->overlays[i].disk, e);
    }
    /* QEMU switches all disks or none (one transaction): only some means
     * something else changed its graph. Finishing would name as saved an
     * image the VM still writes, undoing would drop its writes into the
     * switched overlays: neither is done. */
    if (rc == 0 && in.n && out.n) {
        char a[512] = "", b[512] = "";
        for (size_t i = 0; i < in.n; i++)
            snprintf(a + strlen(a), sizeof a - strlen(a), "%s%s", i ? ", " : "", in.v[i]);
        for (size_t i = 0; i < out.n; i++)
            snprintf(b + strlen(b), sizeof b - strlen(b), "%s%s", i ? ", " : "", out.v[i]);
        rc = es_err_set(e, 0, c->journal_path,
                        "the interrupted create left QEMU writing into the new overlays of "
                        "%s but not of %s: it can be neither finished nor undone; switch those "
                        "disks to their new overlays in QEMU too (blockdev-snapshot-sync, mode "
                        "existing), then run '%s'",
                        a, b, snap_ctx_recover_cmd(c));
    }
    *yes = rc == 0 && in.n > 0;
    es_strv_free(&in);
    es_strv_free(&out);
    return rc;
}

typedef struct redo_bitmaps {
    qmp_client *qmp;
    const snap_online_commit *ocs;
    size_t n;
} redo_bitmaps;

/* The redone commits keep their dirty bitmaps as the first run's would;
 * an export of their disks is refused as there (online_exports.h). */
static int redo_merge_bitmaps(void *opaque, es_err *e)
{
    redo_bitmaps *rb = opaque;
    if (snap_online_exports_refuse_pending(rb->qmp, rb->ocs, rb->n, e) < 0)
        return -1;
    return snap_online_bitmaps_merge(rb->qmp, rb->ocs, rb->n, e);
}

/* Merges of the journal that QEMU still has to do (their top is in a chain
 * the VM uses) are done through QEMU now; the others stay in the plan. */
static int redo_in_qemu(snap_ctx *c, snap_online *ol, const snap_plan *p, snap_plan **rest,
                        es_err *e)
{
    *rest = NULL;
    snap_derive all = {.overlays = true, .merges = true, .rebases = true, .xml = true,
                       .deletes = true};
    if (!p->nmerges) /* a create: its overlays are in QEMU already */
        return snap_online_derive(p, &all, rest, e);
    snap_plan *merges = NULL;
    snap_derive only = {.merges = true, .rebases = true};
    if (snap_online_derive(p, &only, &merges, e) < 0)
        return -1;
    int mrc = snap_online_map(c, ol, merges, e);
    snap_plan_free(merges);
    if (mrc < 0)
        return -1;
    snap_online_commit *ocs = NULL;
    qmp_commit_spec *specs = NULL;
    size_t n = 0;
    bool *keep = es_xcalloc(p->nmerges + 1, sizeof *keep);
    int rc = -1;
    for (size_t i = 0; i < ol->nactions; i++)
        if (ol->actions[i].kind == SNAP_ONLINE_OFFLINE_MERGE)
            keep[ol->actions[i].item] = true;
    if (snap_online_commit_specs(c, ol, &ocs, &specs, &n, e) < 0)
        goto out;
    redo_bitmaps rb = {.qmp = ol->qmp, .ocs = ocs, .n = n};
    qmp_job_opts jo = {.poll_interval_ms = 250, .before_finalize = redo_merge_bitmaps,
                       .opaque = &rb};
    if (n && qmp_commit_run(ol->qmp, specs, n, &jo, e) < 0)
        goto out;
    snap_derive d = {.overlays = true, .merges = true, .merge_keep = keep, .rebases = true,
                     .xml = true, .deletes = true};
    rc = snap_online_derive(p, &d, rest, e);
out:
    snap_online_commit_specs_free(ocs, specs, n);
    free(keep);
    snap_online_actions_clear(ol);
    return rc;
}

/* Recovery writes the libvirt files the journal names: not under libvirtd. */
static int libvirt_refusal(const snap_ctx *c, const snap_online *ol, const snap_plan *p,
                           es_err *e)
{
    if (!ol->libvirt_mode || !p->nxml)
        return 0;
    return es_err_set(e, 0, c->journal_path,
                      "it would write libvirt's files, and libvirtd runs: stop libvirtd, then "
                      "run '%s'",
                      snap_ctx_recover_cmd(c));
}

/* Finish or undo an interrupted operation while the VM runs (QEMU's jobs
 * left by it included). */
static int snap_online_recover(snap_ctx *c, snap_online *ol, es_err *e)
{
    snap_journal j = {c->journal_path, c->journal_tmp};
    bool exists = false;
    if (snap_journal_exists(&j, &exists, e) < 0)
        return -1;
    if (!exists)
        return es_unlink_if_exists(c->journal_tmp, e);
    snap_plan *p = NULL, *rest = NULL;
    snap_phase phase;
    if (snap_journal_read(&j, &p, &phase, e) < 0)
        return -1;
    int rc = -1;
    bool forward = phase != SNAP_PHASE_PREPARE;
    if (libvirt_refusal(c, ol, p, e) < 0)
        goto out;
    if (settle_jobs(ol, forward, e) < 0)
        goto out;
    if (!forward && p->noverlays) {
        bool happened = false;
        if (snapshot_happened(c, ol, p, &happened, e) < 0)
            goto out;
        if (happened) { /* QEMU switched before the journal said so */
            if (snap_journal_write(&j, p, SNAP_PHASE_MERGE, e) < 0)
                goto out;
            phase = SNAP_PHASE_MERGE;
            forward = true;
        }
    }
    if (!forward) {
        rc = snap_rollback(c->env->root, &j, p, e);
    } else if (phase == SNAP_PHASE_MERGE) {
        if (redo_in_qemu(c, ol, p, &rest, e) == 0)
            rc = snap_online_finish(c, ol, rest, phase, e);
    } else {
        rc = snap_online_finish(c, ol, p, phase, e);
    }
    /* Finished: the snapshots it removed leave the record of inexact ones
     * (a cancelled earlier run of the same operation may have put them
     * there). */
    if (rc == 0 && forward)
        rc = snap_inexact_forget(c, p, e);
    if (rc == 0) {
        ol->recovered = true;
        ol->rolled_back = !forward;
        ol->recovered_phase = phase;
        rc = es_strdup(p->summary ? p->summary : "(unknown)", &ol->recovered_summary, e);
    }
    if (rc == 0) {
        snap_plan_free(ol->recovered_plan);
        ol->recovered_plan = p;
        p = NULL;
    }
out:
    if (rc < 0)
        es_err_prefix(e, "recovering an interrupted operation on the running VM");
    snap_plan_free(rest);
    snap_plan_free(p);
    return rc;
}

/* ---- opening ---- */

/* The VM of c runs (st): its QMP socket, connected. */
static int attach(snap_ctx *c, const snap_vm_state *st, const char *cli_socket,
                  snap_online **out, es_err *e)
{
    *out = NULL;
    snap_online *ol = es_xcalloc(1, sizeof *ol);
    ol->vm = *st;
    ol->libvirt_mode = st->libvirtd;
    const char *holder = st->holder[0] ? st->holder : NULL;
    if (snap_qmp_socket_find(c->config, cli_socket, c->env->root, c->run_dir, &ol->sock, e) < 0)
        goto fail;
    if (!ol->sock.path) {
        snap_qmp_socket_missing(&ol->sock, c->name, holder, e);
        goto fail;
    }
    if (snap_online_connect(ol->sock.path, c->env->qmp_timeout_ms, &ol->qmp, e) < 0) {
        es_err_prefix(e, "domain %s is running%s%s%s and its QMP socket (from %s) cannot be "
                         "used",
                      c->name, holder ? " (" : "", holder ? holder : "", holder ? ")" : "",
                      ol->sock.origin);
        goto fail;
    }
    *out = ol;
    return 0;
fail:
    snap_online_close(ol);
    return -1;
}

int snap_online_open(const snap_env *env, const char *dom, const char *cli_socket,
                     snap_ctx **ctx, snap_online **out, es_err *e)
{
    *ctx = NULL;
    *out = NULL;
    snap_ctx *c = NULL;
    if (snap_session_begin(env, dom, SNAP_OPEN_ONLINE, &c, e) < 0)
        return -1;
    snap_vm_state st;
    if (snap_online_vm_state(c, &st, e) < 0) {
        snap_ctx_close(c);
        return -1;
    }
    if (!st.running) {
        /* Shut off: exactly the offline path (its checks, its recovery),
         * under the lock already held. */
        if (snap_session_go_offline(c, e) < 0) {
            snap_ctx_close(c);
            return -1;
        }
        *ctx = c;
        return 0;
    }
    snap_online *ol = NULL;
    if (attach(c, &st, cli_socket, &ol, e) < 0)
        goto fail;
    snap_journal j = {c->journal_path, c->journal_tmp};
    bool pending = false;
    if (snap_journal_exists(&j, &pending, e) < 0)
        goto fail;
    if (pending && env->dry_run) {
        /* What the real run's recovery would refuse, it refuses the same way. */
        snap_recovery r = {0};
        int rc = snap_recover_inspect(c, &r, e);
        if (rc == 0 && r.found)
            rc = libvirt_refusal(c, ol, r.plan, e);
        snap_recovery_clear(&r);
        if (rc < 0) {
            es_err_prefix(e, "recovering an interrupted operation on the running VM");
            goto fail;
        }
        es_err_set(e, 0, c->journal_path,
                   "an interrupted extsnap operation on domain %s must be finished or undone "
                   "first; run '%s' (or this command without --dry-run, which recovers first)",
                   c->name, snap_ctx_recover_cmd(c));
        goto fail;
    }
    if (pending && snap_online_recover(c, ol, e) < 0)
        goto fail;
    if (ol->recovered && env->log)
        fprintf(env->log, "extsnap: %s: %s an interrupted operation first: %s\n",
                env->cmd ? env->cmd : "snap", ol->rolled_back ? "rolled back" : "finished",
                ol->recovered_summary);
    if (snap_ctx_reload(c, SNAP_LOAD_STRICT, e) < 0)
        goto fail;
    *ctx = c;
    *out = ol;
    return 0;
fail:
    snap_online_close(ol);
    snap_ctx_close(c);
    return -1;
}

int snap_online_recover_domain(const snap_env *env, const char *dom, snap_ctx **ctx,
                               snap_recovery *r, es_err *e)
{
    *ctx = NULL;
    memset(r, 0, sizeof *r);
    snap_ctx *c = NULL;
    if (snap_session_begin(env, dom, SNAP_OPEN_ONLINE, &c, e) < 0)
        return -1;
    snap_vm_state st;
    if (snap_online_vm_state(c, &st, e) < 0) {
        snap_ctx_close(c);
        return -1;
    }
    if (!st.running) {
        snap_ctx_close(c);
        return 0;
    }
    snap_online *ol = NULL;
    int rc = -1;
    if (attach(c, &st, env->qmp, &ol, e) < 0)
        goto out;
    if (env->dry_run) { /* what the journal says, refused as the real run would be */
        rc = snap_recover_inspect(c, r, e);
        if (rc == 0 && r->found && libvirt_refusal(c, ol, r->plan, e) < 0)
            rc = es_err_prefix(e, "recovering an interrupted operation on the running VM");
        goto out;
    }
    snap_journal j = {c->journal_path, c->journal_tmp};
    bool pending = false;
    if (snap_journal_exists(&j, &pending, e) < 0)
        goto out;
    if (!pending) {
        rc = es_unlink_if_exists(c->journal_tmp, e);
        goto out;
    }
    if (snap_online_recover(c, ol, e) < 0)
        goto out;
    r->found = true;
    r->rolled_back = ol->rolled_back;
    r->phase = ol->recovered_phase;
    r->plan = ol->recovered_plan;
    ol->recovered_plan = NULL;
    rc = 0;
out:
    snap_online_close(ol);
    if (rc < 0) {
        snap_recovery_clear(r);
        snap_ctx_close(c);
        return -1;
    }
    *ctx = c;
    return 0;
}
