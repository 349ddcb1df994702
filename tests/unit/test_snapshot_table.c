/* The internal snapshot table reader: synthetic tables (every optional
 * field, every length check) and tables written by qemu-img (the oracle:
 * qemu-img info --output=json). */
#include <json-c/json.h>

#include "qcow2/format.h"
#include "qcow2/image.h"
#include "qcow2/snapshot_table.h"
#include "qcow2_test_util.h"
#include "tu_skip.h"

#define TABLE_OFF 0x10000u

/* Append one entry at *pos of buf (big enough), return its length. */
static size_t put_entry(uint8_t *buf, size_t pos, uint64_t l1_off, uint32_t l1_size,
                        const char *id, const char *name, uint32_t extra_len,
                        const uint8_t *extra)
{
    uint8_t *p = buf + pos;
    be64_store(p, l1_off);
    be32_store(p + 8, l1_size);
    be16_store(p + 12, (uint16_t)strlen(id));
    be16_store(p + 14, (uint16_t)strlen(name));
    be32_store(p + 16, 1700000000u);
    be32_store(p + 20, 123456789u);
    be64_store(p + 24, 3723004000000ull); /* 1 h 2 min 3.004 s */
    be32_store(p + 32, 4096);
    be32_store(p + 36, extra_len);
    size_t n = 40;
    if (extra_len)
        memcpy(p + n, extra, extra_len);
    n += extra_len;
    memcpy(p + n, id, strlen(id));
    n += strlen(id);
    memcpy(p + n, name, strlen(name));
    n += strlen(name);
    return (n + 7) & ~(size_t)7;
}

