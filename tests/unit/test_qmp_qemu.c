/* QMP client and node mapping against a real qemu-system-x86_64 -machine none. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../qmp/qmp_test_harness.h"
#include "qmp/qmp_client.h"
#include "qmp/qmp_hmp.h"
#include "qmp/qmp_nodes.h"
#include "tu_skip.h"

static bool skip_without_qemu(void)
{
    return !qt_have_qemu();
}

/* base <- mid <- top in dir, with data at distinct offsets. */
static void make_chain(const char *dir, const char *prefix, char top[], char mid[], char base[])
{
    char name[64];
    snprintf(name, sizeof name, "%sbase.qcow2", prefix);
    qt_path(base, QT_PATH_MAX, dir, name);
    snprintf(name, sizeof name, "%smid.qcow2", prefix);
    qt_path(mid, QT_PATH_MAX, dir, name);
    snprintf(name, sizeof name, "%stop.qcow2", prefix);
    qt_path(top, QT_PATH_MAX, dir, name);
    qt_img_create(base, "4M", NULL);
    qt_img_create(mid, "4M", base);
    qt_img_create(top, "4M", mid);
}

/* Next event called name (others, like a RESUME sent at start-up, skipped). */
static void expect_event(qmp_client *c, const char *name)
{
    int64_t end = qt_now_ms() + 3000;
    es_err e = {0};
    while (qt_now_ms() < end) {
        qmp_msg *ev = NULL;
        int got = qmp_next_event(c, 200, &ev, &e);
        ck_assert_msg(got >= 0, "%s", QT_ERRSTR(e));
        if (got == 0)
            continue;
        bool match = strcmp(ev->event, name) == 0;
        if (match)
            ck_assert_int_gt(ev->ts_seconds, 0);
        qmp_msg_free(ev);
        if (match)
            return;
    }
    ck_abort_msg("no %s event", name);
}

START_TEST(greeting_errors_events)
{
    if (skip_without_qemu())
        return;
    char dir[QT_PATH_MAX];
    qt_tmpdir(dir, sizeof dir);
    qt_qemu q;
    qt_qemu_start(&q, dir, NULL);
    qmp_client *c = qt_connect(&q);
    int major, minor;
    qmp_client_version(c, &major, &minor, NULL);
    ck_assert_int_ge(major, 7);

    es_err e = {0};
    ck_assert_int_eq(qmp_execute(c, "no-such-command", NULL, NULL, &e), -1);
    ck_assert_str_eq(qmp_client_last_error_class(c), "CommandNotFound");
    ck_assert_msg(strstr(e.msg, "QMP command no-such-command failed: CommandNotFound: "),
                  "%s", e.msg);
    /* Capabilities were negotiated by connect: a second round is refused. */
    ck_assert_int_eq(qmp_execute(c, "qmp_capabilities", NULL, NULL, &e), -1);
    ck_assert_msg(strstr(e.msg, "already complete"), "%s", e.msg);

    /* Bad arguments: QEMU's own message comes through. */
    json_object *args = json_tokener_parse("{\"device\": \"nope\", \"job-id\": \"j\"}");
    ck_assert_int_eq(qmp_execute(c, "block-commit", args, NULL, &e), -1);
    json_object_put(args);
    ck_assert_msg(strstr(e.msg, "block-commit failed: ") && strstr(e.msg, "nope"), "%s", e.msg);

    /* stop emits STOP while the command runs: the event is queued. */
    json_object_put(qt_exec(c, "stop", NULL));
    json_object *st = qt_exec(c, "query-status", NULL);
    json_object_put(st);
    expect_event(c, "STOP");
    json_object_put(qt_exec(c, "cont", NULL));
    expect_event(c, "RESUME");

    /* HMP failures are text in 7.2; qmp_hmp turns them into errors. */
    char *out = NULL;
    ck_assert_int_eq(qmp_hmp(c, "qemu-io nodrive \"read 0 512\"", &out, &e), -1);
    ck_assert_msg(strstr(e.msg, "Cannot find device"), "%s", e.msg);
    ck_assert_int_eq(qmp_hmp(c, "no-such-hmp-command", &out, &e), -1);
    ck_assert_int_eq(qmp_hmp(c, "info version", &out, &e), 0);
    ck_assert_msg(strstr(out, "7."), "%s", out);
    free(out);

    /* QEMU serves one client: a second one gets no greeting. */
    qmp_client *c2 = NULL;
    qmp_client_opts o = {.timeout_ms = 400};
    ck_assert_int_eq(qmp_client_connect(&c2, q.sock, &o, &e), -1);
    ck_assert_msg(strstr(e.msg, "timed out after 0.4 s waiting for the QMP greeting"), "%s",
                  e.msg);

    /* quit: the reply may or may not beat the close; either is clean. */
    int rc = qmp_execute(c, "quit", NULL, NULL, &e);
    ck_assert_msg(rc == 0 || strstr(e.msg, "closed"), "%s", e.msg);
    qmp_client_close(c);
    qt_qemu_stop(&q);
    qt_rmtree(dir);
}
END_TEST

