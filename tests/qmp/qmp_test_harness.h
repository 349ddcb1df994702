/* Test helpers for the QMP tests: temp dirs, running qemu-img/qemu-io, and
 * starting a throw-away `qemu-system-x86_64 -machine none` with a QMP socket.
 *
 * Every QEMU started here gets PR_SET_PDEATHSIG(SIGKILL): check runs each
 * test in a forked child, and when a failed assertion ends that child its
 * QEMU dies with it, so no stray qemu process survives a failing test.
 * Header-only (static functions) because each tests/unit/test_*.c builds
 * into its own executable. */
#ifndef ES_TESTS_QMP_HARNESS_H
#define ES_TESTS_QMP_HARNESS_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "qmp/qmp_client.h"
#include "../unit/tu_skip.h"

#define QT_UNUSED __attribute__((unused))
#define QT_PATH_MAX 512

/* ---- temp dirs ---- */

static QT_UNUSED void qt_mkdir_p(const char *path)
{
    char buf[QT_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    mkdir(buf, 0755);
}

/* Fresh directory under $ES_TEST_TMP (or /tmp). Short names keep QMP socket
 * paths well under the 108-byte sun_path limit. */
static QT_UNUSED void qt_tmpdir(char *out, size_t len)
{
    const char *base = getenv("ES_TEST_TMP");
    if (!base || !base[0])
        base = "/tmp";
    qt_mkdir_p(base);
    snprintf(out, len, "%s/qmpXXXXXX", base);
    ck_assert_msg(mkdtemp(out) != NULL, "mkdtemp %s: %s", out, strerror(errno));
}

static int qt_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static QT_UNUSED void qt_rmtree(const char *dir)
{
    nftw(dir, qt_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static QT_UNUSED void qt_path(char *out, size_t len, const char *dir, const char *name)
{
    int n = snprintf(out, len, "%s/%s", dir, name);
    ck_assert_msg(n > 0 && (size_t)n < len, "path too long");
}

/* ---- running tools ---- */

static QT_UNUSED bool qt_in_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/bin:/bin";
    char buf[QT_PATH_MAX];
    const char *p = path;
    while (*p) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, prog);
        if (access(buf, X_OK) == 0)
            return true;
        p += n + (colon ? 1 : 0);
    }
    return false;
}

/* false (and the skip recorded: the program exits 77, see tu_skip.h) when
 * an oracle is missing; the caller returns from its test. */
static QT_UNUSED bool qt_have_qemu(void)
{
    bool ok = qt_in_path("qemu-system-x86_64") && qt_in_path("qemu-img") &&
              qt_in_path("qemu-io");
    if (!ok)
        tu_skip_note("qemu-system-x86_64, qemu-img or qemu-io not found in PATH");
    return ok;
}

/* Run argv (NULL-terminated); stdout+stderr go to out (may be NULL).
 * Returns the exit status, or -1 when it did not exit normally. */
