/* The bitmap directory reader against qemu-img (bitmap --add, info), plus
 * damaged directories and the autoclear rule. */
#include "qcow2/bitmap_dir.h"
#include "qcow2/format.h"
#include "qcow2/image.h"
#include "qcow2_test_util.h"
#include "tu_skip.h"

static es_image *open_img(const char *name)
{
    es_image *img;
    es_err e = {0};
    es_open_opts o = {.no_backing = true};
    char msg[2048];
    ck_assert_msg(es_image_open(&img, tu_path(name), &o, &e) == 0, "%s",
                  es_err_str(&e, msg, sizeof msg));
    return img;
}

static int read_dir(es_image *img, qcow2_bitmap_dir *d, es_err *e)
{
    return qcow2_bitmap_dir_read(img->file, &img->hdr, img->file_size, img->filename, d, e);
}

START_TEST(test_bitmaps_from_qemu_img)
{
    tu_sh("qemu-img create -q -f qcow2 b.qcow2 64M && "
          "qemu-img bitmap --add b.qcow2 first && "
          "qemu-img bitmap --add -g 1M --disable b.qcow2 'second bitmap' && "
          "qemu-img bitmap --add -g 512 b.qcow2 third");
    es_image *img = open_img("b.qcow2");
    qcow2_bitmap_dir d;
    es_err e = {0};
    char msg[2048];
    ck_assert_msg(read_dir(img, &d, &e) == 0, "%s", es_err_str(&e, msg, sizeof msg));
    ck_assert_uint_eq(d.count, 3);
    ck_assert_str_eq(d.entries[0].name, "first");
    ck_assert_uint_eq(d.entries[0].granularity_bits, 16);
    ck_assert_uint_eq(d.entries[0].flags, QCOW2_BITMAP_FLAG_AUTO);
    ck_assert_str_eq(d.entries[1].name, "second bitmap");
    ck_assert_uint_eq(d.entries[1].granularity_bits, 20);
    ck_assert_uint_eq(d.entries[1].flags, 0);
    ck_assert_str_eq(d.entries[2].name, "third");
    ck_assert_uint_eq(d.entries[2].granularity_bits, 9);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(d.entries[i].type, 1);
        ck_assert_uint_eq(d.entries[i].table_offset % img->cluster_size, 0);
        ck_assert_uint_gt(d.entries[i].table_size, 0);
    }
    qcow2_bitmap_dir_free(&d);
    es_image_close(img);
}
END_TEST

START_TEST(test_no_bitmaps_and_autoclear)
{
    tu_sh("qemu-img create -q -f qcow2 n.qcow2 1M && cp n.qcow2 c.qcow2 && "
          "qemu-img bitmap --add c.qcow2 bm");
    es_image *img = open_img("n.qcow2");
    qcow2_bitmap_dir d;
    es_err e = {0};
    ck_assert_int_eq(read_dir(img, &d, &e), 0);
    ck_assert_uint_eq(d.count, 0);
    es_image_close(img);

    /* Autoclear bit cleared (a program without bitmap support wrote the
     * image): QEMU ignores the extension, so do we. */
    img = open_img("c.qcow2");
    img->hdr.autoclear_features &= ~QCOW2_AUTOCLEAR_BITMAPS;
    ck_assert_int_eq(read_dir(img, &d, &e), 0);
    ck_assert_uint_eq(d.count, 0);
    es_image_close(img);
}
END_TEST

/* Damage the extension or the directory in memory / on disk. */
START_TEST(test_damaged_directory)
{
    tu_sh("qemu-img create -q -f qcow2 d.qcow2 1M && qemu-img bitmap --add d.qcow2 bm");
    es_image *img = open_img("d.qcow2");
    qcow2_bitmap_dir d;
    es_err e = {0};
    char msg[2048];
    qcow2_ext *ext = NULL;
    for (size_t i = 0; i < img->hdr.n_exts; i++)
        if (img->hdr.exts[i].type == QCOW2_EXT_BITMAPS)
            ext = &img->hdr.exts[i];
    ck_assert_ptr_nonnull(ext);
    uint64_t dir_off = be64_load(ext->data + 16);

    be64_store(ext->data + 16, 0x10000000);
    ck_assert_int_eq(read_dir(img, &d, &e), -1);
    ck_assert_ptr_nonnull(strstr(es_err_str(&e, msg, sizeof msg), "beyond end of file"));
    be64_store(ext->data + 16, dir_off + 512);
    ck_assert_int_eq(read_dir(img, &d, &e), -1);
    ck_assert_ptr_nonnull(strstr(es_err_str(&e, msg, sizeof msg), "not cluster aligned"));
    be64_store(ext->data + 16, dir_off);
    be32_store(ext->data, 0);
    ck_assert_int_eq(read_dir(img, &d, &e), -1);
    ck_assert_ptr_nonnull(strstr(es_err_str(&e, msg, sizeof msg), "bitmap count"));
    be32_store(ext->data, 2); /* more entries than the directory can hold */
    ck_assert_int_eq(read_dir(img, &d, &e), -1);
    ck_assert_ptr_nonnull(strstr(es_err_str(&e, msg, sizeof msg), "directory size"));
    be32_store(ext->data, 1);
    ck_assert_int_eq(read_dir(img, &d, &e), 0);
    qcow2_bitmap_dir_free(&d);
    es_image_close(img);

    /* A name length running past the directory, on disk. */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "printf '\\377\\377' | dd of=d.qcow2 bs=1 seek=%llu conv=notrunc status=none",
             (unsigned long long)dir_off + 18);
    tu_sh("%s", cmd);
    img = open_img("d.qcow2");
    ck_assert_int_eq(read_dir(img, &d, &e), -1);
    es_err_str(&e, msg, sizeof msg);
    ck_assert_msg(strstr(msg, "runs past the directory") && strstr(msg, "d.qcow2"), "%s", msg);
    es_image_close(img);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("bitmap_dir");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_bitmaps_from_qemu_img);
    tcase_add_test(tc, test_no_bitmaps_and_autoclear);
    tcase_add_test(tc, test_damaged_directory);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tu_need_tools("qemu-img", NULL);
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
