/* Opening images and chains: malformed images (made by patching bytes of
 * fresh qemu-img images) must give one clear error naming what is wrong, and
 * never crash; chain resolution (relative names, --root, protocols, loops,
 * depth) must behave like QEMU or refuse clearly. */
#include <json-c/json.h>
#include <time.h>

#include "qcow2/format.h"
#include "qcow2/image.h"
#include "qcow2_test_util.h"
#include "tu_skip.h"

static char errbuf[8192];

static const char *err_text(const es_err *e)
{
    return es_err_str(e, errbuf, sizeof errbuf);
}

static es_image *open_with(const char *name, const es_open_opts *o)
{
    es_image *img = NULL;
    es_err e = {0};
    int r = es_image_open(&img, tu_path(name), o, &e);
    ck_assert_msg(r == 0, "open %s: %s", name, err_text(&e));
    ck_assert_ptr_nonnull(img);
    return img;
}

static es_image *open_ok(const char *name)
{
    es_open_opts o = {0};
    return open_with(name, &o);
}

/* Open must fail; the message must contain every given fragment. */
static void open_fails_with(const char *name, const es_open_opts *o, const char *frag1,
                            const char *frag2)
{
    es_open_opts none = {0};
    es_image *img = NULL;
    es_err e = {0};
    int r = es_image_open(&img, tu_path(name), o ? o : &none, &e);
    ck_assert_msg(r < 0, "open of %s succeeded, expected an error about '%s'", name, frag1);
    ck_assert_ptr_null(img);
    err_text(&e);
    ck_assert_msg(strstr(errbuf, frag1), "error '%s' does not mention '%s'", errbuf, frag1);
    ck_assert_msg(!frag2 || strstr(errbuf, frag2), "error '%s' does not mention '%s'", errbuf,
                  frag2);
}

/* The image opens, but block status and reads over the whole disk fail
 * with a message mentioning frag. */
static void access_fails_with(const char *name, const char *frag)
{
    es_image *img = open_ok(name);
    es_err e = {0};
    es_block_status bs;
    int r = 0;
    for (uint64_t off = 0; off < img->virtual_size && r == 0; off += bs.len)
        r = es_image_block_status(img, off, img->virtual_size - off, &bs, &e);
    ck_assert_msg(r < 0, "block status of %s succeeded, expected an error about '%s'", name, frag);
    ck_assert_msg(strstr(err_text(&e), frag), "block status error '%s' does not mention '%s'",
                  errbuf, frag);
    ck_assert_msg(strstr(errbuf, name), "error '%s' does not name the file", errbuf);

    size_t len = img->virtual_size < (8u << 20) ? (size_t)img->virtual_size : (8u << 20);
    uint8_t *buf = malloc(len);
    ck_assert_ptr_nonnull(buf);
    memset(&e, 0, sizeof e);
    r = es_image_read(img, buf, len, 0, &e);
    ck_assert_msg(r < 0, "read of %s succeeded, expected an error about '%s'", name, frag);
    ck_assert_msg(strstr(err_text(&e), frag), "read error '%s' does not mention '%s'", errbuf, frag);
    free(buf);
    es_image_close(img);
}

/* Offsets in a fresh 64 KiB-cluster image with data written at 0. */
static uint64_t l1_offset(const char *name)
{
    return tu_get_be(name, 40, 8);
}

static uint64_t l2_offset(const char *name)
{
    return tu_get_be(name, l1_offset(name), 8) & QCOW2_L1E_OFFSET_MASK;
}

static void make_data_image(const char *opts)
{
    tu_sh("qemu-img create -f qcow2 %s a.qcow2 4M && qemu-io -c 'write -P 0x5a 0 128k' a.qcow2",
          opts);
}

/* ---- header ---- */

