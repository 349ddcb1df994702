/* Image locks against a real qemu-system-x86_64 -machine none and qemu-img:
 * the bytes we take must be the bytes QEMU takes, QEMU must be refused by
 * ours and we by QEMU's, and conflicts must name the holder.
 * Every process started here dies with the test (PR_SET_PDEATHSIG) and is
 * killed and reaped explicitly at the end of each test. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/imglock.h"

#define PATH_MAX_T 512
#define QEMU_START_MS 30000
#define CMD_TIMEOUT_MS 30000

static char dir[PATH_MAX_T - 32], top[PATH_MAX_T], base[PATH_MAX_T], logfile[PATH_MAX_T];

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* fork + exec argv with stdout/stderr to out (if non-NULL); the child dies
 * with us. */
static pid_t spawn(char *const argv[], const char *out)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        int o = out ? open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644) : devnull;
        dup2(o, 1);
        dup2(o, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Wait for pid with a fixed timeout; kill it when it runs over. Exit status or -1. */
static int wait_timeout(pid_t pid, long long timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (r < 0 || now_ms() > end)
            break;
        sleep_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

static void stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    if (wait_timeout(pid, 5000) == -1 && kill(pid, 0) == 0)
        ck_abort_msg("process %d did not stop", (int)pid);
}

static char *read_text(const char *path)
{
    static char buf[8192];
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    return buf;
}

/* Run a command to completion; returns its exit status, output in logfile. */
static int run(char *const argv[])
{
    return wait_timeout(spawn(argv, logfile), CMD_TIMEOUT_MS);
}

/* The lock bytes in 100..299 that anybody holds on path, from /proc/locks
 * (independent of the code under test), as "100 101 103 201 203". */
static const char *locked_bytes(const char *path)
{
    static char out[512];
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    char key[64];
    snprintf(key, sizeof key, "%02x:%02x:%lu", major(st.st_dev), minor(st.st_dev),
             (unsigned long)st.st_ino);
    bool locked[300] = {false};
    FILE *f = fopen("/proc/locks", "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *k = strstr(line, key);
        if (!k || strstr(line, "->"))
            continue;
        char endtok[32];
        long start;
        if (sscanf(k + strlen(key), " %ld %31s", &start, endtok) != 2)
            continue;
        long end = strcmp(endtok, "EOF") == 0 ? 299 : atol(endtok);
        for (long b = start; b <= end && b < 300; b++)
            if (b >= 100)
                locked[b] = true;
    }
    fclose(f);
    out[0] = '\0';
    for (int b = 100; b < 300; b++)
        if (locked[b])
            snprintf(out + strlen(out), sizeof out - strlen(out), "%s%d", out[0] ? " " : "", b);
    return out;
}

static void remove_images(void)
{
    unlink(top);
    unlink(base);
    unlink(logfile);
}

/* Fresh top <- base in dir (made once by main, removed by main even when a
 * test failed half-way). */
static void make_images(void)
{
    remove_images();
    char *mk_base[] = {"qemu-img", "create", "-q", "-f", "qcow2", base, "1M", NULL};
    ck_assert_msg(run(mk_base) == 0, "qemu-img create: %s", read_text(logfile));
    char *mk_top[] = {"qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2",
                      "-F", "qcow2", top, "1M", NULL};
    ck_assert_msg(run(mk_top) == 0, "qemu-img create: %s", read_text(logfile));
}

/* A VM with the chain top <- base, QEMU's locks in place when this returns. */
static pid_t qemu_start(const char *image, const char *out)
{
    char blockdev[PATH_MAX_T + 96];
    snprintf(blockdev, sizeof blockdev,
             "driver=qcow2,node-name=top,file.driver=file,file.filename=%s", image);
    char *argv[] = {"qemu-system-x86_64", "-machine", "none", "-nodefaults", "-display",
                    "none", "-blockdev", blockdev, NULL};
    return spawn(argv, out);
}

/* Wait until path's lock bytes are `expect` while QEMU q runs. */
static void wait_locked(pid_t q, const char *path, const char *expect)
{
    long long end = now_ms() + QEMU_START_MS;
    while (strcmp(locked_bytes(path), expect) != 0) {
        int st;
        if (waitpid(q, &st, WNOHANG) == q)
            ck_abort_msg("qemu exited early: %s", read_text(logfile));
        if (now_ms() > end) {
            stop(q);
            ck_abort_msg("qemu did not lock %s (have [%s])", path, locked_bytes(path));
        }
        sleep_ms(50);
    }
}

/* A VM on top (its backing base opened with it), all its locks in place. */
static pid_t vm_start(void)
{
    pid_t q = qemu_start(top, logfile);
    wait_locked(q, top, "100 101 103 201 203");
    wait_locked(q, base, "100 201 203");
    return q;
}

static int open_or_die(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    return fd;
}

/* Lock lines of one of our own descriptors (fdinfo), counted. */
static int own_lock_lines(int fd)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fdinfo/%d", fd);
    int n = 0;
    for (const char *s = read_text(p); (s = strstr(s, "lock:")); s++)
        n++;
    return n;
}