static void check_chain_files(const qmp_chain *ch, const char *top, const char *mid,
                              const char *base)
{
    ck_assert_uint_eq(ch->n, 3);
    ck_assert_str_eq(ch->nodes[0].filename, top);
    ck_assert_str_eq(ch->nodes[1].filename, mid);
    ck_assert_str_eq(ch->nodes[2].filename, base);
    for (size_t i = 0; i < 3; i++)
        ck_assert_str_eq(ch->nodes[i].driver, "qcow2");
}

START_TEST(nodes_drive)
{
    if (skip_without_qemu())
        return;
    char dir[QT_PATH_MAX], top[QT_PATH_MAX], mid[QT_PATH_MAX], base[QT_PATH_MAX];
    char top2[QT_PATH_MAX], drive0[QT_PATH_MAX + 64], drive1[QT_PATH_MAX + 64];
    qt_tmpdir(dir, sizeof dir);
    make_chain(dir, "", top, mid, base);
    /* A second disk on the same base: QEMU opens base.qcow2 a second time. */
    qt_path(top2, sizeof top2, dir, "other.qcow2");
    qt_img_create(top2, "4M", base);
    snprintf(drive0, sizeof drive0, "file=%s,format=qcow2,if=none,id=drive0", top);
    snprintf(drive1, sizeof drive1, "file=%s,format=qcow2,if=none,id=drive1", top2);
    const char *args[] = {"-drive", drive0, "-drive", drive1, NULL};
    qt_qemu q;
    qt_qemu_start(&q, dir, args);
    qmp_client *c = qt_connect(&q);
    es_err e = {0};

    qmp_chain ch;
    ck_assert_msg(qmp_chain_query(c, "drive0", &ch, &e) == 0, "%s", QT_ERRSTR(e));
    ck_assert_str_eq(ch.device, "drive0");
    check_chain_files(&ch, top, mid, base);
    ck_assert_msg(strncmp(ch.nodes[0].node_name, "#block", 6) == 0, "%s", ch.nodes[0].node_name);
    ck_assert_str_eq(ch.root_node, ch.nodes[0].node_name);
    ck_assert(!ch.nodes[0].read_only);
    ck_assert(ch.nodes[2].read_only);
    char base_node0[64];
    snprintf(base_node0, sizeof base_node0, "%s", ch.nodes[2].node_name);

    /* The same chain through its root node name. */
    qmp_chain by_node;
    ck_assert_int_eq(qmp_chain_query(c, ch.nodes[0].node_name, &by_node, &e), 0);
    ck_assert_str_eq(by_node.device, "drive0");
    ck_assert_str_eq(by_node.nodes[1].node_name, ch.nodes[1].node_name);
    qmp_chain_free(&by_node);
    qmp_chain_free(&ch);

    qmp_file_location *locs;
    size_t n;
    ck_assert_int_eq(qmp_locate_file(c, mid, NULL, &locs, &n, &e), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(locs[0].device, "drive0");
    ck_assert_uint_eq(locs[0].depth, 1);
    qmp_file_locations_free(locs, n);

    /* Shared base: found in both chains, as two different nodes. */
    ck_assert_int_eq(qmp_locate_file(c, base, NULL, &locs, &n, &e), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_ne(locs[0].node_name, locs[1].node_name);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(locs[i].device, "drive0") == 0) {
            ck_assert_str_eq(locs[i].node_name, base_node0);
            ck_assert_uint_eq(locs[i].depth, 2);
        } else {
            ck_assert_str_eq(locs[i].device, "drive1");
            ck_assert_uint_eq(locs[i].depth, 1);
        }
    }
    qmp_file_locations_free(locs, n);

    /* A path spelled differently still matches (realpath). */
    char odd[QT_PATH_MAX + 16];
    snprintf(odd, sizeof odd, "%s/./top.qcow2", dir);
    ck_assert_int_eq(qmp_locate_file(c, odd, NULL, &locs, &n, &e), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(locs[0].depth, 0);
    qmp_file_locations_free(locs, n);

    ck_assert_int_eq(qmp_locate_file(c, "/nonexistent/x.qcow2", NULL, &locs, &n, &e), 0);
    ck_assert_uint_eq(n, 0);

    ck_assert_int_eq(qmp_chain_query(c, "drive9", &ch, &e), -1);
    ck_assert_msg(strstr(e.msg, "no block device or node named drive9"), "%s", e.msg);
    ck_assert_str_eq(e.path, q.sock);

    qmp_client_close(c);
    qt_qemu_stop(&q);
    qt_rmtree(dir);
}
END_TEST

START_TEST(nodes_blockdev)
{
    if (skip_without_qemu())
        return;
    char dir[QT_PATH_MAX], top[QT_PATH_MAX], mid[QT_PATH_MAX], base[QT_PATH_MAX];
    char bd_base[QT_PATH_MAX + 96], bd_mid[QT_PATH_MAX + 96], bd_top[QT_PATH_MAX + 96];
    qt_tmpdir(dir, sizeof dir);
    make_chain(dir, "", top, mid, base);
    snprintf(bd_base, sizeof bd_base,
             "driver=qcow2,node-name=n-base,file.driver=file,file.filename=%s", base);
    snprintf(bd_mid, sizeof bd_mid,
             "driver=qcow2,node-name=n-mid,file.driver=file,file.filename=%s,backing=n-base",
             mid);
    snprintf(bd_top, sizeof bd_top,
             "driver=qcow2,node-name=n-top,file.driver=file,file.filename=%s,backing=n-mid", top);
    const char *args[] = {"-blockdev", bd_base, "-blockdev", bd_mid, "-blockdev", bd_top, NULL};
    qt_qemu q;
    qt_qemu_start(&q, dir, args);
    qmp_client *c = qt_connect(&q);
    es_err e = {0};

    qmp_chain ch;
    ck_assert_msg(qmp_chain_query(c, "n-top", &ch, &e) == 0, "%s", QT_ERRSTR(e));
    ck_assert_ptr_null(ch.device); /* no BlockBackend: nothing in query-block */
    check_chain_files(&ch, top, mid, base);
    ck_assert_str_eq(ch.nodes[0].node_name, "n-top");
    ck_assert_str_eq(ch.nodes[1].node_name, "n-mid");
    ck_assert_str_eq(ch.nodes[2].node_name, "n-base");
    qmp_chain_free(&ch);

    qmp_file_location *locs;
    size_t n;
    ck_assert_int_eq(qmp_locate_file(c, base, NULL, &locs, &n, &e), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_ptr_null(locs[0].device);
    ck_assert_str_eq(locs[0].root_node, "n-top");
    ck_assert_str_eq(locs[0].node_name, "n-base");
    ck_assert_uint_eq(locs[0].depth, 2);
    qmp_file_locations_free(locs, n);

    qmp_client_close(c);
    qt_qemu_stop(&q);
    qt_rmtree(dir);
}
END_TEST

/* Live replies without the graph: the file-name fallback gives the same chain. */
START_TEST(nodes_fallback_matches_graph)
{
    if (skip_without_qemu())
        return;
    char dir[QT_PATH_MAX], top[QT_PATH_MAX], mid[QT_PATH_MAX], base[QT_PATH_MAX];
    char drive0[QT_PATH_MAX + 64];
    qt_tmpdir(dir, sizeof dir);
    make_chain(dir, "", top, mid, base);
    snprintf(drive0, sizeof drive0, "file=%s,format=qcow2,if=none,id=drive0", top);
    const char *args[] = {"-drive", drive0, NULL};
    qt_qemu q;
    qt_qemu_start(&q, dir, args);
    qmp_client *c = qt_connect(&q);
    json_object *qb = qt_exec(c, "query-block", NULL);
    json_object *named = qt_exec(c, "query-named-block-nodes", "{\"flat\": true}");
    json_object *graph = qt_exec(c, "x-debug-query-block-graph", NULL);
    qmp_chain a, b;
    es_err e = {0};
    ck_assert_int_eq(qmp_chain_from_replies(qb, named, graph, "drive0", &a, &e), 0);
    ck_assert_msg(qmp_chain_from_replies(qb, named, NULL, "drive0", &b, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(a.n, b.n);
    for (size_t i = 0; i < a.n; i++)
        ck_assert_str_eq(a.nodes[i].node_name, b.nodes[i].node_name);
    qmp_chain_free(&a);
    qmp_chain_free(&b);
    json_object_put(qb);
    json_object_put(named);
    json_object_put(graph);
    qmp_client_close(c);
    qt_qemu_stop(&q);
    qt_rmtree(dir);
}
END_TEST

static Suite *qmp_qemu_suite(void)
{
    Suite *s = suite_create("qmp_qemu");
    TCase *tc = tcase_create("qemu");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, greeting_errors_events);
    tcase_add_test(tc, nodes_drive);
    tcase_add_test(tc, nodes_blockdev);
    tcase_add_test(tc, nodes_fallback_matches_graph);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(qmp_qemu_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return tu_exit_status(failed);
}
