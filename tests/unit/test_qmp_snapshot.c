/* blockdev-snapshot-sync of several disks in one transaction, against a real
 * qemu-system-x86_64 -machine none; writes through human-monitor-command
 * (qemu-io) must land in the new overlays. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../qmp/qmp_test_harness.h"
#include "qmp/qmp_client.h"
#include "qmp/qmp_hmp.h"
#include "qmp/qmp_nodes.h"
#include "qmp/qmp_snapshot.h"
#include "tu_skip.h"

static void expect_chain(qmp_client *c, const char *dev, size_t n, const char *top_file)
{
    qmp_chain ch;
    es_err e = {0};
    ck_assert_msg(qmp_chain_query(c, dev, &ch, &e) == 0, "%s", QT_ERRSTR(e));
    ck_assert_msg(ch.n == n, "%s: chain of %zu images, expected %zu", dev, ch.n, n);
    ck_assert_str_eq(ch.nodes[0].filename, top_file);
    qmp_chain_free(&ch);
}

typedef struct vm {
    char dir[QT_PATH_MAX];
    char img[2][QT_PATH_MAX], ov[2][QT_PATH_MAX];
    char arg[2][QT_PATH_MAX + 64];
    qt_qemu q;
    qmp_client *c;
} vm;

static void vm_start(vm *v)
{
    qt_tmpdir(v->dir, sizeof v->dir);
    for (int i = 0; i < 2; i++) {
        char name[32];
        snprintf(name, sizeof name, "disk%d.qcow2", i);
        qt_path(v->img[i], sizeof v->img[i], v->dir, name);
        snprintf(name, sizeof name, "disk%d.snap1", i);
        qt_path(v->ov[i], sizeof v->ov[i], v->dir, name);
        qt_img_create(v->img[i], "4M", NULL);
        qt_io_ok(v->img[i], "write -P 0x11 0 1M");
        snprintf(v->arg[i], sizeof v->arg[i], "file=%s,format=qcow2,if=none,id=drive%d",
                 v->img[i], i);
    }
    const char *args[] = {"-drive", v->arg[0], "-drive", v->arg[1], NULL};
    qt_qemu_start(&v->q, v->dir, args);
    v->c = qt_connect(&v->q);
}

static void vm_stop(vm *v)
{
    qmp_client_close(v->c);
    qt_qemu_stop(&v->q);
}

START_TEST(two_disks_in_one_transaction)
{
    if (!qt_have_qemu())
        return;
    vm v;
    vm_start(&v);
    qmp_snapshot_spec specs[2] = {
        {.device = "drive0", .overlay_file = v.ov[0], .overlay_node_name = "snap1-d0"},
        {.node_name = NULL, .device = "drive1", .overlay_file = v.ov[1]},
    };
    es_err e = {0};
    ck_assert_msg(qmp_snapshot_transaction(v.c, specs, 2, NULL, &e) == 0, "%s", QT_ERRSTR(e));
    expect_chain(v.c, "drive0", 2, v.ov[0]);
    expect_chain(v.c, "drive1", 2, v.ov[1]);
    qmp_chain ch;
    ck_assert_int_eq(qmp_chain_query(v.c, "drive0", &ch, &e), 0);
    ck_assert_str_eq(ch.nodes[0].node_name, "snap1-d0");
    ck_assert_str_eq(ch.nodes[1].filename, v.img[0]);
    qmp_chain_free(&ch);

    ck_assert_msg(qmp_hmp(v.c, "qemu-io drive0 \"write -P 0xab 0 64k\"", NULL, &e) == 0, "%s",
                  QT_ERRSTR(e));
    ck_assert_msg(qmp_hmp(v.c, "qemu-io drive1 \"write -P 0xcd 64k 64k\"", NULL, &e) == 0, "%s",
                  QT_ERRSTR(e));
    vm_stop(&v);

    /* The writes are in the overlays; the frozen images kept their data. */
    qt_io_ok(v.ov[0], "read -P 0xab 0 64k");
    qt_io_ok(v.ov[0], "read -P 0x11 64k 64k");
    qt_io_ok(v.img[0], "read -P 0x11 0 64k");
    qt_io_ok(v.ov[1], "read -P 0xcd 64k 64k");
    qt_io_ok(v.img[1], "read -P 0x11 64k 64k");
    /* QEMU wrote the absolute name of the old image as backing. */
    json_object *info = qt_img_info(v.ov[1]);
    json_object *bf;
    ck_assert(json_object_object_get_ex(info, "backing-filename", &bf));
    ck_assert_str_eq(json_object_get_string(bf), v.img[1]);
    json_object_put(info);
    qt_img_check_clean(v.ov[0]);
    qt_img_check_clean(v.ov[1]);
    qt_rmtree(v.dir);
}
END_TEST

