/* Deterministic fuzzing of the block-commit job driver (qmp_commit_run)
 * against a fake QEMU: a forked child on a socketpair that answers every
 * command and sends the job events as QEMU 7.2 does (created, running,
 * ready or pending, concluded, null; READY/PENDING/COMPLETED/CANCELLED),
 * but mangles some of its lines: dropped, sent twice, bytes changed, JSON
 * nodes replaced or deleted, a reply turned into an error, garbage in
 * between, the connection closed; in some runs half the events are lost
 * and the driver must go by its query-block-jobs polls.
 *
 * Whatever QEMU says, the driver must come back within its time limits
 * with 0 or -1 and a message, sanitizer-clean. Every tenth case runs with
 * no mangling and must succeed, which keeps the fake honest. A failure
 * names FUZZ_SEED and the case; a crash does not get to say it, so
 * FUZZ_VERBOSE=1 prints each case before it runs and FUZZ_JOB_ITER=N runs
 * case N alone. Environment: FUZZ_SEED (default 1), FUZZ_JOB_ITERS (cases,
 * default 300). */
#include <check.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_mutate.h"
#include "qmp/qmp_client.h"
#include "qmp/qmp_job.h"

#define JOB_LEN 1048576

/* ---- the fake QEMU (child process) ---- */

typedef struct fake_job {
    char id[128];
    bool exists;
    const char *status; /* running, ready, pending */
} fake_job;

typedef struct fake {
    int fd;
    rng r;
    unsigned mangle; /* one line in `mangle` is mangled; 0: none */
    bool lose_events; /* half the events never come: the driver must poll */
    fake_job jobs[4];
} fake;

static void send_raw(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0)
            _exit(0);
        s += w;
        n -= (size_t)w;
    }
}

static const char *const DONORS[] = {
    "{\"return\": {}, \"id\": \"x\"}",
    "{\"error\": {\"class\": \"GenericError\", \"desc\": \"fuzz\"}}",
    "{\"event\": \"BLOCK_JOB_COMPLETED\", \"data\": {\"device\": \"extsnap-commit-0\", \"len\": 1, "
    "\"offset\": 1}, \"timestamp\": {\"seconds\": 1, \"microseconds\": 1}}",
    "{\"event\": \"JOB_STATUS_CHANGE\", \"data\": {\"id\": \"extsnap-commit-1\", \"status\": "
    "\"null\"}, \"timestamp\": {\"seconds\": 1, \"microseconds\": 1}}",
};

/* Send one line, or a mangled version of it. */
static void out_line(fake *f, const char *line)
{
    if (!f->mangle || below(&f->r, f->mangle) != 0) {
        send_raw(f->fd, line, strlen(line));
        send_raw(f->fd, "\r\n", 2);
        return;
    }
    switch (below(&f->r, 8)) {
    case 0: /* dropped */
        return;
    case 1: /* twice */
        for (int i = 0; i < 2; i++) {
            send_raw(f->fd, line, strlen(line));
            send_raw(f->fd, "\r\n", 2);
        }
        return;
    case 2: { /* bytes */
        buf b = mutated_copy(&f->r, line, DONORS, sizeof DONORS / sizeof *DONORS);
        send_raw(f->fd, b.p, b.n);
        send_raw(f->fd, "\r\n", 2);
        free(b.p);
        return;
    }
    case 3:
    case 4: { /* JSON nodes */
        json_object *o = json_tokener_parse(line);
        if (o)
            mutate_tree(&f->r, &o);
        const char *s = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : line;
        send_raw(f->fd, s, strlen(s));
        send_raw(f->fd, "\r\n", 2);
        json_object_put(o);
        return;
    }
    case 5: { /* a reply becomes an error (an event stays) */
        json_object *o = json_tokener_parse(line), *id = NULL;
        if (o && json_object_object_get_ex(o, "return", NULL)) {
            json_object_object_get_ex(o, "id", &id);
            char out[512];
            snprintf(out, sizeof out,
                     "{\"error\": {\"class\": \"GenericError\", \"desc\": \"fuzzed failure\"}, "
                     "\"id\": %s}\r\n",
                     id ? json_object_to_json_string(id) : "null");
            send_raw(f->fd, out, strlen(out));
        } else {
            send_raw(f->fd, line, strlen(line));
            send_raw(f->fd, "\r\n", 2);
        }
        json_object_put(o);
        return;
    }
    case 6: /* garbage first */
        send_raw(f->fd, "}{ not json\r\n", 13);
        send_raw(f->fd, line, strlen(line));
        send_raw(f->fd, "\r\n", 2);
        return;
    default: /* QEMU goes away */
        _exit(0);
    }
}

