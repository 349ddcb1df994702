/* util/fileio under a root (es_io_root_set): every open, create, rename,
 * unlink, mkdir, stat and directory listing of a path under the root stays
 * inside it, whatever symbolic links the tree holds or grows meanwhile. Each
 * case runs twice: with openat2 (where the kernel has it) and with the
 * fallback walk (es_io_root_walk_only). The race cases swap a directory
 * with a link leaving the root (renameat2 RENAME_EXCHANGE) in a child
 * process while the parent opens a path through it again and again. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/fileio_root.h"

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static char top[PATH_MAX];  /* holds root/ and outside/ */
static char root[PATH_MAX + 8], outside[PATH_MAX + 16];
/* A path under dir, in one of a few rotating buffers (two may be live). */
static const char *at(const char *dir, const char *rel)
{
    static char bufs[4][PATH_MAX + 128];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, rel);
    return b;
}
#define IN(rel) at(root, rel)
#define OUT(rel) at(outside, rel)

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

/* The whole content of a path opened through the I/O layer, or NULL
 * (errno in *err). */
static char *slurp(const char *path, int *err)
{
    es_file *f = NULL;
    es_err e = {0};
    if (es_file_open(&f, path, O_RDONLY, 0, &e) < 0) {
        *err = e.errnum;
        return NULL;
    }
    static char buf[256];
    size_t got = 0;
    ck_assert_int_eq(es_file_pread_some(f, buf, sizeof buf - 1, 0, &got, &e), 0);
    buf[got] = '\0';
    es_file_close(f);
    *err = 0;
    return buf;
}