START_TEST(failed_transaction_changes_nothing)
{
    if (!qt_have_qemu())
        return;
    vm v;
    vm_start(&v);
    qmp_snapshot_spec specs[2] = {
        {.device = "drive0", .overlay_file = v.ov[0]},
        {.device = "drive1", .overlay_file = "/nonexistent-dir/disk1.snap1"},
    };
    es_err e = {0};
    ck_assert_int_eq(qmp_snapshot_transaction(v.c, specs, 2, NULL, &e), -1);
    ck_assert_msg(strstr(e.msg, "snapshot of 2 disks (nothing changed in QEMU): QMP command "
                                "transaction failed: GenericError: Could not create"),
                  "%s", e.msg);
    expect_chain(v.c, "drive0", 1, v.img[0]);
    expect_chain(v.c, "drive1", 1, v.img[1]);
    /* QEMU 7.2 leaves the overlay it had already created. */
    ck_assert_int_eq(access(v.ov[0], F_OK), 0);

    /* Invalid specs are refused before QEMU sees them. */
    qmp_snapshot_spec both = {.device = "drive0", .node_name = "x", .overlay_file = v.ov[0]};
    ck_assert_int_eq(qmp_snapshot_transaction(v.c, &both, 1, NULL, &e), -1);
    ck_assert_msg(strstr(e.msg, "exactly one of device and node"), "%s", e.msg);
    ck_assert_int_eq(qmp_snapshot_transaction(v.c, specs, 0, NULL, &e), -1);

    /* A node that is another node's backing cannot be snapshotted. */
    qmp_snapshot_spec first = {.device = "drive0", .overlay_file = v.ov[0]};
    ck_assert_int_eq(qmp_snapshot_transaction(v.c, &first, 1, NULL, &e), 0);
    qmp_chain ch;
    ck_assert_int_eq(qmp_chain_query(v.c, "drive0", &ch, &e), 0);
    char inner[QT_PATH_MAX + 32];
    snprintf(inner, sizeof inner, "%s/inner.snap", v.dir);
    qmp_snapshot_spec busy = {.node_name = ch.nodes[1].node_name, .overlay_file = inner};
    ck_assert_int_eq(qmp_snapshot_transaction(v.c, &busy, 1, NULL, &e), -1);
    ck_assert_msg(strstr(e.msg, "busy"), "%s", e.msg);
    qmp_chain_free(&ch);
    vm_stop(&v);
    qt_rmtree(v.dir);
}
END_TEST

/* The caller made the overlay itself (relative backing name): mode existing. */
START_TEST(existing_overlay)
{
    if (!qt_have_qemu())
        return;
    vm v;
    vm_start(&v);
    char out[2048];
    char *argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", "-b", "disk0.qcow2", "-F",
                    "qcow2", v.ov[0], NULL};
    ck_assert_msg(qt_run(argv, out, sizeof out) == 0, "%s", out);
    qmp_snapshot_spec spec = {.device = "drive0", .overlay_file = v.ov[0],
                              .reuse_existing = true};
    es_err e = {0};
    ck_assert_msg(qmp_snapshot_transaction(v.c, &spec, 1, NULL, &e) == 0, "%s", QT_ERRSTR(e));
    expect_chain(v.c, "drive0", 2, v.ov[0]);
    ck_assert_int_eq(qmp_hmp(v.c, "qemu-io drive0 \"write -P 0x5a 1M 64k\"", NULL, &e), 0);
    vm_stop(&v);
    json_object *info = qt_img_info(v.ov[0]);
    json_object *bf;
    ck_assert(json_object_object_get_ex(info, "backing-filename", &bf));
    ck_assert_str_eq(json_object_get_string(bf), "disk0.qcow2"); /* kept as written */
    json_object_put(info);
    qt_io_ok(v.ov[0], "read -P 0x5a 1M 64k");
    qt_io_ok(v.img[0], "read -P 0 1M 64k");
    qt_rmtree(v.dir);
}
END_TEST

static Suite *qmp_snapshot_suite(void)
{
    Suite *s = suite_create("qmp_snapshot");
    TCase *tc = tcase_create("snapshot");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, two_disks_in_one_transaction);
    tcase_add_test(tc, failed_transaction_changes_nothing);
    tcase_add_test(tc, existing_overlay);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(qmp_snapshot_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return tu_exit_status(failed);
}
