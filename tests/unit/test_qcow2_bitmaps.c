/* Writing persistent dirty bitmaps (qcow2/bitmap_bits, bitmap_store,
 * bitmap_inherit) on images made by qemu-img: bits round-trip, a rewritten
 * directory passes qemu-img check with no leak and qemu-img info lists the
 * bitmaps as before, a disabled bitmap's table stays where it was, an
 * overlay inherits the enabled bitmaps; and a write or flush failing at
 * every point of the rewrite leaves the old or the new directory, whole,
 * and an image qemu-img check finds no error in (leaks allowed). Also:
 * the header extension added in place to an image without bitmaps (its
 * backing name moved), under the same faults, refused with nothing written
 * when cluster 0 has no room; the names a commit carries into a BASE that
 * lacks them (bitmap_adopt: libvirt's chain rules). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/bitmap_adopt.h"
#include "qcow2/bitmap_bits.h"
#include "qcow2/bitmap_ext.h"
#include "qcow2/bitmap_inherit.h"
#include "qcow2/bitmap_store.h"
#include "qcow2/format.h"
#include "qcow2/image.h"
#include "qcow2_test_util.h"
#include "tu_skip.h"
#include "util/fileio.h"

static const char *err_text(const es_err *e)
{
    static char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
    return es_err_str(e, buf, sizeof buf);
}

static es_image *open_rw(const char *name, bool backing)
{
    es_image *img = NULL;
    es_err e = {0};
    es_open_opts o = {.writable = true, .no_backing = !backing};
    ck_assert_msg(es_image_open(&img, tu_path(name), &o, &e) == 0, "%s", err_text(&e));
    return img;
}

static void read_dir(es_image *img, qcow2_bitmap_dir *d)
{
    es_err e = {0};
    ck_assert_msg(qcow2_bitmap_dir_read(img->file, &img->hdr, img->file_size, img->filename, d,
                                        &e) == 0,
                  "%s", err_text(&e));
}

static void load(es_image *img, const qcow2_bitmap *bm, qcow2_bitmap_bits *b)
{
    es_err e = {0};
    ck_assert_msg(qcow2_bitmap_bits_load(img, bm, b, &e) == 0, "%s", err_text(&e));
}

/* qemu-img info's bitmaps: "name:granularity:flags ..." */
static char *info_bitmaps(const char *name)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "qemu-img info -U --output=json %s | jq -r '[.\"format-specific\".data.bitmaps // [] "
             "| .[] | \"\\(.name):\\(.granularity):\\(.flags | join(\",\"))\"] | join(\" \")'",
             name);
    return tu_capture(cmd);
}

START_TEST(bits_mark_and_merge)
{
    tu_sh("qemu-img create -q -f qcow2 i.qcow2 1M");
    es_image *img = open_rw("i.qcow2", false);
    qcow2_bitmap_bits a, b;
    es_err e = {0};
    ck_assert_int_eq(qcow2_bitmap_bits_new(&a, img, 1000000, 16, "a", &e), 0);
    ck_assert_uint_eq(a.nbits, 16); /* 1000000 / 64K rounded up */
    qcow2_bitmap_bits_mark(&a, 65535, 2);
    ck_assert(qcow2_bitmap_bits_get(&a, 0) && qcow2_bitmap_bits_get(&a, 1));
    ck_assert(!qcow2_bitmap_bits_get(&a, 2));
    qcow2_bitmap_bits_mark(&a, 999999, 100000); /* clipped to the last bit */
    ck_assert(qcow2_bitmap_bits_get(&a, 15) && !qcow2_bitmap_bits_get(&a, 14));
    ck_assert_int_eq(qcow2_bitmap_bits_new(&b, img, 1000000, 12, "b", &e), 0);
    qcow2_bitmap_bits_mark(&b, 5 * 65536 + 4096, 1);
    qcow2_bitmap_bits_merge(&a, &b); /* fine into coarse */
    ck_assert(qcow2_bitmap_bits_get(&a, 5) && !qcow2_bitmap_bits_get(&a, 4));
    qcow2_bitmap_bits_merge(&b, &a); /* coarse into fine: 16 bits per bit */
    for (uint64_t i = 0; i < 16; i++)
        ck_assert(qcow2_bitmap_bits_get(&b, i) && qcow2_bitmap_bits_get(&b, 5 * 16 + i));
    ck_assert(!qcow2_bitmap_bits_get(&b, 2 * 16));
    qcow2_bitmap_bits_free(&b);
    /* Too large for memory as QEMU limits it. */
    ck_assert_int_eq(qcow2_bitmap_bits_new(&b, img, 1ull << 50, 9, "huge", &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "huge"));
    qcow2_bitmap_bits_free(&a);
    qcow2_bitmap_bits_free(&b);
    es_image_close(img);
}
END_TEST

