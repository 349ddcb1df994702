/* Unit tests for the create layout planner, the create engine and
 * rebase -u. Byte identity with qemu-img is tested in
 * tests/e2e/t_img_create.sh; here the planner's output is checked for
 * self-consistency over many shapes (refcounts match what is used, nothing
 * overlaps, every used cluster is covered by a refcount block). */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/create.h"
#include "qcow2/create_layout.h"
#include "qcow2/format.h"
#include "qcow2/header.h"
#include "qcow2/rebase.h"
#include "qcow2_test_util.h"
#include "tu_skip.h"

START_TEST(plan_default_1g)
{
    qcow2_create_layout lay;
    es_err e;
    ck_assert_int_eq(qcow2_create_plan(&lay, 16, 4, 2, &e), 0);
    ck_assert_uint_eq(lay.l1_offset, 0x30000);
    ck_assert_uint_eq(lay.reftable_offset, 0x10000);
    ck_assert_uint_eq(lay.reftable_entries, 8192);
    ck_assert_uint_eq(lay.reftable[0], 0x20000);
    for (uint64_t i = 1; i < lay.reftable_entries; i++)
        ck_assert_uint_eq(lay.reftable[i], 0);
    for (uint64_t c = 0; c < 4; c++)
        ck_assert_uint_eq(lay.refcount[c], 1);
    ck_assert(lay.refcount_len <= 4 || lay.refcount[4] == 0);
    ck_assert_uint_eq(lay.n_stale, 0);
    ck_assert_uint_eq(lay.file_end, 3 * 65536 + 16); /* L1 written only up to its size */
    qcow2_create_layout_free(&lay);
}
END_TEST

START_TEST(plan_empty_image)
{
    qcow2_create_layout lay;
    es_err e;
    ck_assert_int_eq(qcow2_create_plan(&lay, 16, 4, 0, &e), 0);
    ck_assert_uint_eq(lay.l1_offset, 0);
    ck_assert_uint_eq(lay.file_end, 3 * 65536);
    ck_assert_uint_eq(lay.refcount[0] + lay.refcount[1] + lay.refcount[2], 3);
    qcow2_create_layout_free(&lay);
}
END_TEST

START_TEST(plan_refuses_huge_l1)
{
    qcow2_create_layout lay;
    es_err e;
    ck_assert_int_eq(qcow2_create_plan(&lay, 9, 4, QCOW2_MAX_L1_BYTES / 8 + 1, &e), -1);
    ck_assert_int_eq(e.errnum, EFBIG);
}
END_TEST

static void mark(uint8_t *used, uint64_t n, uint64_t first, uint64_t count, const char *what)
{
    for (uint64_t c = first; c < first + count; c++) {
        ck_assert_msg(c < n, "%s cluster %llu beyond file end", what, (unsigned long long)c);
        ck_assert_msg(!used[c], "%s overlaps something at cluster %llu", what,
                      (unsigned long long)c);
        used[c] = 1;
    }
}

/* The plan describes a consistent image: refcount 1 exactly for the
 * clusters in use, no overlaps, all of them covered by refcount blocks. */
static void check_consistent(uint32_t cb, uint32_t order, uint64_t l1_size)
{
    qcow2_create_layout lay;
    es_err e;
    ck_assert_msg(qcow2_create_plan(&lay, cb, order, l1_size, &e) == 0, "plan cb=%u order=%u: %s",
                  cb, order, e.msg);
    uint64_t cs = 1ull << cb, n = (lay.file_end + cs - 1) / cs, rpb = lay.refcounts_per_block;
    uint8_t *used = calloc(n, 1);
    ck_assert_ptr_nonnull(used);
    mark(used, n, 0, 1, "header");
    ck_assert_uint_eq(lay.reftable_offset % cs, 0);
    ck_assert_uint_le(lay.reftable_entries * 8, QCOW2_MAX_REFTABLE_BYTES);
    mark(used, n, lay.reftable_offset / cs, lay.reftable_entries * 8 / cs, "reftable");
    for (uint64_t i = 0; i < lay.reftable_entries; i++)
        if (lay.reftable[i]) {
            ck_assert_uint_eq(lay.reftable[i] % cs, 0);
            mark(used, n, lay.reftable[i] / cs, 1, "refblock");
        }
    if (l1_size) {
        ck_assert_uint_eq(lay.l1_offset % cs, 0);
        ck_assert_uint_le(lay.l1_offset + l1_size * 8, lay.file_end);
        mark(used, n, lay.l1_offset / cs, (l1_size * 8 + cs - 1) / cs, "L1");
    }
    for (uint64_t c = 0; c < n; c++) {
        uint8_t rc = c < lay.refcount_len ? lay.refcount[c] : 0;
        ck_assert_msg(rc == used[c], "cb=%u order=%u l1=%llu: cluster %llu refcount %u, used %u",
                      cb, order, (unsigned long long)l1_size, (unsigned long long)c, rc, used[c]);
        if (used[c])
            ck_assert_msg(c / rpb < lay.reftable_entries && lay.reftable[c / rpb],
                          "cluster %llu has no refcount block", (unsigned long long)c);
    }
    for (uint64_t c = n; c < lay.refcount_len; c++)
        ck_assert_uint_eq(lay.refcount[c], 0);
    free(used);
    qcow2_create_layout_free(&lay);
}

