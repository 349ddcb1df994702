/* util/fileio: every path- or descriptor-level change of the file system
 * (link, rmdir, chown, chmod) is one "mutate" fault point: an injected
 * fault fails it with nothing changed, and the real call does its work. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fileio.h"

static char dir[64], file[128], other[128], sub[128];

static void setup(void)
{
    strcpy(dir, "/tmp/es-fileio-mut-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(file, sizeof file, "%s/f", dir);
    snprintf(other, sizeof other, "%s/g", dir);
    snprintf(sub, sizeof sub, "%s/d", dir);
    es_file *f = NULL;
    es_err e = {0};
    ck_assert_int_eq(es_file_open(&f, file, O_RDWR | O_CREAT | O_EXCL, 0600, &e), 0);
    es_file_close(f);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    es_fault_reset();
}

static void teardown(void)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    es_fault_reset();
}

static mode_t mode_of(const char *p)
{
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    return st.st_mode & 07777;
}

static bool exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

START_TEST(link_is_a_fault_point)
{
    es_err e = {0};
    ck_assert_int_eq(es_fault_set("mutate", 1, ES_FAULT_EIO), 0);
    ck_assert_int_eq(es_fs_link(file, other, &e), -1);
    ck_assert_int_eq(e.errnum, EIO);
    ck_assert(!exists(other));
    ck_assert_int_eq(es_fs_link(file, other, &e), 0);
    ck_assert(exists(other));
    ck_assert_uint_eq(es_fault_count("mutate"), 2);
    ck_assert_int_eq(es_fs_link(file, other, &e), -1); /* a real error passes through */
    ck_assert_int_eq(e.errnum, EEXIST);
}
END_TEST

START_TEST(rmdir_is_a_fault_point)
{
    es_err e = {0};
    ck_assert_int_eq(es_fault_set("mutate", 1, ES_FAULT_ENOSPC), 0);
    ck_assert_int_eq(es_fs_rmdir(sub, &e), -1);
    ck_assert_int_eq(e.errnum, ENOSPC);
    ck_assert(exists(sub));
    ck_assert_int_eq(es_fs_rmdir(sub, &e), 0);
    ck_assert(!exists(sub));
    ck_assert_uint_eq(es_fault_count("mutate"), 2);
}
END_TEST

START_TEST(chmod_is_a_fault_point)
{
    es_err e = {0};
    ck_assert_int_eq(es_fault_set("mutate", 1, ES_FAULT_EIO), 0);
    ck_assert_int_eq(es_fs_chmod(file, 0640, &e), -1);
    ck_assert_uint_eq(mode_of(file), 0600);
    ck_assert_int_eq(es_fs_chmod(file, 0640, &e), 0);
    ck_assert_uint_eq(mode_of(file), 0640);
    es_file *f = NULL;
    ck_assert_int_eq(es_file_open(&f, file, O_RDWR, 0, &e), 0);
    ck_assert_int_eq(es_fault_set("mutate", 3, ES_FAULT_EIO), 0);
    ck_assert_int_eq(es_file_chmod(f, 0604, &e), -1);
    ck_assert_uint_eq(mode_of(file), 0640);
    ck_assert_int_eq(es_file_chmod(f, 0604, &e), 0);
    ck_assert_uint_eq(mode_of(file), 0604);
    es_file_close(f);
    ck_assert_uint_eq(es_fault_count("mutate"), 4);
}
END_TEST

START_TEST(chown_is_a_fault_point)
{
    es_err e = {0};
    uid_t u = getuid();
    gid_t g = getgid();
    ck_assert_int_eq(es_fault_set("mutate", 1, ES_FAULT_EIO), 0);
    ck_assert_int_eq(es_fs_chown(file, u, g, &e), -1);
    ck_assert_int_eq(e.errnum, EIO);
    ck_assert_int_eq(es_fs_chown(file, u, g, &e), 0); /* to oneself: always allowed */
    es_file *f = NULL;
    ck_assert_int_eq(es_file_open(&f, file, O_RDWR, 0, &e), 0);
    ck_assert_int_eq(es_fault_set("mutate", 3, ES_FAULT_EIO), 0);
    ck_assert_int_eq(es_file_chown(f, u, g, &e), -1);
    ck_assert_int_eq(e.errnum, EIO);
    ck_assert_int_eq(es_file_chown(f, u, g, &e), 0);
    es_file_close(f);
    ck_assert_uint_eq(es_fault_count("mutate"), 4);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fileio_mutate");
    TCase *tc = tcase_create("mutate");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, link_is_a_fault_point);
    tcase_add_test(tc, rmdir_is_a_fault_point);
    tcase_add_test(tc, chmod_is_a_fault_point);
    tcase_add_test(tc, chown_is_a_fault_point);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
