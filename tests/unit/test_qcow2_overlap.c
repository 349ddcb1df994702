/* qcow2/overlap: every write is checked against the image's metadata.
 * Images are made by qemu-img/qemu-io; what is refused, what is allowed,
 * and what a refusal in the write phase leaves behind (the corrupt bit on
 * v3, nothing more written) are checked on the file and with qemu-img. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/format.h"
#include "qcow2/host_write.h"
#include "qcow2/image.h"
#include "qcow2/overlap.h"
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

/* 64 MiB v3 (or v2) image, 1 MiB of data at 0: header 0, reftable 0x10000,
 * refblock 0x20000, L1 0x30000, L2 0x40000, data from 0x50000. */
static void make_image(const char *compat)
{
    tu_sh("qemu-img create -q -f qcow2 -o compat=%s a.qcow2 64M && "
          "qemu-io -c 'write -P 1 0 1M' a.qcow2",
          compat);
}

static uint64_t l2_offset(void)
{
    uint64_t l1 = tu_get_be("a.qcow2", 40, 8);
    return tu_get_be("a.qcow2", l1, 8) & QCOW2_L1E_OFFSET_MASK;
}

/* Writing guest data onto each structure is refused, naming it; the data
 * clusters and the space past the end are fine. */
START_TEST(data_onto_metadata_is_refused)
{
    make_image("1.1");
    uint64_t l1 = tu_get_be("a.qcow2", 40, 8), rt = tu_get_be("a.qcow2", 48, 8);
    uint64_t rb = tu_get_be("a.qcow2", rt, 8), l2 = l2_offset();
    es_image *img = open_rw("a.qcow2");
    struct {
        uint64_t off;
        const char *name;
    } hits[] = {{0, "qcow2 header"}, {l1, "active L1 table"}, {l2, "active L2 table"},
                {rt, "refcount table"}, {rb, "refcount block"}};
    for (size_t i = 0; i < sizeof hits / sizeof hits[0]; i++) {
        es_err e = {0};
        /* A write that only touches the structure's cluster at its end. */
        ck_assert_int_eq(qcow2_overlap_check(img, QCOW2_OL_DATA, hits[i].off + 512, 512, &e), -1);
        ck_assert_msg(strstr(e.msg, "Preventing invalid write on metadata (overlaps with") &&
                          strstr(e.msg, hits[i].name),
                      "%s: %s", hits[i].name, e.msg);
    }
    es_err e = {0};
    ck_assert_msg(qcow2_overlap_check(img, QCOW2_OL_DATA, l2 + CS, 16 * CS, &e) == 0, "%s",
                  err_text(&e));
    ck_assert_msg(qcow2_overlap_check(img, QCOW2_OL_DATA, 1ull << 30, CS, &e) == 0, "%s",
                  err_text(&e));
    /* A table written where it lives is its own kind; elsewhere it is not. */
    ck_assert_msg(qcow2_overlap_check(img, QCOW2_OL_ACTIVE_L2, l2, CS, &e) == 0, "%s",
                  err_text(&e));
    ck_assert_msg(qcow2_overlap_check(img, QCOW2_OL_REFBLOCK, rb, CS, &e) == 0, "%s",
                  err_text(&e));
    ck_assert_int_eq(qcow2_overlap_check(img, QCOW2_OL_ACTIVE_L2, rt, CS, &e), -1);
    ck_assert_int_eq(qcow2_overlap_check(img, QCOW2_OL_REFBLOCK, l1, 8, &e), -1);
    ck_assert(!img->writes_stopped); /* checks alone change nothing */
    es_image_close(img);
}
END_TEST

/* An overlap found while writing: nothing written there, the corrupt bit
 * set (qemu-img then refuses to write it too), and no later write. */