START_TEST(truncated_header)
{
    make_data_image("");
    tu_sh("truncate -s 50 a.qcow2");
    open_fails_with("a.qcow2", NULL, "truncated qcow2 header", "a.qcow2");
    tu_sh("qemu-img create -f qcow2 b.qcow2 1M && truncate -s 90 b.qcow2");
    open_fails_with("b.qcow2", NULL, "truncated", NULL);
    /* Too short for a magic: a raw image (as QEMU probes), unless qcow2 is asked for. */
    tu_sh("printf ab > c.img");
    es_image *img = open_ok("c.img");
    ck_assert_int_eq(img->format, ES_FMT_RAW);
    ck_assert_uint_eq(img->virtual_size, 512); /* whole sectors, as QEMU counts */
    es_image_close(img);
    es_open_opts o = {.format = "qcow2"};
    open_fails_with("c.img", &o, "truncated qcow2 header", NULL);
    tu_sh("seq 1 1000 > d.img");
    open_fails_with("d.img", &o, "not a qcow2 image", NULL);
}
END_TEST

START_TEST(l1_beyond_eof)
{
    make_data_image("");
    tu_put_be("a.qcow2", 40, 8, 0x10000000);
    open_fails_with("a.qcow2", NULL, "L1 table at 0x10000000 lies beyond end of file", NULL);
}
END_TEST

START_TEST(huge_l1_size)
{
    make_data_image("");
    tu_put_be("a.qcow2", 36, 4, 0x10000000);
    open_fails_with("a.qcow2", NULL, "L1 table too large", NULL);
    tu_put_be("a.qcow2", 36, 4, 0xffffffff);
    open_fails_with("a.qcow2", NULL, "L1 table too large", NULL);
}
END_TEST

START_TEST(refcount_table_offset_bad)
{
    make_data_image("");
    tu_put_be("a.qcow2", 48, 8, 0);
    open_fails_with("a.qcow2", NULL, "refcount table overlaps the header", NULL);
    tu_put_be("a.qcow2", 48, 8, 0x10200);
    open_fails_with("a.qcow2", NULL, "refcount table offset 0x10200 is not cluster aligned", NULL);
    tu_put_be("a.qcow2", 48, 8, 0x100000000ull);
    open_fails_with("a.qcow2", NULL, "refcount table at 0x100000000 lies beyond end of file", NULL);
}
END_TEST

START_TEST(unknown_incompatible_bit)
{
    make_data_image("");
    tu_put_be("a.qcow2", 72, 8, 1u << 5);
    open_fails_with("a.qcow2", NULL, "incompatible feature bits 0x20", NULL);
}
END_TEST

START_TEST(encrypted_refused)
{
    /* qemu-img's LUKS key-derivation benchmark fails now and then on a busy
     * machine ("Unable to get accurate CPU usage"): try a few times. */
    tu_sh("ok=0; for i in 1 2 3 4 5; do qemu-img create -f qcow2 --object secret,id=s0,data=pw "
          "-o encrypt.format=luks,encrypt.key-secret=s0 luks.qcow2 1M >/dev/null && "
          "{ ok=1; break; }; rm -f luks.qcow2; sleep 0.3; done; [ $ok = 1 ]");
    open_fails_with("luks.qcow2", NULL, "encrypted images are not supported", "luks.qcow2");
    make_data_image("");
    tu_put_be("a.qcow2", 32, 4, 1);
    open_fails_with("a.qcow2", NULL, "encrypted images are not supported", NULL);
}
END_TEST

START_TEST(external_data_file_refused)
{
    tu_sh("qemu-img create -f qcow2 -o data_file=d.raw x.qcow2 1M");
    open_fails_with("x.qcow2", NULL, "external data file", "d.raw");
}
END_TEST

START_TEST(corrupt_and_dirty_bits)
{
    make_data_image("");
    es_open_opts rw = {.writable = true};
    tu_put_be("a.qcow2", 72, 8, QCOW2_INCOMPAT_CORRUPT);
    open_fails_with("a.qcow2", &rw, "image is marked corrupt; run 'extsnap img check -r all'", NULL);
    es_image_close(open_ok("a.qcow2")); /* read-only is fine, as in QEMU */
    tu_put_be("a.qcow2", 72, 8, QCOW2_INCOMPAT_DIRTY);
    open_fails_with("a.qcow2", &rw, "dirty bit", NULL);
    es_image *img = open_ok("a.qcow2");
    uint8_t b[16];
    es_err e = {0};
    ck_assert_int_eq(es_image_read(img, b, sizeof b, 0, &e), 0);
    ck_assert_uint_eq(b[0], 0x5a);
    es_image_close(img);
    tu_put_be("a.qcow2", 72, 8, 0);
    img = open_with("a.qcow2", &rw);
    ck_assert(img->writable);
    es_image_close(img);
}
END_TEST

