/* Block-commit driver against a real qemu-system-x86_64 -machine none:
 * active and intermediate commits with -drive and -blockdev, several disks
 * at once, failure of one disk, interrupt, timeout and cancel. Data is
 * checked afterwards with qemu-io / qemu-img on the files. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "../qmp/qmp_test_harness.h"
#include "qmp/qmp_client.h"
#include "qmp/qmp_hmp.h"
#include "qmp/qmp_job.h"
#include "qmp/qmp_nodes.h"

typedef struct disk {
    char base[QT_PATH_MAX], mid[QT_PATH_MAX], top[QT_PATH_MAX];
    char arg[3 * QT_PATH_MAX];
} disk;

/* prefix-base (0x11 @0) <- [prefix-mid (0x22 @1M)] <- prefix-top (top_pattern @2M). */
static void make_disk(disk *d, const char *dir, const char *prefix, bool with_mid,
                      int top_pattern)
{
    char name[64], cmd[64];
    snprintf(name, sizeof name, "%s-base.qcow2", prefix);
    qt_path(d->base, sizeof d->base, dir, name);
    snprintf(name, sizeof name, "%s-mid.qcow2", prefix);
    qt_path(d->mid, sizeof d->mid, dir, name);
    snprintf(name, sizeof name, "%s-top.qcow2", prefix);
    qt_path(d->top, sizeof d->top, dir, name);
    qt_img_create(d->base, "4M", NULL);
    qt_io_ok(d->base, "write -P 0x11 0 1M");
    if (with_mid) {
        qt_img_create(d->mid, "4M", d->base);
        qt_io_ok(d->mid, "write -P 0x22 1M 1M");
    }
    qt_img_create(d->top, "4M", with_mid ? d->mid : d->base);
    snprintf(cmd, sizeof cmd, "write -P 0x%x 2M 1M", top_pattern);
    qt_io_ok(d->top, cmd);
}

static const char *drive_arg(disk *d, const char *id)
{
    snprintf(d->arg, sizeof d->arg, "file=%s,format=qcow2,if=none,id=%s", d->top, id);
    return d->arg;
}

static void expect_chain(qmp_client *c, const char *dev, size_t n, const char *top_file)
{
    qmp_chain ch;
    es_err e = {0};
    ck_assert_msg(qmp_chain_query(c, dev, &ch, &e) == 0, "%s", QT_ERRSTR(e));
    ck_assert_msg(ch.n == n, "%s: chain of %zu images, expected %zu", dev, ch.n, n);
    ck_assert_str_eq(ch.nodes[0].filename, top_file);
    qmp_chain_free(&ch);
}

static void expect_no_jobs(qmp_client *c)
{
    json_object *jobs = qt_exec(c, "query-block-jobs", NULL);
    ck_assert_msg(json_object_array_length(jobs) == 0, "jobs left: %s",
                  json_object_to_json_string(jobs));
    json_object_put(jobs);
}

/* Node name at depth i of dev's chain (static buffer per slot). */
static const char *node_at(qmp_client *c, const char *dev, size_t i)
{
    static char names[4][128];
    static int slot;
    qmp_chain ch;
    es_err e = {0};
    ck_assert_msg(qmp_chain_query(c, dev, &ch, &e) == 0, "%s", QT_ERRSTR(e));
    ck_assert_uint_gt(ch.n, i);
    char *out = names[slot++ % 4];
    snprintf(out, 128, "%s", ch.nodes[i].node_name);
    qmp_chain_free(&ch);
    return out;
}

typedef struct progress_log {
    int calls[4];
    uint64_t last_len[4];
} progress_log;

static void on_progress(void *opaque, const qmp_job_progress *s)
{
    progress_log *p = opaque;
    ck_assert_ptr_nonnull(s->job_id);
    ck_assert_uint_le(s->offset, s->len);
    ck_assert_uint_eq(s->remaining, s->len - s->offset);
    if (s->index < 4) {
        p->calls[s->index]++;
        p->last_len[s->index] = s->len;
    }
}

