/* The block-commit driver believes QEMU's job list, not its events, and
 * never waits without bound (issue 20). A fake QEMU (a forked child on a
 * socketpair) that models its jobs (statuses, offset, len, speed) and, per
 * test, alters what it says or does:
 *   - lies: right after block-commit it sends the events of a job that
 *     finished (JOB_STATUS_CHANGE waiting/pending/concluded,
 *     BLOCK_JOB_PENDING, BLOCK_JOB_COMPLETED) while the job keeps running;
 *   - guest writes: an active commit's len grows as fast as its offset
 *     (the guest writes faster than the copy), until its speed limit is
 *     lifted (then it converges) or for ever;
 *   - frozen: a job whose offset never moves;
 *   - the Nth block-commit is refused (a base QEMU cannot write).
 * The oracle is the fake's own state after the run: its job list (asked
 * with query-block-jobs on the same connection) and the commands it got
 * (x-log). */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "qmp/qmp_client.h"
#include "qmp/qmp_job.h"

#define MiB 1048576ull

/* ---- the fake QEMU ---- */

typedef struct fjob {
    char id[128];
    bool exists, active;
    const char *status;
    unsigned long long offset, len, speed;
} fjob;

typedef struct fake {
    int fd;
    bool lie;          /* fake "finished" events after block-commit */
    bool guest_writes; /* active jobs: remaining never shrinks while speed > 0 (or always) */
    bool converge_unlimited; /* ... but does once the speed limit is lifted */
    bool frozen;       /* offset never moves */
    int fail_commit;   /* refuse the Nth block-commit (1-based; 0: none) */
    int commits;
    char log[4096];
    fjob jobs[4];
} fake;

static void out(fake *f, const char *line)
{
    size_t n = strlen(line);
    if (write(f->fd, line, n) != (ssize_t)n || write(f->fd, "\r\n", 2) != 2)
        _exit(0);
}

static void event(fake *f, const char *name, const char *data)
{
    char line[1024];
    snprintf(line, sizeof line,
             "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 1}, \"event\": "
             "\"%s\", \"data\": %s}",
             name, data);
    out(f, line);
}

static void status_event(fake *f, const char *id, const char *status)
{
    char data[256];
    snprintf(data, sizeof data, "{\"id\": \"%s\", \"status\": \"%s\"}", id, status);
    event(f, "JOB_STATUS_CHANGE", data);
}

static void set_status(fake *f, fjob *j, const char *s)
{
    j->status = s;
    status_event(f, j->id, s);
}

static void bj_event(fake *f, const char *name, fjob *j)
{
    char data[256];
    snprintf(data, sizeof data,
             "{\"device\": \"%s\", \"len\": %llu, \"offset\": %llu, \"speed\": %llu, "
             "\"type\": \"commit\"}",
             j->id, j->len, j->offset, j->speed);
    event(f, name, data);
}

static void to_pending(fake *f, fjob *j)
{
    set_status(f, j, "waiting");
    set_status(f, j, "pending");
    char data[256];
    snprintf(data, sizeof data, "{\"type\": \"commit\", \"id\": \"%s\"}", j->id);
    event(f, "BLOCK_JOB_PENDING", data);
}

static void end_job(fake *f, fjob *j, bool cancelled)
{
    set_status(f, j, cancelled ? "aborting" : "concluded");
    bj_event(f, cancelled ? "BLOCK_JOB_CANCELLED" : "BLOCK_JOB_COMPLETED", j);
    if (cancelled)
        set_status(f, j, "concluded");
    set_status(f, j, "null");
    j->exists = false;
}

/* Time passes between two polls: running jobs copy. */
static void advance(fake *f)
{
    for (size_t i = 0; i < 4; i++) {
        fjob *j = &f->jobs[i];
        if (!j->exists || f->frozen)
            continue;
        bool writing = f->guest_writes && j->active && !(f->converge_unlimited && !j->speed);
        if (strcmp(j->status, "running") == 0 || strcmp(j->status, "ready") == 0) {
            unsigned long long step = MiB;
            j->offset += step;
            if (writing)
                j->len += step; /* the guest dirtied as much as was copied */
            if (j->offset >= j->len && !writing) {
                j->offset = j->len;
                if (strcmp(j->status, "running") == 0) {
                    if (j->active) {
                        set_status(f, j, "ready");
                        bj_event(f, "BLOCK_JOB_READY", j);
                    } else {
                        to_pending(f, j);
                    }
                }
            }
        }
    }
}