#define W_SET "100 101 103 201 203"
#define R_SET "100 201 203"

/* Our bytes are QEMU's bytes: a VM's active image and backing file. */
START_TEST(same_bytes_as_qemu)
{
    make_images();
    pid_t q = vm_start();
    char qemu_top[64], qemu_base[64];
    snprintf(qemu_top, sizeof qemu_top, "%s", locked_bytes(top));
    snprintf(qemu_base, sizeof qemu_base, "%s", locked_bytes(base));
    stop(q);
    ck_assert_str_eq(qemu_top, W_SET);
    ck_assert_str_eq(qemu_base, R_SET);
    ck_assert_str_eq(locked_bytes(top), "");

    es_err e = {0};
    es_imglock lk = {0}, lkb = {0};
    int fd = open_or_die(top, O_RDWR), fdb = open_or_die(base, O_RDONLY);
    ck_assert_int_eq(es_imglock_probe_write(fd, top, NULL, &e), 0);
    ck_assert_int_eq(es_imglock_probe_read(fd, top, NULL, &e), 0);
    ck_assert_int_eq(es_imglock_acquire_write(fd, top, &lk, &e), 0);
    ck_assert_int_eq(es_imglock_acquire_read(fdb, base, &lkb, &e), 0);
    ck_assert_str_eq(locked_bytes(top), qemu_top);
    ck_assert_str_eq(locked_bytes(base), qemu_base);
    ck_assert(es_imglock_held(&lk));
    es_imglock_release(&lk);
    ck_assert(!es_imglock_held(&lk));
    ck_assert_str_eq(locked_bytes(top), "");
    close(fdb); /* closing the descriptor drops the locks too */
    ck_assert_str_eq(locked_bytes(base), "");
    close(fd);
    remove_images();
}
END_TEST