static QT_UNUSED int qt_run(char *const argv[], char *out, size_t outlen)
{
    int pfd[2];
    ck_assert(pipe(pfd) == 0);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t used = 0;
    char sink[4096];
    for (;;) {
        char *dst = out && used + 1 < outlen ? out + used : sink;
        size_t room = out && used + 1 < outlen ? outlen - used - 1 : sizeof sink;
        ssize_t n = read(pfd[0], dst, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (dst != sink)
            used += (size_t)n;
    }
    if (out && outlen)
        out[used] = '\0';
    close(pfd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* qemu-img create -f qcow2 [-b backing -F qcow2] path size */
static QT_UNUSED void qt_img_create(const char *path, const char *size, const char *backing)
{
    char out[2048];
    int rc;
    if (backing) {
        char *argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", "-b", (char *)backing,
                        "-F", "qcow2", (char *)path, (char *)size, NULL};
        rc = qt_run(argv, out, sizeof out);
    } else {
        char *argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", (char *)path,
                        (char *)size, NULL};
        rc = qt_run(argv, out, sizeof out);
    }
    ck_assert_msg(rc == 0, "qemu-img create %s failed: %s", path, out);
}

/* qemu-io -c cmd path: exit status (0 = command succeeded, pattern matched). */
static QT_UNUSED int qt_io(const char *path, const char *cmd)
{
    char out[4096];
    char *argv[] = {"qemu-io", "-f", "qcow2", "-c", (char *)cmd, (char *)path, NULL};
    int rc = qt_run(argv, out, sizeof out);
    if (rc == 0 && strstr(out, "verification failed"))
        rc = 1;
    return rc;
}

static QT_UNUSED void qt_io_ok(const char *path, const char *cmd)
{
    ck_assert_msg(qt_io(path, cmd) == 0, "qemu-io -c '%s' %s failed", cmd, path);
}

/* `qemu-img info --output=json` of path (caller puts the object). */
static QT_UNUSED json_object *qt_img_info(const char *path)
{
    static char out[65536];
    char *argv[] = {"qemu-img", "info", "-U", "--output=json", (char *)path, NULL};
    int rc = qt_run(argv, out, sizeof out);
    ck_assert_msg(rc == 0, "qemu-img info %s: %s", path, out);
    json_object *o = json_tokener_parse(out);
    ck_assert_msg(o != NULL, "qemu-img info output is not JSON");
    return o;
}

static QT_UNUSED void qt_img_check_clean(const char *path)
{
    char out[4096];
    char *argv[] = {"qemu-img", "check", "-q", (char *)path, NULL};
    int rc = qt_run(argv, out, sizeof out);
    ck_assert_msg(rc == 0, "qemu-img check %s exit %d: %s", path, rc, out);
}

/* ---- QEMU ---- */

typedef struct qt_qemu {
    pid_t pid;
    char sock[QT_PATH_MAX];
} qt_qemu;

/* Start qemu-system-x86_64 -machine none with a QMP socket in dir plus the
 * extra arguments (NULL-terminated), and wait for the socket to appear. */
static QT_UNUSED void qt_qemu_start(qt_qemu *q, const char *dir, const char *const extra[])
{
    qt_path(q->sock, sizeof q->sock, dir, "qmp.sock");
    char qmparg[QT_PATH_MAX + 32];
    snprintf(qmparg, sizeof qmparg, "unix:%s,server=on,wait=off", q->sock);
    const char *argv[64] = {"qemu-system-x86_64", "-machine", "none", "-nodefaults",
                            "-display", "none", "-qmp", qmparg};
    size_t n = 8;
    for (size_t i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;

    pid_t parent = getpid();
    q->pid = fork();
    ck_assert(q->pid >= 0);
    if (q->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) /* parent already gone */
            _exit(1);
        /* qemu-io via HMP prints on stdout; messages go to dir/qemu.log. */
        char log[QT_PATH_MAX + 16];
        snprintf(log, sizeof log, "%s/qemu.log", dir);
        int devnull = open("/dev/null", O_RDWR);
        int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (devnull >= 0)
            dup2(devnull, 0);
        if (logfd >= 0) {
            dup2(logfd, 1);
            dup2(logfd, 2);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    /* The socket exists once QEMU listens (wait=off: before the VM starts). */
    for (int i = 0; i < 500; i++) {
        struct stat st;
        if (stat(q->sock, &st) == 0 && S_ISSOCK(st.st_mode))
            return;
        int status;
        if (waitpid(q->pid, &status, WNOHANG) == q->pid) {
            q->pid = 0;
            ck_abort_msg("qemu-system-x86_64 exited at start (status %d)", status);
        }
        usleep(10000);
    }
    ck_abort_msg("QMP socket %s did not appear", q->sock);
}

/* Stop QEMU gracefully (SIGTERM makes it flush and close its images, which
 * the qemu-img checks that follow rely on), SIGKILL after 5 s. */
static QT_UNUSED void qt_qemu_stop(qt_qemu *q)
{
    if (q->pid <= 0)
        return;
    kill(q->pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        int status;
        if (waitpid(q->pid, &status, WNOHANG) == q->pid) {
            q->pid = 0;
            return;
        }
        usleep(10000);
    }
    kill(q->pid, SIGKILL);
    waitpid(q->pid, NULL, 0);
    q->pid = 0;
}

/* QEMU creates the socket file (bind) a moment before it listens: retry a
 * refused connection for a while. */
static QT_UNUSED qmp_client *qt_connect(const qt_qemu *q)
{
    es_err e = {0};
    qmp_client *c = NULL;
    qmp_client_opts o = {.timeout_ms = 10000};
    int rc = -1;
    for (int i = 0; i < 300; i++) {
        rc = qmp_client_connect(&c, q->sock, &o, &e);
        if (rc == 0 || e.errnum != ECONNREFUSED)
            break;
        usleep(10000);
    }
    char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX];
    ck_assert_msg(rc == 0, "connect: %s", es_err_str(&e, buf, sizeof buf));
    return c;
}

/* Run a QMP command that must succeed; returns its value (caller puts). */
static QT_UNUSED json_object *qt_exec(qmp_client *c, const char *cmd, const char *args_json)
{
    es_err e = {0};
    json_object *args = args_json ? json_tokener_parse(args_json) : NULL;
    ck_assert_msg(!args_json || args, "bad test JSON: %s", args_json);
    json_object *ret = NULL;
    char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX];
    int rc = qmp_execute(c, cmd, args, &ret, &e);
    json_object_put(args);
    ck_assert_msg(rc == 0, "%s: %s", cmd, es_err_str(&e, buf, sizeof buf));
    return ret;
}

static QT_UNUSED int64_t qt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define QT_ERRSTR(e) es_err_str(&(e), (char[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX]){0}, \
                                ES_ERR_MSG_MAX + ES_ERR_PATH_MAX)

#endif