static void reply(fake *f, json_object *id, const char *value)
{
    char line[8192];
    snprintf(line, sizeof line, "{\"return\": %s, \"id\": %s}", value,
             id ? json_object_to_json_string(id) : "null");
    out(f, line);
}

static void reply_error(fake *f, json_object *id, const char *desc)
{
    char line[1024];
    snprintf(line, sizeof line,
             "{\"error\": {\"class\": \"GenericError\", \"desc\": \"%s\"}, \"id\": %s}", desc,
             id ? json_object_to_json_string(id) : "null");
    out(f, line);
}

static void list_jobs(fake *f, json_object *id)
{
    char v[4096] = "[";
    for (size_t i = 0; i < 4; i++) {
        fjob *j = &f->jobs[i];
        if (!j->exists)
            continue;
        size_t n = strlen(v);
        snprintf(v + n, sizeof v - n,
                 "%s{\"auto-finalize\": false, \"io-status\": \"ok\", \"device\": \"%s\", "
                 "\"auto-dismiss\": true, \"busy\": true, \"len\": %llu, \"offset\": %llu, "
                 "\"status\": \"%s\", \"paused\": false, \"speed\": %llu, \"ready\": %s, "
                 "\"type\": \"commit\"}",
                 n > 1 ? ", " : "", j->id, j->len, j->offset, j->status, j->speed,
                 strcmp(j->status, "ready") == 0 ? "true" : "false");
    }
    strncat(v, "]", sizeof v - strlen(v) - 1);
    reply(f, id, v);
}

static fjob *job_named(fake *f, json_object *args, const char *key)
{
    json_object *v;
    if (!args || !json_object_object_get_ex(args, key, &v))
        return NULL;
    for (size_t i = 0; i < 4; i++)
        if (f->jobs[i].exists && strcmp(f->jobs[i].id, json_object_get_string(v)) == 0)
            return &f->jobs[i];
    return NULL;
}

static void block_commit(fake *f, json_object *id, json_object *args)
{
    json_object *v;
    fjob *j = NULL;
    for (size_t i = 0; i < 4 && !j; i++)
        if (!f->jobs[i].exists)
            j = &f->jobs[i];
    if (++f->commits == f->fail_commit) {
        reply_error(f, id, "Block node is read-only");
        return;
    }
    if (!j || !json_object_object_get_ex(args, "job-id", &v)) {
        reply_error(f, id, "no job-id");
        return;
    }
    memset(j, 0, sizeof *j);
    snprintf(j->id, sizeof j->id, "%s", json_object_get_string(v));
    j->exists = true;
    j->active = !json_object_object_get_ex(args, "top-node", NULL);
    j->len = 8 * MiB;
    if (json_object_object_get_ex(args, "speed", &v))
        j->speed = (unsigned long long)json_object_get_int64(v);
    reply(f, id, "{}");
    set_status(f, j, "created");
    set_status(f, j, "running");
    if (f->lie) { /* what a finished job would say, for a job that runs on */
        status_event(f, j->id, "waiting");
        status_event(f, j->id, "pending");
        char data[256];
        snprintf(data, sizeof data, "{\"type\": \"commit\", \"id\": \"%s\"}", j->id);
        event(f, "BLOCK_JOB_PENDING", data);
        status_event(f, j->id, "concluded");
        unsigned long long len = j->len, off = j->offset;
        j->offset = j->len;
        bj_event(f, "BLOCK_JOB_COMPLETED", j);
        j->offset = off;
        j->len = len * 1024 * 1024; /* and it has a very long way to go */
    }
}