/* b.qcow2: enabled b1 (64K) with bits from qemu-io, disabled dis (1M). */
static void make_image(void)
{
    tu_sh("qemu-img create -q -f qcow2 b.qcow2 32M && qemu-img bitmap --add b.qcow2 b1 && "
          "qemu-img bitmap --add -g 1M --disable b.qcow2 dis && "
          "qemu-io -c 'write -P 1 1M 64k' -c 'write -P 2 17M 4k' b.qcow2 >/dev/null");
}

/* Rewrite b1 with extra bits (and dis kept): returns 0 or -1. */
static int rewrite(es_image *img, es_err *e)
{
    qcow2_bitmap_dir d;
    read_dir(img, &d);
    qcow2_bitmap_bits b;
    load(img, &d.entries[0], &b);
    qcow2_bitmap_bits_mark(&b, 30u << 20, 1u << 20);
    qcow2_bitmap_out out[2] = {
        {.name = "b1", .flags = QCOW2_BITMAP_FLAG_AUTO, .granularity_bits = 16, .bits = &b},
        {.name = "dis", .flags = 0, .granularity_bits = 20, .keep = &d.entries[1]},
    };
    int r = qcow2_bitmap_dir_replace(img, out, 2, e);
    qcow2_bitmap_bits_free(&b);
    qcow2_bitmap_dir_free(&d);
    return r;
}

START_TEST(store_round_trip)
{
    make_image();
    char *before = info_bitmaps("b.qcow2");
    es_image *img = open_rw("b.qcow2", false);
    qcow2_bitmap_dir d0;
    read_dir(img, &d0);
    es_err e = {0};
    ck_assert_msg(rewrite(img, &e) == 0, "%s", err_text(&e));
    qcow2_bitmap_dir d1;
    read_dir(img, &d1);
    ck_assert_uint_eq(d1.count, 2);
    ck_assert_uint_ne(d1.entries[0].table_offset, d0.entries[0].table_offset);
    ck_assert_uint_eq(d1.entries[1].table_offset, d0.entries[1].table_offset); /* untouched */
    qcow2_bitmap_bits b;
    load(img, &d1.entries[0], &b);
    /* qemu-io's writes and the new range, nothing else */
    for (uint64_t i = 0; i < b.nbits; i++) {
        bool want = i == 16 || i == 17 * 16 || (i >= 30 * 16 && i < 31 * 16);
        ck_assert_msg(qcow2_bitmap_bits_get(&b, i) == want, "bit %llu", (unsigned long long)i);
    }
    qcow2_bitmap_bits_free(&b);
    qcow2_bitmap_dir_free(&d0);
    qcow2_bitmap_dir_free(&d1);
    es_image_close(img);
    ck_assert_int_eq(tu_sh_status("qemu-img check -q b.qcow2"), 0); /* no leak either */
    char *after = info_bitmaps("b.qcow2");
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
}
END_TEST

/* Every write and flush of the rewrite, failed in turn. */
START_TEST(store_faults)
{
    make_image();
    tu_sh("cp b.qcow2 orig.qcow2");
    for (uint64_t n = 1;; n++) {
        for (int kind = 0; kind < 2; kind++) {
            tu_sh("cp orig.qcow2 b.qcow2");
            es_image *img = open_rw("b.qcow2", false);
            es_fault_reset();
            es_fault_set(kind ? "flush" : "write", n, ES_FAULT_EIO);
            es_err e = {0};
            int r = rewrite(img, &e);
            bool hit = es_fault_count(kind ? "flush" : "write") >= n;
            es_fault_reset();
            es_image_close(img);
            int rc = tu_sh_status("qemu-img check -q b.qcow2 >/dev/null 2>&1");
            ck_assert_msg(rc == 0 || rc == 3, "fault at %s %llu: qemu-img check exits %d",
                          kind ? "flush" : "write", (unsigned long long)n, rc);
            ck_assert_int_eq(tu_sh_status("qemu-img info b.qcow2 >/dev/null"), 0);
            /* Old or new, whole: b1 either lacks or has all of 30M..31M. */
            img = open_rw("b.qcow2", false);
            qcow2_bitmap_dir d;
            read_dir(img, &d);
            ck_assert_uint_eq(d.count, 2);
            qcow2_bitmap_bits b;
            load(img, &d.entries[0], &b);
            bool first = qcow2_bitmap_bits_get(&b, 30 * 16);
            for (uint64_t i = 30 * 16; i < 31 * 16; i++)
                ck_assert(qcow2_bitmap_bits_get(&b, i) == first);
            ck_assert(qcow2_bitmap_bits_get(&b, 16));
            if (r == 0)
                ck_assert(first);
            qcow2_bitmap_bits_free(&b);
            qcow2_bitmap_dir_free(&d);
            es_image_close(img);
            if (!hit && kind == 1) {
                ck_assert_int_eq(r, 0);
                return; /* past the last write and flush */
            }
        }
    }
}
END_TEST