START_TEST(write_phase_overlap_marks_corrupt_and_stops)
{
    make_image("1.1");
    uint64_t l1 = tu_get_be("a.qcow2", 40, 8);
    size_t n0;
    uint8_t *before = tu_slurp("a.qcow2", &n0);
    es_image *img = open_rw("a.qcow2");
    uint8_t *buf = malloc(CS);
    ck_assert_ptr_nonnull(buf);
    memset(buf, 0xee, CS);
    es_err e = {0};
    ck_assert_int_eq(qcow2_host_write(img, QCOW2_OL_DATA, buf, CS, l1, &e), -1);
    ck_assert_msg(strstr(e.msg, "overlaps with active L1 table") &&
                      strstr(e.msg, "image marked as corrupt"),
                  "%s", e.msg);
    ck_assert(img->writes_stopped);
    /* Later writes, even harmless ones, are refused. */
    ck_assert_int_eq(qcow2_host_write(img, QCOW2_OL_DATA, buf, CS, 1ull << 30, &e), -1);
    ck_assert_int_eq(qcow2_header_patch(img, 24, buf, 8, &e), -1);
    es_image_close(img);
    free(buf);
    size_t n1;
    uint8_t *after = tu_slurp("a.qcow2", &n1);
    ck_assert_uint_eq(n0, n1);
    /* Only the incompatible features field changed, by the corrupt bit. */
    ck_assert_uint_eq(be64_load(after + 72), be64_load(before + 72) | QCOW2_INCOMPAT_CORRUPT);
    memcpy(after + 72, before + 72, 8);
    ck_assert(memcmp(before, after, n0) == 0);
    free(before);
    free(after);
    char *info = tu_capture("qemu-img info a.qcow2");
    ck_assert_msg(strstr(info, "corrupt: true"), "%s", info);
    free(info);
    ck_assert_int_ne(tu_sh_status("qemu-io -c 'write 0 4k' a.qcow2 2>/dev/null"), 0);
}
END_TEST

/* v2 has no corrupt bit: stop, and leave the file as it was. */
START_TEST(write_phase_overlap_v2_stops)
{
    make_image("0.10");
    uint64_t rt = tu_get_be("a.qcow2", 48, 8);
    size_t n0;
    uint8_t *before = tu_slurp("a.qcow2", &n0);
    es_image *img = open_rw("a.qcow2");
    uint8_t buf[512] = {1};
    es_err e = {0};
    ck_assert_int_eq(qcow2_host_write(img, QCOW2_OL_ACTIVE_L2, buf, sizeof buf, rt, &e), -1);
    ck_assert_msg(strstr(e.msg, "overlaps with refcount table"), "%s", e.msg);
    ck_assert_int_eq(qcow2_host_write(img, QCOW2_OL_DATA, buf, sizeof buf, 1ull << 30, &e), -1);
    es_image_close(img);
    size_t n1;
    uint8_t *after = tu_slurp("a.qcow2", &n1);
    ck_assert(n0 == n1 && memcmp(before, after, n0) == 0);
    free(before);
    free(after);
}
END_TEST

/* Internal snapshots: their L1 tables, their L2 tables and the snapshot
 * table are metadata too; an L2 table shared by both is written by no one. */
START_TEST(snapshot_structures_are_metadata)
{
    make_image("1.1");
    tu_sh("qemu-img snapshot -c s1 a.qcow2 && qemu-io -c 'write -P 2 0 64k' a.qcow2");
    uint64_t snap_table = tu_get_be("a.qcow2", 64, 8);
    uint64_t snap_l1 = tu_get_be("a.qcow2", snap_table, 8);
    uint64_t snap_l2 = tu_get_be("a.qcow2", snap_l1, 8) & QCOW2_L1E_OFFSET_MASK;
    ck_assert_uint_ne(snap_l2, l2_offset()); /* the write copied the active one */
    es_image *img = open_rw("a.qcow2");
    es_err e = {0};
    ck_assert_int_eq(qcow2_overlap_check(img, QCOW2_OL_DATA, snap_table, 8, &e), -1);
    ck_assert_msg(strstr(e.msg, "snapshot table"), "%s", e.msg);
    ck_assert_int_eq(qcow2_overlap_check(img, QCOW2_OL_DATA, snap_l1, 8, &e), -1);
    ck_assert_msg(strstr(e.msg, "inactive L1 table"), "%s", e.msg);
    ck_assert_int_eq(qcow2_overlap_check(img, QCOW2_OL_ACTIVE_L2, snap_l2, CS, &e), -1);
    ck_assert_msg(strstr(e.msg, "inactive L2 table"), "%s", e.msg);
    es_image_close(img);
}
END_TEST