START_TEST(backing_name_outside_cluster0)
{
    tu_sh("qemu-img create -f qcow2 base.qcow2 1M && "
          "qemu-img create -f qcow2 -b base.qcow2 -F qcow2 top.qcow2");
    tu_put_be("top.qcow2", 8, 8, 65536 - 4);
    open_fails_with("top.qcow2", NULL, "backing file name", "outside cluster 0");
    tu_put_be("top.qcow2", 8, 8, 0x200000);
    open_fails_with("top.qcow2", NULL, "backing file name", "outside cluster 0");
}
END_TEST

/* ---- L1 / L2 entries, checked on use ---- */

START_TEST(l2_offset_unaligned)
{
    make_data_image("");
    uint64_t l1 = l1_offset("a.qcow2");
    uint64_t e0 = tu_get_be("a.qcow2", l1, 8);
    tu_put_be("a.qcow2", l1, 8, e0 + 512);
    access_fails_with("a.qcow2", "is not cluster aligned");
}
END_TEST

START_TEST(l2_beyond_eof)
{
    make_data_image("");
    tu_put_be("a.qcow2", l1_offset("a.qcow2"), 8, QCOW2_OFLAG_COPIED | 0x40000000);
    access_fails_with("a.qcow2", "L2 table at 0x40000000 lies beyond end of file");
}
END_TEST

START_TEST(l1_reserved_bits)
{
    make_data_image("");
    uint64_t l1 = l1_offset("a.qcow2");
    tu_put_be("a.qcow2", l1, 8, tu_get_be("a.qcow2", l1, 8) | (1ull << 57));
    access_fails_with("a.qcow2", "reserved bits");
}
END_TEST

START_TEST(l2_entry_bad)
{
    make_data_image("");
    uint64_t l2 = l2_offset("a.qcow2");
    uint64_t e0 = tu_get_be("a.qcow2", l2, 8);
    tu_put_be("a.qcow2", l2 + 8, 8, QCOW2_OFLAG_COPIED | 0x4000000000ull);
    access_fails_with("a.qcow2", "data cluster lies beyond end of file at 0x4000000000");
    tu_put_be("a.qcow2", l2 + 8, 8, e0 + 4096);
    access_fails_with("a.qcow2", "not cluster aligned");
    tu_put_be("a.qcow2", l2 + 8, 8, e0 | 2);
    access_fails_with("a.qcow2", "reserved bits");
}
END_TEST

START_TEST(zero_flag_in_v2_is_reserved)
{
    make_data_image("-o compat=0.10");
    uint64_t l2 = l2_offset("a.qcow2");
    tu_put_be("a.qcow2", l2, 8, 1);
    access_fails_with("a.qcow2", "reserved bits");
}
END_TEST

START_TEST(compressed_descriptor_beyond_eof)
{
    tu_sh("qemu-img create -f qcow2 a.qcow2 4M && qemu-io -c 'write -c -P 0x5a 0 64k' a.qcow2");
    uint64_t l2 = l2_offset("a.qcow2");
    uint64_t e0 = tu_get_be("a.qcow2", l2, 8);
    ck_assert_msg(e0 & QCOW2_OFLAG_COMPRESSED, "entry 0x%llx not compressed", (unsigned long long)e0);
    /* 64 KiB clusters: bits 0..53 hold the byte offset. */
    uint64_t off_mask = (1ull << 54) - 1;
    tu_put_be("a.qcow2", l2, 8, (e0 & ~off_mask) | 0x3000000);
    access_fails_with("a.qcow2", "compressed cluster lies beyond end of file at 0x3000000");
}
END_TEST