START_TEST(overlay_inherits)
{
    make_image();
    tu_sh("qemu-img bitmap --add -g 4k b.qcow2 g4k && "
          "qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 o.qcow2");
    es_image *img = open_rw("o.qcow2", true);
    es_err e = {0};
    ck_assert_msg(qcow2_bitmaps_inherit(img, &e) == 0, "%s", err_text(&e));
    es_image_close(img);
    ck_assert_int_eq(tu_sh_status("qemu-img check -q o.qcow2"), 0);
    char *info = info_bitmaps("o.qcow2");
    ck_assert_str_eq(info, "b1:65536:auto g4k:4096:auto\n");
    free(info);
    /* QEMU writes through the overlay and records it in the new bitmap. */
    tu_sh("qemu-io -c 'write 2M 4k' o.qcow2 >/dev/null");
    ck_assert_int_eq(tu_sh_status("qemu-img check -q o.qcow2"), 0);
    /* No backing bitmaps: nothing happens. */
    tu_sh("qemu-img create -q -f qcow2 n.qcow2 1M && "
          "qemu-img create -q -f qcow2 -b n.qcow2 -F qcow2 no.qcow2 && cp no.qcow2 no0.qcow2");
    img = open_rw("no.qcow2", true);
    ck_assert_int_eq(qcow2_bitmaps_inherit(img, &e), 0);
    es_image_close(img);
    ck_assert_int_eq(tu_sh_status("cmp -s no.qcow2 no0.qcow2"), 0);
}
END_TEST


/* nb.qcow2: no bitmaps, over a backing file whose name lies right after
 * the extensions (where the bitmaps extension goes). */
static void make_plain(void)
{
    tu_sh("qemu-img create -q -f qcow2 root.qcow2 8M && "
          "qemu-img create -q -f qcow2 -b root.qcow2 -F qcow2 nb.qcow2 && "
          "qemu-io -c 'write -P 1 1M 64k' nb.qcow2 >/dev/null");
}

/* Add bitmap "new" with 2M..3M set: returns 0 or -1. */
static int add_new(es_image *img, es_err *e)
{
    qcow2_bitmap_bits b;
    if (qcow2_bitmap_bits_new(&b, img, img->virtual_size, 16, "new", e) < 0)
        return -1;
    qcow2_bitmap_bits_mark(&b, 2u << 20, 1u << 20);
    qcow2_bitmap_out out = {.name = "new", .flags = QCOW2_BITMAP_FLAG_AUTO,
                            .granularity_bits = 16, .bits = &b};
    int r = qcow2_bitmap_dir_replace(img, &out, 1, e);
    qcow2_bitmap_bits_free(&b);
    return r;
}

START_TEST(ext_added_in_place)
{
    make_plain();
    tu_sh("cp nb.qcow2 orig.qcow2");
    for (uint64_t n = 1;; n++) {
        for (int kind = 0; kind < 2; kind++) {
            tu_sh("cp orig.qcow2 nb.qcow2");
            es_image *img = open_rw("nb.qcow2", false);
            es_fault_reset();
            es_fault_set(kind ? "flush" : "write", n, ES_FAULT_EIO);
            es_err e = {0};
            int r = add_new(img, &e);
            bool hit = es_fault_count(kind ? "flush" : "write") >= n;
            es_fault_reset();
            es_image_close(img);
            int rc = tu_sh_status("qemu-img check -q nb.qcow2 >/dev/null 2>&1");
            ck_assert_msg(rc == 0 || rc == 3, "fault at %s %llu: qemu-img check exits %d",
                          kind ? "flush" : "write", (unsigned long long)n, rc);
            /* No warning of QEMU about an ignored extension either. */
            char *warn = tu_capture("qemu-img info nb.qcow2 2>&1 >/dev/null");
            ck_assert_str_eq(warn, "");
            free(warn);
            char *backing = tu_capture("qemu-img info --output=json nb.qcow2 | "
                                       "jq -r '.\"backing-filename\"'");
            ck_assert_str_eq(backing, "root.qcow2\n");
            free(backing);
            char *info = info_bitmaps("nb.qcow2");
            ck_assert_msg(!strcmp(info, "\n") || !strcmp(info, "new:65536:auto\n"), "%s", info);
            if (r == 0)
                ck_assert_str_eq(info, "new:65536:auto\n");
            if (strcmp(info, "\n")) {
                img = open_rw("nb.qcow2", false);
                qcow2_bitmap_dir d;
                read_dir(img, &d);
                qcow2_bitmap_bits b;
                load(img, &d.entries[0], &b);
                for (uint64_t i = 0; i < b.nbits; i++)
                    ck_assert(qcow2_bitmap_bits_get(&b, i) == (i >= 32 && i < 48));
                qcow2_bitmap_bits_free(&b);
                qcow2_bitmap_dir_free(&d);
                es_image_close(img);
            }
            free(info);
            if (!hit && kind == 1) {
                ck_assert_int_eq(r, 0);
                ck_assert_int_eq(tu_sh_status("qemu-img check -q nb.qcow2"), 0);
                ck_assert_int_eq(tu_sh_status("qemu-img compare -q orig.qcow2 nb.qcow2"), 0);
                /* QEMU writes through it and keeps the bitmap. */
                tu_sh("qemu-io -c 'write 5M 4k' nb.qcow2 >/dev/null");
                char *after = info_bitmaps("nb.qcow2");
                ck_assert_str_eq(after, "new:65536:auto\n");
                free(after);
                return; /* past the last write and flush */
            }
        }
    }
}
END_TEST