static void make_tree(void)
{
    const char *base = getenv("ES_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0755);
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/fileio-root-XXXXXX", base);
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    ck_assert_ptr_nonnull(realpath(tmpl, top));
    snprintf(root, sizeof root, "%s/root", top);
    snprintf(outside, sizeof outside, "%s/outside", top);
    ck_assert_int_eq(mkdir(root, 0755), 0);
    ck_assert_int_eq(mkdir(outside, 0755), 0);
    ck_assert_int_eq(mkdir(IN("a"), 0755), 0);
    put(IN("a/file"), "in");
    put(OUT("file"), "out");
    ck_assert_int_eq(mkdir(OUT("a"), 0755), 0);
    put(OUT("a/file"), "out");
    ck_assert_int_eq(symlink("/a", IN("abs")), 0);             /* absolute: from the root */
    ck_assert_int_eq(symlink("../../../../..", IN("up")), 0);  /* ".." stops at the root */
    ck_assert_int_eq(symlink(outside, IN("out")), 0);          /* names nothing under the root */
    ck_assert_int_eq(symlink("../outside", IN("rel-out")), 0); /* climbs out: clamped */
    ck_assert_int_eq(symlink("/a/new", IN("dangling")), 0);
    ck_assert_int_eq(symlink("/proc/self/root", IN("magic")), 0);
    es_err e = {0};
    ck_assert_int_eq(es_io_root_set(root, &e), 0);
}

static void setup_openat2(void)
{
    es_io_root_walk_only(false);
    make_tree();
}

static void setup_walk(void)
{
    es_io_root_walk_only(true);
    make_tree();
}

START_TEST(opens_resolve_inside)
{
    int err;
    char *s = slurp(IN("a/file"), &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "in");
    s = slurp(IN("abs/file"), &err);
    ck_assert_msg(s && strcmp(s, "in") == 0, "abs/file: %s", s ? s : strerror(err));
    s = slurp(IN("up/a/file"), &err);
    ck_assert_msg(s && strcmp(s, "in") == 0, "up/a/file: %s", s ? s : strerror(err));
    s = slurp(IN("rel-out/file"), &err);
    ck_assert_msg(!s && err == ENOENT, "rel-out/file: %s", s ? s : strerror(err));
    s = slurp(IN("out/file"), &err);
    ck_assert_msg(!s && err == ENOENT, "out/file: %s", s ? s : strerror(err));
    s = slurp(IN("magic/a/file"), &err);
    ck_assert_msg(!s, "magic/a/file read %s", s);
    /* Outside the root, paths are the host's. */
    s = slurp(OUT("file"), &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "out");
}
END_TEST

START_TEST(creates_resolve_inside)
{
    es_file *f = NULL;
    es_err e = {0};
    /* Through a dangling absolute link: created inside, at the link's target. */
    ck_assert_int_eq(es_file_open(&f, IN("dangling"), O_WRONLY | O_CREAT, 0644, &e), 0);
    es_file_close(f);
    struct stat st;
    ck_assert_int_eq(stat(IN("a/new"), &st), 0);
    /* O_EXCL on a link: EEXIST, as open(2). */
    ck_assert_int_eq(es_file_open(&f, IN("abs"), O_WRONLY | O_CREAT | O_EXCL, 0644, &e), -1);
    ck_assert_int_eq(e.errnum, EEXIST);
    ck_assert_int_eq(es_file_open(&f, IN("out/created"), O_WRONLY | O_CREAT, 0644, &e), -1);
    ck_assert_int_eq(stat(OUT("created"), &st), -1);
}
END_TEST

START_TEST(path_operations_resolve_inside)
{
    es_err e = {0};
    struct stat st;
    ck_assert_int_eq(es_fs_mkdir(IN("abs/dir"), 0755, &e), 0);
    ck_assert_int_eq(stat(IN("a/dir"), &st), 0);
    ck_assert_int_eq(es_fs_mkdir(IN("out/dir"), 0755, &e), -1);
    ck_assert_int_eq(stat(OUT("dir"), &st), -1);
    ck_assert_int_eq(es_fs_rename(IN("abs/file"), IN("up/a/moved"), &e), 0);
    ck_assert_int_eq(stat(IN("a/moved"), &st), 0);
    ck_assert_int_eq(es_fs_rename(IN("a/moved"), IN("out/moved"), &e), -1);
    ck_assert_int_eq(es_fs_unlink(IN("out/file"), &e), -1);
    ck_assert_int_eq(stat(OUT("file"), &st), 0);
    /* The last component is the link itself, never its target. */
    ck_assert_int_eq(es_fs_unlink(IN("out"), &e), 0);
    ck_assert_int_eq(lstat(IN("out"), &st), -1);
    ck_assert_int_eq(stat(outside, &st), 0);
    ck_assert_int_eq(es_fs_fsync_dir(IN("up/a"), &e), 0);
    ck_assert_int_eq(es_fs_fsync_dir(IN("rel-out"), &e), -1);

    ck_assert_int_eq(es_fs_stat(IN("abs"), &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(es_fs_lstat(IN("abs"), &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_eq(es_fs_stat(IN("rel-out/file"), &st), -1);
    ck_assert_int_eq(errno, ENOENT);
    char buf[64];
    ssize_t n = es_fs_readlink(IN("abs"), buf, sizeof buf);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(memcmp(buf, "/a", 2), 0);
    DIR *d = es_fs_opendir(IN("up/a"));
    ck_assert_ptr_nonnull(d);
    int seen = 0;
    for (struct dirent *de; (de = readdir(d));)
        seen += strcmp(de->d_name, "moved") == 0;
    closedir(d);
    ck_assert_int_eq(seen, 1);
    ck_assert_ptr_null(es_fs_opendir(IN("rel-out")));
}
END_TEST

/* A child exchanges root/a (a directory) and root/swap (a link to the
 * outside directory, which holds a/file too) until killed. */
static pid_t start_swapper(const char *link_target)
{
    ck_assert_int_eq(symlink(link_target, IN("swap")), 0);
    char a[PATH_MAX + 16], b[PATH_MAX + 16];
    snprintf(a, sizeof a, "%s/a", root);
    snprintf(b, sizeof b, "%s/swap", root);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        for (;;)
            if (syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) < 0)
                _exit(1);
    }
    return pid;
}

static void race(const char *link_target)
{
    pid_t pid = start_swapper(link_target);
    int inside = 0, escaped = 0;
    es_err e = {0};
    for (int i = 0; i < 4000; i++) {
        int err;
        char *s = slurp(IN("a/file"), &err);
        if (s && strcmp(s, "out") == 0)
            escaped++;
        else if (s)
            inside++;
        /* a file created through the swapped directory */
        es_file *f = NULL;
        if (es_file_open(&f, IN("a/created"), O_WRONLY | O_CREAT, 0644, &e) == 0) {
            es_file_close(f);
            es_fs_unlink(IN("a/created"), &e);
        }
        es_fs_mkdir(IN("a/made"), 0755, &e);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    struct stat st;
    ck_assert_msg(escaped == 0, "read the outside file %d times (inside: %d)", escaped, inside);
    ck_assert_msg(stat(OUT("created"), &st) < 0, "created a file outside the root");
    ck_assert_msg(stat(OUT("made"), &st) < 0, "made a directory outside the root");
    ck_assert_msg(inside > 0, "never read the inside file");
}

START_TEST(race_absolute_link) { race(outside); }
END_TEST

START_TEST(race_relative_link) { race("../outside"); }
END_TEST

/* The syscall equivalents for the wrappers that are not in fileio.c yet
 * (link, rmdir, chown, chmod): same confinement. */
START_TEST(syscall_equivalents_resolve_inside)
{
    struct stat st;
    ck_assert_int_eq(es_root_link(IN("abs/file"), IN("up/a/linked")), 0);
    ck_assert_int_eq(stat(IN("a/linked"), &st), 0);
    ck_assert_int_eq(st.st_nlink, 2);
    ck_assert_int_eq(es_root_link(IN("out/file"), IN("a/stolen")), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(es_root_chmod(IN("abs/file"), 0600), 0);
    ck_assert_int_eq(stat(IN("a/file"), &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(es_root_chmod(IN("out/file"), 0600), -1);
    ck_assert_int_eq(stat(OUT("file"), &st), 0);
    ck_assert_int_ne(st.st_mode & 07777, 0600);
    ck_assert_int_eq(es_root_chown(IN("abs/file"), getuid(), getgid()), 0);
    ck_assert_int_eq(es_root_chown(IN("rel-out/file"), getuid(), getgid()), -1);
    ck_assert_int_eq(mkdir(IN("a/empty"), 0755), 0);
    ck_assert_int_eq(es_root_rmdir(IN("abs/empty")), 0);
    ck_assert_int_eq(stat(IN("a/empty"), &st), -1);
    ck_assert_int_eq(es_root_rmdir(IN("out/a")), -1);
    ck_assert_int_eq(stat(OUT("a"), &st), 0);
}
END_TEST

static Suite *fileio_root_suite(void)
{
    Suite *s = suite_create("fileio_root");
    TCase *modes[2] = {tcase_create("openat2"), tcase_create("walk")};
    tcase_add_checked_fixture(modes[0], setup_openat2, NULL);
    tcase_add_checked_fixture(modes[1], setup_walk, NULL);
    for (int i = 0; i < 2; i++) {
        tcase_set_timeout(modes[i], 60);
        tcase_add_test(modes[i], opens_resolve_inside);
        tcase_add_test(modes[i], creates_resolve_inside);
        tcase_add_test(modes[i], path_operations_resolve_inside);
        tcase_add_test(modes[i], syscall_equivalents_resolve_inside);
        tcase_add_test(modes[i], race_absolute_link);
        tcase_add_test(modes[i], race_relative_link);
        suite_add_tcase(s, modes[i]);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(fileio_root_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
