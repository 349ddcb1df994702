/* util's shared helpers: reading a whole file, telling a path from a name,
 * string copies. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/readfile.h"
#include "util/str.h"
#include "util/strv.h"
#include "util/xalloc.h"

static char dir[PATH_MAX];

static void make_dir(void)
{
    const char *base = getenv("ES_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0755);
    snprintf(dir, sizeof dir, "%s/util-helpers-XXXXXX", base);
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static const char *put(const char *name, const char *text, size_t len)
{
    static char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    fclose(f);
    return p;
}

START_TEST(read_whole_file)
{
    make_dir();
    const char *p = put("a", "a\0b", 3);
    es_err e = {0};
    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(es_read_file(p, 3, &text, &len, &e), 0);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(memcmp(text, "a\0b", 4), 0); /* and NUL-terminated */
    free(text);
}
END_TEST

START_TEST(read_empty_file)
{
    make_dir();
    const char *p = put("empty", "", 0);
    es_err e = {0};
    char *text = NULL;
    size_t len = 7;
    bool exists = false;
    ck_assert_int_eq(es_read_file_if_exists(p, 16, &text, &len, &exists, &e), 0);
    ck_assert(exists);
    ck_assert_uint_eq(len, 0);
    ck_assert_ptr_nonnull(text);
    ck_assert_str_eq(text, "");
    free(text);
}
END_TEST

START_TEST(read_missing_file)
{
    make_dir();
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/none", dir);
    es_err e = {0};
    char *text = NULL;
    size_t len = 0;
    bool exists = true;
    ck_assert_int_eq(es_read_file_if_exists(p, 16, &text, &len, &exists, &e), 0);
    ck_assert(!exists);
    ck_assert_ptr_null(text);
    ck_assert_int_lt(es_read_file(p, 16, &text, &len, &e), 0);
    ck_assert_int_eq(e.errnum, ENOENT);
    ck_assert_str_eq(e.path, p);
    ck_assert_ptr_null(text);
}
END_TEST

START_TEST(read_too_big_file)
{
    make_dir();
    const char *p = put("big", "12345", 5);
    es_err e = {0};
    char *text = NULL;
    size_t len = 0;
    bool exists = false;
    ck_assert_int_lt(es_read_file(p, 4, &text, &len, &e), 0);
    ck_assert_int_eq(e.errnum, EFBIG);
    ck_assert_ptr_null(text);
    ck_assert_int_lt(es_read_file_if_exists(p, 4, &text, &len, &exists, &e), 0);
    ck_assert_int_eq(e.errnum, EFBIG);
    ck_assert(!exists);
    ck_assert_ptr_null(text);
    ck_assert_int_eq(es_read_file(p, 5, &text, &len, &e), 0); /* the limit itself is fine */
    ck_assert_str_eq(text, "12345");
    free(text);
}
END_TEST

START_TEST(read_directory_refused)
{
    make_dir();
    es_err e = {0};
    char *text = NULL;
    size_t len = 0;
    ck_assert_int_lt(es_read_file(dir, 1 << 20, &text, &len, &e), 0);
    ck_assert_ptr_null(text);
}
END_TEST

START_TEST(path_or_name)
{
    ck_assert(es_looks_like_path("/etc/libvirt/qemu/vm.xml"));
    ck_assert(es_looks_like_path("./vm"));
    ck_assert(es_looks_like_path("dir/vm"));
    ck_assert(es_looks_like_path("vm.xml"));
    ck_assert(!es_looks_like_path("vm"));
    ck_assert(!es_looks_like_path(".xml")); /* nothing before the suffix: a name */
    ck_assert(!es_looks_like_path("vm.xml.bak"));
    ck_assert(!es_looks_like_path("vmxml"));
    ck_assert(!es_looks_like_path(""));
}
END_TEST

