/* The engine's --root additions for the image commands: the backing-chain
 * check and commit's BASE lookup with the host's names taken under a root
 * directory, and the name walk that refuses a chain leading out of it.
 * Chains are made by qemu-img with -u (the host's names do not exist here). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/check_chain.h"
#include "qcow2/commit.h"
#include "qcow2/image.h"
#include "qcow2_test_util.h"
#include "tu_skip.h"

#define HOSTDIR "/var/lib/libvirt/images"

static const char *err_text(const es_err *e)
{
    static char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
    return es_err_str(e, buf, sizeof buf);
}

static char root[4200];

/* root/var/lib/libvirt/images holding base <- mid (absolute host name) <- top
 * (relative name), and an image whose backing name lies above the root. */
static void make_tree(void)
{
    snprintf(root, sizeof root, "%s", tu_path("root"));
    tu_sh("mkdir -p root" HOSTDIR " outside && cd root" HOSTDIR " && "
          "qemu-img create -q -f qcow2 base.qcow2 4M && "
          "qemu-img create -q -f qcow2 -u -b " HOSTDIR "/base.qcow2 -F qcow2 mid.qcow2 4M && "
          "qemu-img create -q -f qcow2 -u -b mid.qcow2 -F qcow2 top.qcow2 4M && "
          "qemu-img create -q -f qcow2 -u -b ../../../../../outside/b.qcow2 -F qcow2 "
          "up.qcow2 4M && "
          "qemu-img create -q -f qcow2 -u -b up.qcow2 -F qcow2 overup.qcow2 4M && "
          "qemu-img create -q -f qcow2 -u -b gone.qcow2 -F qcow2 orphan.qcow2 4M && "
          "qemu-img create -q -f qcow2 -u -b nbd:localhost:10809 -F raw nbd.qcow2 4M && "
          "ln -s ../../../../../outside/b.qcow2 link.qcow2 && "
          "qemu-img create -q -f qcow2 -u -b link.qcow2 -F qcow2 vialink.qcow2 4M && "
          "qemu-img create -q -f qcow2 ../../../../../outside/b.qcow2 4M");
}

START_TEST(names_in_root)
{
    make_tree();
    es_err e = {0};
    /* A chain inside the root, a missing backing file, a protocol name and
     * no root at all: nothing to refuse here. */
    ck_assert_msg(qcow2_check_chain_names_in_root(HOSTDIR "/top.qcow2", root, &e) == 0, "%s",
                  err_text(&e));
    ck_assert_msg(qcow2_check_chain_names_in_root(HOSTDIR "/orphan.qcow2", root, &e) == 0, "%s",
                  err_text(&e));
    ck_assert_msg(qcow2_check_chain_names_in_root(HOSTDIR "/nbd.qcow2", root, &e) == 0, "%s",
                  err_text(&e));
    ck_assert_int_eq(qcow2_check_chain_names_in_root(HOSTDIR "/up.qcow2", NULL, &e), 0);
    /* '..' above the root, one level down, and through a symlink. */
    const char *bad[] = {"up.qcow2", "overup.qcow2", "vialink.qcow2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char path[256];
        snprintf(path, sizeof path, HOSTDIR "/%s", bad[i]);
        memset(&e, 0, sizeof e);
        ck_assert_int_eq(qcow2_check_chain_names_in_root(path, root, &e), -1);
        ck_assert_msg(strstr(e.msg, "leads outside the root directory") != NULL, "%s: %s",
                      bad[i], err_text(&e));
    }
}
END_TEST

START_TEST(chain_check_under_root)
{
    make_tree();
    es_err e = {0};
    qcow2_chain_problems p = {0};
    ck_assert_msg(qcow2_check_backing_chain_root(HOSTDIR "/top.qcow2", root, &p, &e) == 0, "%s",
                  err_text(&e));
    ck_assert_uint_eq(p.n, 0);
    /* Without the root the host's names are not there. */
    char here[4300];
    snprintf(here, sizeof here, "%s" HOSTDIR "/mid.qcow2", root);
    ck_assert_int_eq(qcow2_check_backing_chain(here, &p, &e), 0);
    ck_assert_uint_eq(p.n, 1);
    qcow2_chain_problems_free(&p);
    /* A missing backing file is named as the host sees it. */
    ck_assert_int_eq(qcow2_check_backing_chain_root(HOSTDIR "/orphan.qcow2", root, &p, &e), 0);
    ck_assert_uint_eq(p.n, 1);
    ck_assert_msg(strstr(p.msgs[0], "'gone.qcow2' of " HOSTDIR "/orphan.qcow2 does not exist "
                                    "(resolved to " HOSTDIR "/gone.qcow2 under ") != NULL,
                  "%s", p.msgs[0]);
    qcow2_chain_problems_free(&p);
    /* The image itself missing under the root: an error naming it. */
    ck_assert_int_eq(qcow2_check_backing_chain_root(HOSTDIR "/none.qcow2", root, &p, &e), -1);
    ck_assert_str_eq(e.path, HOSTDIR "/none.qcow2");
}
END_TEST

START_TEST(commit_base_under_root)
{
    make_tree();
    es_err e = {0};
    es_image *top = NULL;
    es_open_opts o = {.root = root};
    ck_assert_msg(es_image_open(&top, HOSTDIR "/top.qcow2", &o, &e) == 0, "%s", err_text(&e));
    ck_assert_str_eq(top->backing->backing->filename, HOSTDIR "/base.qcow2");
    es_image *base = top->backing->backing;
    ck_assert_ptr_eq(es_commit_find_base_root(top, HOSTDIR "/base.qcow2", root, &e), base);
    ck_assert_ptr_eq(es_commit_find_base_root(top, "base.qcow2", root, &e), base);
    ck_assert_ptr_eq(es_commit_find_base_root(top, "var/lib/libvirt/images/mid.qcow2", root, &e),
                     top->backing);
    /* The rescue system's path of the same file is not a host name. */
    char here[4300];
    snprintf(here, sizeof here, "%s" HOSTDIR "/base.qcow2", root);
    ck_assert_ptr_null(es_commit_find_base_root(top, here, root, &e));
    ck_assert_msg(strstr(e.msg, "not in the backing chain") != NULL, "%s", err_text(&e));
    ck_assert_ptr_null(es_commit_find_base_root(top, HOSTDIR "/link.qcow2", root, &e));
    ck_assert_msg(strstr(e.msg, "leads outside the root directory") != NULL, "%s", err_text(&e));
    es_image_close(top);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("qcow2_root");
    TCase *t = tcase_create("root");
    tcase_add_checked_fixture(t, tu_setup, tu_teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, names_in_root);
    tcase_add_test(t, chain_check_under_root);
    tcase_add_test(t, commit_base_under_root);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    tu_need_tools("qemu-img", NULL);
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return tu_exit_status(failed);
}