static const char *string_member(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

/* ---- tests ---- */

START_TEST(active_commit_drive)
{
    if (!qt_have_qemu())
        return;
    char dir[QT_PATH_MAX];
    qt_tmpdir(dir, sizeof dir);
    disk d;
    make_disk(&d, dir, "d0", true, 0x33);
    const char *args[] = {"-drive", drive_arg(&d, "drive0"), NULL};
    qt_qemu q;
    qt_qemu_start(&q, dir, args);
    qmp_client *c = qt_connect(&q);

    progress_log pl = {0};
    qmp_commit_spec spec = {.device = "drive0"};
    qmp_job_opts o = {.progress = on_progress, .opaque = &pl, .poll_interval_ms = 100,
                      .timeout_ms = 20000};
    es_err e = {0};
    ck_assert_msg(qmp_commit_run(c, &spec, 1, &o, &e) == 0, "%s", QT_ERRSTR(e));
    ck_assert_int_gt(pl.calls[0], 0);
    ck_assert_uint_ge(pl.last_len[0], 2u << 20); /* mid + top data */

    /* Pivoted: the device now runs on base, and writes land there. */
    expect_chain(c, "drive0", 1, d.base);
    expect_no_jobs(c);
    ck_assert_msg(qmp_hmp(c, "qemu-io drive0 \"write -P 0xab 3M 64k\"", NULL, &e) == 0, "%s",
                  QT_ERRSTR(e));
    qmp_client_close(c);
    qt_qemu_stop(&q);

    qt_io_ok(d.base, "read -P 0x11 0 1M");
    qt_io_ok(d.base, "read -P 0x22 1M 1M");
    qt_io_ok(d.base, "read -P 0x33 2M 1M");
    qt_io_ok(d.base, "read -P 0xab 3M 64k");
    qt_img_check_clean(d.base);
    /* QMP active commit rewrites no header: top still reads the same data. */
    char out[2048];
    char *cmp[] = {"qemu-img", "compare", "-q", d.top, d.base, NULL};
    ck_assert_msg(qt_run(cmp, out, sizeof out) == 0, "compare: %s", out);
    qt_rmtree(dir);
}
END_TEST

START_TEST(intermediate_commit_drive)
{
    if (!qt_have_qemu())
        return;
    char dir[QT_PATH_MAX];
    qt_tmpdir(dir, sizeof dir);
    disk d;
    make_disk(&d, dir, "d0", true, 0x33);
    const char *args[] = {"-drive", drive_arg(&d, "drive0"), NULL};
    qt_qemu q;
    qt_qemu_start(&q, dir, args);
    qmp_client *c = qt_connect(&q);

    qmp_commit_spec spec = {.device = "drive0",
                            .top_node = node_at(c, "drive0", 1),
                            .base_node = node_at(c, "drive0", 2),
                            .backing_file = "d0-base.qcow2"};
    qmp_job_opts o = {.poll_interval_ms = 100, .timeout_ms = 20000};
    es_err e = {0};
    ck_assert_msg(qmp_commit_run(c, &spec, 1, &o, &e) == 0, "%s", QT_ERRSTR(e));
    /* mid dropped out; QEMU now names top "json:{...}", still mapped to its file. */
    expect_chain(c, "drive0", 2, d.top);
    qmp_chain ch;
    ck_assert_int_eq(qmp_chain_query(c, "drive0", &ch, &e), 0);
    ck_assert_str_eq(ch.nodes[1].filename, d.base);
    qmp_chain_free(&ch);
    expect_no_jobs(c);
    qmp_client_close(c);
    qt_qemu_stop(&q);

    json_object *info = qt_img_info(d.top);
    ck_assert_str_eq(string_member(info, "backing-filename"), "d0-base.qcow2");
    json_object_put(info);
    qt_io_ok(d.base, "read -P 0x22 1M 1M");
    qt_io_ok(d.top, "read -P 0x11 0 1M");
    qt_io_ok(d.top, "read -P 0x22 1M 1M");
    qt_io_ok(d.top, "read -P 0x33 2M 1M");
    qt_img_check_clean(d.base);
    qt_rmtree(dir);
}
END_TEST

START_TEST(commits_blockdev)
{
    if (!qt_have_qemu())
        return;
    char dir[QT_PATH_MAX];
    qt_tmpdir(dir, sizeof dir);
    disk d;
    make_disk(&d, dir, "b", true, 0x33);
    char a_base[QT_PATH_MAX + 96], a_mid[QT_PATH_MAX + 96], a_top[QT_PATH_MAX + 96];
    snprintf(a_base, sizeof a_base,
             "driver=qcow2,node-name=n-base,file.driver=file,file.filename=%s", d.base);
    snprintf(a_mid, sizeof a_mid,
             "driver=qcow2,node-name=n-mid,file.driver=file,file.filename=%s,backing=n-base",
             d.mid);
    snprintf(a_top, sizeof a_top,
             "driver=qcow2,node-name=n-top,file.driver=file,file.filename=%s,backing=n-mid",
             d.top);
    const char *args[] = {"-blockdev", a_base, "-blockdev", a_mid, "-blockdev", a_top, NULL};
    qt_qemu q;
    qt_qemu_start(&q, dir, args);
    qmp_client *c = qt_connect(&q);
    es_err e = {0};
    qmp_job_opts o = {.poll_interval_ms = 100, .timeout_ms = 20000};

    /* Intermediate, no backing-file: QEMU writes base's absolute path. */
    qmp_commit_spec inter = {.device = "n-top", .top_node = "n-mid", .base_node = "n-base"};
    ck_assert_msg(qmp_commit_run(c, &inter, 1, &o, &e) == 0, "%s", QT_ERRSTR(e));
    qmp_chain ch;
    ck_assert_int_eq(qmp_chain_query(c, "n-top", &ch, &e), 0);
    ck_assert_uint_eq(ch.n, 2);
    ck_assert_str_eq(ch.nodes[1].node_name, "n-base");
    qmp_chain_free(&ch);

    /* Active commit of a node without BlockBackend: nothing to pivot, but
     * the job completes and base gets the data. */
    qmp_commit_spec active = {.device = "n-top"};
    ck_assert_msg(qmp_commit_run(c, &active, 1, &o, &e) == 0, "%s", QT_ERRSTR(e));
    expect_no_jobs(c);
    qmp_client_close(c);
    qt_qemu_stop(&q);

    json_object *info = qt_img_info(d.top);
    ck_assert_str_eq(string_member(info, "backing-filename"), d.base);
    json_object_put(info);
    qt_io_ok(d.base, "read -P 0x11 0 1M");
    qt_io_ok(d.base, "read -P 0x22 1M 1M");
    qt_io_ok(d.base, "read -P 0x33 2M 1M");
    qt_img_check_clean(d.base);
    qt_rmtree(dir);
}
END_TEST

START_TEST(two_disks_together)
{
    if (!qt_have_qemu())
        return;
    char dir[QT_PATH_MAX];
    qt_tmpdir(dir, sizeof dir);
    disk d0, d1;
    make_disk(&d0, dir, "d0", false, 0x33);
    make_disk(&d1, dir, "d1", true, 0x44);
    const char *args[] = {"-drive", drive_arg(&d0, "drive0"), "-drive", drive_arg(&d1, "drive1"),
                          NULL};
    qt_qemu q;
    qt_qemu_start(&q, dir, args);
    qmp_client *c = qt_connect(&q);

    /* One active commit and one intermediate commit, finished together. */
    progress_log pl = {0};
    qmp_commit_spec specs[2] = {
        {.device = "drive0", .job_id = "commit-a"},
        {.device = "drive1", .top_node = node_at(c, "drive1", 1),
         .backing_file = "d1-base.qcow2"},
    };
    qmp_job_opts o = {.progress = on_progress, .opaque = &pl, .poll_interval_ms = 100,
                      .timeout_ms = 20000};
    es_err e = {0};
    ck_assert_msg(qmp_commit_run(c, specs, 2, &o, &e) == 0, "%s", QT_ERRSTR(e));
    ck_assert_int_gt(pl.calls[0], 0);
    ck_assert_int_gt(pl.calls[1], 0);
    expect_chain(c, "drive0", 1, d0.base);
    expect_chain(c, "drive1", 2, d1.top);
    expect_no_jobs(c);
    qmp_client_close(c);
    qt_qemu_stop(&q);
    qt_io_ok(d0.base, "read -P 0x33 2M 1M");
    qt_io_ok(d1.base, "read -P 0x22 1M 1M");
    qt_io_ok(d1.top, "read -P 0x44 2M 1M");
    qt_rmtree(dir);
}
END_TEST

/* drive1's base fails every write (blkdebug ENOSPC): drive0 must not pivot. */
START_TEST(one_disk_fails_none_changes)
{
    if (!qt_have_qemu())
        return;
    char dir[QT_PATH_MAX];
    qt_tmpdir(dir, sizeof dir);
    disk d0, d1;
    make_disk(&d0, dir, "d0", false, 0x33);
    make_disk(&d1, dir, "d1", false, 0x44);
    char bad_base[QT_PATH_MAX + 200], top1[QT_PATH_MAX + 100];
    snprintf(bad_base, sizeof bad_base,
             "driver=qcow2,node-name=b1,file.driver=blkdebug,file.image.driver=file,"
             "file.image.filename=%s,file.inject-error.0.event=pwritev,"
             "file.inject-error.0.errno=28",
             d1.base);
    snprintf(top1, sizeof top1,
             "if=none,id=drive1,driver=qcow2,file.driver=file,file.filename=%s,backing=b1",
             d1.top);
    const char *args[] = {"-drive", drive_arg(&d0, "drive0"), "-blockdev", bad_base, "-drive",
                          top1, NULL};
    qt_qemu q;
    qt_qemu_start(&q, dir, args);
    qmp_client *c = qt_connect(&q);

    qmp_commit_spec specs[2] = {{.device = "drive0"}, {.device = "drive1"}};
    qmp_job_opts o = {.poll_interval_ms = 100, .timeout_ms = 20000};
    es_err e = {0};
    ck_assert_int_eq(qmp_commit_run(c, specs, 2, &o, &e), -1);
    ck_assert_msg(strstr(e.msg, "block job extsnap-commit-1 (drive1) failed: No space left on "
                                "device"),
                  "%s", e.msg);
    ck_assert_msg(strstr(e.msg, "no disk was switched"), "%s", e.msg);
    expect_chain(c, "drive0", 2, d0.top);
    expect_chain(c, "drive1", 2, d1.top);
    expect_no_jobs(c);
    qmp_client_close(c);
    qt_qemu_stop(&q);
    qt_io_ok(d0.top, "read -P 0x33 2M 1M");
    qt_rmtree(dir);
}
END_TEST

static volatile sig_atomic_t stop_flag;

static void on_alarm(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* A rate-limited commit (speed 1 B/s never gets READY) is interrupted by the
 * caller's signal flag: every job is cancelled and the chains stay. */
START_TEST(interrupt_cancels_all)
{
    if (!qt_have_qemu())
        return;
    char dir[QT_PATH_MAX];
    qt_tmpdir(dir, sizeof dir);
    disk d0, d1;
    make_disk(&d0, dir, "d0", false, 0x33);
    make_disk(&d1, dir, "d1", true, 0x44);
    const char *args[] = {"-drive", drive_arg(&d0, "drive0"), "-drive", drive_arg(&d1, "drive1"),
                          NULL};
    qt_qemu q;
    qt_qemu_start(&q, dir, args);
    qmp_client *c = qt_connect(&q);
    stop_flag = 0;
    qmp_client_set_interrupt(c, &stop_flag);
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);

    qmp_commit_spec specs[2] = {
        {.device = "drive0", .speed = 1},
        {.device = "drive1", .top_node = node_at(c, "drive1", 1), .speed = 1},
    };
    bool written = false;
    qmp_job_opts o = {.poll_interval_ms = 100, .timeout_ms = 20000, .base_written = &written};
    es_err e = {0};
    struct itimerval it = {.it_value = {.tv_usec = 400000}};
    setitimer(ITIMER_REAL, &it, NULL);
    int64_t t0 = qt_now_ms();
    ck_assert_int_eq(qmp_commit_run(c, specs, 2, &o, &e), -1);
    ck_assert_int_lt(qt_now_ms() - t0, 5000);
    ck_assert_msg(strncmp(e.msg, "interrupted while waiting for the commit jobs", 45) == 0, "%s",
                  e.msg);
    ck_assert_msg(strstr(e.msg, "no disk was switched"), "%s", e.msg);
    /* Rate-limited jobs copy their first chunk at once: the bases hold it. */
    ck_assert(written);

    stop_flag = 0;
    expect_chain(c, "drive0", 2, d0.top);
    expect_chain(c, "drive1", 3, d1.top);
    expect_no_jobs(c);
    qmp_client_close(c);
    qt_qemu_stop(&q);
    qt_io_ok(d1.top, "read -P 0x22 1M 1M");
    qt_rmtree(dir);
}
END_TEST

START_TEST(timeout_and_bad_specs)
{
    if (!qt_have_qemu())
        return;
    char dir[QT_PATH_MAX];
    qt_tmpdir(dir, sizeof dir);
    disk d0, d1;
    make_disk(&d0, dir, "d0", false, 0x33);
    make_disk(&d1, dir, "d1", false, 0x44);
    const char *args[] = {"-drive", drive_arg(&d0, "drive0"), "-drive", drive_arg(&d1, "drive1"),
                          NULL};
    qt_qemu q;
    qt_qemu_start(&q, dir, args);
    qmp_client *c = qt_connect(&q);
    es_err e = {0};

    qmp_commit_spec slow = {.device = "drive0", .speed = 1};
    qmp_job_opts o = {.poll_interval_ms = 100, .timeout_ms = 500};
    ck_assert_int_eq(qmp_commit_run(c, &slow, 1, &o, &e), -1);
    ck_assert_msg(strstr(e.msg, "timed out after 0.5 s waiting for the commit jobs to become "
                                "ready"),
                  "%s", e.msg);
    ck_assert_msg(strstr(e.msg, "no disk was switched"), "%s", e.msg);
    expect_chain(c, "drive0", 2, d0.top);
    expect_no_jobs(c);

    /* Refused before anything is sent: nothing can have been written. */
    qmp_commit_spec bad = {.device = "drive0", .backing_file = "x.qcow2"};
    bool written = true;
    o.base_written = &written;
    ck_assert_int_eq(qmp_commit_run(c, &bad, 1, &o, &e), -1);
    ck_assert(written == false);
    o.base_written = NULL;
    ck_assert_msg(strstr(e.msg, "backing-file applies only to an intermediate commit"), "%s",
                  e.msg);

    /* Second disk refused by QEMU: the first job is cancelled again. */
    qmp_commit_spec two[2] = {{.device = "drive0"}, {.device = "drive1", .top_node = "nope"}};
    o.timeout_ms = 20000;
    ck_assert_int_eq(qmp_commit_run(c, two, 2, &o, &e), -1);
    ck_assert_msg(strstr(e.msg, "QMP command block-commit failed") && strstr(e.msg, "nope"),
                  "%s", e.msg);
    ck_assert_msg(strstr(e.msg, "no disk was switched (cancelled 1 job)"), "%s", e.msg);
    expect_chain(c, "drive0", 2, d0.top);
    expect_no_jobs(c);
    qmp_client_close(c);
    qt_qemu_stop(&q);
    qt_rmtree(dir);
}
END_TEST

static void wait_event(qmp_client *c, const char *name, const char *job)
{
    int64_t end = qt_now_ms() + 10000;
    es_err e = {0};
    while (qt_now_ms() < end) {
        qmp_msg *ev;
        int got = qmp_next_event(c, 200, &ev, &e);
        ck_assert_msg(got >= 0, "%s", QT_ERRSTR(e));
        if (got == 0)
            continue;
        json_object *dev;
        bool match = strcmp(ev->event, name) == 0 &&
                     json_object_object_get_ex(ev->value, "device", &dev) &&
                     strcmp(json_object_get_string(dev), job) == 0;
        bool completed = strcmp(ev->event, "BLOCK_JOB_COMPLETED") == 0;
        qmp_msg_free(ev);
        if (match)
            return;
        ck_assert_msg(!completed, "got BLOCK_JOB_COMPLETED while waiting for %s", name);
    }
    ck_abort_msg("no %s for %s", name, job);
}

/* qmp_block_job_cancel uses force: at READY a plain cancel would complete
 * the active commit (COMPLETED, no pivot) instead of cancelling it. */
START_TEST(cancel_running_and_ready)
{
    if (!qt_have_qemu())
        return;
    char dir[QT_PATH_MAX];
    qt_tmpdir(dir, sizeof dir);
    disk d;
    make_disk(&d, dir, "d0", true, 0x33);
    const char *args[] = {"-drive", drive_arg(&d, "drive0"), NULL};
    qt_qemu q;
    qt_qemu_start(&q, dir, args);
    qmp_client *c = qt_connect(&q);
    es_err e = {0};

    json_object_put(qt_exec(c, "block-commit",
                            "{\"device\": \"drive0\", \"job-id\": \"slow\", \"speed\": 1}"));
    ck_assert_int_eq(qmp_block_job_cancel(c, "slow", &e), 0);
    wait_event(c, "BLOCK_JOB_CANCELLED", "slow");
    expect_chain(c, "drive0", 3, d.top);

    json_object_put(qt_exec(c, "block-commit", "{\"device\": \"drive0\", \"job-id\": \"fast\"}"));
    wait_event(c, "BLOCK_JOB_READY", "fast");
    ck_assert_int_eq(qmp_block_job_cancel(c, "fast", &e), 0);
    wait_event(c, "BLOCK_JOB_CANCELLED", "fast");
    expect_chain(c, "drive0", 3, d.top);

    /* A job that is gone already is not an error. */
    ck_assert_int_eq(qmp_block_job_cancel(c, "fast", &e), 0);
    expect_no_jobs(c);
    qmp_client_close(c);
    qt_qemu_stop(&q);
    qt_rmtree(dir);
}
END_TEST

static Suite *qmp_commit_suite(void)
{
    Suite *s = suite_create("qmp_commit");
    TCase *tc = tcase_create("commit");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, active_commit_drive);
    tcase_add_test(tc, intermediate_commit_drive);
    tcase_add_test(tc, commits_blockdev);
    tcase_add_test(tc, two_disks_together);
    tcase_add_test(tc, one_disk_fails_none_changes);
    tcase_add_test(tc, interrupt_cancels_all);
    tcase_add_test(tc, timeout_and_bad_specs);
    tcase_add_test(tc, cancel_running_and_ready);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(qmp_commit_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