static void serve(fake *f, const char *exec, json_object *id, json_object *args)
{
    fjob *j;
    if (strcmp(exec, "x-log") != 0 && strlen(f->log) + strlen(exec) + 2 < sizeof f->log) {
        strcat(f->log, exec);
        strcat(f->log, " ");
    }
    if (strcmp(exec, "qmp_capabilities") == 0) {
        reply(f, id, "{}");
    } else if (strcmp(exec, "x-log") == 0) {
        json_object *s = json_object_new_string(f->log);
        reply(f, id, json_object_to_json_string(s));
        json_object_put(s);
    } else if (strcmp(exec, "block-commit") == 0) {
        block_commit(f, id, args);
    } else if (strcmp(exec, "query-block-jobs") == 0) {
        advance(f);
        list_jobs(f, id);
    } else if (strcmp(exec, "block-job-set-speed") == 0) {
        json_object *v;
        if (!(j = job_named(f, args, "device")) || !json_object_object_get_ex(args, "speed", &v)) {
            reply_error(f, id, "Block job not found");
            return;
        }
        j->speed = (unsigned long long)json_object_get_int64(v);
        reply(f, id, "{}");
    } else if (strcmp(exec, "block-job-complete") == 0) {
        if (!(j = job_named(f, args, "device")) || strcmp(j->status, "ready") != 0) {
            reply_error(f, id, "job not ready");
            return;
        }
        reply(f, id, "{}");
        to_pending(f, j);
    } else if (strcmp(exec, "job-finalize") == 0) {
        if (!(j = job_named(f, args, "id")) || strcmp(j->status, "pending") != 0) {
            reply_error(f, id, "job not pending");
            return;
        }
        reply(f, id, "{}");
        end_job(f, j, false);
    } else if (strcmp(exec, "block-job-cancel") == 0) {
        if (!(j = job_named(f, args, "device"))) {
            reply_error(f, id, "Block job not found");
            return;
        }
        reply(f, id, "{}");
        end_job(f, j, true);
    } else {
        reply_error(f, id, "The command has not been found");
    }
}

static void fake_main(fake *f)
{
    out(f, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "
           "\"package\": \"fake\"}, \"capabilities\": [\"oob\"]}}");
    char line[65536];
    for (;;) {
        size_t n = 0;
        while (n + 1 < sizeof line) {
            ssize_t r = read(f->fd, line + n, 1);
            if (r <= 0)
                _exit(0);
            if (line[n++] == '\n')
                break;
        }
        line[n] = '\0';
        json_object *req = json_tokener_parse(line), *v, *id = NULL, *args = NULL;
        if (req && json_object_object_get_ex(req, "execute", &v)) {
            json_object_object_get_ex(req, "id", &id);
            json_object_object_get_ex(req, "arguments", &args);
            serve(f, json_object_get_string(v), id, args);
        }
        json_object_put(req);
    }
}

typedef struct running {
    pid_t pid;
    qmp_client *c;
} running;

static running start(fake f, int client_timeout_ms)
{
    int sv[2];
    ck_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    running r = {0};
    r.pid = fork();
    ck_assert(r.pid >= 0);
    if (r.pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(sv[0]);
        f.fd = sv[1];
        fake_main(&f);
        _exit(0);
    }
    close(sv[1]);
    es_err e = {0};
    qmp_client_opts co = {.timeout_ms = client_timeout_ms};
    ck_assert_int_eq(qmp_client_open_fd(&r.c, sv[0], "fake.sock", &co, &e), 0);
    return r;
}

static void stop(running *r)
{
    qmp_client_close(r->c);
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
}

/* The oracle: the fake's job list and command log after the run. */
static size_t jobs_left(running *r)
{
    es_err e = {0};
    json_object *list = NULL;
    ck_assert_int_eq(qmp_execute(r->c, "query-block-jobs", NULL, &list, &e), 0);
    size_t n = json_object_array_length(list);
    json_object_put(list);
    return n;
}