START_TEST(compressed_data_corrupt)
{
    tu_sh("seq 1 20000 > s.txt && "
          "qemu-img convert -c -O qcow2 s.txt c.qcow2 && "
          "qemu-img convert -c -O qcow2 -o compression_type=zstd s.txt cz.qcow2");
    const char *names[] = {"c.qcow2", "cz.qcow2"};
    for (int i = 0; i < 2; i++) {
        uint64_t l2 = l2_offset(names[i]);
        uint64_t e0 = tu_get_be(names[i], l2, 8);
        ck_assert(e0 & QCOW2_OFLAG_COMPRESSED);
        uint64_t host = e0 & ((1ull << 54) - 1);
        /* Garble the start of the stream. */
        uint8_t junk[64];
        for (size_t j = 0; j < sizeof junk; j++)
            junk[j] = (uint8_t)(j * 37 + 11);
        tu_pwrite(names[i], junk, sizeof junk, host);
        es_image *img = open_ok(names[i]);
        uint8_t buf[4096];
        es_err e = {0};
        ck_assert_int_lt(es_image_read(img, buf, sizeof buf, 0, &e), 0);
        err_text(&e);
        ck_assert_msg(strstr(errbuf, "compressed cluster at 0x") && strstr(errbuf, names[i]),
                      "bad message: %s", errbuf);
        es_image_close(img);
    }
}
END_TEST

START_TEST(invalid_subcluster_bitmap)
{
    tu_sh("qemu-img create -f qcow2 -o extended_l2=on a.qcow2 4M && "
          "qemu-io -c 'write -P 0x5a 0 4k' a.qcow2");
    uint64_t l2 = l2_offset("a.qcow2");
    uint64_t bitmap = tu_get_be("a.qcow2", l2 + 8, 8);
    ck_assert_uint_eq(bitmap, 0x3); /* 2 KiB subclusters 0 and 1 */
    tu_put_be("a.qcow2", l2 + 8, 8, bitmap | (1ull << 32));
    access_fails_with("a.qcow2", "invalid subcluster bitmap");
    /* Allocated subclusters in an entry without a cluster. */
    tu_put_be("a.qcow2", l2, 8, 0);
    tu_put_be("a.qcow2", l2 + 8, 8, 0x1);
    access_fails_with("a.qcow2", "invalid subcluster bitmap");
}
END_TEST

/* ---- backing chain ---- */

START_TEST(backing_loops)
{
    tu_sh("qemu-img create -f qcow2 b.qcow2 1M && "
          "qemu-img create -f qcow2 -b b.qcow2 -F qcow2 a.qcow2 && "
          "qemu-img rebase -u -b a.qcow2 -F qcow2 b.qcow2");
    open_fails_with("a.qcow2", NULL, "backing chain loop", "a.qcow2 is already in the chain");
    tu_sh("qemu-img create -f qcow2 self.qcow2 1M && "
          "qemu-img rebase -u -b self.qcow2 -F qcow2 self.qcow2");
    open_fails_with("self.qcow2", NULL, "backing chain loop", "self.qcow2 is already in the chain");
    /* Same file under another name (hard link) is the same file. */
    tu_sh("qemu-img create -f qcow2 c.qcow2 1M && ln c.qcow2 c2.qcow2 && "
          "qemu-img rebase -u -b c2.qcow2 -F qcow2 c.qcow2");
    open_fails_with("c.qcow2", NULL, "backing chain loop", "c2.qcow2");
    /* no_backing opens the top alone. */
    es_open_opts o = {.no_backing = true};
    es_image *img = open_with("a.qcow2", &o);
    ck_assert_ptr_null(img->backing);
    ck_assert_str_eq(img->hdr.backing_file, "b.qcow2");
    es_image_close(img);
}
END_TEST

