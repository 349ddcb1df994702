/* util/rootpath: paths under --root never leave it. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/rootpath.h"

static char root[PATH_MAX];

static void make_tree(void)
{
    const char *base = getenv("ES_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0755);
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/rootpath-XXXXXX", base);
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    ck_assert_ptr_nonnull(realpath(tmpl, root));
    char p[PATH_MAX + 64];
#define AT(rel) (snprintf(p, sizeof p, "%s/%s", root, rel), p)
    ck_assert_int_eq(mkdir(AT("etc"), 0755), 0);
    ck_assert_int_eq(mkdir(AT("var"), 0755), 0);
    ck_assert_int_eq(mkdir(AT("var/lib"), 0755), 0);
    ck_assert_int_eq(mkdir(AT("images"), 0755), 0);
    FILE *f = fopen(AT("etc/file"), "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(symlink("/images", AT("var/lib/abs-link")), 0);     /* absolute, inside */
    ck_assert_int_eq(symlink("../../images", AT("var/lib/rel-link")), 0); /* relative, inside */
    ck_assert_int_eq(symlink("../../../..", AT("var/lib/rel-escape")), 0);
    ck_assert_int_eq(symlink("/etc/../..", AT("var/lib/abs-escape")), 0);
    ck_assert_int_eq(symlink("loop2", AT("var/lib/loop1")), 0);
    ck_assert_int_eq(symlink("loop1", AT("var/lib/loop2")), 0);
    ck_assert_int_eq(symlink("/etc/file", AT("var/lib/file-link")), 0);
#undef AT
}

static void expect(const char *path, const char *rel)
{
    es_err e = {0};
    char *out = NULL, want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s%s", root, rel);
    ck_assert_msg(es_root_resolve(root, path, &out, &e) == 0, "%s: %s", path, e.msg);
    ck_assert_str_eq(out, want);
    free(out);
}

static void expect_escape(const char *path)
{
    es_err e = {0};
    char *out = NULL;
    ck_assert_msg(es_root_resolve(root, path, &out, &e) < 0, "%s resolved to %s", path,
                  out ? out : "?");
    ck_assert_ptr_null(out);
    ck_assert_msg(strstr(e.msg, "outside the root") != NULL, "message: %s", e.msg);
}

START_TEST(no_root_passes_paths_through)
{
    es_err e = {0};
    char *out;
    ck_assert_int_eq(es_root_resolve(NULL, "/etc/../x", &out, &e), 0);
    ck_assert_str_eq(out, "/etc/../x");
    free(out);
    ck_assert_int_eq(es_root_resolve("", "rel/path", &out, &e), 0);
    ck_assert_str_eq(out, "rel/path");
    free(out);
}
END_TEST

/* A name written from the rescue system: DIR itself in it (as given, with
 * a trailing slash, or by its real path through a link). */
START_TEST(strip_prefix)
{
    make_tree();
    char name[PATH_MAX + 64], given[PATH_MAX + 8], link[PATH_MAX + 8];
    snprintf(name, sizeof name, "%s/var/lib/a.qcow2", root);
    ck_assert_str_eq(es_root_strip_prefix(root, name), "/var/lib/a.qcow2");
    snprintf(given, sizeof given, "%s/", root);
    ck_assert_str_eq(es_root_strip_prefix(given, name), "/var/lib/a.qcow2");
    snprintf(link, sizeof link, "%s-link", root);
    ck_assert_int_eq(symlink(root, link), 0);
    ck_assert_str_eq(es_root_strip_prefix(link, name), "/var/lib/a.qcow2");
    unlink(link);
    ck_assert_ptr_null(es_root_strip_prefix(root, "/var/lib/a.qcow2"));
    ck_assert_ptr_null(es_root_strip_prefix(NULL, name));
    ck_assert_ptr_null(es_root_strip_prefix("/", "/var/lib/a.qcow2"));
    snprintf(name, sizeof name, "%sx/a.qcow2", root); /* a sibling, not inside */
    ck_assert_ptr_null(es_root_strip_prefix(root, name));
    ck_assert_ptr_null(es_root_strip_prefix(root, "rel/a.qcow2"));
}
END_TEST

START_TEST(normal_paths)
{
    make_tree();
    expect("/etc/file", "/etc/file");
    expect("/etc//./file", "/etc/file");
    expect("/var/lib/../../etc/file", "/etc/file");
    expect("etc/file", "/etc/file"); /* relative: from the root too */
    expect("/", "");
    expect("/does/not/exist.qcow2", "/does/not/exist.qcow2");
    expect("/etc/new/../file", "/etc/file");
}
END_TEST

START_TEST(dotdot_escapes)
{
    make_tree();
    expect_escape("/..");
    expect_escape("/../etc/file");
    expect_escape("/etc/../../x");
    expect_escape("/nonexistent/../../x");
}
END_TEST

START_TEST(symlinks_inside)
{
    make_tree();
    expect("/var/lib/abs-link/vda.qcow2", "/images/vda.qcow2");
    expect("/var/lib/rel-link/vda.qcow2", "/images/vda.qcow2");
    expect("/var/lib/file-link", "/etc/file");
    expect("/var/lib/abs-link/../etc/file", "/etc/file"); /* .. after the link: from /images */
}
END_TEST

START_TEST(symlink_escapes)
{
    make_tree();
    expect_escape("/var/lib/rel-escape");
    expect_escape("/var/lib/rel-escape/etc/passwd");
    expect_escape("/var/lib/abs-escape/x");
}
END_TEST

START_TEST(symlink_loop_is_an_error)
{
    make_tree();
    es_err e = {0};
    char *out = NULL;
    ck_assert_int_lt(es_root_resolve(root, "/var/lib/loop1/x", &out, &e), 0);
    ck_assert_int_eq(e.errnum, ELOOP);
}
END_TEST

START_TEST(missing_root_is_an_error)
{
    es_err e = {0};
    char *out = NULL;
    ck_assert_int_lt(es_root_resolve("/nonexistent-root-dir-xyz", "/etc", &out, &e), 0);
    ck_assert_int_eq(e.errnum, ENOENT);
}
END_TEST

START_TEST(slash_root_is_the_host)
{
    es_err e = {0};
    char *out;
    ck_assert_int_eq(es_root_resolve("/", "/etc/../etc", &out, &e), 0);
    ck_assert_str_eq(out, "/etc");
    free(out);
}
END_TEST

START_TEST(join)
{
    es_err e = {0};
    char *out;
    ck_assert_int_eq(es_path_join("/a/", "b", &out, &e), 0);
    ck_assert_str_eq(out, "/a/b");
    free(out);
    ck_assert_int_eq(es_path_join("/", "/b", &out, &e), 0);
    ck_assert_str_eq(out, "/b");
    free(out);
}
END_TEST

static Suite *rootpath_suite(void)
{
    Suite *s = suite_create("rootpath");
    TCase *tc = tcase_create("resolve");
    tcase_add_test(tc, no_root_passes_paths_through);
    tcase_add_test(tc, normal_paths);
    tcase_add_test(tc, dotdot_escapes);
    tcase_add_test(tc, symlinks_inside);
    tcase_add_test(tc, symlink_escapes);
    tcase_add_test(tc, symlink_loop_is_an_error);
    tcase_add_test(tc, missing_root_is_an_error);
    tcase_add_test(tc, slash_root_is_the_host);
    tcase_add_test(tc, join);
    tcase_add_test(tc, strip_prefix);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(rootpath_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