START_TEST(ext_no_room)
{
    /* 512-byte clusters and the longest backing name qemu-img fits into
     * cluster 0, to 8 bytes (-u: the backing file is never opened). */
    tu_sh("for n in $(seq 480 -8 8); do "
          "qemu-img create -q -f qcow2 -o cluster_size=512 -u -F qcow2 "
          "-b $(head -c $n /dev/zero | tr '\\0' r) small.qcow2 1M 2>/dev/null && break; done && "
          "cp small.qcow2 small0.qcow2");
    es_image *img = open_rw("small.qcow2", false);
    es_err e = {0};
    ck_assert_int_eq(qcow2_bitmap_ext_can_switch(img, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "no room"));
    ck_assert_int_eq(add_new(img, &e), -1);
    es_image_close(img);
    ck_assert_int_eq(tu_sh_status("cmp -s small.qcow2 small0.qcow2"), 0);
}
END_TEST

START_TEST(adopt_chain_rules)
{
    tu_sh("qemu-img create -q -f qcow2 r.qcow2 8M && qemu-img bitmap --add r.qcow2 gap && "
          "qemu-img create -q -f qcow2 -b r.qcow2 -F qcow2 b.qcow2 && "
          "qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 m.qcow2 && "
          "qemu-img bitmap --add -g 128k m.qcow2 nb && qemu-img bitmap --add m.qcow2 midonly && "
          "qemu-img bitmap --add m.qcow2 dis && qemu-io -c 'write 1M 4k' m.qcow2 >/dev/null && "
          "qemu-img create -q -f qcow2 -b m.qcow2 -F qcow2 t.qcow2 && "
          "qemu-img bitmap --add t.qcow2 nb && qemu-img bitmap --add t.qcow2 gap && "
          "qemu-img bitmap --add --disable t.qcow2 dis && "
          "qemu-img bitmap --add -g 4k t.qcow2 solo && qemu-io -c 'write 3M 4k' t.qcow2 >/dev/null");
    es_image *top = open_rw("t.qcow2", true);
    es_image *base = top->backing->backing;
    qcow2_bitmap_adopt a;
    es_err e = {0};
    ck_assert_msg(qcow2_bitmap_adopt_prepare(top, base, &a, &e) == 0, "%s", err_text(&e));
    ck_assert_uint_eq(a.count, 2);
    ck_assert_str_eq(a.names[0], "nb");
    ck_assert_str_eq(a.names[1], "solo");
    ck_assert_uint_eq(a.bits[0].granularity_bits, 16); /* TOP's */
    ck_assert_uint_eq(a.bits[1].granularity_bits, 12);
    for (uint64_t i = 0; i < a.bits[0].nbits; i++) /* MID's 1M (128K) and TOP's 3M */
        ck_assert(qcow2_bitmap_bits_get(&a.bits[0], i) == (i == 16 || i == 17 || i == 48));
    qcow2_bitmap_adopt_free(&a);
    /* From MID: nb and midonly (dis is disabled below TOP only: valid too). */
    ck_assert_int_eq(qcow2_bitmap_adopt_prepare(top->backing, base, &a, &e), 0);
    ck_assert_uint_eq(a.count, 3);
    qcow2_bitmap_adopt_free(&a);
    es_image_close(top);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("qcow2_bitmaps");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, bits_mark_and_merge);
    tcase_add_test(tc, store_round_trip);
    tcase_add_test(tc, store_faults);
    tcase_add_test(tc, overlay_inherits);
    tcase_add_test(tc, ext_added_in_place);
    tcase_add_test(tc, ext_no_room);
    tcase_add_test(tc, adopt_chain_rules);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tu_need_tools("qemu-img", "qemu-io", "jq", NULL);
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