START_TEST(chain_too_deep)
{
    tu_sh("qemu-img create -f qcow2 i0.qcow2 1M && "
          "for i in $(seq 1 %d); do "
          "  qemu-img create -q -f qcow2 -u -b i$((i - 1)).qcow2 -F qcow2 i$i.qcow2 1M || exit 1; "
          "done",
          ES_CHAIN_MAX_DEPTH + 1);
    char name[64];
    snprintf(name, sizeof name, "i%d.qcow2", ES_CHAIN_MAX_DEPTH);
    es_image *img = open_ok(name);
    int depth = 0;
    for (es_image *i = img; i->backing; i = i->backing)
        depth = i->backing->depth;
    ck_assert_int_eq(depth, ES_CHAIN_MAX_DEPTH);
    es_image_close(img);
    snprintf(name, sizeof name, "i%d.qcow2", ES_CHAIN_MAX_DEPTH + 1);
    open_fails_with(name, NULL, "backing chain is deeper than", NULL);
}
END_TEST

START_TEST(protocol_names_refused)
{
    tu_sh("qemu-img create -f qcow2 -u -b 'nbd://localhost:10809' -F raw p1.qcow2 1M && "
          "qemu-img create -f qcow2 -u -b 'json:{\"file.filename\":\"x.raw\"}' -F raw p2.qcow2 1M && "
          "qemu-img create -f qcow2 -u -b 'a:b.qcow2' -F raw p3.qcow2 1M && "
          "qemu-img create -f qcow2 -u -b 'http://example.com/x.img' -F raw p4.qcow2 1M && "
          "qemu-img create -f qcow2 b.qcow2 1M && cp b.qcow2 'a:b.qcow2' && "
          "qemu-img create -f qcow2 -u -b './a:b.qcow2' -F qcow2 p5.qcow2 1M");
    open_fails_with("p1.qcow2", NULL,
                    "backing file 'nbd://localhost:10809' uses a protocol; extsnap follows only "
                    "local files",
                    "p1.qcow2");
    open_fails_with("p2.qcow2", NULL, "backing file 'json:", "uses a protocol");
    open_fails_with("p3.qcow2", NULL, "backing file 'a:b.qcow2' uses a protocol", NULL);
    open_fails_with("p4.qcow2", NULL, "uses a protocol", NULL);
    /* "./a:b.qcow2" is a plain file name, as in QEMU. */
    es_image *img = open_ok("p5.qcow2");
    ck_assert_ptr_nonnull(img->backing);
    es_image_close(img);
}
END_TEST

START_TEST(missing_backing_file)
{
    tu_sh("qemu-img create -f qcow2 base.qcow2 1M && "
          "qemu-img create -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 && rm base.qcow2");
    es_image *img = NULL;
    es_err e = {0};
    es_open_opts o = {0};
    ck_assert_int_lt(es_image_open(&img, tu_path("top.qcow2"), &o, &e), 0);
    ck_assert_int_eq(e.errnum, ENOENT);
    err_text(&e);
    ck_assert_msg(strstr(errbuf, "top.qcow2") && strstr(errbuf, "base.qcow2"),
                  "error does not name both files: %s", errbuf);
}
END_TEST

START_TEST(backing_format_handling)
{
    tu_sh("qemu-img create -f qcow2 base.qcow2 1M && qemu-io -c 'write -P 7 0 4k' base.qcow2 && "
          "qemu-img create -f qcow2 -b base.qcow2 -F qcow2 top.qcow2");
    es_image *img = open_ok("top.qcow2");
    ck_assert(!img->backing_format_probed);
    es_image_close(img);
    /* Without the backing-format extension (turned into an unknown one):
     * probed, and recorded. */
    uint64_t ext = 112;
    ck_assert_uint_eq(tu_get_be("top.qcow2", ext, 4), QCOW2_EXT_BACKING_FORMAT);
    tu_put_be("top.qcow2", ext, 4, 0x12345678);
    img = open_ok("top.qcow2");
    ck_assert(img->backing_format_probed);
    ck_assert_int_eq(img->backing->format, ES_FMT_QCOW2);
    uint8_t b;
    es_err e = {0};
    ck_assert_int_eq(es_image_read(img, &b, 1, 0, &e), 0);
    ck_assert_uint_eq(b, 7);
    es_image_close(img);
    /* A backing format we do not speak. */
    tu_put_be("top.qcow2", ext, 4, QCOW2_EXT_BACKING_FORMAT);
    tu_pwrite("top.qcow2", "vmdk2", 5, ext + 8);
    open_fails_with("top.qcow2", NULL, "format 'vmdk2' is not supported", NULL);
    /* "raw" over a qcow2 file: read as raw, as QEMU would. */
    tu_pwrite("top.qcow2", "raw\0\0", 5, ext + 8);
    tu_put_be("top.qcow2", ext + 4, 4, 3);
    img = open_ok("top.qcow2");
    ck_assert_int_eq(img->backing->format, ES_FMT_RAW);
    es_image_close(img);
}
END_TEST

