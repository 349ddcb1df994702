#include "qmp/qmp_job.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qmp/qmp_fault.h"
#include "qmp/qmp_json.h"

#define DEFAULT_POLL_MS 1000
#define DEFAULT_CANCEL_TIMEOUT_MS 60000
/* A job absent from query-block-jobs this many times in a row, with no
 * completion event, is reported as lost instead of waited for forever. */
#define MISSING_POLLS_MAX 2

typedef enum job_phase {
    PHASE_NOT_STARTED,
    PHASE_RUNNING,
    PHASE_READY,   /* active commit mirrors; waits for block-job-complete */
    PHASE_PENDING, /* done copying; waits for job-finalize (graph untouched yet) */
    PHASE_COMPLETED,
    PHASE_CANCELLED,
    PHASE_FAILED,
} job_phase;

typedef struct commit_job {
    const qmp_commit_spec *spec;
    char id[128];
    bool active;      /* active commit: goes through READY */
    bool started;     /* block-commit succeeded */
    bool gone;        /* QEMU reported status "null": the job no longer exists */
    job_phase phase;
    int missing_polls;
    char error[512];  /* why it failed, from QEMU */
    uint64_t offset, len;
    bool end_known;   /* offset is the one of the job's final event */
} commit_job;

typedef struct job_run {
    qmp_client *c;
    commit_job *jobs;
    size_t n;
    qmp_job_opts o;
    int64_t deadline; /* 0: none */
    int64_t next_poll;
    bool shutdown_seen;
} job_run;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool phase_is_final(job_phase p)
{
    return p == PHASE_COMPLETED || p == PHASE_CANCELLED || p == PHASE_FAILED;
}

static commit_job *find_job(job_run *r, const char *id)
{
    if (!id)
        return NULL;
    for (size_t i = 0; i < r->n; i++)
        if (r->jobs[i].started && strcmp(r->jobs[i].id, id) == 0)
            return &r->jobs[i];
    return NULL;
}

static void report_progress(job_run *r, commit_job *j)
{
    if (r->o.progress)
        r->o.progress(r->o.opaque, (size_t)(j - r->jobs), j->id, j->offset, j->len);
}

static void take_progress(job_run *r, commit_job *j, json_object *data)
{
    uint64_t off, len;
    if (qmp_json_u64(data, "offset", &off) && qmp_json_u64(data, "len", &len)) {
        j->offset = off;
        j->len = len;
        report_progress(r, j);
    }
}

/* The offset of a job's last event: what it copied in all (a cancelled
 * job's too, which QEMU does not undo). */
static void take_final_progress(job_run *r, commit_job *j, json_object *data)
{
    uint64_t off;
    j->end_known = qmp_json_u64(data, "offset", &off);
    take_progress(r, j, data);
}

/* ---- events ---- */

static void on_status_change(job_run *r, json_object *data)
{
    commit_job *j = find_job(r, qmp_json_str(data, "id"));
    const char *status = qmp_json_str(data, "status");
    if (!j || !status)
        return;
    if (strcmp(status, "running") == 0 && j->phase == PHASE_NOT_STARTED)
        j->phase = PHASE_RUNNING;
    else if (strcmp(status, "ready") == 0 && !phase_is_final(j->phase)) {
        j->phase = PHASE_READY;
        j->active = true;
    } else if (strcmp(status, "pending") == 0 && !phase_is_final(j->phase))
        j->phase = PHASE_PENDING;
    else if (strcmp(status, "null") == 0) {
        j->gone = true;
        if (!phase_is_final(j->phase)) {
            j->phase = PHASE_FAILED;
            if (!j->error[0])
                snprintf(j->error, sizeof j->error, "job ended without a completion event");
        }
    }
}

