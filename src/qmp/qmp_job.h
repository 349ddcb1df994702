/* Block-commit driver: starts one commit job per disk, follows them through
 * query-block-jobs, and finishes them so that either every disk's commit
 * takes effect or none does.
 *
 * QEMU's state, not its messages: a job's status and progress come from
 * query-block-jobs only. Events just wake the driver up for an early poll
 * (and the failure text of a job is taken from them, which can only make
 * the driver more careful). A poll that shows a job behind what an event
 * said of it before the poll was sent (statuses only move forward:
 * created, running, ready, waiting, pending, aborting, concluded, null)
 * is a contradiction: the jobs are cancelled and the run fails, naming it.
 *
 * Every wait is bounded: no progress (no status moving forward, no new
 * low of a job's remaining bytes) for stall_ms ends the run. An active
 * commit whose remaining amount stops shrinking because the guest writes
 * faster than the copy first gets its speed limit lifted (when one was
 * set), then is cancelled with a message saying so.
 *
 * How all-or-nothing is obtained: jobs run with auto-finalize off, so QEMU
 * stops each one in state "pending" before it changes the graph (the pivot
 * of an active commit, the backing rewrite of an intermediate one). Only when
 * every job is pending does the driver finalize them, one after the other.
 * Any failure, cancellation or interrupt before that cancels every job with
 * force (a non-forced cancel of a READY active commit would complete it). */
#ifndef ES_QMP_JOB_H
#define ES_QMP_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qmp/qmp_client.h"
#include "util/err.h"

typedef struct qmp_commit_spec {
    const char *device;       /* BlockBackend name or root node-name of the disk */
    const char *job_id;       /* NULL: "extsnap-commit-<index>" */
    const char *top_node;     /* NULL: active commit (the active layer is the top) */
    const char *base_node;    /* NULL: the deepest image of the chain */
    const char *backing_file; /* intermediate only: name QEMU writes into the overlay
                                 of top (NULL: QEMU writes base's absolute path) */
    uint64_t speed;           /* bytes per second, 0 = unlimited */
} qmp_commit_spec;

/* One progress sample of a job, from query-block-jobs. */
typedef struct qmp_job_progress {
    size_t index;       /* into the specs */
    const char *job_id;
    const char *device; /* the spec's */
    const char *status; /* QEMU's: running, ready, pending ... */
    uint64_t offset, len;
    uint64_t remaining; /* len - offset: grows when the guest writes faster than the copy */
    uint64_t rate;      /* bytes per second copied since the previous sample (0: unknown) */
    uint64_t speed;     /* the job's speed limit, 0 = none */
} qmp_job_progress;

/* Called after each poll, for every job still listed. */
typedef void (*qmp_job_progress_fn)(void *opaque, const qmp_job_progress *p);

typedef struct qmp_job_opts {
    qmp_job_progress_fn progress; /* may be NULL */
    void *opaque;
    int poll_interval_ms; /* query-block-jobs cadence; <= 0: 1000 */
    int timeout_ms;       /* whole run; <= 0: no limit (stall_ms still bounds it) */
    int stall_ms;         /* no progress this long ends the run (after lifting a speed
                             limit once); <= 0: the client's reply timeout */
    int cancel_timeout_ms; /* waiting for cancelled jobs to end; <= 0: 60000 */
    /* Called once every job is pending, just before the first job-finalize
     * (the graph changes from there on): the caller records that its
     * operation now goes forward. Failing cancels every job. May be NULL. */
    int (*before_finalize)(void *opaque, es_err *e);
    /* Out (may be NULL), set whatever the outcome: could a job have written
     * into its base? False only when no job started, or every started job
     * is known to have ended with nothing copied (offset 0 in its final
     * event). QEMU does not undo a cancelled commit, so true after a
     * failure means the bases hold part of the data (hidden by the images
     * above them). */
    bool *base_written;
    /* Out (may be NULL): the same per spec (n entries): job i may have
     * written into its base. False for a job that never started. */
    bool *job_written;
    /* Things the user should know that are not errors (a speed limit
     * lifted); may be NULL. */
    void (*notice)(void *opaque, const char *msg);
} qmp_job_opts;

/* Commit n disks (n >= 1) all-or-nothing, as described above. On failure
 * every job that was started has ended in QEMU (or the message says which
 * one could not be stopped), and the message names the job that failed and
 * why, e.g. "block job extsnap-commit-1 (drive1) failed: No space left on
 * device; no disk was switched (cancelled 1 job)". After an interrupt (the
 * client's flag) the message starts with "interrupted" and every job is
 * cancelled. Once all jobs are pending the graph changes begin and an
 * interrupt is no longer honoured: the run finishes (the flag stays set for
 * the caller to see). */
int qmp_commit_run(qmp_client *c, const qmp_commit_spec *specs, size_t n,
                   const qmp_job_opts *opts, es_err *e);

/* Cancel one block job with force (no pivot, even at READY). A job that no
 * longer exists is not an error. Does not wait for it to end. */
int qmp_block_job_cancel(qmp_client *c, const char *job_id, es_err *e);

#endif