START_TEST(plan_consistent_small_clusters)
{
    /* 512-byte clusters: L1 sizes from one cluster to well beyond the first
     * refcount table (which then moves, leaving a stale copy). */
    static const uint64_t l1s[] = {1, 64, 8192, 40000, 300000, 1310720};
    for (uint32_t order = 0; order <= 6; order++)
        for (size_t i = 0; i < sizeof l1s / sizeof l1s[0]; i++)
            check_consistent(9, order, l1s[i]);
}
END_TEST

START_TEST(plan_consistent_other_clusters)
{
    for (uint32_t cb = 10; cb <= 21; cb += 1)
        for (uint32_t order = 0; order <= 6; order += 3) {
            check_consistent(cb, order, 1);
            check_consistent(cb, order, 100000);
        }
}
END_TEST

START_TEST(plan_moves_reftable)
{
    qcow2_create_layout lay;
    es_err e;
    /* 512-byte clusters, 64-bit refcounts: one table cluster covers 4096
     * clusters, the L1 needs 8192. */
    ck_assert_int_eq(qcow2_create_plan(&lay, 9, 6, 524288, &e), 0);
    ck_assert_uint_ge(lay.n_stale, 1);
    ck_assert_uint_eq(lay.stale[0].offset, 512); /* the first table, cluster 1 */
    ck_assert_uint_eq(lay.stale[0].table[0], 1024);
    ck_assert_uint_ne(lay.reftable_offset, 512);
    ck_assert_uint_eq(lay.refcount[1], 0); /* its cluster is free again */
    qcow2_create_layout_free(&lay);
}
END_TEST

START_TEST(refblock_encoding)
{
    for (uint32_t order = 0; order <= 6; order++) {
        qcow2_create_layout lay = {0};
        lay.cluster_bits = 9;
        lay.refcount_order = order;
        lay.refcounts_per_block = 512 * 8 >> order;
        uint8_t rc[16] = {1, 0, 1, 1, 0, 0, 0, 1, 1};
        lay.refcount = rc;
        lay.refcount_len = sizeof rc;
        uint8_t buf[512];
        qcow2_create_layout_refblock(&lay, 0, buf);
        uint32_t bits = 1u << order;
        for (uint64_t j = 0; j < sizeof rc; j++) {
            uint64_t v = 0;
            if (bits >= 8) {
                for (uint32_t b = 0; b < bits / 8; b++)
                    v = v << 8 | buf[j * (bits / 8) + b];
            } else {
                v = (buf[j * bits / 8] >> (j * bits % 8)) & ((1u << bits) - 1);
            }
            ck_assert_msg(v == rc[j], "order %u entry %llu: %llu", order, (unsigned long long)j,
                          (unsigned long long)v);
        }
    }
}
END_TEST

START_TEST(check_opts_rules)
{
    qcow2_create_opts o;
    es_err e;
    qcow2_create_opts_init(&o);
    o.size_set = true;
    ck_assert_int_eq(qcow2_create_check_opts(&o, &e), 0);
    o.cluster_size = 1000;
    ck_assert_int_eq(qcow2_create_check_opts(&o, &e), -1);
    o.cluster_size = 4u << 20;
    ck_assert_int_eq(qcow2_create_check_opts(&o, &e), -1);
    qcow2_create_opts_init(&o);
    o.size_set = true;
    o.refcount_bits = 3;
    ck_assert_int_eq(qcow2_create_check_opts(&o, &e), -1);
    o.refcount_bits = 128;
    ck_assert_int_eq(qcow2_create_check_opts(&o, &e), -1);
    qcow2_create_opts_init(&o);
    o.size_set = true;
    o.version = 2;
    o.lazy_refcounts = true;
    ck_assert_int_eq(qcow2_create_check_opts(&o, &e), -1);
    qcow2_create_opts_init(&o);
    o.size_set = true;
    o.extended_l2 = true;
    o.cluster_size = 8192;
    ck_assert_int_eq(qcow2_create_check_opts(&o, &e), -1);
    qcow2_create_opts_init(&o);
    o.backing_file = "b.qcow2";
    ck_assert_int_eq(qcow2_create_check_opts(&o, &e), -1); /* no -F */
    o.backing_format = "qcow2";
    ck_assert_int_eq(qcow2_create_check_opts(&o, &e), 0);  /* size from the backing */
    o.unsafe = true;
    ck_assert_int_eq(qcow2_create_check_opts(&o, &e), -1); /* -u needs a size */
    qcow2_create_opts_init(&o);
    ck_assert_int_eq(qcow2_create_check_opts(&o, &e), -1); /* no size at all */
}
END_TEST

