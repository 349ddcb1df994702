/* QMP client against a scripted fake server (a forked child on a socketpair
 * or a UNIX socket): malformed JSON, garbage, over-long lines, connections
 * closed mid-reply, silence, interrupts. No QEMU needed. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../qmp/qmp_test_harness.h"
#include "qmp/qmp_client.h"
#include "qmp/qmp_job.h"

#define GREETING                                                                             \
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "        \
    "\"package\": \"fake\"}, \"capabilities\": [\"oob\"]}}"
#define OK_REPLY "{\"return\": {}, \"id\": \"$ID\"}"

/* ---- the fake server ----
 * Script steps (strings):
 *   "G"        send the greeting
 *   "R"        read one request line, remember its id for $ID
 *   "L<text>"  send text + CRLF ($ID replaced by the last request's id)
 *   "B<text>"  send text as is, no newline
 *   "N<count>" send count 'x' bytes, no newline
 *   "E<count>" send count events
 *   "W<ms>"    sleep
 *   "H"        hang (until killed)
 *   "X"        close the connection and exit */

static void send_text(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0)
            _exit(3);
        s += w;
        n -= (size_t)w;
    }
}

static void read_request(int fd, char *id, size_t idlen)
{
    char line[8192];
    size_t n = 0;
    while (n + 1 < sizeof line) {
        ssize_t r = read(fd, line + n, 1);
        if (r <= 0)
            _exit(4);
        if (line[n++] == '\n')
            break;
    }
    line[n] = '\0';
    id[0] = '\0';
    json_object *req = json_tokener_parse(line);
    json_object *v;
    if (req && json_object_object_get_ex(req, "id", &v))
        snprintf(id, idlen, "%s", json_object_get_string(v));
    json_object_put(req);
}

static void send_line(int fd, const char *tmpl, const char *id)
{
    char out[8192];
    size_t n = 0;
    for (const char *p = tmpl; *p && n + 64 < sizeof out;) {
        if (strncmp(p, "$ID", 3) == 0) {
            n += (size_t)snprintf(out + n, sizeof out - n, "%s", id);
            p += 3;
        } else {
            out[n++] = *p++;
        }
    }
    out[n++] = '\r';
    out[n++] = '\n';
    send_text(fd, out, n);
}

static void run_script(int fd, const char *const *script)
{
    char id[256] = "";
    for (; *script; script++) {
        const char *s = *script;
        switch (s[0]) {
        case 'G': send_line(fd, GREETING, id); break;
        case 'R': read_request(fd, id, sizeof id); break;
        case 'L': send_line(fd, s + 1, id); break;
        case 'B': send_text(fd, s + 1, strlen(s + 1)); break;
        case 'N': {
            size_t count = strtoul(s + 1, NULL, 10);
            char *x = malloc(count);
            memset(x, 'x', count);
            send_text(fd, x, count);
            free(x);
            break;
        }
        case 'E': {
            long count = strtol(s + 1, NULL, 10);
            for (long i = 0; i < count; i++)
                send_line(fd, "{\"event\": \"TICK\", \"data\": {}}", id);
            break;
        }
        case 'W': usleep((useconds_t)atoi(s + 1) * 1000); break;
        case 'H': for (;;) pause();
        case 'X': close(fd); _exit(0);
        }
    }
    for (;;)
        pause();
}

typedef struct fake {
    pid_t pid;
    int fd; /* client end */
} fake;

static fake fake_start(const char *const *script)
{
    int sv[2];
    ck_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    fake f = {.fd = sv[0]};
    f.pid = fork();
    ck_assert(f.pid >= 0);
    if (f.pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(sv[0]);
        run_script(sv[1], script);
    }
    close(sv[1]);
    return f;
}

static void fake_stop(fake *f)
{
    kill(f->pid, SIGKILL);
    waitpid(f->pid, NULL, 0);
}

static qmp_client *open_ok(fake *f, int timeout_ms, size_t max_line)
{
    qmp_client *c = NULL;
    es_err e = {0};
    qmp_client_opts o = {.timeout_ms = timeout_ms, .max_line = max_line};
    ck_assert_msg(qmp_client_open_fd(&c, f->fd, "fake.sock", &o, &e) == 0, "open: %s",
                  QT_ERRSTR(e));
    return c;
}

static void expect_error(int rc, const es_err *e, const char *part)
{
    ck_assert_int_eq(rc, -1);
    ck_assert_msg(strstr(e->msg, part) != NULL, "expected '%s' in: %s", part, e->msg);
}