/* A running VM: its active image refuses us, its backing file reads fine. */
START_TEST(vm_running)
{
    make_images();
    pid_t q = vm_start();
    int ft = open_or_die(top, O_RDONLY), fb = open_or_die(base, O_RDONLY);
    es_err e = {0};
    es_lock_holder h;
    char pidstr[32];
    snprintf(pidstr, sizeof pidstr, "process %d (", (int)q);

    ck_assert_int_eq(es_imglock_probe_write(ft, top, &h, &e), -1);
    ck_assert(h.conflict);
    ck_assert_int_eq(h.pid, q);
    ck_assert_msg(strstr(h.cmdline, "qemu-system-x86_64 -machine none"), "%s", h.cmdline);
    ck_assert_int_eq(h.byte, 101);
    ck_assert_str_eq(e.path, top);
    ck_assert_int_eq(e.errnum, 0);
    ck_assert_msg(strstr(e.msg, "image is in use by ") && strstr(e.msg, pidstr) &&
                      strstr(e.msg, "qemu-system") && strstr(e.msg, "it holds a write lock"),
                  "%s", e.msg);

    ck_assert_int_eq(es_imglock_probe_read(ft, top, &h, &e), -1);
    ck_assert_int_eq(h.pid, q);
    /* The hint is the command's (cmd/busy_hint.h): img commit has no --force-share. */
    ck_assert_msg(strstr(e.msg, "image is being written by ") && strstr(e.msg, pidstr) &&
                      !strstr(e.msg, "force-share") && es_imglock_conflict(&e),
                  "%s", e.msg);

    /* QEMU refuses others' writes to its backing file (byte 201). */
    ck_assert_int_eq(es_imglock_probe_write(fb, base, &h, &e), -1);
    ck_assert_int_eq(h.pid, q);
    ck_assert_int_eq(h.byte, 201);
    ck_assert(h.refuses_share);
    ck_assert_msg(strstr(e.msg, pidstr) && strstr(e.msg, "does not allow others to write it"),
                  "%s", e.msg);
    ck_assert_int_eq(es_imglock_probe_read(fb, base, &h, &e), 0);
    ck_assert(!h.conflict);

    /* A read lock on the backing file coexists with the VM's. */
    es_imglock lk = {0};
    ck_assert_msg(es_imglock_acquire_read(fb, base, &lk, &e) == 0, "%s", e.msg);
    es_imglock_release(&lk);

    /* A failed acquire gives back what it took. */
    int fw = open_or_die(top, O_RDWR);
    ck_assert_int_eq(es_imglock_acquire_write(fw, top, &lk, &e), -1);
    ck_assert(!es_imglock_held(&lk));
    ck_assert_int_eq(lk.conflict.pid, q);
    ck_assert_int_eq(own_lock_lines(fw), 0);
    ck_assert_str_eq(locked_bytes(top), W_SET);
    ck_assert_int_eq(es_imglock_acquire_read(ft, top, &lk, &e), -1);
    ck_assert_int_eq(own_lock_lines(ft), 0);

    stop(q);
    ck_assert_int_eq(es_imglock_probe_write(ft, top, &h, &e), 0);
    ck_assert_int_eq(es_imglock_probe_read(ft, top, &h, &e), 0);
    ck_assert_int_eq(es_imglock_probe_write(fb, base, &h, &e), 0);
    ck_assert_int_eq(es_imglock_acquire_write(fw, top, &lk, &e), 0);
    es_imglock_release(&lk);
    close(fw);
    close(ft);
    close(fb);
    remove_images();
}
END_TEST

/* QEMU refuses images extsnap holds, with its own lock error. */
START_TEST(extsnap_locks_stop_qemu)
{
    make_images();
    int fd = open_or_die(top, O_RDWR);
    es_err e = {0};
    es_imglock lk = {0};
    ck_assert_int_eq(es_imglock_acquire_write(fd, top, &lk, &e), 0);

    pid_t q = qemu_start(top, logfile);
    int rc = wait_timeout(q, QEMU_START_MS);
    const char *err = read_text(logfile);
    ck_assert_msg(rc == 1, "qemu exited %d: %s", rc, err);
    ck_assert_msg(strstr(err, "Failed to get \"write\" lock"), "%s", err);

    char *info_top[] = {"qemu-img", "info", top, NULL};
    rc = run(info_top);
    err = read_text(logfile);
    ck_assert_msg(rc == 1 && strstr(err, "Failed to get shared \"write\" lock"), "%d %s", rc,
                  err);
    char *commit[] = {"qemu-img", "commit", top, NULL};
    rc = run(commit);
    err = read_text(logfile);
    ck_assert_msg(rc == 1 && strstr(err, "Failed to get \"write\" lock"), "%d %s", rc, err);

    /* A read lock on base: VMs may use it as a backing file, not write it. */
    int fb = open_or_die(base, O_RDONLY);
    es_imglock lkb = {0};
    ck_assert_int_eq(es_imglock_acquire_read(fb, base, &lkb, &e), 0);
    char *info_base[] = {"qemu-img", "info", base, NULL};
    rc = run(info_base);
    ck_assert_msg(rc == 0, "%d %s", rc, read_text(logfile));
    q = qemu_start(base, logfile);
    rc = wait_timeout(q, QEMU_START_MS);
    err = read_text(logfile);
    ck_assert_msg(rc == 1 && strstr(err, "Failed to get \"write\" lock"), "%d %s", rc, err);

    /* Positive control: released, QEMU starts (and uses base as backing
     * while we still read it). */
    es_imglock_release(&lk);
    q = vm_start();
    ck_assert_str_eq(locked_bytes(base), R_SET);
    stop(q);
    es_imglock_release(&lkb);
    close(fb);
    close(fd);
    remove_images();
}
END_TEST