/* Structures that share clusters: the map refuses to build (planning
 * refuses the operation), naming both. */
START_TEST(overlapping_structures_refuse_the_map)
{
    make_image("1.1");
    uint64_t l1 = tu_get_be("a.qcow2", 40, 8), rt = tu_get_be("a.qcow2", 48, 8);
    tu_put_be("a.qcow2", l1, 8, QCOW2_OFLAG_COPIED | rt);
    es_image *img = open_rw("a.qcow2");
    es_err e = {0};
    ck_assert_int_eq(qcow2_overlap_open(img, &e), -1);
    ck_assert_msg(strstr(e.msg, "metadata structures overlap") && strstr(e.msg, "refcount table") &&
                      strstr(e.msg, "active L2 table"),
                  "%s", e.msg);
    ck_assert(!img->writes_stopped);
    es_image_close(img);
}
END_TEST

/* A table linked while writing is in the map for the next writes, and the
 * table it replaced is not. */
START_TEST(map_follows_new_tables)
{
    make_image("1.1");
    uint64_t old_l2 = l2_offset();
    es_image *img = open_rw("a.qcow2");
    es_err e = {0};
    ck_assert_msg(qcow2_overlap_open(img, &e) == 0, "%s", err_text(&e));
    ck_assert_int_eq(qcow2_overlap_check(img, QCOW2_OL_DATA, old_l2, CS, &e), -1);
    uint64_t off;
    ck_assert_msg(qcow2_alloc_cluster(img, &off, &e) == 0 && qcow2_refcount_flush(img, &e) == 0,
                  "%s", err_text(&e));
    ck_assert_msg(qcow2_overlap_check(img, QCOW2_OL_DATA, off, CS, &e) == 0, "%s", err_text(&e));
    /* A copy of the L2 table, linked in place of the old one (L1 entry 0). */
    uint8_t *table = malloc(CS), ent[8];
    ck_assert_ptr_nonnull(table);
    tu_pread("a.qcow2", table, CS, old_l2);
    ck_assert_msg(qcow2_host_write(img, QCOW2_OL_ACTIVE_L2, table, CS, off, &e) == 0, "%s",
                  err_text(&e));
    be64_store(ent, off | QCOW2_OFLAG_COPIED);
    ck_assert_msg(qcow2_host_write(img, QCOW2_OL_ACTIVE_L1, ent, 8, img->hdr.l1_table_offset,
                                   &e) == 0,
                  "%s", err_text(&e));
    img->l1[0] = off | QCOW2_OFLAG_COPIED;
    ck_assert_int_eq(qcow2_overlap_check(img, QCOW2_OL_DATA, off, CS, &e), -1);
    ck_assert_msg(strstr(e.msg, "active L2 table"), "%s", e.msg);
    ck_assert_msg(qcow2_overlap_check(img, QCOW2_OL_DATA, old_l2, CS, &e) == 0, "%s",
                  err_text(&e));
    ck_assert_msg(qcow2_free_cluster(img, old_l2, &e) == 0 && qcow2_refcount_flush(img, &e) == 0,
                  "%s", err_text(&e));
    free(table);
    es_image_close(img);
    ck_assert_int_eq(tu_sh_status("qemu-img check -q a.qcow2"), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("qcow2_overlap");
    TCase *t = tcase_create("overlap");
    tcase_add_checked_fixture(t, tu_setup, tu_teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, data_onto_metadata_is_refused);
    tcase_add_test(t, write_phase_overlap_marks_corrupt_and_stops);
    tcase_add_test(t, write_phase_overlap_v2_stops);
    tcase_add_test(t, snapshot_structures_are_metadata);
    tcase_add_test(t, overlapping_structures_refuse_the_map);
    tcase_add_test(t, map_follows_new_tables);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
