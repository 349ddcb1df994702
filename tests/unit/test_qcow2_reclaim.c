/* qcow2/reclaim: what an interrupted writer leaves (refcounts raised for
 * clusters never linked, inside the file or past its end) is found by the
 * survey and taken back by apply; qemu-img check is the oracle. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/format.h"
#include "qcow2/host_write.h"
#include "qcow2/image.h"
#include "qcow2/overlap.h"
#include "qcow2/reclaim.h"
#include "qcow2/refcount.h"
#include "qcow2_test_util.h"

#define CS 65536u

static const char *err_text(const es_err *e)
{
    static char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
    return es_err_str(e, buf, sizeof buf);
}

static es_image *open_rw(const char *name)
{
    es_err e = {0};
    es_image *img = NULL;
    es_open_opts o = {.writable = true, .no_backing = true};
    ck_assert_msg(es_image_open(&img, tu_path(name), &o, &e) == 0, "%s", err_text(&e));
    return img;
}

/* Leaked clusters `qemu-img check` reports (its exit status 3 = leaks). */
static long leaks(void)
{
    char *out = tu_capture("qemu-img check --output=json a.qcow2 2>/dev/null; true");
    const char *p = strstr(out, "\"leaks\": ");
    long n = p ? strtol(p + 9, NULL, 10) : 0;
    ck_assert_msg(!strstr(out, "\"corruptions\": ") || strstr(out, "\"corruptions\": 0"), "%s",
                  out);
    free(out);
    return n;
}

/* The interrupted writer: n clusters allocated (refcounts durable), data
 * written to them only when `write`, nothing pointing at them. */
static uint64_t interrupted(uint64_t n, bool write)
{
    es_image *img = open_rw("a.qcow2");
    es_err e = {0};
    uint64_t off = 0;
    ck_assert_msg(qcow2_alloc_clusters(img, n, &off, &e) == 0 && qcow2_refcount_flush(img, &e) == 0,
                  "%s", err_text(&e));
    if (write) {
        uint8_t *buf = calloc(1, CS);
        ck_assert_ptr_nonnull(buf);
        for (uint64_t i = 0; i < n; i++)
            ck_assert_msg(qcow2_host_write(img, QCOW2_OL_DATA, buf, CS, off + i * CS, &e) == 0,
                          "%s", err_text(&e));
        free(buf);
    }
    es_image_close(img);
    return off;
}

START_TEST(past_the_end_is_invisible_then_reclaimed)
{
    tu_sh("qemu-img create -q -f qcow2 a.qcow2 1G && qemu-io -c 'write -P 1 0 1M' a.qcow2");
    uint64_t off = interrupted(100, false);
    /* The reservations lie past the end: qemu-img sees nothing. */
    ck_assert_int_eq(leaks(), 0);
    es_image *img = open_rw("a.qcow2");
    ck_assert_uint_ge(off, img->file_size);
    es_err e = {0};
    qcow2_reclaim r;
    ck_assert_msg(qcow2_reclaim_survey(img, &r, &e) == 0, "%s", err_text(&e));
    ck_assert_int_eq(r.leaks, 0);
    ck_assert_uint_eq(r.past_end, 100);
    ck_assert_msg(qcow2_reclaim_apply(img, &r, &e) == 0, "%s", err_text(&e));
    /* The next allocation takes the first of them again, as an
     * uninterrupted writer would have. */
    uint64_t again;
    ck_assert_msg(qcow2_alloc_cluster(img, &again, &e) == 0, "%s", err_text(&e));
    ck_assert_uint_eq(again, off);
    es_image_close(img); /* the allocation stays in the cache: unwritten */
    img = open_rw("a.qcow2");
    ck_assert_msg(qcow2_reclaim_survey(img, &r, &e) == 0, "%s", err_text(&e));
    ck_assert_uint_eq(r.past_end, 0);
    es_image_close(img);
    ck_assert_int_eq(tu_sh_status("qemu-img check -q a.qcow2"), 0);
}
END_TEST

START_TEST(leaks_inside_the_file_are_reclaimed)
{
    tu_sh("qemu-img create -q -f qcow2 a.qcow2 1G && qemu-io -c 'write -P 1 0 1M' a.qcow2");
    interrupted(20, true);
    ck_assert_int_eq(leaks(), 20);
    es_image *img = open_rw("a.qcow2");
    es_err e = {0};
    qcow2_reclaim r;
    ck_assert_msg(qcow2_reclaim_survey(img, &r, &e) == 0, "%s", err_text(&e));
    ck_assert_int_eq(r.leaks, 20);
    ck_assert_uint_eq(r.past_end, 0);
    ck_assert_msg(qcow2_reclaim_apply(img, &r, &e) == 0, "%s", err_text(&e));
    es_image_close(img);
    ck_assert_int_eq(leaks(), 0);
    ck_assert_int_eq(tu_sh_status("qemu-img check -q a.qcow2"), 0);
    ck_assert_int_eq(tu_sh_status("qemu-io -c 'read -P 1 0 1M' a.qcow2"), 0);
}
END_TEST

/* Corruption is refused by the survey, before anything is written. */
START_TEST(survey_refuses_corruption)
{
    tu_sh("qemu-img create -q -f qcow2 a.qcow2 1G && qemu-io -c 'write -P 1 0 1M' a.qcow2");
    uint64_t rt = tu_get_be("a.qcow2", 48, 8);
    uint64_t rb = tu_get_be("a.qcow2", rt, 8);
    tu_put_be("a.qcow2", rb + 2 * 5, 2, 0); /* a data cluster's refcount */
    size_t n0;
    uint8_t *before = tu_slurp("a.qcow2", &n0);
    es_image *img = open_rw("a.qcow2");
    es_err e = {0};
    qcow2_reclaim r;
    ck_assert_int_eq(qcow2_reclaim_survey(img, &r, &e), -1);
    ck_assert_msg(strstr(e.msg, "corruption(s) in the image's metadata"), "%s", e.msg);
    es_image_close(img);
    size_t n1;
    uint8_t *after = tu_slurp("a.qcow2", &n1);
    ck_assert(n0 == n1 && memcmp(before, after, n0) == 0);
    free(before);
    free(after);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("qcow2_reclaim");
    TCase *t = tcase_create("reclaim");
    tcase_add_checked_fixture(t, tu_setup, tu_teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, past_the_end_is_invisible_then_reclaimed);
    tcase_add_test(t, leaks_inside_the_file_are_reclaimed);
    tcase_add_test(t, survey_refuses_corruption);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