static char *qemu_full_backing(const char *top)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "qemu-img info --output=json '%s'", top);
    char *out = tu_capture(cmd);
    json_object *o = json_tokener_parse(out), *v;
    ck_assert_ptr_nonnull(o);
    ck_assert(json_object_object_get_ex(o, "full-backing-filename", &v));
    char *s = strdup(json_object_get_string(v));
    json_object_put(o);
    free(out);
    return s;
}

START_TEST(relative_names_like_qemu)
{
    tu_sh("mkdir -p c1/sub && qemu-img create -f qcow2 c1/base.qcow2 1M && "
          "qemu-img create -f qcow2 -b ../base.qcow2 -F qcow2 c1/sub/mid.qcow2 && "
          "qemu-img create -f qcow2 -b sub/mid.qcow2 -F qcow2 c1/top.qcow2");
    ck_assert_int_eq(chdir(tu_dir), 0);
    const char *tops[] = {"c1/top.qcow2", "./c1/top.qcow2", tu_path("c1/top.qcow2")};
    for (int i = 0; i < 3; i++) {
        es_image *img = NULL;
        es_err e = {0};
        es_open_opts o = {0};
        ck_assert_msg(es_image_open(&img, tops[i], &o, &e) == 0, "%s", err_text(&e));
        char *q = qemu_full_backing(tops[i]);
        ck_assert_str_eq(img->backing->filename, q);
        ck_assert_str_eq(img->backing_resolved, q);
        free(q);
        q = qemu_full_backing(img->backing->filename);
        ck_assert_str_eq(img->backing->backing->filename, q);
        free(q);
        ck_assert_int_eq(img->backing->backing->depth, 2);
        es_image_close(img);
    }
}
END_TEST

START_TEST(root_resolution)
{
    tu_sh("mkdir -p R/images R/other && qemu-img create -f qcow2 R/images/base.qcow2 1M && "
          "qemu-io -c 'write -P 9 0 4k' R/images/base.qcow2 && "
          "qemu-img create -f qcow2 -u -b /images/base.qcow2 -F qcow2 R/images/top.qcow2 1M && "
          "qemu-img create -f qcow2 -u -b ../../../../../etc/x.qcow2 -F qcow2 R/images/esc.qcow2 1M && "
          "ln -s /images/base.qcow2 R/other/link.qcow2 && "
          "qemu-img create -f qcow2 -u -b /other/link.qcow2 -F qcow2 R/images/vialink.qcow2 1M && "
          "qemu-img create -f qcow2 outside.qcow2 1M && ln -s ../../outside.qcow2 R/other/bad.qcow2 && "
          "qemu-img create -f qcow2 -u -b /other/bad.qcow2 -F qcow2 R/images/badlink.qcow2 1M");
    char root[4200];
    snprintf(root, sizeof root, "%s/R", tu_dir);
    es_open_opts o = {.root = root};
    es_image *img = NULL;
    es_err e = {0};
    ck_assert_msg(es_image_open(&img, "/images/top.qcow2", &o, &e) == 0, "%s", err_text(&e));
    ck_assert_str_eq(img->filename, "/images/top.qcow2");
    ck_assert_str_eq(img->backing->filename, "/images/base.qcow2");
    ck_assert_ptr_nonnull(strstr(img->backing->open_path, "/R/images/base.qcow2"));
    uint8_t b;
    ck_assert_int_eq(es_image_read(img, &b, 1, 0, &e), 0);
    ck_assert_uint_eq(b, 9);
    es_image_close(img);

    img = NULL;
    ck_assert_msg(es_image_open(&img, "/images/vialink.qcow2", &o, &e) == 0, "%s", err_text(&e));
    ck_assert_ptr_nonnull(strstr(img->backing->open_path, "/R/images/base.qcow2"));
    es_image_close(img);

    img = NULL;
    ck_assert_int_lt(es_image_open(&img, "/images/esc.qcow2", &o, &e), 0);
    ck_assert_msg(strstr(err_text(&e), "outside the root"), "%s", errbuf);
    ck_assert_int_lt(es_image_open(&img, "/images/badlink.qcow2", &o, &e), 0);
    ck_assert_msg(strstr(err_text(&e), "outside the root"), "%s", errbuf);
    ck_assert_ptr_null(img);
}
END_TEST

