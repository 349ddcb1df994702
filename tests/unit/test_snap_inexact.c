/* snap/inexact: the record of snapshots a cancelled online delete/commit
 * left inexact: round trip, entries that no longer apply, forgetting what a
 * finished operation removed, the revert refusal and --force, a damaged
 * record. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "domxml/snapshot_list.h"
#include "snap/context.h"
#include "snap/ops/inexact.h"
#include "snap/txn/plan.h"

static char dir[PATH_MAX];
static char rec[PATH_MAX + 64];
static snap_env env;
static snap_ctx ctx;
static domxml_snapshot s1 = {.name = "s1", .creation_time = 100};
static domxml_snapshot s4 = {.name = "s4", .creation_time = 400};
static domxml_snapshot *list_v[] = {&s1, &s4};
static domxml_snapshot_list list = {.snaps = list_v, .n = 2};

static void setup(void)
{
    const char *base = getenv("ES_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0755);
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/snap-inexact-XXXXXX", base);
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    snprintf(dir, sizeof dir, "%s", tmpl);
    snprintf(rec, sizeof rec, "%s/dom.extsnap.inexact", dir);
    env = (snap_env){.quiet = true};
    ctx = (snap_ctx){.env = &env, .name = "dom", .snapshot_dir_host = dir, .snaps = &list};
}

static void teardown(void)
{
    unlink(rec);
    rmdir(dir);
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void put_entry(snap_inexact *m, const char *name, long long ct, snap_inexact_state st)
{
    snap_inexact_entry x = {.name = (char *)name, .creation_time = ct, .state = st,
                            .since = 7, .operation = "the online delete of snapshot s4",
                            .command = "delete", .reason = "interrupted"};
    es_err e = {0};
    ck_assert_int_eq(es_strv_add(&x.images, "/img/vda.s1", &e), 0);
    ck_assert_int_eq(es_strv_add(&x.images, "/img/vdb.s1", &e), 0);
    ck_assert_int_eq(snap_inexact_put(m, &x, &e), 0);
    es_strv_free(&x.images);
}

START_TEST(round_trip_and_validity)
{
    es_err e = {0};
    snap_inexact m;
    ck_assert_int_eq(snap_inexact_load(&ctx, &m, &e), 0);
    ck_assert_uint_eq(m.n, 0);
    ck_assert_int_eq(snap_inexact_save(&ctx, &m, &e), 0);
    ck_assert(!exists(rec)); /* nothing recorded: no file */
    put_entry(&m, "s4", 400, SNAP_INEXACT_COPYING);
    put_entry(&m, "s4", 400, SNAP_INEXACT_CANCELLED); /* replaces */
    put_entry(&m, "gone", 5, SNAP_INEXACT_CANCELLED);  /* no such snapshot */
    ck_assert_uint_eq(m.n, 2);
    ck_assert_int_eq(snap_inexact_save(&ctx, &m, &e), 0);
    snap_inexact_clear(&m);
    ck_assert(exists(rec));

    ck_assert_msg(snap_inexact_load(&ctx, &m, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(m.n, 1); /* the stale entry was dropped when saving */
    const snap_inexact_entry *x = snap_inexact_find(&ctx, &m, "s4");
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(x->state, SNAP_INEXACT_CANCELLED);
    ck_assert_str_eq(x->reason, "interrupted");
    ck_assert_str_eq(x->command, "delete");
    ck_assert_uint_eq(x->images.n, 2);
    ck_assert_str_eq(x->images.v[1], "/img/vdb.s1");
    ck_assert_ptr_null(snap_inexact_find(&ctx, &m, "s1"));
    char d[1024];
    snap_inexact_describe(x, d, sizeof d);
    ck_assert_str_eq(d, "the online delete of snapshot s4 was cancelled (interrupted) after QEMU "
                        "had started copying into /img/vda.s1, /img/vdb.s1, and QEMU does not "
                        "undo that");
    /* A snapshot of the same name made later is another one. */
    s4.creation_time = 401;
    ck_assert_ptr_null(snap_inexact_find(&ctx, &m, "s4"));
    s4.creation_time = 400;
    snap_inexact_clear(&m);
}
END_TEST

START_TEST(revert_refused_unless_forced)
{
    es_err e = {0};
    snap_inexact m;
    ck_assert_int_eq(snap_inexact_load(&ctx, &m, &e), 0);
    put_entry(&m, "s4", 400, SNAP_INEXACT_COPYING);
    ck_assert_int_eq(snap_inexact_save(&ctx, &m, &e), 0);
    snap_inexact_clear(&m);

    ck_assert_int_eq(snap_inexact_check_revert(&ctx, "revert", "s1", &s1, false, &e), 0);
    ck_assert_int_eq(snap_inexact_check_revert(&ctx, "revert", "s4", &s4, false, &e), -1);
    ck_assert_msg(strstr(e.msg, "cannot revert to s4: its saved state is inexact: the online "
                                "delete of snapshot s4 was interrupted (extsnap or QEMU stopped) "
                                "while QEMU copied into /img/vda.s1, /img/vdb.s1"),
                  "%s", e.msg);
    ck_assert_msg(strstr(e.msg, "run the same delete again to finish it, or give --force to "
                                "revert to the inexact state"),
                  "%s", e.msg);
    ck_assert_int_eq(snap_inexact_check_revert(&ctx, "revert", "base", &s4, false, &e), -1);
    ck_assert_msg(strstr(e.msg, "cannot revert to base (snapshot s4's saved state)"), "%s",
                  e.msg);
    ck_assert_int_eq(snap_inexact_check_revert(&ctx, "refresh", "s4", &s4, true, &e), 0);
}
END_TEST

START_TEST(forget_what_a_plan_removed)
{
    es_err e = {0};
    snap_inexact m;
    ck_assert_int_eq(snap_inexact_load(&ctx, &m, &e), 0);
    put_entry(&m, "s4", 400, SNAP_INEXACT_CANCELLED);
    put_entry(&m, "s1", 100, SNAP_INEXACT_CANCELLED);
    ck_assert_int_eq(snap_inexact_save(&ctx, &m, &e), 0);
    snap_inexact_clear(&m);

    snap_plan *p = NULL;
    ck_assert_int_eq(snap_plan_new("delete", "dom", &p, &e), 0);
    snap_xml_write keep = {.kind = SNAP_XML_SNAPSHOT, .path = "/s/dom/s1.xml", .domain = "dom",
                           .snapshot = "s1", .old_text = "a", .old_len = 1, .new_text = "b",
                           .new_len = 1};
    snap_xml_write drop = {.kind = SNAP_XML_SNAPSHOT, .path = "/s/dom/s4.xml", .domain = "dom",
                           .snapshot = "s4", .old_text = "a", .old_len = 1};
    ck_assert_int_eq(snap_plan_add_xml(p, &keep, &e), 0);
    ck_assert_int_eq(snap_plan_add_xml(p, &drop, &e), 0);
    es_strv gone = {0};
    ck_assert_int_eq(snap_plan_removed_snapshots(p, &gone, &e), 0);
    ck_assert_uint_eq(gone.n, 1);
    ck_assert_str_eq(gone.v[0], "s4");
    es_strv_free(&gone);

    ck_assert_int_eq(snap_inexact_forget(&ctx, p, &e), 0);
    ck_assert_int_eq(snap_inexact_load(&ctx, &m, &e), 0);
    ck_assert_uint_eq(m.n, 1);
    ck_assert_str_eq(m.v[0].name, "s1");
    snap_inexact_clear(&m);
    /* The last one gone: so is the file. */
    snap_plan *p2 = NULL;
    ck_assert_int_eq(snap_plan_new("delete", "dom", &p2, &e), 0);
    drop.snapshot = "s1";
    drop.path = "/s/dom/s1.xml";
    ck_assert_int_eq(snap_plan_add_xml(p2, &drop, &e), 0);
    ck_assert_int_eq(snap_inexact_forget(&ctx, p2, &e), 0);
    ck_assert(!exists(rec));
    snap_plan_free(p);
    snap_plan_free(p2);
}
END_TEST

START_TEST(damaged_record)
{
    FILE *f = fopen(rec, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"extsnap-inexact\": 1, \"snapshots\": [{\"name\": 3}]}", f);
    fclose(f);
    es_err e = {0};
    snap_inexact m;
    ck_assert_int_eq(snap_inexact_load(&ctx, &m, &e), -1);
    ck_assert_msg(strstr(e.msg, "an entry lacks name"), "%s", e.msg);
    snap_inexact_clear(&m);
    /* Not knowing is not taken for "exact". */
    ck_assert_int_eq(snap_inexact_check_revert(&ctx, "revert", "s1", &s1, false, &e), -1);
    ck_assert_msg(strstr(e.msg, "cannot tell whether snapshot s1's saved state is exact"), "%s",
                  e.msg);
    f = fopen(rec, "w");
    fputs("not json", f);
    fclose(f);
    ck_assert_int_eq(snap_inexact_load(&ctx, &m, &e), -1);
    ck_assert_msg(strstr(e.msg, "is not valid JSON"), "%s", e.msg);
    snap_inexact_clear(&m);
    f = fopen(rec, "w");
    fputs("{\"extsnap-inexact\": 2, \"snapshots\": []}", f);
    fclose(f);
    ck_assert_int_eq(snap_inexact_load(&ctx, &m, &e), -1);
    ck_assert_msg(strstr(e.msg, "of version 1"), "%s", e.msg);
    snap_inexact_clear(&m);
}
END_TEST

static Suite *inexact_suite(void)
{
    Suite *s = suite_create("snap_inexact");
    TCase *tc = tcase_create("record");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, round_trip_and_validity);
    tcase_add_test(tc, revert_refused_unless_forced);
    tcase_add_test(tc, forget_what_a_plan_removed);
    tcase_add_test(tc, damaged_record);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(inexact_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
