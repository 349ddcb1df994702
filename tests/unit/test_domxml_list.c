/* domxml/snapshot_list: loading a domain's snapshot directory the way
 * libvirt does, and the rules that keep the tree consistent. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "domxml/snapshot_list.h"
#include "test_domxml_util.h"

static char dir[4096];

static void put_fixture(const char *fixture, const char *as)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, as);
    char *text = read_fixture(fixture, NULL);
    write_all(path, text, 0600);
    free(text);
}

/* A minimal valid snapshot file. */
static void put_snap(const char *file, const char *name, const char *parent, int active)
{
    char path[8192], text[1024], par[256] = "";
    if (parent)
        snprintf(par, sizeof par, "  <parent>\n    <name>%s</name>\n  </parent>\n", parent);
    snprintf(text, sizeof text,
             "<domainsnapshot>\n  <name>%s</name>\n  <state>shutoff</state>\n%s"
             "  <creationTime>1</creationTime>\n  <active>%d</active>\n</domainsnapshot>\n",
             name, par, active);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    write_all(path, text, 0600);
}

static domxml_snapshot_list *load_ok(unsigned flags)
{
    es_err e = {0};
    domxml_snapshot_list *l = NULL;
    ck_assert_msg(domxml_snapshot_list_load(NULL, dir, flags, &l, &e) == 0, "%s", err_text(&e));
    return l;
}

static void check_fails(const char *want)
{
    domxml_snapshot_list *l = load_ok(0);
    es_err e = {0};
    ck_assert_int_lt(domxml_snapshot_list_check(l, 0, &e), 0);
    ck_assert_msg(strstr(e.msg, want) != NULL, "message '%s' lacks '%s'", e.msg, want);
    domxml_snapshot_list_free(l);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "%s", scratch_dir("list"));
}

/* The state libvirt left after s3: s1 <- s2 <- s3 (current). */
static void put_libvirt_tree(void)
{
    put_fixture("libvirt-9.0/03-snapshot-s1-after-s2.xml", "s1.xml");
    put_fixture("libvirt-9.0/04-snapshot-s2-after-s3.xml", "s2.xml");
    put_fixture("libvirt-9.0/04-snapshot-s3.xml", "s3.xml");
}

