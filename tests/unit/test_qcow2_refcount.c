/* qcow2/refcount: entry packing at every width, refcounts of images made by
 * qemu-img, allocation (lowest free first), new refcount blocks and a grown
 * refcount table, all checked with `qemu-img check` as the oracle. */
#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/format.h"
#include "qcow2/image.h"
#include "qcow2/refcount.h"
#include "qcow2_test_util.h"
#include "tu_skip.h"

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
    ck_assert_msg(qcow2_refcount_open(img, &e) == 0, "%s", err_text(&e));
    return img;
}

static void close_img(es_image *img)
{
    qcow2_refcount_close(img);
    es_image_close(img);
}

/* "leaks"/"corruptions" from qemu-img check --output=json (0 when absent). */
static long check_field(const char *name, const char *field)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "qemu-img check --output=json '%s' 2>/dev/null || true", name);
    char *out = tu_capture(cmd);
    char key[64];
    snprintf(key, sizeof key, "\"%s\": ", field);
    const char *p = strstr(out, key);
    long v = p ? strtol(p + strlen(key), NULL, 10) : 0;
    ck_assert_msg(strstr(out, "\"check-errors\": 0") != NULL, "check errors: %s", out);
    free(out);
    return v;
}

START_TEST(entry_packing_every_width)
{
    for (uint32_t order = 0; order <= 6; order++) {
        uint32_t bits = 1u << order;
        uint8_t block[512];
        memset(block, 0, sizeof block);
        uint64_t n = sizeof block * 8 / bits;
        uint64_t max = bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
        for (uint64_t i = 0; i < n; i++)
            qcow2_refblock_entry_set(block, i, bits, (i * 0x9e3779b97f4a7c15ull) & max);
        for (uint64_t i = 0; i < n; i++)
            ck_assert_uint_eq(qcow2_refblock_entry_get(block, i, bits),
                              (i * 0x9e3779b97f4a7c15ull) & max);
        /* Changing one entry leaves its neighbours alone. */
        qcow2_refblock_entry_set(block, 5, bits, max);
        ck_assert_uint_eq(qcow2_refblock_entry_get(block, 4, bits), (4 * 0x9e3779b97f4a7c15ull) & max);
        ck_assert_uint_eq(qcow2_refblock_entry_get(block, 6, bits), (6 * 0x9e3779b97f4a7c15ull) & max);
        ck_assert_uint_eq(qcow2_refblock_entry_get(block, 5, bits), max);
    }
    /* On-disk layout: sub-byte widths pack from the LSB, wider ones are BE. */
    uint8_t b[16] = {0};
    for (int i = 0; i < 10; i++)
        qcow2_refblock_entry_set(b, (uint64_t)i, 1, 1);
    ck_assert_uint_eq(b[0], 0xff);
    ck_assert_uint_eq(b[1], 0x03);
    memset(b, 0, sizeof b);
    for (int i = 0; i < 10; i++)
        qcow2_refblock_entry_set(b, (uint64_t)i, 2, 1);
    ck_assert_uint_eq(b[0], 0x55);
    ck_assert_uint_eq(b[1], 0x55);
    ck_assert_uint_eq(b[2], 0x05);
    memset(b, 0, sizeof b);
    qcow2_refblock_entry_set(b, 1, 16, 0x1234);
    ck_assert_uint_eq(b[2], 0x12);
    ck_assert_uint_eq(b[3], 0x34);
}
END_TEST

/* Refcounts of a fresh qemu-img image at every width: clusters 0..3 (header,
 * reftable, refblock, L1) are 1, the rest 0. */
START_TEST(reads_qemu_refcounts_every_width)
{
    for (int order = 0; order <= 6; order++) {
        char name[32];
        snprintf(name, sizeof name, "w%d.qcow2", 1 << order);
        tu_sh("qemu-img create -q -f qcow2 -o refcount_bits=%d %s 1G", 1 << order, name);
        es_image *img = open_rw(name);
        ck_assert_uint_eq(img->refcount_bits, 1u << order);
        for (uint64_t c = 0; c < 8; c++) {
            uint64_t rc;
            es_err e = {0};
            ck_assert_msg(qcow2_refcount_get(img, c, &rc, &e) == 0, "%s", err_text(&e));
            ck_assert_uint_eq(rc, c < 4 ? 1 : 0);
        }
        close_img(img);
    }
}
END_TEST

