/* snap: plans through the journal, execution and recovery, including the
 * merge phase (which only rolls forward), with a fake merge engine plugged
 * into snap_env.merge. A crash is simulated at every file-changing step in
 * a forked child (fault injection: stop); the parent then recovers from the
 * journal and checks the files are wholly before or wholly after. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snap/context.h"
#include "snap/txn/exec.h"
#include "snap/txn/journal.h"
#include "snap/txn/plan.h"
#include "snap/txn/plan_json.h"
#include "snap/txn/recover.h"
#include "util/fileio.h"

static char root[PATH_MAX];

static const char *at(const char *rel)
{
    static char p[2][PATH_MAX + 64];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof p[k], "%s%s", root, rel);
    return p[k];
}

static void put(const char *rel, const char *text)
{
    FILE *f = fopen(at(rel), "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* The file's content, "" when missing (static buffer). */
static const char *get(const char *rel)
{
    static char buf[4096];
    buf[0] = '\0';
    FILE *f = fopen(at(rel), "r");
    if (!f)
        return "";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static bool exists(const char *rel)
{
    struct stat st;
    return lstat(at(rel), &st) == 0;
}

/* Fake engine: base := "merged(" + top + ")", through fileio so that faults
 * reach it. Idempotent, as the hook must be. */
static int fake_merge(const char *r, const snap_merge *m, const es_progress_sink *pr, es_err *e)
{
    (void)pr;
    char top[PATH_MAX + 64], base[PATH_MAX + 64], data[512], out[600];
    snprintf(top, sizeof top, "%s%s", r, m->top);
    snprintf(base, sizeof base, "%s%s", r, m->base);
    es_file *f = NULL;
    if (es_file_open(&f, top, O_RDONLY, 0, e) < 0)
        return -1;
    size_t got = 0;
    int rc = es_file_pread_some(f, data, sizeof data - 1, 0, &got, e);
    es_file_close(f);
    if (rc < 0)
        return -1;
    data[got] = '\0';
    int n = snprintf(out, sizeof out, "merged(%s)", data);
    if (es_file_open(&f, base, O_RDWR, 0, e) < 0)
        return -1;
    rc = es_file_truncate(f, 0, e);
    if (rc == 0)
        rc = es_file_pwrite(f, out, (size_t)n, 0, e);
    if (rc == 0)
        rc = es_file_flush(f, e);
    es_file_close(f);
    return rc;
}

static int failing_merge(const char *r, const snap_merge *m, const es_progress_sink *pr,
                         es_err *e)
{
    (void)pr;
    (void)r;
    return es_err_set(e, ENOSPC, m->base, "no space left for the merge");
}

static snap_env env;
static snap_ctx ctx;

static void setup(void)
{
    const char *base = getenv("ES_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0755);
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/snap-exec-XXXXXX", base);
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    ck_assert_ptr_nonnull(realpath(tmpl, root));
    ck_assert_int_eq(mkdir(at("/img"), 0755), 0);
    ck_assert_int_eq(mkdir(at("/snap"), 0755), 0);
    ck_assert_int_eq(mkdir(at("/snap/dom"), 0755), 0);
    put("/img/top", "TOP");
    put("/img/base", "BASE");
    put("/snap/dom/s1.xml", "<old s1/>\n");
    env = (snap_env){.root = root};
    static char jp[PATH_MAX + 64], jt[PATH_MAX + 64];
    snprintf(jp, sizeof jp, "%s/snap/dom.extsnap.journal", root);
    snprintf(jt, sizeof jt, "%s/snap/.dom.extsnap.journal.tmp", root);
    ctx = (snap_ctx){.env = &env, .name = "dom", .journal_path = jp, .journal_tmp = jt};
    env.merge = fake_merge;
    es_fault_reset();
}

/* A delete-like plan: merge top into base, rewrite s1.xml, add s2.xml,
 * delete top after the commit point. */
static snap_plan *merge_plan(void)
{
    es_err e = {0};
    snap_plan *p = NULL;
    ck_assert_int_eq(snap_plan_new("test", "dom", &p, &e), 0);
    p->summary = strdup("merge top into base");
    snap_merge m = {.disk = "vda", .top = "/img/top", .base = "/img/base"};
    ck_assert_int_eq(snap_plan_add_merge(p, &m, &e), 0);
    snap_xml_write w = {.kind = SNAP_XML_SNAPSHOT, .path = "/snap/dom/s1.xml", .domain = "dom",
                        .snapshot = "s1", .old_text = "<old s1/>\n", .old_len = 10,
                        .new_text = "<new s1/>\n", .new_len = 10};
    ck_assert_int_eq(snap_plan_add_xml(p, &w, &e), 0);
    snap_xml_write w2 = {.kind = SNAP_XML_SNAPSHOT, .path = "/snap/dom/s2.xml", .domain = "dom",
                         .snapshot = "s2", .new_text = "<s2/>\n", .new_len = 6};
    ck_assert_int_eq(snap_plan_add_xml(p, &w2, &e), 0);
    ck_assert_int_eq(snap_plan_add_delete(p, "/img/top", "merged", &e), 0);
    return p;
}

static bool state_before(void)
{
    return strcmp(get("/img/top"), "TOP") == 0 && strcmp(get("/img/base"), "BASE") == 0 &&
           strcmp(get("/snap/dom/s1.xml"), "<old s1/>\n") == 0 && !exists("/snap/dom/s2.xml");
}

static bool state_after(void)
{
    return !exists("/img/top") && strcmp(get("/img/base"), "merged(TOP)") == 0 &&
           strcmp(get("/snap/dom/s1.xml"), "<new s1/>\n") == 0 &&
           strcmp(get("/snap/dom/s2.xml"), "<s2/>\n") == 0;
}

static bool clean(void)
{
    return !exists("/snap/dom.extsnap.journal") && !exists("/snap/.dom.extsnap.journal.tmp") &&
           !exists("/snap/.dom-s1.xml.tmp") && !exists("/snap/.dom-s2.xml.tmp");
}

/* The journal's JSON of merge_plan() plus an overlay and an NVRAM copy,
 * written out by hand from the plan (mode 0640 = 416). */
static const char plan_json_expected[] =
    "{\"operation\": \"test\", \"domain\": \"dom\", \"summary\": \"merge top into base\","
    " \"overlays\": [{\"disk\": \"vdb\", \"filename\": \"/img/vdb.s1\","
    " \"backing-filename\": \"/img/vdb.qcow2\", \"backing-filename-format\": \"qcow2\","
    " \"existed-empty\": true, \"uid\": 7, \"gid\": 8, \"mode\": 416}],"
    " \"merges\": [{\"disk\": \"vda\", \"top\": \"/img/top\", \"base\": \"/img/base\"}],"
    " \"rebases\": [],"
    " \"xml-files\": ["
    "{\"kind\": \"snapshot\", \"filename\": \"/snap/dom/s1.xml\", \"domain\": \"dom\","
    " \"snapshot\": \"s1\", \"action\": \"update\", \"summary\": null,"
    " \"old-text\": \"<old s1/>\\n\", \"new-text\": \"<new s1/>\\n\"},"
    " {\"kind\": \"snapshot\", \"filename\": \"/snap/dom/s2.xml\", \"domain\": \"dom\","
    " \"snapshot\": \"s2\", \"action\": \"create\", \"summary\": null,"
    " \"old-text\": null, \"new-text\": \"<s2/>\\n\"}],"
    " \"vm-state\": [{\"what\": \"nvram\", \"action\": \"save\","
    " \"from\": \"/nvram/dom_VARS.fd\", \"filename\": \"/img/dom.s1.nvram\"}],"
    " \"deletes\": [{\"filename\": \"/img/top\", \"reason\": \"merged\"}],"
    " \"notes\": [], \"snapshot-dir-created\": null}";

START_TEST(plan_json_round_trip)
{
    snap_plan *p = merge_plan();
    snap_overlay o = {.disk = "vdb", .path = "/img/vdb.s1", .backing = "/img/vdb.qcow2",
                      .backing_format = "qcow2", .existed_empty = true, .uid = 7, .gid = 8,
                      .mode = 0640};
    es_err e = {0};
    ck_assert_int_eq(snap_plan_add_overlay(p, &o, &e), 0);
    snap_vmcopy v = {.what = "nvram", .from = "/nvram/dom_VARS.fd", .to = "/img/dom.s1.nvram"};
    ck_assert_int_eq(snap_plan_add_vmcopy(p, &v, &e), 0);
    json_object *want = json_tokener_parse(plan_json_expected), *j = NULL, *j2 = NULL;
    ck_assert_ptr_nonnull(want);
    /* Encoding: the fixed expectation. */
    ck_assert_int_eq(snap_plan_to_json(p, true, &j, &e), 0);
    ck_assert_msg(json_object_equal(j, want), "plan JSON %s, expected %s",
                  json_object_to_json_string(j), json_object_to_json_string(want));
    /* Decoding the expectation: the plan's own fields. */
    snap_plan *back = NULL;
    ck_assert_msg(snap_plan_from_json(want, "test", &back, &e) == 0, "%s", e.msg);
    ck_assert_str_eq(back->summary, "merge top into base");
    ck_assert_uint_eq(back->noverlays, 1);
    ck_assert_str_eq(back->overlays[0].disk, "vdb");
    ck_assert_str_eq(back->overlays[0].path, "/img/vdb.s1");
    ck_assert_str_eq(back->overlays[0].backing, "/img/vdb.qcow2");
    ck_assert_str_eq(back->overlays[0].backing_format, "qcow2");
    ck_assert(back->overlays[0].existed_empty);
    ck_assert_int_eq(back->overlays[0].uid, 7);
    ck_assert_int_eq(back->overlays[0].gid, 8);
    ck_assert_int_eq(back->overlays[0].mode, 0640);
    ck_assert_uint_eq(back->nmerges, 1);
    ck_assert_str_eq(back->merges[0].disk, "vda");
    ck_assert_str_eq(back->merges[0].top, "/img/top");
    ck_assert_str_eq(back->merges[0].base, "/img/base");
    ck_assert_uint_eq(back->nxml, 2);
    ck_assert_str_eq(back->xml[0].path, "/snap/dom/s1.xml");
    ck_assert_str_eq(back->xml[0].snapshot, "s1");
    ck_assert_uint_eq(back->xml[0].old_len, 10);
    ck_assert(memcmp(back->xml[0].old_text, "<old s1/>\n", 10) == 0);
    ck_assert_uint_eq(back->xml[0].new_len, 10);
    ck_assert(memcmp(back->xml[0].new_text, "<new s1/>\n", 10) == 0);
    ck_assert_str_eq(back->xml[1].path, "/snap/dom/s2.xml");
    ck_assert_ptr_null(back->xml[1].old_text);
    ck_assert_uint_eq(back->xml[1].new_len, 6);
    ck_assert(memcmp(back->xml[1].new_text, "<s2/>\n", 6) == 0);
    ck_assert_uint_eq(back->nvmcopies, 1);
    ck_assert_str_eq(back->vmcopies[0].from, "/nvram/dom_VARS.fd");
    ck_assert_str_eq(back->vmcopies[0].to, "/img/dom.s1.nvram");
    ck_assert(!back->vmcopies[0].restore);
    ck_assert_uint_eq(back->ndeletes, 1);
    /* And back again: nothing lost or added. */
    ck_assert_int_eq(snap_plan_to_json(back, true, &j2, &e), 0);
    ck_assert_msg(json_object_equal(j2, want), "re-encoded %s", json_object_to_json_string(j2));
    json_object_put(want);
    json_object_put(j);
    json_object_put(j2);
    snap_plan_free(back);
    snap_plan_free(p);
}
END_TEST

START_TEST(journal_rejects_damage)
{
    es_err e = {0};
    snap_journal jn = {ctx.journal_path, ctx.journal_tmp};
    snap_plan *p = NULL;
    snap_phase ph;
    put("/snap/dom.extsnap.journal", "{\"extsnap-journal\": 1, \"phase\": \"merge\"}");
    ck_assert_int_lt(snap_journal_read(&jn, &p, &ph, &e), 0);
    ck_assert(strstr(e.msg, "missing plan") != NULL);
    put("/snap/dom.extsnap.journal", "{\"extsnap-journal\": 1, \"phase\": \"sideways\", \"plan\": {}}");
    ck_assert_int_lt(snap_journal_read(&jn, &p, &ph, &e), 0);
    ck_assert(strstr(e.msg, "unknown phase") != NULL);
    put("/snap/dom.extsnap.journal", "{\"extsnap-journal\": 1, \"phase\": \"prepare\", "
                                     "\"plan\": {\"operation\": \"x\", \"domain\": \"dom\"}}");
    ck_assert_int_lt(snap_journal_read(&jn, &p, &ph, &e), 0);
    ck_assert(strstr(e.msg, "missing field") != NULL);
    put("/snap/dom.extsnap.journal", "\x01\x02 not json");
    ck_assert_int_lt(snap_journal_read(&jn, &p, &ph, &e), 0);
    ck_assert(strstr(e.msg, "not valid JSON") != NULL);
}
END_TEST

START_TEST(execute_merge_plan)
{
    snap_plan *p = merge_plan();
    es_err e = {0};
    ck_assert_msg(snap_execute(&ctx, p, &e) == 0, "%s", e.msg);
    ck_assert(state_after());
    ck_assert(clean());
    snap_plan_free(p);
}
END_TEST

START_TEST(no_merge_engine_changes_nothing)
{
    env.merge = NULL;
    snap_plan *p = merge_plan();
    es_err e = {0};
    ck_assert_int_lt(snap_execute(&ctx, p, &e), 0);
    ck_assert(state_before());
    ck_assert(clean());
    snap_plan_free(p);
}
END_TEST

/* A merge that fails leaves the journal in phase merge: the operation can
 * only go forward, and recovery with a working engine completes it. */
START_TEST(failed_merge_rolls_forward_later)
{
    env.merge = failing_merge;
    snap_plan *p = merge_plan();
    es_err e = {0};
    ck_assert_int_lt(snap_execute(&ctx, p, &e), 0);
    ck_assert(strstr(e.msg, "recover") != NULL);
    ck_assert(exists("/snap/dom.extsnap.journal"));
    env.merge = fake_merge;
    snap_recovery r = {0};
    ck_assert_msg(snap_recover(&ctx, &r, &e) == 0, "%s", e.msg);
    ck_assert(r.found && !r.rolled_back);
    ck_assert_int_eq(r.phase, SNAP_PHASE_MERGE);
    ck_assert(state_after());
    ck_assert(clean());
    snap_recovery_clear(&r);
    snap_plan_free(p);
}
END_TEST

/* Stop at every file-changing step; recover; all before or all after. Once
 * the journal said "merge", it must be after. */
START_TEST(crash_at_every_step)
{
    snap_plan *p = merge_plan();
    es_err e = {0};
    /* Count the steps of a clean run first. */
    ck_assert_int_eq(snap_execute(&ctx, p, &e), 0);
    uint64_t steps = es_fault_count("mutate");
    ck_assert_uint_gt(steps, 10);
    int rolled_forward = 0, rolled_back = 0;
    for (uint64_t n = 1; n <= steps; n++) {
        put("/img/top", "TOP");
        put("/img/base", "BASE");
        put("/snap/dom/s1.xml", "<old s1/>\n");
        unlink(at("/snap/dom/s2.xml"));
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            es_fault_reset();
            es_fault_set("mutate", n, ES_FAULT_STOP);
            es_err ce = {0};
            _exit(snap_execute(&ctx, p, &ce) == 0 ? 0 : 1);
        }
        int status = 0;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == ES_FAULT_STOP_STATUS,
                      "step %llu: child did not stop", (unsigned long long)n);
        snap_journal jn = {ctx.journal_path, ctx.journal_tmp};
        bool had_merge_journal = false;
        snap_plan *jp = NULL;
        snap_phase ph;
        if (exists("/snap/dom.extsnap.journal") && snap_journal_read(&jn, &jp, &ph, &e) == 0) {
            had_merge_journal = ph != SNAP_PHASE_PREPARE;
            snap_plan_free(jp);
        }
        snap_recovery r = {0};
        ck_assert_msg(snap_recover(&ctx, &r, &e) == 0, "step %llu: %s", (unsigned long long)n,
                      e.msg);
        if (r.found)
            r.rolled_back ? rolled_back++ : rolled_forward++;
        snap_recovery_clear(&r);
        ck_assert_msg(state_before() || state_after(), "step %llu: half done",
                      (unsigned long long)n);
        if (had_merge_journal)
            ck_assert_msg(state_after(), "step %llu: merge phase did not roll forward",
                          (unsigned long long)n);
        ck_assert_msg(clean(), "step %llu: leftovers", (unsigned long long)n);
    }
    ck_assert_int_gt(rolled_forward, 0);
    ck_assert_int_gt(rolled_back, 0);
    snap_plan_free(p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("snap_exec");
    TCase *tc = tcase_create("exec");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, plan_json_round_trip);
    tcase_add_test(tc, journal_rejects_damage);
    tcase_add_test(tc, execute_merge_plan);
    tcase_add_test(tc, no_merge_engine_changes_nothing);
    tcase_add_test(tc, failed_merge_rolls_forward_later);
    tcase_add_test(tc, crash_at_every_step);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