START_TEST(directory_part)
{
    static const char *const cases[][2] = {
        {"a.qcow2", "."},   {"/a.qcow2", "/"},   {"/var/lib/a", "/var/lib"},
        {"d/a", "d"},       {"d/", "d"},         {"/d/e/", "/d/e"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *d = es_path_dir(cases[i][0]);
        ck_assert_msg(strcmp(d, cases[i][1]) == 0, "es_path_dir(%s) = %s, expected %s",
                      cases[i][0], d, cases[i][1]);
        free(d);
    }
}
END_TEST

START_TEST(string_copies)
{
    es_err e = {0};
    char *s = (char *)"x";
    ck_assert_int_eq(es_strdup(NULL, &s, &e), 0);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(es_strdup("abc", &s, &e), 0);
    ck_assert_str_eq(s, "abc");
    free(s);
    ck_assert_int_eq(es_strdup_len("ab\0cd", 4, &s, &e), 0);
    ck_assert_int_eq(memcmp(s, "ab\0c\0", 5), 0);
    free(s);
    ck_assert_int_eq(es_asprintf(&s, &e, "%s-%d", "a", 7), 0);
    ck_assert_str_eq(s, "a-7");
    free(s);
    ck_assert(es_streq(NULL, NULL));
    ck_assert(!es_streq("a", NULL));
    ck_assert(es_streq("a", "a"));

    es_strv v = {0};
    ck_assert_int_eq(es_strv_add(&v, "one", &e), 0);
    ck_assert_int_eq(es_strv_addf(&v, &e, "%s", "two"), 0);
    ck_assert_uint_eq(v.n, 2);
    ck_assert(es_strv_has(&v, "two"));
    ck_assert(!es_strv_has(&v, "three"));
    es_strv_free(&v);
    ck_assert_uint_eq(v.n, 0);
}
END_TEST

/* Run fn in a child whose nth allocation fails; its exit status and what it
 * wrote on stderr come back. */
static int run_failing(unsigned long nth, void (*fn)(void), char *err, size_t errlen)
{
    int pipefd[2];
    ck_assert_int_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(pipefd[1], STDERR_FILENO);
        close(pipefd[0]);
        es_xalloc_fail_at(nth);
        fn();
        _exit(0);
    }
    close(pipefd[1]);
    ssize_t n = read(pipefd[0], err, errlen - 1);
    err[n > 0 ? n : 0] = '\0';
    close(pipefd[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void three_copies(void)
{
    es_err e = {0};
    char *a = NULL, *b = NULL, *c = NULL;
    es_strdup("a", &a, &e);
    es_strdup_len("b", 1, &b, &e);
    c = es_xasprintf("%s", "c");
    free(a);
    free(b);
    free(c);
}

static void grow_a_list(void)
{
    es_err e = {0};
    es_strv v = {0};
    for (int i = 0; i < 100; i++)
        es_strv_addf(&v, &e, "%d", i);
    es_strv_free(&v);
}

START_TEST(out_of_memory_ends_the_process)
{
    char err[256];
    ck_assert_int_eq(run_failing(0, three_copies, err, sizeof err), 0);
    ck_assert_str_eq(err, "");
    for (unsigned long nth = 1; nth <= 3; nth++) {
        ck_assert_int_eq(run_failing(nth, three_copies, err, sizeof err), ES_EXIT_OOM);
        ck_assert_str_eq(err, "extsnap: out of memory\n");
    }
    ck_assert_int_eq(run_failing(4, three_copies, err, sizeof err), 0);
    ck_assert_int_eq(run_failing(150, grow_a_list, err, sizeof err), ES_EXIT_OOM);
    ck_assert_str_eq(err, "extsnap: out of memory\n");
}
END_TEST

START_TEST(library_null_is_out_of_memory)
{
    int x = 0;
    ck_assert_ptr_eq(es_xcheck(&x), &x);
    void *p = es_xmalloc(0); /* a request for nothing is not a failure */
    ck_assert_ptr_nonnull(p);
    free(p);
    ck_assert_ptr_null(es_xstrdup(NULL));
}
END_TEST

/* Messages stay one line whatever a file name or value holds. */
START_TEST(control_characters_escaped)
{
    char buf[64];
    es_str_escape_ctl(buf, sizeof buf, "a\nb\tc\rd\x01" "e\x7f\xc3\xa9");
    ck_assert_str_eq(buf, "a\\nb\\tc\\rd\\x01e\\x7f\xc3\xa9");
    es_str_escape_ctl(buf, 5, "ab\ncd");
    ck_assert_str_eq(buf, "ab\\n");
    es_str_escape_ctl(buf, 4, "ab\ncd");
    ck_assert_str_eq(buf, "ab");
    es_err e = {0};
    es_err_set(&e, 2, "/x/good\n.qcow2", "cannot open backing file %s", "b\n");
    ck_assert_str_eq(es_err_str(&e, (char[256]){0}, 256),
                     "/x/good\\n.qcow2: cannot open backing file b\\n: No such file or directory");
}
END_TEST

static Suite *helpers_suite(void)
{
    Suite *s = suite_create("util_helpers");
    TCase *tc = tcase_create("readfile");
    tcase_add_test(tc, read_whole_file);
    tcase_add_test(tc, read_empty_file);
    tcase_add_test(tc, read_missing_file);
    tcase_add_test(tc, read_too_big_file);
    tcase_add_test(tc, read_directory_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("strings");
    tcase_add_test(tc, path_or_name);
    tcase_add_test(tc, directory_part);
    tcase_add_test(tc, string_copies);
    tcase_add_test(tc, control_characters_escaped);
    suite_add_tcase(s, tc);
    tc = tcase_create("oom");
    tcase_add_test(tc, out_of_memory_ends_the_process);
    tcase_add_test(tc, library_null_is_out_of_memory);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(helpers_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