/* Allocated clusters are leaks (referenced by nothing) but never
 * corruptions, at every width, and the first one is the lowest free. */
START_TEST(allocation_leaks_only)
{
    for (int order = 0; order <= 6; order++) {
        char name[32];
        snprintf(name, sizeof name, "a%d.qcow2", 1 << order);
        tu_sh("qemu-img create -q -f qcow2 -o refcount_bits=%d %s 64M", 1 << order, name);
        es_image *img = open_rw(name);
        es_err e = {0};
        uint64_t off;
        ck_assert_msg(qcow2_alloc_cluster(img, &off, &e) == 0, "%s", err_text(&e));
        ck_assert_uint_eq(off, 4 * img->cluster_size);
        ck_assert_msg(qcow2_alloc_clusters(img, 5, &off, &e) == 0, "%s", err_text(&e));
        ck_assert_uint_eq(off, 5 * img->cluster_size);
        ck_assert_msg(qcow2_refcount_flush(img, &e) == 0, "%s", err_text(&e));
        close_img(img);
        /* qemu-img check only looks at clusters inside the file. */
        tu_sh("truncate -s %d %s", 10 * 65536, name);
        ck_assert_int_eq(check_field(name, "corruptions"), 0);
        ck_assert_int_eq(check_field(name, "leaks"), 6);
    }
}
END_TEST

/* A hole left by discard is reused before the end of the file. */
START_TEST(lowest_free_first)
{
    tu_sh("qemu-img create -q -f qcow2 h.qcow2 64M && "
          "qemu-io -c 'write 0 64k' -c 'write 64k 64k' -c 'write 128k 64k' h.qcow2 && "
          "qemu-io -c 'discard 64k 64k' h.qcow2");
    es_image *img = open_rw("h.qcow2");
    es_err e = {0};
    uint64_t a, b, c;
    ck_assert(qcow2_alloc_cluster(img, &a, &e) == 0);
    ck_assert(qcow2_alloc_cluster(img, &b, &e) == 0);
    /* Two free clusters in a row are not in the hole: past the end. */
    ck_assert(qcow2_alloc_clusters(img, 2, &c, &e) == 0);
    uint64_t rc;
    ck_assert(qcow2_refcount_get(img, a >> img->cluster_bits, &rc, &e) == 0);
    ck_assert_uint_eq(rc, 1);
    ck_assert_uint_lt(a, b);
    ck_assert_uint_lt(b, c);
    uint64_t end = img->file_size;
    ck_assert_uint_lt(a, end); /* the discarded cluster */
    ck_assert(qcow2_refcount_flush(img, &e) == 0);
    close_img(img);
    tu_sh("truncate -s %llu h.qcow2", (unsigned long long)(c + 2 * 65536));
    ck_assert_int_eq(check_field("h.qcow2", "corruptions"), 0);
    ck_assert_int_eq(check_field("h.qcow2", "leaks"), 4);
}
END_TEST

/* 512-byte clusters with 64-bit refcounts: a refcount block covers 64
 * clusters and the table 4096 of them, so allocating 10000 clusters adds
 * refcount blocks (which count themselves) and grows the table twice. */