START_TEST(format_option)
{
    make_data_image("");
    es_open_opts raw = {.format = "raw"};
    es_image *img = open_with("a.qcow2", &raw);
    ck_assert_int_eq(img->format, ES_FMT_RAW);
    ck_assert_uint_eq(img->virtual_size, (img->file_size + 511) & ~511ull);
    es_image_close(img);
    es_open_opts vmdk = {.format = "vmdk"};
    open_fails_with("a.qcow2", &vmdk, "format 'vmdk' is not supported", NULL);
    /* Raw images read zeroes past their end (up to the next whole sector,
     * their virtual size), block status says data. */
    tu_sh("printf 'hello' > r.img");
    img = open_ok("r.img");
    uint8_t buf[16];
    es_err e = {0};
    ck_assert_int_eq(es_image_read(img, buf, sizeof buf, 0, &e), 0);
    ck_assert_int_eq(memcmp(buf, "hello\0\0\0\0\0\0\0\0\0\0\0", 16), 0);
    es_block_status bs;
    ck_assert_int_eq(es_image_block_status(img, 1, 100, &bs, &e), 0);
    ck_assert_int_eq(bs.kind, ES_BS_DATA);
    ck_assert_uint_eq(img->virtual_size, 512);
    ck_assert_uint_eq(bs.len, 100);
    es_image_close(img);
}
END_TEST

START_TEST(fields_filled)
{
    tu_sh("qemu-img create -f qcow2 -o extended_l2=on,cluster_size=128k,refcount_bits=64 a.qcow2 "
          "5G");
    es_image *img = open_ok("a.qcow2");
    ck_assert_int_eq(img->format, ES_FMT_QCOW2);
    ck_assert_uint_eq(img->cluster_size, 128u << 10);
    ck_assert_uint_eq(img->cluster_bits, 17);
    ck_assert(img->extended_l2);
    ck_assert_uint_eq(img->l2_entry_bytes, 16);
    ck_assert_uint_eq(img->l2_entries, 8192);
    ck_assert_uint_eq(img->subcluster_size, 4096);
    ck_assert_uint_eq(img->refcount_bits, 64);
    ck_assert_uint_eq(img->virtual_size, 5ull << 30);
    ck_assert_uint_eq(img->l1_size, 5);
    ck_assert_ptr_null(img->reftable);
    ck_assert_ptr_nonnull(img->l2_cache);
    ck_assert_int_eq(img->depth, 0);
    es_image_close(img);
}
END_TEST

/* Random byte damage in the metadata of a small chain: every open, block
 * status and read either works or fails cleanly (ASan/UBSan catch the rest). */