static void apply_event(job_run *r, const qmp_msg *ev)
{
    const char *name = ev->event;
    json_object *data = ev->value;
    if (strcmp(name, "JOB_STATUS_CHANGE") == 0) {
        on_status_change(r, data);
        return;
    }
    if (strcmp(name, "SHUTDOWN") == 0) {
        r->shutdown_seen = true;
        return;
    }
    /* BLOCK_JOB_* events name the job in "device" (PENDING uses "id"). */
    const char *id = qmp_json_str(data, "device");
    commit_job *j = find_job(r, id ? id : qmp_json_str(data, "id"));
    if (!j)
        return;
    if (strcmp(name, "BLOCK_JOB_READY") == 0) {
        if (!phase_is_final(j->phase))
            j->phase = PHASE_READY;
        j->active = true;
        take_progress(r, j, data);
    } else if (strcmp(name, "BLOCK_JOB_PENDING") == 0) {
        if (!phase_is_final(j->phase))
            j->phase = PHASE_PENDING;
    } else if (strcmp(name, "BLOCK_JOB_COMPLETED") == 0) {
        /* Failures arrive as COMPLETED too, told apart only by "error". */
        const char *err = qmp_json_str(data, "error");
        if (err) {
            j->phase = PHASE_FAILED;
            snprintf(j->error, sizeof j->error, "%s", err);
        } else {
            j->phase = PHASE_COMPLETED;
        }
        take_final_progress(r, j, data);
    } else if (strcmp(name, "BLOCK_JOB_CANCELLED") == 0) {
        j->phase = PHASE_CANCELLED;
        take_final_progress(r, j, data);
    } else if (strcmp(name, "BLOCK_JOB_ERROR") == 0) {
        const char *op = qmp_json_str(data, "operation");
        const char *action = qmp_json_str(data, "action");
        if (!j->error[0])
            snprintf(j->error, sizeof j->error, "I/O error on %s (action %s)",
                     op ? op : "?", action ? action : "?");
    }
}

/* Apply every event already received, without waiting. */
static int drain_events(job_run *r, es_err *e)
{
    for (;;) {
        qmp_msg *ev;
        int got = qmp_next_event(r->c, 0, &ev, e);
        if (got < 0)
            return -1;
        if (got == 0)
            return 0;
        apply_event(r, ev);
        qmp_msg_free(ev);
    }
}

/* ---- polling ---- */

static json_object *find_listed(json_object *list, const char *id)
{
    size_t n = json_object_array_length(list);
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(list, i);
        const char *dev = qmp_json_str(item, "device");
        if (dev && strcmp(dev, id) == 0)
            return item;
    }
    return NULL;
}

static int poll_jobs(job_run *r, es_err *e)
{
    json_object *list = NULL;
    if (qmp_execute(r->c, "query-block-jobs", NULL, &list, e) < 0)
        return -1;
    if (!json_object_is_type(list, json_type_array)) {
        json_object_put(list);
        return es_err_set(e, 0, qmp_client_name(r->c), "query-block-jobs did not return a list");
    }
    /* Events sent before the reply are already buffered: apply them first so a
     * job that just ended is not taken for a lost one. */
    if (drain_events(r, e) < 0) {
        json_object_put(list);
        return -1;
    }
    for (size_t i = 0; i < r->n; i++) {
        commit_job *j = &r->jobs[i];
        if (!j->started || j->gone)
            continue;
        json_object *item = find_listed(list, j->id);
        if (!item) {
            if (++j->missing_polls >= MISSING_POLLS_MAX) {
                j->gone = true;
                if (!phase_is_final(j->phase)) {
                    j->phase = PHASE_FAILED;
                    snprintf(j->error, sizeof j->error,
                             "job disappeared from QEMU without a completion event");
                }
            }
            continue;
        }
        j->missing_polls = 0;
        take_progress(r, j, item);
    }
    json_object_put(list);
    return 0;
}

/* ---- waiting ---- */

typedef enum wait_goal {
    GOAL_SETTLED,  /* active: READY, intermediate: PENDING */
    GOAL_PENDING,  /* every job PENDING */
    GOAL_FINISHED, /* every job COMPLETED and gone */
    GOAL_ENDED,    /* every started job gone, whatever the outcome (after cancel) */
} wait_goal;

static const char *goal_text(wait_goal g)
{
    switch (g) {
    case GOAL_SETTLED:  return "the commit jobs to become ready";
    case GOAL_PENDING:  return "the commit jobs to finish copying";
    case GOAL_FINISHED: return "the commit jobs to complete";
    case GOAL_ENDED:    return "the cancelled commit jobs to end";
    }
    return "the commit jobs";
}

static bool job_reached(const commit_job *j, wait_goal g)
{
    if (!j->started)
        return g == GOAL_ENDED;
    switch (g) {
    case GOAL_SETTLED:  return j->phase == (j->active ? PHASE_READY : PHASE_PENDING);
    case GOAL_PENDING:  return j->phase == PHASE_PENDING;
    case GOAL_FINISHED: return j->phase == PHASE_COMPLETED && j->gone;
    case GOAL_ENDED:    return j->gone;
    }
    return false;
}