/* A child process holding a lock until the pipe `go` is closed. */
static pid_t holder_child(bool writer, int *go_fd)
{
    int ready[2], go[2];
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(go), 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        close(ready[0]);
        close(go[1]);
        es_err e = {0};
        es_imglock lk = {0};
        int fd = open(top, writer ? O_RDWR : O_RDONLY);
        int rc = writer ? es_imglock_acquire_write(fd, top, &lk, &e)
                       : es_imglock_acquire_read(fd, top, &lk, &e);
        char c = rc == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1 || rc != 0)
            _exit(1);
        while (read(go[0], &c, 1) > 0)
            ;
        _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    char c = 0;
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    ck_assert_int_eq(c, 'y');
    close(ready[0]);
    *go_fd = go[1];
    return pid;
}

static void holder_release(pid_t pid, int go_fd)
{
    close(go_fd);
    ck_assert_int_eq(wait_timeout(pid, 5000), 0);
}

START_TEST(two_extsnap_holders)
{
    make_images();
    int go, fd = open_or_die(top, O_RDWR);
    es_err e = {0};
    es_imglock lk = {0};
    char pidstr[32];

    pid_t child = holder_child(true, &go);
    snprintf(pidstr, sizeof pidstr, "process %d (", (int)child);
    es_lock_holder h;
    ck_assert_int_eq(es_imglock_probe_write(fd, top, &h, &e), -1);
    ck_assert_int_eq(h.pid, child);
    ck_assert_msg(strstr(h.cmdline, "test_imglock"), "%s", h.cmdline);
    ck_assert_int_eq(es_imglock_acquire_write(fd, top, &lk, &e), -1);
    ck_assert_msg(strstr(e.msg, pidstr) && strstr(e.msg, "it holds a write lock"), "%s", e.msg);
    ck_assert_int_eq(es_imglock_acquire_read(fd, top, &lk, &e), -1);
    ck_assert_msg(strstr(e.msg, "image is being written by ") && strstr(e.msg, pidstr), "%s",
                  e.msg);
    ck_assert(!es_imglock_held(&lk));
    holder_release(child, go);
    ck_assert_int_eq(es_imglock_acquire_write(fd, top, &lk, &e), 0);
    es_imglock_release(&lk);

    /* Readers share; a writer is refused by a reader. */
    child = holder_child(false, &go);
    snprintf(pidstr, sizeof pidstr, "process %d (", (int)child);
    ck_assert_int_eq(es_imglock_acquire_read(fd, top, &lk, &e), 0);
    es_imglock_release(&lk);
    ck_assert_int_eq(es_imglock_acquire_write(fd, top, &lk, &e), -1);
    ck_assert_msg(strstr(e.msg, pidstr) && strstr(e.msg, "does not allow others to write it"),
                  "%s", e.msg);
    ck_assert_int_eq(lk.conflict.byte, 201);
    holder_release(child, go);
    close(fd);
    remove_images();
}
END_TEST

/* OFD locks belong to the open file description: a second open() in the same
 * process is another user; the lock's own descriptor never conflicts. */