static void event(fake *f, const char *name, const char *data_fmt, const char *id,
                  const char *status)
{
    char data[512], line[1024];
    if (f->lose_events && below(&f->r, 2) == 0)
        return;
    snprintf(data, sizeof data, data_fmt, id, status ? status : "");
    snprintf(line, sizeof line,
             "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 1}, \"event\": "
             "\"%s\", \"data\": %s}",
             name, data);
    out_line(f, line);
}

#define JSC "{\"id\": \"%s\", \"status\": \"%s\"}"
#define BJ "{\"device\": \"%s\", \"len\": 1048576, \"offset\": 1048576, \"speed\": 0, " \
           "\"type\": \"commit\"%s}"

static void status(fake *f, fake_job *j, const char *s)
{
    j->status = s;
    event(f, "JOB_STATUS_CHANGE", JSC, j->id, s);
}

static void to_pending(fake *f, fake_job *j)
{
    status(f, j, "waiting");
    status(f, j, "pending");
    event(f, "BLOCK_JOB_PENDING", "{\"type\": \"commit\", \"id\": \"%s\"%s}", j->id, NULL);
}

static void end_job(fake *f, fake_job *j, bool cancelled)
{
    if (cancelled)
        status(f, j, "aborting");
    else
        status(f, j, "concluded");
    event(f, cancelled ? "BLOCK_JOB_CANCELLED" : "BLOCK_JOB_COMPLETED", BJ, j->id, NULL);
    if (cancelled)
        status(f, j, "concluded");
    status(f, j, "null");
    j->exists = false;
}

static fake_job *job_named(fake *f, json_object *args, const char *key)
{
    json_object *v;
    if (!args || !json_object_object_get_ex(args, key, &v))
        return NULL;
    const char *id = json_object_get_string(v);
    for (size_t i = 0; i < sizeof f->jobs / sizeof *f->jobs; i++)
        if (f->jobs[i].exists && strcmp(f->jobs[i].id, id) == 0)
            return &f->jobs[i];
    return NULL;
}

static void reply(fake *f, json_object *id, const char *value)
{
    char line[4096];
    snprintf(line, sizeof line, "{\"return\": %s, \"id\": %s}", value,
             id ? json_object_to_json_string(id) : "null");
    out_line(f, line);
}

static void reply_error(fake *f, json_object *id, const char *desc)
{
    char line[1024];
    snprintf(line, sizeof line,
             "{\"error\": {\"class\": \"GenericError\", \"desc\": \"%s\"}, \"id\": %s}", desc,
             id ? json_object_to_json_string(id) : "null");
    out_line(f, line);
}

static void list_jobs(fake *f, json_object *id)
{
    char v[3072] = "[";
    for (size_t i = 0; i < sizeof f->jobs / sizeof *f->jobs; i++) {
        fake_job *j = &f->jobs[i];
        if (!j->exists)
            continue;
        size_t n = strlen(v);
        snprintf(v + n, sizeof v - n,
                 "%s{\"auto-finalize\": false, \"io-status\": \"ok\", \"device\": \"%s\", "
                 "\"auto-dismiss\": true, \"busy\": false, \"len\": %d, \"offset\": %d, "
                 "\"status\": \"%s\", \"paused\": false, \"speed\": 0, \"ready\": %s, "
                 "\"type\": \"commit\"}",
                 n > 1 ? ", " : "", j->id, JOB_LEN, JOB_LEN, j->status,
                 strcmp(j->status, "ready") == 0 ? "true" : "false");
    }
    if (f->mangle && below(&f->r, 3) == 0) { /* an odd item QEMU never sends */
        static const char *const odd[] = {
            "null", "[]", "7", "{}", "{\"device\": 7}", "{\"device\": null, \"offset\": 1}",
            "{\"device\": \"extsnap-commit-0\", \"len\": \"x\", \"offset\": -1, "
            "\"status\": 5}",
            "{\"device\": \"extsnap-commit-1\", \"len\": 1e300, \"offset\": 1e300}",
        };
        size_t n = strlen(v);
        snprintf(v + n, sizeof v - n, "%s%s", n > 1 ? ", " : "", odd[below(&f->r, 8)]);
    }
    strncat(v, "]", sizeof v - strlen(v) - 1);
    reply(f, id, v);
}

