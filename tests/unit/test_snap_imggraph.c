/* snap/imggraph, imgrole and the refusals of delete (commit_range): who
 * uses which file, across the domain's files, another domain and stray
 * images in the directory; loops and broken links end the walk without a
 * hang; a merge is refused while another image reads the frozen image.
 * Everything lives under a scratch --root. */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qcow2/create.h"
#include "qcow2/rebase.h"
#include "snap/context.h"
#include "snap/txn/session.h"
#include "snap/ops/create.h"
#include "snap/ops/delete.h"
#include "snap/txn/exec.h"
#include "snap/txn/merge.h"
#include "snap/graph/imggraph.h"
#include "snap/graph/imgrole.h"
#include "test_domxml_util.h"

#define IMGDIR "/var/lib/libvirt/images/t"
#define OTHERDIR "/var/lib/libvirt/images/o"

static char root[4096];

static const char *host(const char *logical)
{
    static char buf[2][8192];
    static int k;
    k ^= 1;
    pathf(buf[k], sizeof buf[k], "%s%s", root, logical);
    return buf[k];
}

static void image(const char *logical, const char *backing, const char *fmt)
{
    es_err e = {0};
    char msg[2048];
    qcow2_create_opts o;
    qcow2_create_opts_init(&o);
    o.size = 1 << 20;
    o.size_set = true;
    o.backing_file = backing;
    o.backing_format = fmt;
    o.unsafe = true; /* loops and missing files are made on purpose */
    ck_assert_msg(qcow2_create(host(logical), &o, &e) == 0, "%s", es_err_str(&e, msg, sizeof msg));
}

static void domain(const char *name, const char *uuid_tail, const char *vda, const char *vdb)
{
    char text[4096], path[8192];
    pathf(text, sizeof text,
          "<domain type='qemu'>\n  <name>%s</name>\n"
          "  <uuid>6b1f7f4e-2f0c-4c43-9a55-3c1d2f6b9a%s</uuid>\n"
          "  <memory unit='KiB'>131072</memory>\n  <os>\n    <type arch='x86_64'>hvm</type>\n"
          "  </os>\n  <devices>\n"
          "    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n"
          "      <source file='%s'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n"
          "%s%s%s"
          "  </devices>\n</domain>\n",
          name, uuid_tail, vda,
          vdb ? "    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n"
                "      <source file='"
              : "",
          vdb ? vdb : "",
          vdb ? "'/>\n      <target dev='vdb' bus='virtio'/>\n    </disk>\n" : "");
    pathf(path, sizeof path, "%s/etc/libvirt/qemu/%s.xml", root, name);
    write_all(path, text, 0600);
}

static snap_env env;

static void setup(void)
{
    pathf(root, sizeof root, "%s", scratch_dir("imggraph"));
    mkdir_p(host("/etc/libvirt/qemu"));
    mkdir_p(host("/var/lib/libvirt/qemu/snapshot"));
    mkdir_p(host("/run/libvirt/qemu"));
    mkdir_p(host(IMGDIR));
    mkdir_p(host(OTHERDIR));
    env = (snap_env){.root = root, .quiet = true, .log = stderr, .cmd = "test",
                     .merge = snap_merge_qcow2};
    es_fault_reset();
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(path);
}