START_TEST(random_damage_never_crashes)
{
    tu_sh("qemu-img create -f qcow2 -o cluster_size=4k base.qcow2 2M && "
          "qemu-io -c 'write -P 1 0 300k' -c 'write -c -P 2 1M 64k' base.qcow2 && "
          "qemu-img create -f qcow2 -o extended_l2=on,cluster_size=16k -b base.qcow2 -F qcow2 "
          "  top.qcow2 && "
          "qemu-io -c 'write -P 3 100k 10k' -c 'write -z 1M 16k' -c 'write -c -P 4 1536k 16k' top.qcow2");
    size_t top_len, base_len;
    uint8_t *top = tu_slurp("top.qcow2", &top_len), *base = tu_slurp("base.qcow2", &base_len);
    unsigned seed = (unsigned)time(NULL);
    fprintf(stderr, "random_damage_never_crashes: seed %u\n", seed);
    uint8_t *buf = malloc(2u << 20);
    ck_assert_ptr_nonnull(buf);
    for (int iter = 0; iter < 150; iter++) {
        tu_pwrite("top.qcow2", top, top_len, 0);
        tu_pwrite("base.qcow2", base, base_len, 0);
        const char *victim = rand_r(&seed) & 1 ? "top.qcow2" : "base.qcow2";
        size_t vlen = victim[0] == 't' ? top_len : base_len;
        int n = 1 + rand_r(&seed) % 6;
        for (int k = 0; k < n; k++) {
            /* Mostly the first clusters (header, tables), sometimes anywhere. */
            size_t span = rand_r(&seed) % 4 ? (vlen < 65536 ? vlen : 65536) : vlen;
            uint64_t at = (uint64_t)rand_r(&seed) % span;
            uint8_t v = (uint8_t)rand_r(&seed);
            tu_pwrite(victim, &v, 1, at);
        }
        es_image *img = NULL;
        es_err e = {0};
        es_open_opts o = {0};
        if (es_image_open(&img, tu_path("top.qcow2"), &o, &e) < 0) {
            ck_assert_msg(e.msg[0], "error without message (seed %u iter %d)", seed, iter);
            continue;
        }
        uint64_t len = img->virtual_size < (2u << 20) ? img->virtual_size : (2u << 20);
        if (es_image_read(img, buf, len, 0, &e) < 0)
            ck_assert_msg(e.msg[0], "read error without message (seed %u iter %d)", seed, iter);
        es_block_status bs;
        for (uint64_t off = 0, steps = 0; off < img->virtual_size && steps < 100000;
             off += bs.len, steps++)
            if (es_image_block_status(img, off, img->virtual_size - off, &bs, &e) < 0)
                break;
        es_image_close(img);
    }
    free(buf);
    free(top);
    free(base);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("qcow2_open");
    TCase *t = tcase_create("open");
    tcase_add_checked_fixture(t, tu_setup, tu_teardown);
    tcase_set_timeout(t, 300);
    tcase_add_test(t, truncated_header);
    tcase_add_test(t, l1_beyond_eof);
    tcase_add_test(t, huge_l1_size);
    tcase_add_test(t, refcount_table_offset_bad);
    tcase_add_test(t, unknown_incompatible_bit);
    tcase_add_test(t, encrypted_refused);
    tcase_add_test(t, external_data_file_refused);
    tcase_add_test(t, corrupt_and_dirty_bits);
    tcase_add_test(t, backing_name_outside_cluster0);
    tcase_add_test(t, l2_offset_unaligned);
    tcase_add_test(t, l2_beyond_eof);
    tcase_add_test(t, l1_reserved_bits);
    tcase_add_test(t, l2_entry_bad);
    tcase_add_test(t, zero_flag_in_v2_is_reserved);
    tcase_add_test(t, compressed_descriptor_beyond_eof);
    tcase_add_test(t, compressed_data_corrupt);
    tcase_add_test(t, invalid_subcluster_bitmap);
    tcase_add_test(t, backing_loops);
    tcase_add_test(t, chain_too_deep);
    tcase_add_test(t, protocol_names_refused);
    tcase_add_test(t, missing_backing_file);
    tcase_add_test(t, backing_format_handling);
    tcase_add_test(t, relative_names_like_qemu);
    tcase_add_test(t, root_resolution);
    tcase_add_test(t, format_option);
    tcase_add_test(t, fields_filled);
    tcase_add_test(t, random_damage_never_crashes);
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