static void serve_command(fake *f, const char *exec, json_object *id, json_object *args)
{
    fake_job *j;
    if (strcmp(exec, "qmp_capabilities") == 0) {
        reply(f, id, "{}");
    } else if (strcmp(exec, "block-commit") == 0) {
        json_object *v;
        fake_job *slot = NULL;
        for (size_t i = 0; i < sizeof f->jobs / sizeof *f->jobs && !slot; i++)
            if (!f->jobs[i].exists)
                slot = &f->jobs[i];
        if (!slot || !json_object_object_get_ex(args, "job-id", &v)) {
            reply_error(f, id, "no job-id");
            return;
        }
        snprintf(slot->id, sizeof slot->id, "%s", json_object_get_string(v));
        slot->exists = true;
        bool active = !json_object_object_get_ex(args, "top-node", NULL);
        reply(f, id, "{}");
        status(f, slot, "created");
        status(f, slot, "running");
        if (active) {
            status(f, slot, "ready");
            event(f, "BLOCK_JOB_READY", BJ, slot->id, NULL);
        } else {
            to_pending(f, slot);
        }
    } else if (strcmp(exec, "query-block-jobs") == 0) {
        list_jobs(f, id);
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
        char desc[160];
        snprintf(desc, sizeof desc, "The command %.100s has not been found", exec);
        reply_error(f, id, desc);
    }
}

static void fake_main(fake *f)
{
    out_line(f, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "
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
        if (!req || !json_object_object_get_ex(req, "execute", &v)) {
            json_object_put(req);
            continue;
        }
        json_object_object_get_ex(req, "id", &id);
        json_object_object_get_ex(req, "arguments", &args);
        serve_command(f, json_object_get_string(v), id, args);
        json_object_put(req);
    }
}

/* ---- the driver under test ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST(commit_run_against_mangled_qemu)
{
    uint64_t iters = env_u64("FUZZ_JOB_ITERS", 300), seed = env_u64("FUZZ_SEED", 1), ok = 0;
    uint64_t first = 0;
    if (getenv("FUZZ_JOB_ITER")) {
        first = env_u64("FUZZ_JOB_ITER", 0);
        iters = first + 1;
    }
    for (uint64_t i = first; i < iters; i++) {
        if (getenv("FUZZ_VERBOSE"))
            fprintf(stderr, "FUZZ_SEED=%" PRIu64 " FUZZ_JOB_ITER=%" PRIu64 "\n", seed, i);
        rng r = {seed_of(i)};
        bool clean = i % 10 == 0;
        int sv[2];
        ck_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        fake f = {.fd = sv[1],
                  .r = {rnd(&r)},
                  .mangle = clean ? 0 : 3 + (unsigned)below(&r, 12),
                  .lose_events = !clean && below(&r, 3) == 0};
        pid_t pid = fork();
        ck_assert(pid >= 0);
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            signal(SIGPIPE, SIG_DFL);
            close(sv[0]);
            fake_main(&f);
            _exit(0);
        }
        close(sv[1]);
        int64_t t0 = now_ms();
        qmp_client *c = NULL;
        es_err e = {0};
        qmp_client_opts co = {.timeout_ms = 300};
        int rc = qmp_client_open_fd(&c, sv[0], "fuzz.sock", &co, &e);
        if (rc == 0) {
            size_t n = 1 + below(&r, 2);
            qmp_commit_spec spec[2] = {
                {.device = "d0", .top_node = below(&r, 2) ? "t0" : NULL},
                {.device = "d1", .top_node = below(&r, 2) ? "t1" : NULL},
            };
            bool written = false;
            qmp_job_opts o = {.poll_interval_ms = 20,
                              .timeout_ms = 1000,
                              .cancel_timeout_ms = 400,
                              .base_written = &written};
            e = (es_err){0};
            rc = qmp_commit_run(c, spec, n, &o, &e);
            qmp_client_close(c);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        int64_t took = now_ms() - t0;
        ck_assert_msg(rc == 0 || (rc == -1 && e.msg[0]),
                      "FUZZ_SEED=%" PRIu64 " case %" PRIu64 ": rc %d without a message", seed, i,
                      rc);
        ck_assert_msg(!clean || rc == 0, "FUZZ_SEED=%" PRIu64 " case %" PRIu64
                      " (nothing mangled): %s", seed, i, e.msg);
        ck_assert_msg(took < 10000, "FUZZ_SEED=%" PRIu64 " case %" PRIu64 ": took %lld ms", seed,
                      i, (long long)took);
        ok += rc == 0;
    }
    /* Some mangled runs still finish (a duplicate, a dropped event the
     * polls make up for), most do not. */
    if (!getenv("FUZZ_JOB_ITER"))
        ck_assert_msg(ok > iters / 10 && ok < iters,
                      "%" PRIu64 " of %" PRIu64 " runs succeeded", ok, iters);
}
END_TEST

static Suite *fuzz_qmp_job_suite(void)
{
    Suite *s = suite_create("fuzz_qmp_job");
    TCase *tc = tcase_create("mangled");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, commit_run_against_mangled_qemu);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* a fake that went away must not kill the test */
    SRunner *sr = srunner_create(fuzz_qmp_job_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