/* First job that ended badly (for goals other than GOAL_ENDED). */
static commit_job *failed_job(job_run *r)
{
    for (size_t i = 0; i < r->n; i++) {
        commit_job *j = &r->jobs[i];
        if (j->started && (j->phase == PHASE_FAILED || j->phase == PHASE_CANCELLED))
            return j;
    }
    return NULL;
}

typedef enum wait_result { WAIT_DONE, WAIT_JOB_FAILED, WAIT_ERROR } wait_result;

/* Wait until every job reached goal g, a job failed, or deadline (0: none)
 * passed; limit_ms is only for the message. Waiting for events is the one
 * place the caller's interrupt flag is honoured (commands run with it held,
 * so no request is ever left unanswered), except while cancelling. */
static wait_result wait_for(job_run *r, wait_goal g, int64_t deadline, int limit_ms, es_err *e)
{
    const char *what = goal_text(g);
    bool interruptible = g == GOAL_SETTLED || g == GOAL_PENDING;
    for (;;) {
        size_t reached = 0;
        for (size_t i = 0; i < r->n; i++)
            reached += job_reached(&r->jobs[i], g);
        if (reached == r->n)
            return WAIT_DONE;
        if (g != GOAL_ENDED && failed_job(r))
            return WAIT_JOB_FAILED;
        if (r->shutdown_seen) {
            es_err_set(e, 0, qmp_client_name(r->c), "QEMU is shutting down while waiting for %s",
                       what);
            return WAIT_ERROR;
        }
        if (interruptible && qmp_client_interrupt_pending(r->c)) {
            es_err_set(e, 0, qmp_client_name(r->c), "interrupted while waiting for %s", what);
            return WAIT_ERROR;
        }
        int64_t now = now_ms();
        if (deadline && now >= deadline) {
            char secs[32];
            es_err_set(e, 0, qmp_client_name(r->c), "timed out after %s waiting for %s",
                       qmp_format_seconds(limit_ms, secs, sizeof secs), what);
            return WAIT_ERROR;
        }
        if (now >= r->next_poll) {
            if (poll_jobs(r, e) < 0)
                return WAIT_ERROR;
            r->next_poll = now_ms() + r->o.poll_interval_ms;
            continue;
        }
        int64_t until = r->next_poll;
        if (deadline && deadline < until)
            until = deadline;
        qmp_msg *ev;
        if (interruptible)
            qmp_client_hold_interrupt(r->c, false);
        int got = qmp_next_event(r->c, (int)(until - now), &ev, e);
        qmp_client_hold_interrupt(r->c, true);
        if (got < 0) {
            if (interruptible && qmp_client_interrupt_pending(r->c))
                es_err_set(e, 0, qmp_client_name(r->c), "interrupted while waiting for %s",
                           what);
            return WAIT_ERROR;
        }
        if (got > 0) {
            apply_event(r, ev);
            qmp_msg_free(ev);
        }
    }
}

/* ---- commands ---- */

int qmp_block_job_cancel(qmp_client *c, const char *job_id, es_err *e)
{
    json_object *args = json_object_new_object();
    json_object_object_add(args, "device", json_object_new_string(job_id));
    json_object_object_add(args, "force", json_object_new_boolean(1));
    int rc = qmp_execute(c, "block-job-cancel", args, NULL, e);
    json_object_put(args);
    if (rc < 0 && strcmp(qmp_client_last_error_class(c), "DeviceNotActive") == 0) {
        es_err_clear(e);
        return 0; /* already gone */
    }
    return rc;
}

static int start_job(job_run *r, commit_job *j, es_err *e)
{
    const qmp_commit_spec *s = j->spec;
    json_object *args = json_object_new_object();
    json_object_object_add(args, "device", json_object_new_string(s->device));
    json_object_object_add(args, "job-id", json_object_new_string(j->id));
    if (s->top_node)
        json_object_object_add(args, "top-node", json_object_new_string(s->top_node));
    if (s->base_node)
        json_object_object_add(args, "base-node", json_object_new_string(s->base_node));
    if (s->backing_file)
        json_object_object_add(args, "backing-file", json_object_new_string(s->backing_file));
    if (s->speed)
        json_object_object_add(args, "speed", json_object_new_int64((int64_t)s->speed));
    /* Stop in "pending" so that no graph change happens before all disks are ready. */
    json_object_object_add(args, "auto-finalize", json_object_new_boolean(0));
    json_object_object_add(args, "auto-dismiss", json_object_new_boolean(1));
    int rc = qmp_execute(r->c, "block-commit", args, NULL, e);
    json_object_put(args);
    if (rc < 0)
        return -1;
    j->started = true;
    if (j->phase == PHASE_NOT_STARTED)
        j->phase = PHASE_RUNNING;
    return 0;
}