static void command_log(running *r, char *buf, size_t len)
{
    es_err e = {0};
    json_object *s = NULL;
    ck_assert_int_eq(qmp_execute(r->c, "x-log", NULL, &s, &e), 0);
    snprintf(buf, len, "%s", json_object_get_string(s));
    json_object_put(s);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define HAS(hay, needle) ck_assert_msg(strstr((hay), (needle)), "'%s' not in: %s", (needle), (hay))
#define HASNT(hay, needle) ck_assert_msg(!strstr((hay), (needle)), "'%s' in: %s", (needle), (hay))

/* ---- tests ---- */

/* Events say both jobs finished while QEMU's job list shows them running:
 * the driver believes the list, sees the contradiction, cancels both, and
 * says so; nothing is finalized (the online path runs without a whole-run
 * limit, as here). */
START_TEST(finished_events_for_running_jobs)
{
    running r = start((fake){.lie = true}, 5000);
    qmp_commit_spec specs[2] = {{.device = "d0"}, {.device = "d1", .top_node = "t1"}};
    bool written[2] = {false, false};
    qmp_job_opts o = {.poll_interval_ms = 50, .cancel_timeout_ms = 2000, .job_written = written};
    es_err e = {0};
    int64_t t0 = now_ms();
    ck_assert_int_eq(qmp_commit_run(r.c, specs, 2, &o, &e), -1);
    ck_assert_int_lt(now_ms() - t0, 3000);
    HAS(e.msg, "QEMU contradicts itself about block job extsnap-commit-0 (d0): it sent status "
               "concluded, but query-block-jobs sent after that lists the job as running");
    HAS(e.msg, "no disk was switched (cancelled 2 jobs)");
    ck_assert_uint_eq(jobs_left(&r), 0);
    char log[4096];
    command_log(&r, log, sizeof log);
    HAS(log, "block-job-cancel");
    HASNT(log, "job-finalize");
    HASNT(log, "block-job-complete");
    ck_assert(written[0] && written[1]); /* both copied a little before the cancel */
    stop(&r);
}
END_TEST

typedef struct seen {
    size_t samples, notices;
    uint64_t max_remaining, max_rate;
    char notice[600];
} seen;

static void on_progress(void *opaque, const qmp_job_progress *p)
{
    seen *s = opaque;
    ck_assert_uint_eq(p->remaining, p->len - p->offset);
    s->samples++;
    if (p->remaining > s->max_remaining)
        s->max_remaining = p->remaining;
    if (p->rate > s->max_rate)
        s->max_rate = p->rate;
}

static void on_notice(void *opaque, const char *msg)
{
    seen *s = opaque;
    s->notices++;
    snprintf(s->notice, sizeof s->notice, "%s", msg);
}

/* The guest writes faster than an unlimited active commit copies: the
 * remaining amount never shrinks. After the stall bound (the client's
 * reply timeout when not given) the job is cancelled with a message that
 * says why, instead of waiting for ever. */
START_TEST(guest_outpaces_the_copy)
{
    running r = start((fake){.guest_writes = true}, 1000);
    qmp_commit_spec spec = {.device = "d0"};
    seen s = {0};
    bool written = false;
    qmp_job_opts o = {.poll_interval_ms = 50, .cancel_timeout_ms = 2000, .progress = on_progress,
                      .opaque = &s, .base_written = &written};
    es_err e = {0};
    int64_t t0 = now_ms();
    ck_assert_int_eq(qmp_commit_run(r.c, &spec, 1, &o, &e), -1);
    int64_t took = now_ms() - t0;
    ck_assert_msg(took >= 1000 && took < 4000, "took %lld ms", (long long)took);
    HAS(e.msg, "block job extsnap-commit-0 (d0): the guest writes to the disk faster than QEMU "
               "copies it (8.0 MiB still to copy, not shrinking for 1 s)");
    HAS(e.msg, "no disk was switched (cancelled 1 job)");
    ck_assert(written);
    ck_assert_uint_gt(s.samples, 5);
    ck_assert_uint_eq(s.max_remaining, 8 * MiB);
    ck_assert_uint_gt(s.max_rate, 0);
    ck_assert_uint_eq(jobs_left(&r), 0);
    char log[4096];
    command_log(&r, log, sizeof log);
    HAS(log, "block-job-cancel");
    HASNT(log, "job-finalize");
    stop(&r);
}
END_TEST

/* The same with a speed limit: it is lifted once (block-job-set-speed 0,
 * a notice), after which the copy converges and the commit completes. */
START_TEST(stalled_copy_gets_its_limit_lifted)
{
    running r = start((fake){.guest_writes = true, .converge_unlimited = true}, 1000);
    qmp_commit_spec spec = {.device = "d0", .speed = 4 * MiB};
    seen s = {0};
    qmp_job_opts o = {.poll_interval_ms = 50, .cancel_timeout_ms = 2000, .progress = on_progress,
                      .notice = on_notice, .opaque = &s, .stall_ms = 500};
    es_err e = {0};
    int64_t t0 = now_ms();
    ck_assert_msg(qmp_commit_run(r.c, &spec, 1, &o, &e) == 0, "%s", e.msg);
    ck_assert_int_lt(now_ms() - t0, 4000);
    ck_assert_uint_eq(s.notices, 1);
    HAS(s.notice, "block job extsnap-commit-0 (d0): 8.0 MiB still to copy did not shrink for "
                  "0.5 s at a speed limit of 4194304 bytes/s: limit lifted");
    ck_assert_uint_eq(jobs_left(&r), 0);
    char log[4096];
    command_log(&r, log, sizeof log);
    HAS(log, "block-job-set-speed");
    HAS(log, "job-finalize");
    HASNT(log, "block-job-cancel");
    stop(&r);
}
END_TEST

/* A job that copies nothing at all ends the run after the stall bound. */
START_TEST(frozen_job)
{
    running r = start((fake){.frozen = true}, 800);
    qmp_commit_spec spec = {.device = "d0", .top_node = "t0"};
    bool written = true;
    qmp_job_opts o = {.poll_interval_ms = 50, .cancel_timeout_ms = 2000,
                      .base_written = &written};
    es_err e = {0};
    ck_assert_int_eq(qmp_commit_run(r.c, &spec, 1, &o, &e), -1);
    HAS(e.msg, "block job extsnap-commit-0 (d0) made no progress for 0.8 s (status running, "
               "8.0 MiB still to copy)");
    ck_assert(!written); /* offset 0 in every poll and in the final event */
    ck_assert_uint_eq(jobs_left(&r), 0);
    stop(&r);
}
END_TEST

/* The second block-commit is refused: only the first job may have written
 * into its base (per job, for the caller's record). */
START_TEST(second_commit_refused)
{
    running r = start((fake){.fail_commit = 2}, 2000);
    qmp_commit_spec specs[2] = {{.device = "d0"}, {.device = "d1"}};
    bool written[2] = {false, true}, any = false;
    qmp_job_opts o = {.poll_interval_ms = 50, .job_written = written, .base_written = &any};
    es_err e = {0};
    /* Let the first job copy a little before the second is refused: the
     * fake copies on each poll; the refusal comes right after the start,
     * so the first job's offset is whatever its final event says. */
    ck_assert_int_eq(qmp_commit_run(r.c, specs, 2, &o, &e), -1);
    HAS(e.msg, "QMP command block-commit failed: GenericError: Block node is read-only");
    HAS(e.msg, "no disk was switched (cancelled 1 job)");
    ck_assert(!written[1]);
    ck_assert(any == written[0]);
    ck_assert_uint_eq(jobs_left(&r), 0);
    stop(&r);
}
END_TEST

static Suite *job_trust_suite(void)
{
    Suite *s = suite_create("qmp_job_trust");
    TCase *tc = tcase_create("trust");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, finished_events_for_running_jobs);
    tcase_add_test(tc, guest_outpaces_the_copy);
    tcase_add_test(tc, stalled_copy_gets_its_limit_lifted);
    tcase_add_test(tc, frozen_job);
    tcase_add_test(tc, second_commit_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(job_trust_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