/* ---- tests ---- */

START_TEST(replies_events_errors)
{
    const char *script[] = {
        "G", "R", "L" OK_REPLY, "R",
        "L{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}",
        "L{\"return\": {}, \"id\": \"stale-1\"}", "L{\"event\": \"RESUME\"}",
        "L{\"return\": {\"x\": 1}, \"id\": \"$ID\"}", "R",
        "L{\"id\": \"$ID\", \"error\": {\"class\": \"GenericError\", \"desc\": \"boom\"}}", "R",
        "L{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, x\"}}", "R",
        "L{\"return\": [1], \"id\": \"$ID\"}", "H", NULL};
    fake f = fake_start(script);
    qmp_client *c = open_ok(&f, 5000, 0);
    int major, minor, micro;
    qmp_client_version(c, &major, &minor, &micro);
    ck_assert_int_eq(major * 10000 + minor * 100 + micro, 70222);

    es_err e = {0};
    json_object *ret = NULL;
    ck_assert_int_eq(qmp_execute(c, "query-x", NULL, &ret, &e), 0);
    json_object *x;
    ck_assert(json_object_object_get_ex(ret, "x", &x) && json_object_get_int(x) == 1);
    json_object_put(ret);

    /* Events that arrived before the reply are queued, in order. */
    qmp_msg *ev;
    ck_assert_int_eq(qmp_next_event(c, 0, &ev, &e), 1);
    ck_assert_str_eq(ev->event, "STOP");
    ck_assert_int_eq(ev->ts_seconds, 1);
    qmp_msg_free(ev);
    ck_assert_int_eq(qmp_next_event(c, 0, &ev, &e), 1);
    ck_assert_str_eq(ev->event, "RESUME");
    qmp_msg_free(ev);
    ck_assert_int_eq(qmp_next_event(c, 50, &ev, &e), 0);

    json_object *args = json_tokener_parse("{\"a\": 1}");
    expect_error(qmp_execute(c, "fail", args, NULL, &e), &e,
                 "QMP command fail failed: GenericError: boom");
    json_object_put(args);
    ck_assert_str_eq(qmp_client_last_error_class(c), "GenericError");
    ck_assert_str_eq(e.path, "fake.sock");

    /* An error without id (QEMU could not parse a request) answers ours. */
    expect_error(qmp_execute(c, "odd", NULL, NULL, &e), &e, "JSON parse error");
    ck_assert_int_eq(qmp_execute(c, "list", NULL, &ret, &e), 0);
    ck_assert(json_object_is_type(ret, json_type_array));
    json_object_put(ret);
    ck_assert_str_eq(qmp_client_last_error_class(c), "");
    qmp_client_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(malformed_reply_then_recovery)
{
    const char *script[] = {"G", "R", "L" OK_REPLY, "R", "L{\"return\": ", "R",
                            "L\x01\x02\xff garbage \x7f", "R", "L[1, 2]", "R",
                            "L{\"return\": {\"ok\": true}, \"id\": \"$ID\"}", "H", NULL};
    fake f = fake_start(script);
    qmp_client *c = open_ok(&f, 5000, 0);
    es_err e = {0};
    expect_error(qmp_execute(c, "a", NULL, NULL, &e), &e, "incomplete JSON");
    ck_assert_msg(strstr(e.msg, "while waiting for the reply to a"), "%s", e.msg);
    expect_error(qmp_execute(c, "b", NULL, NULL, &e), &e, "malformed QMP message");
    expect_error(qmp_execute(c, "c", NULL, NULL, &e), &e, "not a JSON object");
    /* Lines frame the stream: the client is still usable. */
    ck_assert(qmp_client_is_connected(c));
    ck_assert_int_eq(qmp_execute(c, "d", NULL, NULL, &e), 0);
    qmp_client_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(over_long_line)
{
    const char *script[] = {"G", "R", "L" OK_REPLY, "R", "N5000", "H", NULL};
    fake f = fake_start(script);
    qmp_client *c = open_ok(&f, 5000, 1024);
    es_err e = {0};
    expect_error(qmp_execute(c, "query-status", NULL, NULL, &e), &e,
                 "QMP message longer than 1024 bytes");
    ck_assert(!qmp_client_is_connected(c));
    expect_error(qmp_execute(c, "query-status", NULL, NULL, &e), &e, "over-long");
    qmp_client_close(c);
    fake_stop(&f);
}
END_TEST

/* A complete line above the limit that arrives in one piece is refused too. */
START_TEST(over_long_complete_line)
{
    char big[3000];
    memset(big, ' ', sizeof big);
    memcpy(big, "L{\"return\": {}, \"id\": \"$ID\"}", 28);
    big[sizeof big - 2] = '1';
    big[sizeof big - 1] = '\0';
    const char *script[] = {"G", "R", "L" OK_REPLY, "R", big, "H", NULL};
    fake f = fake_start(script);
    qmp_client *c = open_ok(&f, 5000, 1024);
    es_err e = {0};
    expect_error(qmp_execute(c, "q", NULL, NULL, &e), &e, "longer than 1024 bytes");
    qmp_client_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(closed_mid_reply)
{
    const char *script[] = {"G", "R", "L" OK_REPLY, "R", "B{\"return\": {\"a\"", "X", NULL};
    fake f = fake_start(script);
    qmp_client *c = open_ok(&f, 5000, 0);
    es_err e = {0};
    expect_error(qmp_execute(c, "query-status", NULL, NULL, &e), &e,
                 "QEMU closed the QMP connection in the middle of a message while waiting "
                 "for the reply to query-status");
    ck_assert(!qmp_client_is_connected(c));
    qmp_client_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(closed_before_reply)
{
    const char *script[] = {"G", "R", "L" OK_REPLY, "R", "X", NULL};
    fake f = fake_start(script);
    qmp_client *c = open_ok(&f, 5000, 0);
    es_err e = {0};
    expect_error(qmp_execute(c, "quit", NULL, NULL, &e), &e,
                 "QEMU closed the QMP connection while waiting for the reply to quit");
    /* Later calls fail at once with the same reason. */
    int64_t t0 = qt_now_ms();
    expect_error(qmp_execute(c, "query-status", NULL, NULL, &e), &e, "closed the QMP connection");
    qmp_msg *ev;
    expect_error(qmp_next_event(c, 1000, &ev, &e), &e, "closed the QMP connection");
    ck_assert_int_lt(qt_now_ms() - t0, 500);
    qmp_client_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(never_answers)
{
    const char *script[] = {"G", "R", "L" OK_REPLY, "R", "H", NULL};
    fake f = fake_start(script);
    qmp_client *c = open_ok(&f, 300, 0);
    es_err e = {0};
    int64_t t0 = qt_now_ms();
    expect_error(qmp_execute(c, "query-status", NULL, NULL, &e), &e,
                 "timed out after 0.3 s waiting for the reply to query-status");
    int64_t took = qt_now_ms() - t0;
    ck_assert_int_ge(took, 280);
    ck_assert_int_lt(took, 2000);
    qmp_client_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(no_greeting)
{
    const char *script[] = {"H", NULL};
    fake f = fake_start(script);
    qmp_client *c = NULL;
    es_err e = {0};
    qmp_client_opts o = {.timeout_ms = 300};
    expect_error(qmp_client_open_fd(&c, f.fd, "fake.sock", &o, &e), &e,
                 "timed out after 0.3 s waiting for the QMP greeting");
    ck_assert_msg(strstr(e.msg, "another client"), "%s", e.msg);
    ck_assert_ptr_null(c);
    fake_stop(&f);
}
END_TEST

START_TEST(bad_greeting_and_capabilities)
{
    const char *s1[] = {"L{\"return\": {}}", "H", NULL};
    fake f = fake_start(s1);
    qmp_client *c = NULL;
    es_err e = {0};
    expect_error(qmp_client_open_fd(&c, f.fd, "fake.sock", NULL, &e), &e,
                 "expected the QMP greeting, got a QMP return");
    fake_stop(&f);

    /* QEMU may send an event before the greeting while it starts: kept. */
    const char *s0[] = {"L{\"event\": \"RESUME\"}", "G", "R", "L" OK_REPLY, "H", NULL};
    f = fake_start(s0);
    ck_assert_int_eq(qmp_client_open_fd(&c, f.fd, "fake.sock", NULL, &e), 0);
    qmp_msg *ev;
    ck_assert_int_eq(qmp_next_event(c, 0, &ev, &e), 1);
    ck_assert_str_eq(ev->event, "RESUME");
    qmp_msg_free(ev);
    qmp_client_close(c);
    fake_stop(&f);

    const char *s2[] = {"L{\"QMP\": {\"version\": {}}}", "H", NULL};
    f = fake_start(s2);
    expect_error(qmp_client_open_fd(&c, f.fd, "fake.sock", NULL, &e), &e, "greeting without");
    fake_stop(&f);

    const char *s3[] = {"G", "R",
                        "L{\"id\": \"$ID\", \"error\": {\"class\": \"CommandNotFound\", "
                        "\"desc\": \"Capabilities negotiation is already complete\"}}",
                        "H", NULL};
    f = fake_start(s3);
    expect_error(qmp_client_open_fd(&c, f.fd, "fake.sock", NULL, &e), &e,
                 "QMP command qmp_capabilities failed: CommandNotFound");
    fake_stop(&f);
}
END_TEST

static volatile sig_atomic_t stop_flag;

static void on_alarm(int sig)
{
    (void)sig;
    stop_flag = 1;
}

START_TEST(interrupt_flag)
{
    const char *script[] = {"G", "R", "L" OK_REPLY, "R", "H", NULL};
    fake f = fake_start(script);
    qmp_client *c = open_ok(&f, 20000, 0);
    stop_flag = 0;
    qmp_client_set_interrupt(c, &stop_flag);
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {.it_value = {.tv_usec = 150000}};
    setitimer(ITIMER_REAL, &it, NULL);
    es_err e = {0};
    int64_t t0 = qt_now_ms();
    expect_error(qmp_execute(c, "query-status", NULL, NULL, &e), &e,
                 "interrupted while waiting for the reply to query-status");
    ck_assert_int_lt(qt_now_ms() - t0, 2000);
    ck_assert(qmp_client_interrupt_pending(c));

    /* Held (cleanup after an interrupt), waits run to their own limit. */
    qmp_client_hold_interrupt(c, true);
    qmp_client_set_timeout(c, 200);
    expect_error(qmp_execute(c, "query-status", NULL, NULL, &e), &e, "timed out after 0.2 s");
    qmp_client_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(event_queue_bounded)
{
    const char *script[] = {"G", "R", "L" OK_REPLY, "R", "E5000", "L" OK_REPLY, "H", NULL};
    fake f = fake_start(script);
    qmp_client *c = open_ok(&f, 10000, 0);
    es_err e = {0};
    ck_assert_int_eq(qmp_execute(c, "q", NULL, NULL, &e), 0);
    ck_assert_uint_eq(qmp_client_events_dropped(c), 5000 - QMP_EVENT_QUEUE_MAX);
    size_t got = 0;
    qmp_msg *ev;
    while (qmp_next_event(c, 0, &ev, &e) == 1) {
        got++;
        qmp_msg_free(ev);
    }
    ck_assert_uint_eq(got, QMP_EVENT_QUEUE_MAX);
    qmp_client_close(c);
    fake_stop(&f);
}
END_TEST

/* ---- the job driver against a misbehaving peer ---- */

START_TEST(job_connection_lost)
{
    const char *script[] = {
        "G", "R", "L" OK_REPLY, "R",
        "L{\"event\": \"JOB_STATUS_CHANGE\", \"data\": {\"status\": \"running\", "
        "\"id\": \"extsnap-commit-0\"}}",
        "L" OK_REPLY, "R", "W100", "X", NULL};
    fake f = fake_start(script);
    qmp_client *c = open_ok(&f, 5000, 0);
    qmp_commit_spec spec = {.device = "drive0"};
    qmp_job_opts o = {.poll_interval_ms = 5000, .timeout_ms = 10000};
    es_err e = {0};
    expect_error(qmp_commit_run(c, &spec, 1, &o, &e), &e, "QEMU closed the QMP connection");
    ck_assert_msg(strstr(e.msg, "QEMU connection lost, job states unknown"), "%s", e.msg);
    qmp_client_close(c);
    fake_stop(&f);
}
END_TEST

/* A job that query-block-jobs no longer lists, without any event, is
 * reported instead of waited for forever. */
START_TEST(job_vanished)
{
    const char *script[] = {"G", "R", "L" OK_REPLY, "R", "L" OK_REPLY,
                            "R", "L{\"return\": [], \"id\": \"$ID\"}",
                            "R", "L{\"return\": [], \"id\": \"$ID\"}", "H", NULL};
    fake f = fake_start(script);
    qmp_client *c = open_ok(&f, 5000, 0);
    qmp_commit_spec spec = {.device = "drive0", .top_node = "mid"};
    qmp_job_opts o = {.poll_interval_ms = 50, .timeout_ms = 10000};
    es_err e = {0};
    expect_error(qmp_commit_run(c, &spec, 1, &o, &e), &e,
                 "block job extsnap-commit-0 (drive0) failed: job disappeared from QEMU "
                 "without a completion event; no disk was switched");
    qmp_client_close(c);
    fake_stop(&f);
}
END_TEST

/* ---- connecting by path ---- */

static int bind_listener(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert(fd >= 0);
    /* Long paths: bind through the directory's /proc/self/fd entry. */
    char dir[QT_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    *slash = '\0';
    int dfd = open(dir, O_PATH | O_DIRECTORY);
    ck_assert(dfd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/%s", dfd, slash + 1);
    ck_assert_msg(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "bind: %s", strerror(errno));
    close(dfd);
    ck_assert(listen(fd, 4) == 0);
    return fd;
}

static pid_t serve_one(int lfd, const char *const *script)
{
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int cfd = accept(lfd, NULL, NULL);
        if (cfd < 0)
            _exit(2);
        run_script(cfd, script);
    }
    return pid;
}

START_TEST(connect_errors)
{
    char dir[QT_PATH_MAX], p[QT_PATH_MAX];
    qt_tmpdir(dir, sizeof dir);
    qmp_client *c = NULL;
    es_err e = {0};
    char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX];

    qt_path(p, sizeof p, dir, "missing.sock");
    expect_error(qmp_client_connect(&c, p, NULL, &e), &e, "QMP socket does not exist");
    ck_assert_str_eq(e.path, p);
    ck_assert_int_eq(e.errnum, ENOENT);

    qt_path(p, sizeof p, dir, "plain-file");
    FILE *fp = fopen(p, "w");
    fclose(fp);
    expect_error(qmp_client_connect(&c, p, NULL, &e), &e, "not a UNIX socket");

    /* A socket file nobody listens on (QEMU gone, file left behind). */
    qt_path(p, sizeof p, dir, "stale.sock");
    close(bind_listener(p));
    expect_error(qmp_client_connect(&c, p, NULL, &e), &e, "nobody is listening");
    ck_assert_int_eq(e.errnum, ECONNREFUSED);
    es_err_str(&e, buf, sizeof buf);
    ck_assert_msg(strstr(buf, "Connection refused"), "%s", buf);
    ck_assert_ptr_null(c);
    qt_rmtree(dir);
}
END_TEST

START_TEST(connect_long_path)
{
    char dir[QT_PATH_MAX], deep[1024], p[1100];
    qt_tmpdir(dir, sizeof dir);
    snprintf(deep, sizeof deep,
             "%s/a-directory-name-long-enough/to-push-the-socket-path/beyond-the-sun_path-limit"
             "/of-108-bytes",
             dir);
    qt_mkdir_p(deep);
    qt_path(p, sizeof p, deep, "monitor.sock");
    ck_assert_uint_gt(strlen(p), 108);
    int lfd = bind_listener(p);
    const char *script[] = {"G", "R", "L" OK_REPLY, "H", NULL};
    pid_t pid = serve_one(lfd, script);
    qmp_client *c = NULL;
    es_err e = {0};
    ck_assert_msg(qmp_client_connect(&c, p, NULL, &e) == 0, "%s", QT_ERRSTR(e));
    ck_assert_str_eq(qmp_client_name(c), p);
    qmp_client_close(c);
    close(lfd);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    qt_rmtree(dir);
}
END_TEST

static Suite *qmp_fake_suite(void)
{
    Suite *s = suite_create("qmp_fake");
    TCase *tc = tcase_create("fake");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, replies_events_errors);
    tcase_add_test(tc, malformed_reply_then_recovery);
    tcase_add_test(tc, over_long_line);
    tcase_add_test(tc, over_long_complete_line);
    tcase_add_test(tc, closed_mid_reply);
    tcase_add_test(tc, closed_before_reply);
    tcase_add_test(tc, never_answers);
    tcase_add_test(tc, no_greeting);
    tcase_add_test(tc, bad_greeting_and_capabilities);
    tcase_add_test(tc, interrupt_flag);
    tcase_add_test(tc, event_queue_bounded);
    tcase_add_test(tc, job_connection_lost);
    tcase_add_test(tc, job_vanished);
    tcase_add_test(tc, connect_errors);
    tcase_add_test(tc, connect_long_path);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(qmp_fake_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
