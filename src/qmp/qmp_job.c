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
#include "util/xalloc.h"

#define DEFAULT_POLL_MS 1000
#define DEFAULT_CANCEL_TIMEOUT_MS 60000
/* A job absent from query-block-jobs this many times in a row is gone (one
 * mangled list does not end it). */
#define MISSING_POLLS_MAX 2
/* An event makes the next poll come this soon after the previous one (a
 * burst of events is one poll, not one each). */
#define WAKE_MIN_GAP_MS 20

/* QEMU's job statuses in the order a job can go through them: a job never
 * goes back to a lower rank (QEMU's job state transition table), so a poll
 * showing a lower rank than an earlier event claimed is a contradiction. */
typedef enum job_rank {
    RANK_UNKNOWN = -1,
    RANK_CREATED,
    RANK_RUNNING, /* also paused */
    RANK_READY,   /* also standby: an active commit mirrors, waits for block-job-complete */
    RANK_WAITING,
    RANK_PENDING, /* copy done; waits for job-finalize (graph untouched yet) */
    RANK_ABORTING,
    RANK_CONCLUDED,
    RANK_NULL,
} job_rank;

static job_rank status_rank(const char *s)
{
    static const struct { const char *name; job_rank rank; } map[] = {
        {"created", RANK_CREATED},   {"running", RANK_RUNNING},     {"paused", RANK_RUNNING},
        {"ready", RANK_READY},       {"standby", RANK_READY},       {"waiting", RANK_WAITING},
        {"pending", RANK_PENDING},   {"aborting", RANK_ABORTING},   {"concluded", RANK_CONCLUDED},
        {"null", RANK_NULL},
    };
    for (size_t i = 0; s && i < sizeof map / sizeof *map; i++)
        if (strcmp(s, map[i].name) == 0)
            return map[i].rank;
    return RANK_UNKNOWN;
}

typedef struct commit_job {
    const qmp_commit_spec *spec;
    char id[128];
    bool active;      /* active commit: goes through READY */
    bool started;     /* block-commit succeeded */
    bool finalized;   /* job-finalize succeeded: the graph change was asked for */
    bool cancel_sent; /* we cancelled it */
    bool gone;        /* no longer listed by QEMU */
    int missing_polls;
    job_rank listed;  /* rank of the last poll's status */
    char status[16];  /* QEMU's status text, last poll */
    job_rank claimed; /* highest rank the events claimed */
    job_rank verify;  /* claimed when the current poll was sent: the poll must show it */
    char claim_event[64];
    char error[512];  /* why it failed, from QEMU (event or query) */
    bool error_final; /* error is the job's final one, not an I/O error report */
    bool said_cancelled; /* an event said it was cancelled */
    uint64_t offset, len, speed;
    uint64_t max_offset;    /* highest offset seen: > 0 means it copied */
    uint64_t min_remaining; /* lowest remaining seen (progress: a new low) */
    uint64_t offset_at_min; /* offset when that low was reached */
    bool sampled;
    int64_t sample_ms;      /* time of the last sample, for the rate */
    uint64_t rate;
    bool speed_lifted;
    bool end_known;   /* end_offset is the one of the job's final event */
    uint64_t end_offset;
} commit_job;

typedef struct job_run {
    qmp_client *c;
    commit_job *jobs;
    size_t n;
    qmp_job_opts o;
    int64_t deadline; /* 0: none */
    int64_t next_poll, last_poll;
    int64_t last_progress; /* for the stall bound */
    bool shutdown_seen;
    char contradiction[600];
} job_run;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

static void wake(job_run *r)
{
    int64_t soon = r->last_poll + WAKE_MIN_GAP_MS;
    if (soon < r->next_poll)
        r->next_poll = soon;
}

/* ---- events: claims to check, failure texts, a wake-up ---- */

static void claim(job_run *r, commit_job *j, job_rank rank, const char *what)
{
    if (rank > j->claimed) {
        j->claimed = rank;
        snprintf(j->claim_event, sizeof j->claim_event, "%s", what);
    }
    wake(r);
}

/* The offset of a job's last event: what it copied in all (a cancelled
 * job's too, which QEMU does not undo). Only ever used to conclude that a
 * job copied nothing when its polls said so too. */