static int job_command(job_run *r, commit_job *j, const char *cmd, const char *key, es_err *e)
{
    json_object *args = json_object_new_object();
    json_object_object_add(args, key, json_object_new_string(j->id));
    int rc = qmp_execute(r->c, cmd, args, NULL, e);
    json_object_put(args);
    return rc;
}

/* Append text to e's message (keeps what failed first). */
__attribute__((format(printf, 2, 3))) static void append_msg(es_err *e, const char *fmt, ...)
{
    if (!e)
        return;
    size_t len = strlen(e->msg);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg + len, sizeof e->msg - len, fmt, ap);
    va_end(ap);
}

/* Cancel every started job that still exists and wait for all to end. The
 * interrupt flag stays held: cleanup must not itself be interrupted.
 * Appends the outcome to e (which holds the reason for cancelling). */
static void cancel_all(job_run *r, es_err *e)
{
    if (!qmp_client_is_connected(r->c)) {
        append_msg(e, "; QEMU connection lost, job states unknown");
        return;
    }
    es_err ce = {0};
    bool failed = false;
    size_t cancelled = 0;
    for (size_t i = 0; i < r->n && !failed; i++) {
        commit_job *j = &r->jobs[i];
        if (!j->started || j->gone || phase_is_final(j->phase))
            continue;
        if (qmp_block_job_cancel(r->c, j->id, &ce) < 0)
            failed = true;
        else
            cancelled++;
    }
    if (!failed) {
        int64_t deadline = now_ms() + r->o.cancel_timeout_ms;
        failed = wait_for(r, GOAL_ENDED, deadline, r->o.cancel_timeout_ms, &ce) != WAIT_DONE;
    }
    if (failed) {
        char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX];
        append_msg(e, "; cancelling the commit jobs failed: %s", es_err_str(&ce, buf, sizeof buf));
        return;
    }
    bool any_completed = false;
    for (size_t i = 0; i < r->n; i++)
        any_completed |= r->jobs[i].started && r->jobs[i].phase == PHASE_COMPLETED;
    append_msg(e, "%s",
               any_completed ? "; some disks were already switched" : "; no disk was switched");
    if (cancelled)
        append_msg(e, " (cancelled %zu job%s)", cancelled, cancelled == 1 ? "" : "s");
}

static const char *job_label(const commit_job *j, char *buf, size_t len)
{
    snprintf(buf, len, "block job %s (%s)", j->id, j->spec->device);
    return buf;
}

static int check_interrupt(job_run *r, const char *what, es_err *e)
{
    if (!qmp_client_interrupt_pending(r->c))
        return 0;
    return es_err_set(e, 0, qmp_client_name(r->c), "interrupted while %s", what);
}

/* A wait or command failed: turn it into the final error, cancelling the rest. */
static int fail_run(job_run *r, wait_result why, es_err *e)
{
    char label[320];
    commit_job *j = why == WAIT_JOB_FAILED ? failed_job(r) : NULL;
    if (j) {
        if (j->phase == PHASE_CANCELLED)
            es_err_set(e, 0, qmp_client_name(r->c), "%s was cancelled by someone else",
                       job_label(j, label, sizeof label));
        else
            es_err_set(e, 0, qmp_client_name(r->c), "%s failed: %s",
                       job_label(j, label, sizeof label), j->error[0] ? j->error : "unknown error");
    }
    cancel_all(r, e);
    return -1;
}

/* Finalize pending jobs one by one; the graph changes here. */
static int finalize_all(job_run *r, es_err *e)
{
    for (size_t i = 0; i < r->n; i++) {
        commit_job *j = &r->jobs[i];
        int rc = qmp_fault_point("finalize", e);
        if (rc == 0)
            rc = job_command(r, j, "job-finalize", "id", e);
        if (rc == 0 && drain_events(r, e) < 0)
            rc = -1;
        if (rc == 0 && j->phase == PHASE_FAILED) {
            char label[320];
            rc = es_err_set(e, 0, qmp_client_name(r->c), "%s failed while finalizing: %s",
                            job_label(j, label, sizeof label), j->error);
        }
        if (rc < 0) {
            /* Earlier disks are committed for good: say which. */
            for (size_t k = 0; k < i; k++)
                append_msg(e, "%s%s", k == 0 ? "; already committed: " : ", ",
                           r->jobs[k].spec->device);
            cancel_all(r, e);
            return -1;
        }
    }
    return 0;
}