static void read_header(const char *name, qcow2_header *h)
{
    size_t len;
    uint8_t *buf = tu_slurp(name, &len);
    es_err e;
    ck_assert_msg(qcow2_header_parse(h, buf, len, len, name, &e) == 0, "%s", e.msg);
    free(buf);
}

START_TEST(create_then_rebase)
{
    tu_setup();
    qcow2_create_opts o;
    es_err e;
    qcow2_create_opts_init(&o);
    o.size = 1ull << 30;
    o.size_set = true;
    ck_assert_msg(qcow2_create(tu_path("a.qcow2"), &o, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(qcow2_create(tu_path("a.qcow2"), &o, &e), -1); /* never overwritten */
    ck_assert_int_eq(e.errnum, EEXIST);
    tu_sh("qemu-img check -q a.qcow2");

    ck_assert_msg(qcow2_rebase_unsafe(tu_path("a.qcow2"), "some/base.qcow2", "qcow2", &e) == 0,
                  "%s", e.msg);
    qcow2_header h;
    read_header("a.qcow2", &h);
    ck_assert_str_eq(h.backing_file, "some/base.qcow2");
    ck_assert_str_eq(h.backing_format, "qcow2");
    ck_assert_ptr_nonnull(qcow2_header_find_ext(&h, QCOW2_EXT_FEATURE_TABLE));
    qcow2_header_free(&h);

    ck_assert_int_eq(qcow2_rebase_unsafe(tu_path("a.qcow2"), NULL, NULL, &e), 0);
    read_header("a.qcow2", &h);
    ck_assert_ptr_null(h.backing_file);
    ck_assert_ptr_null(h.backing_format);
    ck_assert_uint_eq(h.backing_file_offset, 0);
    qcow2_header_free(&h);
    tu_sh("qemu-img check -q a.qcow2");
    tu_teardown();
}
END_TEST

START_TEST(rebase_refuses_what_does_not_fit)
{
    tu_setup();
    qcow2_create_opts o;
    es_err e;
    qcow2_create_opts_init(&o);
    o.size = 1 << 20;
    o.size_set = true;
    o.cluster_size = 512;
    ck_assert_int_eq(qcow2_create(tu_path("s.qcow2"), &o, &e), 0);
    size_t len1, len2;
    uint8_t *before = tu_slurp("s.qcow2", &len1);
    char name[401];
    memset(name, 'n', 400);
    name[400] = '\0';
    ck_assert_int_eq(qcow2_rebase_unsafe(tu_path("s.qcow2"), name, "qcow2", &e), -1);
    ck_assert_msg(strstr(e.msg, "fit") != NULL, "%s", e.msg);
    uint8_t *after = tu_slurp("s.qcow2", &len2);
    ck_assert_uint_eq(len1, len2);
    ck_assert_int_eq(memcmp(before, after, len1), 0);
    free(before);
    free(after);
    /* a raw file has no backing */
    tu_sh("qemu-img create -q -f raw r.img 1M");
    ck_assert_int_eq(qcow2_rebase_unsafe(tu_path("r.img"), "b", "raw", &e), -1);
    tu_teardown();
}
END_TEST

START_TEST(create_failure_removes_the_file)
{
    tu_setup();
    qcow2_create_opts o;
    es_err e;
    qcow2_create_opts_init(&o);
    o.size = 1 << 20;
    o.size_set = true;
    es_fault_reset();
    es_fault_set("flush", 1, ES_FAULT_EIO);
    ck_assert_int_eq(qcow2_create(tu_path("f.qcow2"), &o, &e), -1);
    es_fault_reset();
    ck_assert_int_eq(access(tu_path("f.qcow2"), F_OK), -1);
    tu_teardown();
}
END_TEST

int main(void)
{
    tu_need_tools("qemu-img", NULL);
    Suite *s = suite_create("qcow2_create");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, plan_default_1g);
    tcase_add_test(tc, plan_empty_image);
    tcase_add_test(tc, plan_refuses_huge_l1);
    tcase_add_test(tc, plan_consistent_small_clusters);
    tcase_add_test(tc, plan_consistent_other_clusters);
    tcase_add_test(tc, plan_moves_reftable);
    tcase_add_test(tc, refblock_encoding);
    tcase_add_test(tc, check_opts_rules);
    tcase_add_test(tc, create_then_rebase);
    tcase_add_test(tc, rebase_refuses_what_does_not_fit);
    tcase_add_test(tc, create_failure_removes_the_file);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return tu_exit_status(failed);
}