static void write_file(const char *name, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(tu_path(name), "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
}

/* Read the table of a synthetic file: header with 64 KiB clusters. */
static int read_table(const char *name, uint32_t count, qcow2_snapshot_table *t, es_err *e)
{
    qcow2_header h = {.version = 3, .cluster_bits = 16, .nb_snapshots = count,
                      .snapshots_offset = TABLE_OFF};
    es_file *f;
    ck_assert_int_eq(es_file_open(&f, tu_path(name), O_RDONLY, 0, e), 0);
    uint64_t size;
    ck_assert_int_eq(es_file_size(f, &size, e), 0);
    int r = qcow2_snapshot_table_read(f, &h, size, name, t, e);
    es_file_close(f);
    return r;
}

static uint8_t *table_file_buf(size_t *len)
{
    *len = TABLE_OFF + 0x30000;
    uint8_t *buf = calloc(1, *len);
    ck_assert_ptr_nonnull(buf);
    return buf;
}

START_TEST(test_extra_data_variants)
{
    size_t len;
    uint8_t *buf = table_file_buf(&len);
    uint8_t extra[40] = {0};
    be64_store(extra, 0x123456789ull);     /* 64-bit VM state size */
    be64_store(extra + 8, 1ull << 30);     /* disk size */
    be64_store(extra + 16, 42);            /* icount */
    size_t pos = TABLE_OFF;
    pos += put_entry(buf, pos, 0x20000, 16, "1", "no-extra", 0, NULL);
    pos += put_entry(buf, pos, 0x20000, 16, "2", "vmstate64", 8, extra);
    pos += put_entry(buf, pos, 0x20000, 16, "3", "disksize", 16, extra);
    pos += put_entry(buf, pos, 0x30000, 16, "4", "icount", 24, extra);
    pos += put_entry(buf, pos, 0x30000, 0, "10", "unknown-extra", 40, extra);
    write_file("t.img", buf, len);
    free(buf);

    qcow2_snapshot_table t;
    es_err e = {0};
    char msg[2048];
    ck_assert_msg(read_table("t.img", 5, &t, &e) == 0, "%s", es_err_str(&e, msg, sizeof msg));
    ck_assert_uint_eq(t.count, 5);
    ck_assert_uint_eq(t.table_bytes, pos - TABLE_OFF);
    const qcow2_snapshot *s = t.entries;
    ck_assert_str_eq(s[0].id, "1");
    ck_assert_str_eq(s[0].name, "no-extra");
    ck_assert_uint_eq(s[0].vm_state_size, 4096);
    ck_assert(!s[0].has_disk_size);
    ck_assert_uint_eq(s[0].icount, QCOW2_SNAPSHOT_ICOUNT_NONE);
    ck_assert_uint_eq(s[0].date_sec, 1700000000u);
    ck_assert_uint_eq(s[0].date_nsec, 123456789u);
    ck_assert_uint_eq(s[0].vm_clock_nsec, 3723004000000ull);
    ck_assert_uint_eq(s[0].l1_table_offset, 0x20000);
    ck_assert_uint_eq(s[0].l1_size, 16);
    ck_assert_uint_eq(s[0].entry_offset, TABLE_OFF);
    ck_assert_uint_eq(s[1].vm_state_size, 0x123456789ull);
    ck_assert(!s[1].has_disk_size);
    ck_assert(s[2].has_disk_size);
    ck_assert_uint_eq(s[2].disk_size, 1ull << 30);
    ck_assert_uint_eq(s[2].icount, QCOW2_SNAPSHOT_ICOUNT_NONE);
    ck_assert_uint_eq(s[3].icount, 42);
    ck_assert_str_eq(s[4].id, "10");
    ck_assert_str_eq(s[4].name, "unknown-extra");
    ck_assert_uint_eq(s[4].extra_data_size, 40);
    ck_assert_uint_eq(s[4].entry_offset, s[3].entry_offset + s[3].entry_size);
    qcow2_snapshot_table_free(&t);
}
END_TEST

/* One malformed table: the read must fail with a message containing want. */
static void expect_error(const uint8_t *buf, size_t len, uint32_t count, const char *want)
{
    write_file("bad.img", buf, len);
    qcow2_snapshot_table t;
    es_err e = {0};
    char msg[2048];
    ck_assert_int_eq(read_table("bad.img", count, &t, &e), -1);
    es_err_str(&e, msg, sizeof msg);
    ck_assert_msg(strstr(msg, want) != NULL, "error '%s' does not mention '%s'", msg, want);
    ck_assert_msg(strstr(msg, "bad.img") != NULL, "error '%s' does not name the file", msg);
    ck_assert_ptr_null(t.entries);
}

START_TEST(test_malformed_tables)
{
    size_t len;
    uint8_t *buf = table_file_buf(&len);
    /* No L1 table (l1_size 0) so that cut-off files fail on the entry itself. */
    size_t one = put_entry(buf, TABLE_OFF, 0x20000, 0, "1", "good", 16, buf + 0x100);

    /* More entries than the file holds. */
    expect_error(buf, TABLE_OFF + one + 20, 2, "runs past end of file");
    /* Entry header cut by the end of the file. */
    expect_error(buf, TABLE_OFF + 30, 1, "runs past end of file");
    /* Name length beyond the end of the file. */
    be16_store(buf + TABLE_OFF + 14, 0xffff);
    expect_error(buf, TABLE_OFF + 0x1000, 1, "runs past end of file");
    be16_store(buf + TABLE_OFF + 14, 4);
    /* Too much extra data. */
    be32_store(buf + TABLE_OFF + 36, 0xffffffffu);
    expect_error(buf, len, 1, "extra data");
    be32_store(buf + TABLE_OFF + 36, 16);
    /* NUL byte in the name. */
    buf[TABLE_OFF + 40 + 16 + 1 + 2] = 0;
    expect_error(buf, len, 1, "NUL");
    buf[TABLE_OFF + 40 + 16 + 1 + 2] = 'o';
    /* Snapshot L1 table unaligned, past the end, too large. */
    be32_store(buf + TABLE_OFF + 8, 16);
    be64_store(buf + TABLE_OFF, 0x20200);
    expect_error(buf, len, 1, "not cluster aligned");
    be64_store(buf + TABLE_OFF, 0x100000000ull);
    expect_error(buf, len, 1, "beyond end of file");
    be64_store(buf + TABLE_OFF, 0x20000);
    be32_store(buf + TABLE_OFF + 8, 0x10000000);
    expect_error(buf, len, 1, "too large");
    be32_store(buf + TABLE_OFF + 8, 16);

    /* And the repaired table reads again. */
    write_file("ok.img", buf, len);
    qcow2_snapshot_table t;
    es_err e = {0};
    ck_assert_int_eq(read_table("ok.img", 1, &t, &e), 0);
    ck_assert_str_eq(t.entries[0].name, "good");
    qcow2_snapshot_table_free(&t);
    free(buf);
}
END_TEST

START_TEST(test_no_snapshots)
{
    size_t len;
    uint8_t *buf = table_file_buf(&len);
    write_file("empty.img", buf, 100);
    free(buf);
    qcow2_snapshot_table t;
    es_err e = {0};
    ck_assert_int_eq(read_table("empty.img", 0, &t, &e), 0);
    ck_assert_uint_eq(t.count, 0);
    ck_assert_ptr_null(t.entries);
    qcow2_snapshot_table_free(&t);
}
END_TEST

/* Tables written by qemu-img, compared with qemu-img info. */
START_TEST(test_against_qemu_img)
{
    tu_sh("qemu-img create -q -f qcow2 s.qcow2 16M && "
          "qemu-io -c 'write -P 1 0 64k' s.qcow2 && "
          "qemu-img snapshot -c first s.qcow2 && "
          "qemu-io -c 'write -P 2 64k 64k' s.qcow2 && "
          "qemu-img snapshot -c 'a second one' s.qcow2 && "
          "qemu-img snapshot -c third s.qcow2 && "
          "qemu-img snapshot -d first s.qcow2 && "
          "qemu-img info --output=json s.qcow2 > s.json");
    json_object *root = json_object_from_file(tu_path("s.json"));
    ck_assert_ptr_nonnull(root);
    json_object *list = json_object_object_get(root, "snapshots");
    ck_assert_ptr_nonnull(list);

    es_image *img;
    es_err e = {0};
    es_open_opts o = {.no_backing = true};
    char msg[2048];
    ck_assert_msg(es_image_open(&img, tu_path("s.qcow2"), &o, &e) == 0, "%s",
                  es_err_str(&e, msg, sizeof msg));
    qcow2_snapshot_table t;
    ck_assert_msg(qcow2_snapshot_table_read(img->file, &img->hdr, img->file_size, img->filename,
                                            &t, &e) == 0,
                  "%s", es_err_str(&e, msg, sizeof msg));
    ck_assert_uint_eq(t.count, json_object_array_length(list));
    for (uint32_t i = 0; i < t.count; i++) {
        json_object *j = json_object_array_get_idx(list, i);
        const qcow2_snapshot *s = &t.entries[i];
        ck_assert_str_eq(s->id, json_object_get_string(json_object_object_get(j, "id")));
        ck_assert_str_eq(s->name, json_object_get_string(json_object_object_get(j, "name")));
        ck_assert_uint_eq(s->date_sec, json_object_get_int64(json_object_object_get(j, "date-sec")));
        ck_assert_uint_eq(s->date_nsec,
                          json_object_get_int64(json_object_object_get(j, "date-nsec")));
        ck_assert_uint_eq(s->vm_state_size,
                          json_object_get_int64(json_object_object_get(j, "vm-state-size")));
        /* QEMU 7.2 writes 24 bytes of extra data: state size, disk size, icount. */
        ck_assert(s->has_disk_size);
        ck_assert_uint_eq(s->disk_size, 16u << 20);
        ck_assert_uint_eq(s->l1_size, 1);
        ck_assert_uint_eq(s->l1_table_offset % img->cluster_size, 0);
    }
    qcow2_snapshot_table_free(&t);
    es_image_close(img);
    json_object_put(root);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("snapshot_table");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_extra_data_variants);
    tcase_add_test(tc, test_malformed_tables);
    tcase_add_test(tc, test_no_snapshots);
    tcase_add_test(tc, test_against_qemu_img);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tu_need_tools("qemu-img", "qemu-io", NULL);
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