START_TEST(new_blocks_and_table_growth)
{
    tu_sh("qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=64 g.qcow2 64M");
    es_image *img = open_rw("g.qcow2");
    es_err e = {0};
    uint64_t first_rt = img->hdr.refcount_table_offset;
    uint32_t first_rt_clusters = img->hdr.refcount_table_clusters;
    for (int i = 0; i < 10000; i++) {
        uint64_t off;
        ck_assert_msg(qcow2_alloc_cluster(img, &off, &e) == 0, "%s", err_text(&e));
    }
    /* A contiguous run that crosses block boundaries. */
    uint64_t run;
    ck_assert_msg(qcow2_alloc_clusters(img, 300, &run, &e) == 0, "%s", err_text(&e));
    ck_assert_msg(qcow2_refcount_flush(img, &e) == 0, "%s", err_text(&e));
    ck_assert_uint_ne(img->hdr.refcount_table_offset, first_rt);
    ck_assert_uint_gt(img->hdr.refcount_table_clusters, first_rt_clusters);
    close_img(img);
    struct stat st;
    ck_assert_int_eq(stat(tu_path("g.qcow2"), &st), 0);
    if ((uint64_t)st.st_size < run + 300 * 512)
        tu_sh("truncate -s %llu g.qcow2", (unsigned long long)(run + 300 * 512));
    ck_assert_int_eq(check_field("g.qcow2", "corruptions"), 0);
    ck_assert_int_eq(check_field("g.qcow2", "leaks"), 10300);
    /* The header on disk names the new table. */
    ck_assert_uint_eq(tu_get_be("g.qcow2", 48, 8) % 512, 0);
    ck_assert_uint_ne(tu_get_be("g.qcow2", 48, 8), first_rt);
}
END_TEST

START_TEST(overflow_and_underflow_are_errors)
{
    tu_sh("qemu-img create -q -f qcow2 -o refcount_bits=1 o.qcow2 64M");
    es_image *img = open_rw("o.qcow2");
    es_err e = {0};
    ck_assert_int_eq(qcow2_refcount_add(img, 0, 1, &e), -1);
    ck_assert_msg(strstr(e.msg, "overflow") != NULL, "%s", e.msg);
    ck_assert_int_eq(qcow2_refcount_add(img, 10, -1, &e), -1);
    ck_assert_msg(strstr(e.msg, "below zero") != NULL, "%s", e.msg);
    /* Far past anything covered: no refcount block, refcount 0. */
    uint64_t rc = 7;
    ck_assert(qcow2_refcount_get(img, 1ull << 40, &rc, &e) == 0);
    ck_assert_uint_eq(rc, 0);
    ck_assert_int_eq(qcow2_refcount_add(img, 1ull << 40, -1, &e), -1);
    close_img(img);
    /* Nothing was written. */
    ck_assert_int_eq(tu_sh_status("qemu-img check -q o.qcow2"), 0);
}
END_TEST

START_TEST(bad_reftable_entry_is_an_error)
{
    tu_sh("qemu-img create -q -f qcow2 r.qcow2 64M");
    /* Refcount table entry 0 (at cluster 1) points past the end of the file. */
    tu_put_be("r.qcow2", 65536, 8, 0x7f0200);
    es_image *img = open_rw("r.qcow2");
    es_err e = {0};
    uint64_t rc;
    ck_assert_int_eq(qcow2_refcount_get(img, 1, &rc, &e), -1);
    ck_assert_msg(strstr(e.msg, "not cluster aligned") != NULL, "%s", e.msg);
    close_img(img);
    tu_put_be("r.qcow2", 65536, 8, 0x7f00000);
    img = open_rw("r.qcow2");
    ck_assert_int_eq(qcow2_refcount_get(img, 1, &rc, &e), -1);
    ck_assert_msg(strstr(e.msg, "beyond end of file") != NULL, "%s", e.msg);
    close_img(img);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("qcow2_refcount");
    TCase *t = tcase_create("refcount");
    tcase_add_checked_fixture(t, tu_setup, tu_teardown);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, entry_packing_every_width);
    tcase_add_test(t, reads_qemu_refcounts_every_width);
    tcase_add_test(t, allocation_leaks_only);
    tcase_add_test(t, lowest_free_first);
    tcase_add_test(t, new_blocks_and_table_growth);
    tcase_add_test(t, overflow_and_underflow_are_errors);
    tcase_add_test(t, bad_reftable_entry_is_an_error);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    tu_need_tools("qemu-img", "qemu-io", NULL);
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return tu_exit_status(failed);
}