static void take_final_offset(commit_job *j, json_object *data)
{
    uint64_t off;
    if (qmp_json_u64(data, "offset", &off)) {
        j->end_known = true;
        j->end_offset = off;
    }
}

static void apply_event(job_run *r, const qmp_msg *ev)
{
    const char *name = ev->event;
    json_object *data = ev->value;
    if (strcmp(name, "SHUTDOWN") == 0) {
        r->shutdown_seen = true;
        return;
    }
    if (strcmp(name, "JOB_STATUS_CHANGE") == 0) {
        commit_job *j = find_job(r, qmp_json_str(data, "id"));
        const char *status = qmp_json_str(data, "status");
        job_rank rank = status_rank(status);
        if (j && rank != RANK_UNKNOWN) {
            char what[64];
            snprintf(what, sizeof what, "status %s", status);
            claim(r, j, rank, what);
        }
        return;
    }
    /* BLOCK_JOB_* events name the job in "device" (PENDING uses "id"). */
    const char *id = qmp_json_str(data, "device");
    commit_job *j = find_job(r, id ? id : qmp_json_str(data, "id"));
    if (!j)
        return;
    if (strcmp(name, "BLOCK_JOB_READY") == 0) {
        claim(r, j, RANK_READY, name);
    } else if (strcmp(name, "BLOCK_JOB_PENDING") == 0) {
        claim(r, j, RANK_PENDING, name);
    } else if (strcmp(name, "BLOCK_JOB_COMPLETED") == 0) {
        /* Failures arrive as COMPLETED too, told apart only by "error". */
        const char *err = qmp_json_str(data, "error");
        if (err) {
            snprintf(j->error, sizeof j->error, "%s", err);
            j->error_final = true;
        }
        take_final_offset(j, data);
        claim(r, j, RANK_CONCLUDED, name);
    } else if (strcmp(name, "BLOCK_JOB_CANCELLED") == 0) {
        j->said_cancelled = true;
        take_final_offset(j, data);
        claim(r, j, RANK_CONCLUDED, name);
    } else if (strcmp(name, "BLOCK_JOB_ERROR") == 0) {
        const char *op = qmp_json_str(data, "operation");
        const char *action = qmp_json_str(data, "action");
        if (!j->error[0])
            snprintf(j->error, sizeof j->error, "I/O error on %s (action %s)",
                     op ? op : "?", action ? action : "?");
        wake(r);
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

/* ---- polling: the state ---- */

static const char *job_label(const commit_job *j, char *buf, size_t len)
{
    snprintf(buf, len, "block job %s (%s)", j->id, j->spec->device);
    return buf;
}

static void contradiction(job_run *r, const commit_job *j, const char *what)
{
    if (r->contradiction[0])
        return;
    char label[320];
    snprintf(r->contradiction, sizeof r->contradiction,
             "QEMU contradicts itself about %s: %s; its job list is believed",
             job_label(j, label, sizeof label), what);
}

static void report_progress(job_run *r, commit_job *j)
{
    if (!r->o.progress)
        return;
    qmp_job_progress p = {
        .index = (size_t)(j - r->jobs), .job_id = j->id, .device = j->spec->device,
        .status = j->status, .offset = j->offset, .len = j->len,
        .remaining = j->len - j->offset, .rate = j->rate, .speed = j->speed,
    };
    r->o.progress(r->o.opaque, &p);
}

/* One job's entry of query-block-jobs, taken at time t. */
static void sample(job_run *r, commit_job *j, json_object *item, int64_t t)
{
    const char *status = qmp_json_str(item, "status");
    job_rank rank = status_rank(status);
    if (rank != RANK_UNKNOWN) {
        if (j->listed != RANK_UNKNOWN && rank < j->listed) {
            char what[128];
            snprintf(what, sizeof what, "query-block-jobs listed it as %s, then as %s",
                     j->status, status);
            contradiction(r, j, what);
        }
        if (rank > j->listed)
            r->last_progress = t;
        j->listed = rank;
        snprintf(j->status, sizeof j->status, "%s", status);
        if (rank == RANK_READY)
            j->active = true;
    }
    uint64_t off, len, speed;
    if (qmp_json_u64(item, "speed", &speed))
        j->speed = speed;
    const char *err = qmp_json_str(item, "error");
    if (err && !j->error_final) {
        snprintf(j->error, sizeof j->error, "%s", err);
        j->error_final = true;
    }
    if (!qmp_json_u64(item, "offset", &off) || !qmp_json_u64(item, "len", &len) || off > len)
        return;
    j->rate = j->sampled && t > j->sample_ms && off >= j->offset
                  ? (off - j->offset) * 1000 / (uint64_t)(t - j->sample_ms)
                  : 0;
    j->offset = off;
    j->len = len;
    j->sample_ms = t;
    if (off > j->max_offset)
        j->max_offset = off;
    if (!j->sampled || len - off < j->min_remaining) {
        j->min_remaining = len - off;
        j->offset_at_min = off;
        r->last_progress = t;
    }
    j->sampled = true;
    report_progress(r, j);
}

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
    /* What the events said so far must show in this poll's answer; events
     * that come with it may be newer than it: checked at the next poll. */
    for (size_t i = 0; i < r->n; i++)
        r->jobs[i].verify = r->jobs[i].claimed;
    r->last_poll = now_ms();
    json_object *list = NULL;
    if (qmp_execute(r->c, "query-block-jobs", NULL, &list, e) < 0)
        return -1;
    if (!json_object_is_type(list, json_type_array)) {
        json_object_put(list);
        return es_err_set(e, 0, qmp_client_name(r->c), "query-block-jobs did not return a list");
    }
    if (drain_events(r, e) < 0) {
        json_object_put(list);
        return -1;
    }
    int64_t t = now_ms();
    for (size_t i = 0; i < r->n; i++) {
        commit_job *j = &r->jobs[i];
        if (!j->started || j->gone)
            continue;
        json_object *item = find_listed(list, j->id);
        if (!item) {
            /* A job we finalized or cancelled is expected to go. */
            if (++j->missing_polls >= MISSING_POLLS_MAX || j->finalized || j->cancel_sent) {
                j->gone = true;
                r->last_progress = t;
            }
            continue;
        }
        j->missing_polls = 0;
        sample(r, j, item, t);
        if (j->listed != RANK_UNKNOWN && j->verify > j->listed) {
            char what[160];
            snprintf(what, sizeof what, "it sent %s, but query-block-jobs sent after that "
                     "lists the job as %s", j->claim_event, j->status);
            contradiction(r, j, what);
        }
    }
    json_object_put(list);
    return 0;
}

/* ---- waiting ---- */

typedef enum wait_goal {
    GOAL_SETTLED,  /* active: READY, intermediate: PENDING */
    GOAL_PENDING,  /* every job PENDING */
    GOAL_FINISHED, /* every job finalized and ended without error */
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

static bool job_ended(const commit_job *j)
{
    return j->gone || j->listed == RANK_NULL;
}

static bool job_reached(const commit_job *j, wait_goal g)
{
    if (!j->started)
        return g == GOAL_ENDED;
    switch (g) {
    case GOAL_SETTLED:  return j->listed == (j->active ? RANK_READY : RANK_PENDING);
    case GOAL_PENDING:  return j->listed == RANK_PENDING;
    case GOAL_FINISHED: return j->finalized && !j->error[0] &&
                               (job_ended(j) || j->listed == RANK_CONCLUDED);
    case GOAL_ENDED:    return job_ended(j);
    }
    return false;
}

/* Ended, or on its way to, without us asking (or failed in finalize). */
static bool job_failed(const commit_job *j)
{
    if (!j->started || j->cancel_sent)
        return false;
    bool ending = job_ended(j) || j->listed >= RANK_ABORTING;
    return j->finalized ? ending && j->error[0] : ending;
}

/* First job that ended badly (for goals other than GOAL_ENDED). */
static commit_job *failed_job(job_run *r)
{
    for (size_t i = 0; i < r->n; i++)
        if (job_failed(&r->jobs[i]))
            return &r->jobs[i];
    return NULL;
}

static const char *fmt_bytes(uint64_t b, char *buf, size_t len)
{
    if (b >= 1u << 20)
        snprintf(buf, len, "%.1f MiB", (double)b / 1048576.0);
    else if (b >= 1u << 10)
        snprintf(buf, len, "%.1f KiB", (double)b / 1024.0);
    else
        snprintf(buf, len, "%llu bytes", (unsigned long long)b);
    return buf;
}

typedef enum wait_result { WAIT_DONE, WAIT_JOB_FAILED, WAIT_ERROR } wait_result;

/* No progress for stall_ms while waiting for goal g: lift the speed limit
 * of each stalled job that has one (once), else fail naming the job. */
static int handle_stall(job_run *r, wait_goal g, es_err *e)
{
    char secs[32], label[320], rem[32], buf[600];
    qmp_format_seconds(r->o.stall_ms, secs, sizeof secs);
    bool lifted = false;
    commit_job *stalled = NULL;
    for (size_t i = 0; i < r->n; i++) {
        commit_job *j = &r->jobs[i];
        if (!j->started || job_ended(j) || job_reached(j, g))
            continue;
        if (!stalled)
            stalled = j;
        uint64_t limit = j->speed ? j->speed : j->spec->speed;
        if (!limit || j->speed_lifted)
            continue;
        json_object *args = json_object_new_object();
        json_object_object_add(args, "device", json_object_new_string(j->id));
        json_object_object_add(args, "speed", json_object_new_int64(0));
        int rc = qmp_execute(r->c, "block-job-set-speed", args, NULL, e);
        json_object_put(args);
        if (rc < 0)
            return es_err_prefix(e, "lifting the speed limit of %s",
                                 job_label(j, label, sizeof label));
        j->speed_lifted = true;
        lifted = true;
        if (r->o.notice) {
            snprintf(buf, sizeof buf,
                     "%s: %s still to copy did not shrink for %s at a speed limit of %llu "
                     "bytes/s: limit lifted",
                     job_label(j, label, sizeof label),
                     fmt_bytes(j->len - j->offset, rem, sizeof rem), secs,
                     (unsigned long long)limit);
            r->o.notice(r->o.opaque, buf);
        }
    }
    if (lifted) {
        r->last_progress = now_ms();
        return 0;
    }
    if (!stalled)
        return es_err_set(e, 0, qmp_client_name(r->c), "no progress for %s waiting for %s",
                          secs, goal_text(g));
    job_label(stalled, label, sizeof label);
    fmt_bytes(stalled->len - stalled->offset, rem, sizeof rem);
    if (stalled->offset > stalled->offset_at_min)
        return es_err_set(e, 0, qmp_client_name(r->c),
                          "%s: the guest writes to the disk faster than QEMU copies it (%s "
                          "still to copy, not shrinking for %s%s)",
                          label, rem, secs,
                          stalled->speed_lifted ? ", even without a speed limit" : "");
    return es_err_set(e, 0, qmp_client_name(r->c), "%s made no progress for %s (status %s, %s "
                      "still to copy)",
                      label, secs, stalled->status[0] ? stalled->status : "unknown", rem);
}

/* Wait until every job reached goal g, a job failed, or deadline (0: none)
 * passed; limit_ms is only for the message. Waiting for events is the one
 * place the caller's interrupt flag is honoured (commands run with it held,
 * so no request is ever left unanswered), except while cancelling. */
static wait_result wait_for(job_run *r, wait_goal g, int64_t deadline, int limit_ms, es_err *e)
{
    const char *what = goal_text(g);
    bool forward = g == GOAL_SETTLED || g == GOAL_PENDING; /* before any graph change */
    r->last_progress = now_ms();
    for (;;) {
        if (forward && r->contradiction[0]) {
            es_err_set(e, 0, qmp_client_name(r->c), "%s", r->contradiction);
            return WAIT_ERROR;
        }
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
        if (forward && qmp_client_interrupt_pending(r->c)) {
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
        int64_t stall_at = r->last_progress + r->o.stall_ms;
        if (forward && now >= stall_at) {
            if (handle_stall(r, g, e) < 0)
                return WAIT_ERROR;
            continue;
        }
        if (now >= r->next_poll) {
            if (poll_jobs(r, e) < 0)
                return WAIT_ERROR;
            r->next_poll = r->last_poll + r->o.poll_interval_ms;
            continue;
        }
        int64_t until = r->next_poll;
        if (deadline && deadline < until)
            until = deadline;
        if (forward && stall_at < until)
            until = stall_at;
        qmp_msg *ev;
        if (forward)
            qmp_client_hold_interrupt(r->c, false);
        int got = qmp_next_event(r->c, (int)(until - now), &ev, e);
        qmp_client_hold_interrupt(r->c, true);
        if (got < 0) {
            if (forward && qmp_client_interrupt_pending(r->c))
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
    j->speed = s->speed;
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
        if (!j->started || job_ended(j) || j->finalized)
            continue;
        if (qmp_block_job_cancel(r->c, j->id, &ce) < 0) {
            failed = true;
        } else {
            j->cancel_sent = true;
            cancelled++;
        }
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
        any_completed |= r->jobs[i].finalized && !r->jobs[i].error[0];
    append_msg(e, "%s",
               any_completed ? "; some disks were already switched" : "; no disk was switched");
    if (cancelled)
        append_msg(e, " (cancelled %zu job%s)", cancelled, cancelled == 1 ? "" : "s");
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
        if (j->said_cancelled && !j->error[0])
            es_err_set(e, 0, qmp_client_name(r->c), "%s was cancelled by someone else",
                       job_label(j, label, sizeof label));
        else
            es_err_set(e, 0, qmp_client_name(r->c), "%s failed: %s",
                       job_label(j, label, sizeof label),
                       j->error[0] ? j->error
                                   : "job disappeared from QEMU without a completion event");
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
        if (rc == 0)
            j->finalized = true;
        if (rc == 0 && drain_events(r, e) < 0)
            rc = -1;
        if (rc == 0 && j->error[0]) {
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

/* Could job j have written into its base? Only a job that never started,
 * or one whose polls never showed a copied byte and whose final event says
 * offset 0, surely did not. */
static bool job_wrote(const commit_job *j, bool run_ok)
{
    if (!j->started)
        return false;
    if (run_ok || j->finalized)
        return true;
    return !(job_ended(j) && j->end_known && j->end_offset == 0 && j->max_offset == 0);
}

int qmp_commit_run(qmp_client *c, const qmp_commit_spec *specs, size_t n,
                   const qmp_job_opts *opts, es_err *e)
{
    if (opts && opts->base_written)
        *opts->base_written = false;
    for (size_t i = 0; opts && opts->job_written && i < n; i++)
        opts->job_written[i] = false;
    if (check_specs(specs, n, e) < 0)
        return -1;
    job_run r = {.c = c, .n = n};
    if (opts)
        r.o = *opts;
    if (r.o.poll_interval_ms <= 0)
        r.o.poll_interval_ms = DEFAULT_POLL_MS;
    if (r.o.cancel_timeout_ms <= 0)
        r.o.cancel_timeout_ms = DEFAULT_CANCEL_TIMEOUT_MS;
    if (r.o.stall_ms <= 0)
        r.o.stall_ms = qmp_client_timeout(c);
    r.jobs = es_xcalloc(n, sizeof *r.jobs);
    for (size_t i = 0; i < n; i++) {
        commit_job *j = &r.jobs[i];
        j->spec = &specs[i];
        j->active = specs[i].top_node == NULL;
        j->listed = j->claimed = j->verify = RANK_UNKNOWN;
        if (specs[i].job_id)
            snprintf(j->id, sizeof j->id, "%s", specs[i].job_id);
        else
            snprintf(j->id, sizeof j->id, "extsnap-commit-%zu", i);
    }
    r.deadline = r.o.timeout_ms > 0 ? now_ms() + r.o.timeout_ms : 0;
    r.last_poll = now_ms();
    r.next_poll = r.last_poll + r.o.poll_interval_ms;

    /* Commands run with the interrupt held so no request is left unanswered;
     * wait_for lets it through while it waits for events. */
    qmp_client_hold_interrupt(c, true);
    int rc = run_phases(&r, e);
    qmp_client_hold_interrupt(c, false);
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        bool w = job_wrote(&r.jobs[i], rc == 0);
        any |= w;
        if (r.o.job_written)
            r.o.job_written[i] = w;
    }
    if (r.o.base_written)
        *r.o.base_written = any;
    free(r.jobs);
    return rc;
}