START_TEST(loads_libvirts_tree)
{
    put_libvirt_tree();
    domxml_snapshot_list *l = load_ok(0);
    es_err e = {0};
    ck_assert_msg(domxml_snapshot_list_check(l, 0, &e) == 0, "%s", err_text(&e));
    ck_assert_uint_eq(l->n, 3);
    ck_assert_str_eq(l->files[0], "s1.xml");
    ck_assert_str_eq(domxml_snapshot_list_current(l)->name, "s3");
    ck_assert_ptr_null(domxml_snapshot_list_find(l, "s4"));
    ck_assert_str_eq(domxml_snapshot_list_find(l, "s2")->parent, "s1");

    domxml_snapshot **kids;
    size_t n;
    ck_assert_int_eq(domxml_snapshot_list_children(l, "s1", &kids, &n, &e), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(kids[0]->name, "s2");
    free(kids);
    ck_assert_int_eq(domxml_snapshot_list_children(l, NULL, &kids, &n, &e), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(kids[0]->name, "s1");
    free(kids);
    ck_assert_int_eq(domxml_snapshot_list_children(l, "s3", &kids, &n, &e), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(kids);
    domxml_snapshot_list_free(l);
}
END_TEST

START_TEST(branches)
{
    put_snap("a.xml", "a", NULL, 0);
    put_snap("b.xml", "b", "a", 0);
    put_snap("c.xml", "c", "a", 1);
    domxml_snapshot_list *l = load_ok(0);
    es_err e = {0};
    ck_assert_int_eq(domxml_snapshot_list_check(l, 0, &e), 0);
    domxml_snapshot **kids;
    size_t n;
    ck_assert_int_eq(domxml_snapshot_list_children(l, "a", &kids, &n, &e), 0);
    ck_assert_uint_eq(n, 2);
    free(kids);
    domxml_snapshot_list_free(l);
}
END_TEST

START_TEST(missing_directory_is_empty)
{
    strcat(dir, "/none");
    domxml_snapshot_list *l = load_ok(0);
    ck_assert_uint_eq(l->n, 0);
    es_err e = {0};
    ck_assert_int_eq(domxml_snapshot_list_check(l, 0, &e), 0);
    ck_assert_ptr_null(domxml_snapshot_list_current(l));
    domxml_snapshot_list_free(l);
}
END_TEST

START_TEST(two_current)
{
    put_fixture("libvirt-9.0/02-snapshot-s1.xml", "s1.xml"); /* still active 1 */
    put_fixture("libvirt-9.0/04-snapshot-s2-after-s3.xml", "s2.xml");
    put_fixture("libvirt-9.0/04-snapshot-s3.xml", "s3.xml");
    check_fails("snapshots 's1' and 's3' both claim to be current");
    /* What 'extsnap current' loads to repair it; the other rules still hold. */
    domxml_snapshot_list *l = load_ok(0);
    es_err e = {0};
    ck_assert_int_eq(domxml_snapshot_list_check(l, DOMXML_CHECK_ALLOW_MANY_CURRENT, &e), 0);
    domxml_snapshot_list_free(l);
    put_snap("s4.xml", "s4", "nope", 0);
    l = load_ok(0);
    ck_assert_int_lt(domxml_snapshot_list_check(l, DOMXML_CHECK_ALLOW_MANY_CURRENT, &e), 0);
    ck_assert_msg(strstr(e.msg, "nope") != NULL, "%s", e.msg);
    domxml_snapshot_list_free(l);
}
END_TEST

START_TEST(no_current)
{
    put_fixture("libvirt-9.0/03-snapshot-s1-after-s2.xml", "s1.xml");
    put_fixture("libvirt-9.0/04-snapshot-s2-after-s3.xml", "s2.xml");
    put_fixture("libvirt-9.0/06-handmade-snapshot-s3-active0.xml", "s3.xml");
    check_fails("no snapshot is current");
    domxml_snapshot_list *l = load_ok(0);
    es_err e = {0};
    ck_assert_int_eq(domxml_snapshot_list_check(l, DOMXML_CHECK_ALLOW_NO_CURRENT, &e), 0);
    domxml_snapshot_list_free(l);
}
END_TEST

START_TEST(missing_parent)
{
    put_fixture("libvirt-9.0/04-snapshot-s2-after-s3.xml", "s2.xml");
    put_fixture("libvirt-9.0/04-snapshot-s3.xml", "s3.xml");
    check_fails("snapshot 's2' has parent 's1', which does not exist");
}
END_TEST

START_TEST(parent_cycle)
{
    put_snap("a.xml", "a", "c", 1);
    put_snap("b.xml", "b", "a", 0);
    put_snap("c.xml", "c", "b", 0);
    check_fails("is in a parent cycle");
}
END_TEST

START_TEST(self_parent)
{
    put_snap("a.xml", "a", "a", 1);
    check_fails("snapshot 'a' is in a parent cycle");
}
END_TEST

START_TEST(bad_names)
{
    put_snap("base.xml", "base", NULL, 1);
    check_fails("invalid snapshot name 'base'");
    setup();
    put_snap(".hidden.xml", ".hidden", NULL, 1);
    check_fails("can't start with '.'");
    setup();
    put_snap("x.xml", "a/b", NULL, 1);
    check_fails("can't contain '/'");
}
END_TEST

START_TEST(file_name_must_match)
{
    put_snap("s9.xml", "s1", NULL, 1);
    check_fails("holds snapshot 's1', but libvirt reads and writes it only as s1.xml");
}
END_TEST

START_TEST(duplicate_names)
{
    put_snap("s1.xml", "s1", NULL, 1);
    put_snap("copy.xml", "s1", NULL, 0);
    check_fails("snapshot 's1' is defined twice, in copy.xml and s1.xml");
}
END_TEST

START_TEST(bad_file_named)
{
    put_libvirt_tree();
    char path[8192];
    snprintf(path, sizeof path, "%s/README.txt", dir);
    write_all(path, "not xml at all\n", 0644);
    es_err e = {0};
    domxml_snapshot_list *l = NULL;
    ck_assert_int_lt(domxml_snapshot_list_load(NULL, dir, 0, &l, &e), 0);
    ck_assert_ptr_null(l);
    ck_assert_str_eq(e.path, path);
    ck_assert_msg(strstr(e.msg, "cannot load snapshot metadata") != NULL, "%s", e.msg);

    l = load_ok(DOMXML_LOAD_SKIP_BAD);
    ck_assert_uint_eq(l->n, 3);
    ck_assert_uint_eq(l->nbad, 1);
    ck_assert_str_eq(l->bad_files[0], "README.txt");
    ck_assert_ptr_nonnull(strstr(l->bad_errors[0], "README.txt"));
    domxml_snapshot_list_free(l);
}
END_TEST

START_TEST(every_entry_is_read)
{
    /* like libvirt, hidden and non-.xml entries count */
    put_libvirt_tree();
    put_snap(".s9.xml.new", "s9", "s3", 0);
    check_fails("holds snapshot 's9'");
}
END_TEST

START_TEST(under_root)
{
    char root[4096], sub[8192], etc[8192], link[8192];
    pathf(root, sizeof root, "%s", dir);
    pathf(sub, sizeof sub, "%s/var/lib/libvirt/qemu/snapshot/lvtest", root);
    pathf(etc, sizeof etc, "%s/etc", root);
    mkdir_p(sub);
    mkdir_p(etc);
    pathf(dir, sizeof dir, "%s", etc);
    put_snap("elsewhere.xml", "s2", "s1", 1);
    pathf(dir, sizeof dir, "%s", sub);
    put_snap("s1.xml", "s1", NULL, 0);
    /* an absolute symlink means the file under the root, not on the host */
    pathf(link, sizeof link, "%s/s2.xml", sub);
    ck_assert_int_eq(symlink("/etc/elsewhere.xml", link), 0);

    es_err e = {0};
    domxml_snapshot_list *l = NULL;
    ck_assert_msg(domxml_snapshot_list_load(root, "/var/lib/libvirt/qemu/snapshot/lvtest", 0, &l, &e) == 0,
                  "%s", err_text(&e));
    ck_assert_uint_eq(l->n, 2);
    ck_assert_int_eq(domxml_snapshot_list_check(l, 0, &e), 0);
    ck_assert_str_eq(domxml_snapshot_list_current(l)->name, "s2");
    domxml_snapshot_list_free(l);

    /* a link out of the root is refused */
    ck_assert_int_eq(unlink(link), 0);
    ck_assert_int_eq(symlink("../../../../../../../etc/elsewhere.xml", link), 0);
    ck_assert_int_lt(domxml_snapshot_list_load(root, "/var/lib/libvirt/qemu/snapshot/lvtest", 0, &l, &e), 0);
    ck_assert_ptr_nonnull(strstr(e.msg, "outside the root"));
}
END_TEST

static Suite *list_suite(void)
{
    Suite *s = suite_create("domxml_list");
    TCase *tc = tcase_create("list");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, loads_libvirts_tree);
    tcase_add_test(tc, branches);
    tcase_add_test(tc, missing_directory_is_empty);
    tcase_add_test(tc, two_current);
    tcase_add_test(tc, no_current);
    tcase_add_test(tc, missing_parent);
    tcase_add_test(tc, parent_cycle);
    tcase_add_test(tc, self_parent);
    tcase_add_test(tc, bad_names);
    tcase_add_test(tc, file_name_must_match);
    tcase_add_test(tc, duplicate_names);
    tcase_add_test(tc, bad_file_named);
    tcase_add_test(tc, every_entry_is_read);
    tcase_add_test(tc, under_root);
    suite_add_tcase(s, tc);
    return s;
}

RUN_SUITE(list_suite)