static int check_specs(const qmp_commit_spec *specs, size_t n, es_err *e)
{
    if (n == 0)
        return es_err_set(e, EINVAL, NULL, "block commit: no disk given");
    for (size_t i = 0; i < n; i++) {
        if (!specs[i].device || !specs[i].device[0])
            return es_err_set(e, EINVAL, NULL, "block commit #%zu: no device or node given", i);
        if (specs[i].backing_file && !specs[i].top_node)
            return es_err_set(e, EINVAL, NULL,
                              "block commit of %s: backing-file applies only to an "
                              "intermediate commit (top node given)",
                              specs[i].device);
    }
    return 0;
}

static int run_phases(job_run *r, es_err *e)
{
    wait_result w;
    for (size_t i = 0; i < r->n; i++)
        if (check_interrupt(r, "starting the commit jobs", e) < 0 ||
            start_job(r, &r->jobs[i], e) < 0)
            return fail_run(r, WAIT_ERROR, e);
    if ((w = wait_for(r, GOAL_SETTLED, r->deadline, r->o.timeout_ms, e)) != WAIT_DONE)
        return fail_run(r, w, e);
    for (size_t i = 0; i < r->n; i++) {
        commit_job *j = &r->jobs[i];
        if (j->active && job_command(r, j, "block-job-complete", "device", e) < 0)
            return fail_run(r, WAIT_ERROR, e);
        if (check_interrupt(r, "completing the commit jobs", e) < 0)
            return fail_run(r, WAIT_ERROR, e);
    }
    if ((w = wait_for(r, GOAL_PENDING, r->deadline, r->o.timeout_ms, e)) != WAIT_DONE)
        return fail_run(r, w, e);
    if (r->o.before_finalize && r->o.before_finalize(r->o.opaque, e) < 0)
        return fail_run(r, WAIT_ERROR, e);
    /* From here on the graph changes: no more interrupts, finish what started. */
    if (finalize_all(r, e) < 0)
        return -1;
    int64_t deadline = now_ms() + r->o.cancel_timeout_ms;
    w = wait_for(r, GOAL_FINISHED, deadline, r->o.cancel_timeout_ms, e);
    if (w == WAIT_JOB_FAILED)
        return fail_run(r, w, e);
    return w == WAIT_DONE ? 0 : -1;
}

int qmp_commit_run(qmp_client *c, const qmp_commit_spec *specs, size_t n,
                   const qmp_job_opts *opts, es_err *e)
{
    if (opts && opts->base_written)
        *opts->base_written = false;
    if (check_specs(specs, n, e) < 0)
        return -1;
    job_run r = {.c = c, .n = n};
    if (opts)
        r.o = *opts;
    if (r.o.poll_interval_ms <= 0)
        r.o.poll_interval_ms = DEFAULT_POLL_MS;
    if (r.o.cancel_timeout_ms <= 0)
        r.o.cancel_timeout_ms = DEFAULT_CANCEL_TIMEOUT_MS;
    r.jobs = calloc(n, sizeof *r.jobs);
    if (!r.jobs)
        return es_err_set(e, ENOMEM, NULL, "block commit");
    for (size_t i = 0; i < n; i++) {
        commit_job *j = &r.jobs[i];
        j->spec = &specs[i];
        j->active = specs[i].top_node == NULL;
        if (specs[i].job_id)
            snprintf(j->id, sizeof j->id, "%s", specs[i].job_id);
        else
            snprintf(j->id, sizeof j->id, "extsnap-commit-%zu", i);
    }
    r.deadline = r.o.timeout_ms > 0 ? now_ms() + r.o.timeout_ms : 0;
    r.next_poll = now_ms() + r.o.poll_interval_ms;

    /* Commands run with the interrupt held so no request is left unanswered;
     * wait_for lets it through while it waits for events. */
    qmp_client_hold_interrupt(c, true);
    int rc = run_phases(&r, e);
    qmp_client_hold_interrupt(c, false);
    if (r.o.base_written) {
        bool written = rc == 0;
        for (size_t i = 0; i < n; i++) {
            const commit_job *j = &r.jobs[i];
            written |= j->started && !(j->gone && j->end_known && j->offset == 0);
        }
        *r.o.base_written = written;
    }
    free(r.jobs);
    return rc;
}