START_TEST(same_process_second_descriptor)
{
    make_images();
    int fd1 = open_or_die(top, O_RDWR), fd2 = open_or_die(top, O_RDONLY);
    es_err e = {0};
    es_imglock lk = {0};
    es_lock_holder h;
    ck_assert_int_eq(es_imglock_acquire_write(fd1, top, &lk, &e), 0);
    ck_assert_int_eq(es_imglock_probe_write(fd1, top, &h, &e), 0);
    ck_assert_int_eq(es_imglock_acquire_write(fd1, top, &lk, &e), 0); /* idempotent */
    ck_assert_int_eq(es_imglock_probe_write(fd2, top, &h, &e), -1);
    ck_assert_int_eq(h.pid, getpid());
    close(fd1);
    ck_assert_int_eq(es_imglock_probe_write(fd2, top, &h, &e), 0);
    close(fd2);
    remove_images();
}
END_TEST

/* Reopen read-write the way QEMU does: upgrade in place, then move. */
START_TEST(upgrade_and_move)
{
    make_images();
    int ro = open_or_die(top, O_RDONLY), other = open_or_die(top, O_RDONLY);
    es_err e = {0};
    es_imglock lk = {0};
    ck_assert_int_eq(es_imglock_acquire_read(ro, top, &lk, &e), 0);
    ck_assert_str_eq(locked_bytes(top), R_SET);
    ck_assert_int_eq(es_imglock_acquire_write(ro, top, &lk, &e), 0);
    ck_assert_str_eq(locked_bytes(top), W_SET);
    int rw = open_or_die(top, O_RDWR);
    ck_assert_int_eq(es_imglock_acquire_write(rw, top, &lk, &e), -1);
    ck_assert_int_eq(e.errnum, EINVAL);
    ck_assert_int_eq(es_imglock_move(&lk, rw, top, &e), 0);
    ck_assert_int_eq(own_lock_lines(ro), 0);
    ck_assert_int_gt(own_lock_lines(rw), 0);
    close(ro);
    ck_assert_str_eq(locked_bytes(top), W_SET);
    ck_assert_int_eq(es_imglock_probe_read(other, top, NULL, &e), -1);
    es_imglock_release(&lk);
    ck_assert_str_eq(locked_bytes(top), "");
    ck_assert_int_eq(es_imglock_probe_read(other, top, NULL, &e), 0);
    close(rw);
    close(other);
    remove_images();
}
END_TEST

START_TEST(os_errors)
{
    es_err e = {0};
    ck_assert_int_eq(es_imglock_probe_write(-1, "/x/y.qcow2", NULL, &e), -1);
    ck_assert_int_eq(e.errnum, EBADF);
    ck_assert_str_eq(e.path, "/x/y.qcow2");
    ck_assert_msg(strstr(e.msg, "cannot test image lock byte"), "%s", e.msg);
    es_imglock lk = {0};
    ck_assert_int_eq(es_imglock_acquire_read(-1, "/x/y.qcow2", &lk, &e), -1);
    ck_assert_int_eq(e.errnum, EBADF);
    ck_assert(!es_imglock_held(&lk));
    ck_assert_int_eq(es_imglock_acquire(0, "/x", 0x10, 0, &lk, &e), -1);
    ck_assert_int_eq(e.errnum, EINVAL);
}
END_TEST

static Suite *imglock_suite(void)
{
    Suite *s = suite_create("imglock");
    TCase *tc = tcase_create("qemu");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, same_bytes_as_qemu);
    tcase_add_test(tc, vm_running);
    tcase_add_test(tc, extsnap_locks_stop_qemu);
    tcase_add_test(tc, two_extsnap_holders);
    tcase_add_test(tc, same_process_second_descriptor);
    tcase_add_test(tc, upgrade_and_move);
    tcase_add_test(tc, os_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    const char *tmp = getenv("ES_TEST_TMP");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    mkdir(tmp, 0755);
    snprintf(dir, sizeof dir, "%s/imglock.XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        perror(dir);
        return EXIT_FAILURE;
    }
    snprintf(top, sizeof top, "%s/top.qcow2", dir);
    snprintf(base, sizeof base, "%s/base.qcow2", dir);
    snprintf(logfile, sizeof logfile, "%s/log", dir);

    SRunner *sr = srunner_create(imglock_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_images();
    rmdir(dir);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