static void teardown(void)
{
    nftw(root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static snap_ctx *open_ctx(snap_open_mode mode)
{
    es_err e = {0};
    char msg[2048];
    snap_ctx *c = NULL;
    ck_assert_msg(snap_session_begin(&env, "t", mode, &c, &e) == 0, "%s",
                  es_err_str(&e, msg, sizeof msg));
    return c;
}

static size_t node(const snap_graph *g, const char *logical)
{
    size_t i = snap_graph_find(g, root, logical);
    ck_assert_msg(i != SNAP_GNONE, "no node for %s", logical);
    return i;
}

START_TEST(users_across_domains_and_strays)
{
    image(IMGDIR "/base.qcow2", NULL, NULL);
    image(IMGDIR "/a.qcow2", IMGDIR "/base.qcow2", "qcow2");
    image(IMGDIR "/stray.qcow2", "base.qcow2", "qcow2"); /* relative name */
    image(OTHERDIR "/o.qcow2", IMGDIR "/base.qcow2", "qcow2");
    domain("t", "10", IMGDIR "/a.qcow2", NULL);
    domain("o", "11", OTHERDIR "/o.qcow2", NULL);
    snap_ctx *c = open_ctx(SNAP_OPEN_READ);
    snap_graph g;
    es_err e = {0};
    ck_assert_int_eq(snap_graph_build(c, &g, &e), 0);
    size_t a = node(&g, IMGDIR "/a.qcow2"), b = node(&g, IMGDIR "/base.qcow2");
    size_t s = node(&g, IMGDIR "/stray.qcow2"), o = node(&g, OTHERDIR "/o.qcow2");
    ck_assert(g.v[a].named && !g.v[a].foreign && !g.v[a].scanned);
    ck_assert(g.v[b].named && g.v[b].foreign);
    ck_assert_str_eq(g.v[b].foreign_domain, "o");
    ck_assert(g.v[s].scanned && !g.v[s].named);
    ck_assert(g.v[o].foreign && !g.v[o].named);
    ck_assert_uint_eq(g.v[a].backing, b);
    ck_assert_uint_eq(g.v[s].backing, b);
    ck_assert(snap_graph_chain_has(&g, a, b) && !snap_graph_chain_has(&g, b, a));
    size_t *u = NULL, n = 0;
    ck_assert_int_eq(snap_graph_users(&g, b, &u, &n, &e), 0);
    ck_assert_uint_eq(n, 3);
    free(u);
    char *role = NULL;
    ck_assert_int_eq(snap_image_role(c, &g, b, &role, &e), 0);
    ck_assert_msg(strstr(role, "used by domain o"), "%s", role);
    free(role);
    ck_assert_int_eq(snap_image_role(c, &g, s, &role, &e), 0);
    ck_assert_msg(strstr(role, "not named by any libvirt file"), "%s", role);
    free(role);
    ck_assert_int_eq(snap_image_role(c, &g, a, &role, &e), 0);
    ck_assert_msg(strstr(role, "the live image of disk vda"), "%s", role);
    free(role);
    ck_assert(g.dirs.n == 1 && strcmp(g.dirs.v[0], IMGDIR) == 0);
    snap_graph_free(&g);
    snap_ctx_close(c);
}
END_TEST

START_TEST(loops_and_missing_files_end_the_walk)
{
    image(IMGDIR "/l1.qcow2", IMGDIR "/l2.qcow2", "qcow2");
    image(IMGDIR "/l2.qcow2", IMGDIR "/l1.qcow2", "qcow2");
    image(IMGDIR "/m.qcow2", IMGDIR "/gone.qcow2", "qcow2");
    domain("t", "10", IMGDIR "/l1.qcow2", IMGDIR "/m.qcow2");
    snap_ctx *c = open_ctx(SNAP_OPEN_READ);
    snap_graph g;
    es_err e = {0};
    ck_assert_int_eq(snap_graph_build(c, &g, &e), 0);
    size_t l1 = node(&g, IMGDIR "/l1.qcow2"), l2 = node(&g, IMGDIR "/l2.qcow2");
    ck_assert_uint_eq(g.v[l1].backing, l2);
    ck_assert_uint_eq(g.v[l2].backing, l1);
    ck_assert(snap_graph_chain_has(&g, l1, l2)); /* terminates on the loop */
    size_t m = node(&g, IMGDIR "/m.qcow2"), gone = node(&g, IMGDIR "/gone.qcow2");
    ck_assert_uint_eq(g.v[m].backing, gone);
    ck_assert(!g.v[gone].exists && g.v[gone].error);
    snap_graph_free(&g);
    snap_ctx_close(c);
}
END_TEST

/* Take snapshot name of domain t (the core's create, executed). */
static void take(const char *name)
{
    snap_ctx *c = open_ctx(SNAP_OPEN_WRITE);
    snap_create_args a = {.name = name, .now = 1700000000};
    snap_plan *p = NULL;
    es_err e = {0};
    char msg[2048];
    ck_assert_msg(snap_plan_create(c, &a, &p, &e) == 0 && snap_execute(c, p, &e) == 0, "%s",
                  es_err_str(&e, msg, sizeof msg));
    snap_plan_free(p);
    snap_ctx_close(c);
}

START_TEST(delete_refuses_while_another_image_reads_the_frozen_image)
{
    image(IMGDIR "/base.qcow2", NULL, NULL);
    domain("t", "10", IMGDIR "/base.qcow2", NULL);
    take("s1");
    take("s2");
    /* A copy someone made over s2's frozen image (s1's overlay). */
    image(IMGDIR "/copy.qcow2", IMGDIR "/base.s1", "qcow2");
    snap_ctx *c = open_ctx(SNAP_OPEN_WRITE);
    snap_plan *p = NULL;
    es_err e = {0};
    char msg[4096];
    ck_assert_int_eq(snap_plan_delete(c, "s2", false, &p, &e), -1);
    es_err_str(&e, msg, sizeof msg);
    ck_assert_msg(strstr(msg, "copy.qcow2 (not named by any libvirt file)") &&
                      strstr(msg, "backing file of 2 images"),
                  "%s", msg);
    snap_ctx_close(c);
    /* Without it: one merge of s2's overlay into s1's, nothing else. */
    ck_assert_int_eq(unlink(host(IMGDIR "/copy.qcow2")), 0);
    c = open_ctx(SNAP_OPEN_WRITE);
    ck_assert_msg(snap_plan_delete(c, "s2", false, &p, &e) == 0, "%s",
                  es_err_str(&e, msg, sizeof msg));
    ck_assert_uint_eq(p->nmerges, 1);
    ck_assert_str_eq(p->merges[0].top, IMGDIR "/base.s2");
    ck_assert_str_eq(p->merges[0].base, IMGDIR "/base.s1");
    ck_assert_uint_eq(p->ndeletes, 1);
    ck_assert_int_eq(snap_execute(c, p, &e), 0);
    snap_plan_free(p);
    snap_ctx_close(c);
    /* s1 is current again, its overlay live. */
    c = open_ctx(SNAP_OPEN_READ);
    ck_assert_uint_eq(c->snaps->n, 1);
    ck_assert(c->snaps->snaps[0]->current);
    ck_assert_str_eq(c->config->disks[0].source, IMGDIR "/base.s1");
    snap_ctx_close(c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("snap_imggraph");
    TCase *t = tcase_create("graph");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, users_across_domains_and_strays);
    tcase_add_test(t, loops_and_missing_files_end_the_walk);
    tcase_add_test(t, delete_refuses_while_another_image_reads_the_frozen_image);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
