/* Reads and block status through backing chains, checked against qemu-img:
 * the whole virtual disk read with es_image_read (in several chunk sizes and
 * at random offsets) must equal `qemu-img convert -O raw`, and the chain's
 * block status must agree with `qemu-img map --output=json`. */
#include <json-c/json.h>

#include "qcow2/image.h"
#include "qcow2_test_util.h"
#include "tu_skip.h"

static es_image *open_ok(const char *name)
{
    es_image *img = NULL;
    es_err e = {0};
    es_open_opts o = {0};
    char msg[2048];
    int r = es_image_open(&img, tu_path(name), &o, &e);
    ck_assert_msg(r == 0, "open %s: %s", name, es_err_str(&e, msg, sizeof msg));
    return img;
}

static void read_ok(es_image *img, uint8_t *buf, uint64_t len, uint64_t off)
{
    es_err e = {0};
    char msg[2048];
    int r = es_image_read(img, buf, len, off, &e);
    ck_assert_msg(r == 0, "read %llu@0x%llx: %s", (unsigned long long)len, (unsigned long long)off,
                  es_err_str(&e, msg, sizeof msg));
}

static void assert_same(const uint8_t *ours, const uint8_t *ref, uint64_t len, uint64_t off,
                        const char *what)
{
    if (memcmp(ours, ref, (size_t)len) == 0)
        return;
    uint64_t i = 0;
    while (ours[i] == ref[i])
        i++;
    ck_abort_msg("%s: guest byte 0x%llx differs: ours 0x%02x, qemu-img 0x%02x", what,
                 (unsigned long long)(off + i), ours[i], ref[i]);
}

/* Whole-disk reads of `top` compared with qemu-img convert -O raw. */
static void check_read(const char *top)
{
    tu_sh("qemu-img convert -O raw %s ref.raw", top);
    size_t ref_len;
    uint8_t *ref = tu_slurp("ref.raw", &ref_len);
    es_image *img = open_ok(top);
    ck_assert_uint_eq(img->virtual_size, ref_len);

    static const uint64_t chunks[] = {(2u << 20) + 1, 1u << 20, 65536 + 3, 4095, 777};
    uint8_t *buf = malloc(chunks[0]);
    ck_assert_ptr_nonnull(buf);
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        for (uint64_t off = 0; off < ref_len; off += chunks[c]) {
            uint64_t n = ref_len - off < chunks[c] ? ref_len - off : chunks[c];
            read_ok(img, buf, n, off);
            char what[128];
            snprintf(what, sizeof what, "%s, chunks of %llu", top, (unsigned long long)chunks[c]);
            assert_same(buf, ref + off, n, off, what);
        }
    }
    /* Random ranges, including ones that run past the virtual size. */
    unsigned seed = (unsigned)ref_len ^ 0x5eed;
    for (int i = 0; i < 300; i++) {
        uint64_t off = (uint64_t)rand_r(&seed) % (ref_len + 4096);
        uint64_t n = 1 + (uint64_t)rand_r(&seed) % 300000;
        read_ok(img, buf, n, off);
        for (uint64_t j = 0; j < n; j++) {
            uint8_t want = off + j < ref_len ? ref[off + j] : 0;
            if (buf[j] != want) /* ck_assert per byte is slow: check first */
                ck_abort_msg("%s: random read %llu@0x%llx (seed %u): byte 0x%llx is 0x%02x, not 0x%02x",
                             top, (unsigned long long)n, (unsigned long long)off, seed,
                             (unsigned long long)(off + j), buf[j], want);
        }
    }
    free(buf);
    free(ref);
    es_image_close(img);
}

/* The first image of the chain that says something about pos. */
typedef struct chain_status {
    bool present;
    int depth;
    es_image *img;
    es_block_status bs;
} chain_status;

static uint64_t chain_block_status(es_image *top, uint64_t pos, uint64_t max, chain_status *cs)
{
    es_err e = {0};
    char msg[2048];
    memset(cs, 0, sizeof *cs);
    int d = 0;
    for (es_image *i = top; i; i = i->backing, d++) {
        if (pos >= i->virtual_size)
            return max;
        int r = es_image_block_status(i, pos, max, &cs->bs, &e);
        ck_assert_msg(r == 0, "block status 0x%llx in %s: %s", (unsigned long long)pos, i->filename,
                      es_err_str(&e, msg, sizeof msg));
        ck_assert_msg(cs->bs.len > 0 && cs->bs.len <= max, "block status length %llu (max %llu)",
                      (unsigned long long)cs->bs.len, (unsigned long long)max);
        if (cs->bs.kind != ES_BS_UNALLOC) {
            cs->present = true;
            cs->depth = d;
            cs->img = i;
            return cs->bs.len;
        }
        max = cs->bs.len;
    }
    return max;
}

/* Counts of each kind seen at depth 0, to prove a test exercised them. */
typedef struct kind_counts {
    uint64_t n[4];
} kind_counts;

static void check_map(const char *top, kind_counts *counts)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "qemu-img map --output=json %s", top);
    char *out = tu_capture(cmd);
    json_object *arr = json_tokener_parse(out);
    ck_assert_msg(arr && json_object_is_type(arr, json_type_array), "bad map output: %s", out);
    es_image *img = open_ok(top);
    if (counts)
        memset(counts, 0, sizeof *counts);
    uint64_t expect_start = 0;
    for (size_t k = 0; k < json_object_array_length(arr); k++) {
        json_object *o = json_object_array_get_idx(arr, k), *v;
        uint64_t start = 0, length = 0, offset = 0;
        int depth = 0;
        bool present = false, data = false, has_offset = false;
        if (json_object_object_get_ex(o, "start", &v))
            start = (uint64_t)json_object_get_int64(v);
        if (json_object_object_get_ex(o, "length", &v))
            length = (uint64_t)json_object_get_int64(v);
        if (json_object_object_get_ex(o, "depth", &v))
            depth = json_object_get_int(v);
        if (json_object_object_get_ex(o, "present", &v))
            present = json_object_get_boolean(v);
        if (json_object_object_get_ex(o, "data", &v))
            data = json_object_get_boolean(v);
        if ((has_offset = json_object_object_get_ex(o, "offset", &v)))
            offset = (uint64_t)json_object_get_int64(v);
        ck_assert_uint_eq(start, expect_start);
        expect_start = start + length;
        for (uint64_t pos = start; pos < start + length;) {
            chain_status cs;
            uint64_t n = chain_block_status(img, pos, start + length - pos, &cs);
            const char *where = top;
            ck_assert_msg(cs.present == present,
                          "%s: guest 0x%llx: present %d, qemu-img map says %d", where,
                          (unsigned long long)pos, cs.present, present);
            if (present) {
                ck_assert_msg(cs.depth == depth, "%s: guest 0x%llx: depth %d, qemu-img map says %d",
                              where, (unsigned long long)pos, cs.depth, depth);
                if (counts && cs.depth == 0)
                    counts->n[cs.bs.kind] += n;
                if (cs.img->format == ES_FMT_RAW) {
                    ck_assert_int_eq(cs.bs.kind, ES_BS_DATA);
                } else if (data) {
                    ck_assert_msg(cs.bs.kind == ES_BS_DATA || cs.bs.kind == ES_BS_COMPRESSED,
                                  "%s: guest 0x%llx: kind %d, qemu-img map says data", where,
                                  (unsigned long long)pos, cs.bs.kind);
                    if (has_offset && cs.bs.kind == ES_BS_DATA)
                        ck_assert_msg(cs.bs.host_off == offset + (pos - start),
                                      "%s: guest 0x%llx: host 0x%llx, qemu-img map says 0x%llx",
                                      where, (unsigned long long)pos,
                                      (unsigned long long)cs.bs.host_off,
                                      (unsigned long long)(offset + (pos - start)));
                } else {
                    ck_assert_msg(cs.bs.kind == ES_BS_ZERO,
                                  "%s: guest 0x%llx: kind %d, qemu-img map says zero", where,
                                  (unsigned long long)pos, cs.bs.kind);
                }
            }
            pos += n;
        }
    }
    ck_assert_uint_eq(expect_start, img->virtual_size);
    json_object_put(arr);
    free(out);
    es_image_close(img);
}

/* A 3-image chain, base shorter than the others, with data, zeroes (with and
 * without unmap), discards and unaligned writes at every level. */
static void build_chain(const char *o_base, const char *o_mid, const char *o_top)
{
    tu_sh("qemu-img create -f qcow2 %s base.qcow2 6M && "
          "qemu-io -c 'write -P 0x11 0 1M' -c 'write -P 0x12 2M 300k' -c 'write -P 0x13 5M 64k' "
          "  -c 'write -P 0x14 3000001 7777' base.qcow2",
          o_base);
    tu_sh("qemu-img create -f qcow2 %s -b base.qcow2 -F qcow2 mid.qcow2 8M && "
          "qemu-io -c 'write -P 0x21 512k 128k' -c 'write -z 2100k 40k' -c 'write -z -u 5M 64k' "
          "  -c 'write -P 0x22 6M 1M' -c 'discard 2M 64k' -c 'write -P 0x23 900k 4k' mid.qcow2",
          o_mid);
    tu_sh("qemu-img create -f qcow2 %s -b mid.qcow2 -F qcow2 top.qcow2 8M && "
          "qemu-io -c 'write -P 0x31 100k 5k' -c 'write -z 600k 3k' -c 'write -P 0x32 7M 1M' "
          "  -c 'discard 6M 64k' -c 'write -z -u 0 4k' -c 'write -P 0x33 5100000 3333' top.qcow2",
          o_top);
}

static void chain_test(const char *o_base, const char *o_mid, const char *o_top)
{
    build_chain(o_base, o_mid, o_top);
    check_read("top.qcow2");
    check_map("top.qcow2", NULL);
    check_map("mid.qcow2", NULL);
}

START_TEST(chain_512_v3) { chain_test("-o cluster_size=512", "-o cluster_size=512", "-o cluster_size=512"); }
END_TEST
START_TEST(chain_4k_v3) { chain_test("-o cluster_size=4k", "-o cluster_size=4k", "-o cluster_size=4k"); }
END_TEST
START_TEST(chain_64k_v3) { chain_test("", "", ""); }
END_TEST
START_TEST(chain_2m_v3) { chain_test("-o cluster_size=2M", "-o cluster_size=2M", "-o cluster_size=2M"); }
END_TEST
START_TEST(chain_mixed_sizes) { chain_test("-o cluster_size=2M", "-o cluster_size=512", "-o cluster_size=4k"); }
END_TEST
START_TEST(chain_v2)
{
    chain_test("-o compat=0.10,cluster_size=4k", "-o compat=0.10", "-o compat=0.10,cluster_size=512");
}
END_TEST
START_TEST(chain_extended_l2)
{
    chain_test("-o extended_l2=on", "-o extended_l2=on,cluster_size=2M",
               "-o extended_l2=on,cluster_size=16k");
}
END_TEST
START_TEST(chain_extended_l2_over_v2)
{
    chain_test("-o compat=0.10", "-o extended_l2=on", "-o cluster_size=512");
}
END_TEST
START_TEST(chain_refcount_widths)
{
    chain_test("-o refcount_bits=1", "-o refcount_bits=64,cluster_size=4k", "-o refcount_bits=1");
}
END_TEST

START_TEST(raw_base)
{
    tu_sh("truncate -s 5M base.raw && "
          "qemu-io -f raw -c 'write -P 0x11 0 1M' -c 'write -P 0x12 3M 77k' base.raw && "
          "qemu-img create -f qcow2 -b base.raw -F raw mid.qcow2 8M && "
          "qemu-io -c 'write -P 0x21 512k 64k' -c 'write -z 3M 8k' mid.qcow2 && "
          "qemu-img create -f qcow2 -o cluster_size=4k -b mid.qcow2 -F qcow2 top.qcow2 && "
          "qemu-io -c 'write -P 0x31 4M 2M' -c 'discard 0 64k' top.qcow2");
    check_read("top.qcow2");
    check_map("top.qcow2", NULL);
    es_image *img = open_ok("top.qcow2");
    ck_assert_int_eq(img->backing->backing->format, ES_FMT_RAW);
    ck_assert_uint_eq(img->backing->backing->virtual_size, 5u << 20);
    es_image_close(img);
}
END_TEST

/* Compressible but varied data, some incompressible clusters, zero tail. */
static void make_source_raw(void)
{
    tu_sh("seq 1 400000 > src.raw && truncate -s 6M src.raw && "
          "head -c 200000 /dev/urandom | dd of=src.raw bs=1 seek=3500000 conv=notrunc status=none");
}

static void compressed_test(const char *opts, bool expect_plain_clusters)
{
    make_source_raw();
    tu_sh("qemu-img convert -c -O qcow2 %s src.raw z.qcow2 && "
          "qemu-img create -f qcow2 -b z.qcow2 -F qcow2 top.qcow2 && "
          "qemu-io -c 'write -P 0x31 100k 5k' -c 'write -z 1M 64k' top.qcow2",
          opts);
    kind_counts k;
    check_map("z.qcow2", &k);
    ck_assert_msg(k.n[ES_BS_COMPRESSED] > 0, "no compressed cluster in z.qcow2");
    if (expect_plain_clusters) /* random data does not shrink: stored as is */
        ck_assert_msg(k.n[ES_BS_DATA] > 0, "no uncompressed cluster in z.qcow2");
    check_read("z.qcow2");
    check_read("top.qcow2");
    /* The source itself must come back too (qemu-img and we could both be wrong). */
    size_t src_len;
    uint8_t *src = tu_slurp("src.raw", &src_len);
    es_image *img = open_ok("z.qcow2");
    ck_assert_uint_eq(img->virtual_size, src_len);
    uint8_t *buf = malloc(src_len);
    ck_assert_ptr_nonnull(buf);
    read_ok(img, buf, src_len, 0);
    assert_same(buf, src, src_len, 0, "compressed image vs its source");
    free(buf);
    free(src);
    es_image_close(img);
}

START_TEST(compressed_zlib) { compressed_test("", true); }
END_TEST
START_TEST(compressed_zlib_512) { compressed_test("-o cluster_size=512", true); }
END_TEST
START_TEST(compressed_zstd) { compressed_test("-o compression_type=zstd", true); }
END_TEST
START_TEST(compressed_zstd_2m_extl2) { compressed_test("-o compression_type=zstd,cluster_size=2M,extended_l2=on", false); }
END_TEST
START_TEST(compressed_zstd_v3_4k) { compressed_test("-o compression_type=zstd,cluster_size=4k", true); }
END_TEST

/* Host-contiguous data must come back as one run, across L2 tables. */
START_TEST(runs_merge_across_l2_tables)
{
    /* 4 KiB clusters: one L2 table maps 2 MiB. Allocate both tables first so
     * the 1 MiB write gets contiguous host clusters across the boundary. */
    tu_sh("qemu-img create -f qcow2 -o cluster_size=4k a.qcow2 8M && "
          "qemu-io -c 'write -P 1 0 4k' -c 'write -P 2 3M 4k' -c 'write -P 3 1536k 1M' a.qcow2");
    check_map("a.qcow2", NULL);
    es_image *img = open_ok("a.qcow2");
    es_block_status bs;
    es_err e = {0};
    ck_assert_int_eq(es_image_block_status(img, 1536 << 10, 8u << 20, &bs, &e), 0);
    ck_assert_int_eq(bs.kind, ES_BS_DATA);
    ck_assert_uint_eq(bs.len, 1u << 20);
    /* Unallocated ranges merge over whole L1 entries; past the end: UNALLOC. */
    ck_assert_int_eq(es_image_block_status(img, 4u << 20, 8u << 20, &bs, &e), 0);
    ck_assert_int_eq(bs.kind, ES_BS_UNALLOC);
    ck_assert_uint_eq(bs.len, 4u << 20);
    ck_assert_int_eq(es_image_block_status(img, 9u << 20, 12345, &bs, &e), 0);
    ck_assert_int_eq(bs.kind, ES_BS_UNALLOC);
    ck_assert_uint_eq(bs.len, 12345);
    es_image_close(img);
}
END_TEST

/* A huge sparse disk: block status and reads must not walk it cluster by cluster. */
START_TEST(huge_sparse_disk)
{
    tu_sh("qemu-img create -f qcow2 -o cluster_size=4k big.qcow2 4T && "
          "qemu-io -c 'write -P 7 2T 4k' big.qcow2");
    es_image *img = open_ok("big.qcow2");
    es_block_status bs;
    es_err e = {0};
    uint64_t tb = 1ull << 40;
    ck_assert_int_eq(es_image_block_status(img, 0, 4 * tb, &bs, &e), 0);
    ck_assert_int_eq(bs.kind, ES_BS_UNALLOC);
    ck_assert_uint_eq(bs.len, 2 * tb);
    ck_assert_int_eq(es_image_block_status(img, 2 * tb, 4 * tb, &bs, &e), 0);
    ck_assert_int_eq(bs.kind, ES_BS_DATA);
    ck_assert_uint_eq(bs.len, 4096);
    uint8_t buf[8192];
    read_ok(img, buf, sizeof buf, 2 * tb - 2048);
    for (size_t i = 0; i < sizeof buf; i++)
        if (buf[i] != (i >= 2048 && i < 2048 + 4096 ? 7 : 0))
            ck_abort_msg("byte %zu of the read around 2 TiB is 0x%02x", i, buf[i]);
    es_image_close(img);
}
END_TEST

/* More L2 tables than the cache holds (2 MiB clusters: 4 tables fit the
 * 8 MiB budget), visited round-robin so that every lookup evicts. */
START_TEST(l2_cache_eviction)
{
    const uint64_t gib = 1ull << 30;
    tu_sh("qemu-img create -f qcow2 -o cluster_size=2M big.qcow2 4T && "
          "for i in 0 1 2 3 4 5 6 7; do "
          "  echo \"write -P $((i + 1)) $((i * 512 * 1073741824 + (i + 1) * 4194304)) 4k\"; "
          "done | qemu-io big.qcow2");
    es_image *img = open_ok("big.qcow2");
    uint8_t buf[8192];
    for (int round = 0; round < 6; round++) {
        for (int k = 0; k < 8; k++) {
            int i = round & 1 ? 7 - k : k;
            uint64_t data = (uint64_t)i * 512 * gib + (uint64_t)(i + 1) * (4u << 20);
            read_ok(img, buf, sizeof buf, data - 2048);
            for (size_t j = 0; j < sizeof buf; j++)
                if (buf[j] != (j >= 2048 && j < 2048 + 4096 ? i + 1 : 0))
                    ck_abort_msg("round %d table %d byte %zu is 0x%02x", round, i, j, buf[j]);
        }
    }
    es_image_close(img);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("qcow2_read");
    TCase *t = tcase_create("chains");
    tcase_add_checked_fixture(t, tu_setup, tu_teardown);
    tcase_set_timeout(t, 300);
    tcase_add_test(t, chain_512_v3);
    tcase_add_test(t, chain_4k_v3);
    tcase_add_test(t, chain_64k_v3);
    tcase_add_test(t, chain_2m_v3);
    tcase_add_test(t, chain_mixed_sizes);
    tcase_add_test(t, chain_v2);
    tcase_add_test(t, chain_extended_l2);
    tcase_add_test(t, chain_extended_l2_over_v2);
    tcase_add_test(t, chain_refcount_widths);
    tcase_add_test(t, raw_base);
    tcase_add_test(t, compressed_zlib);
    tcase_add_test(t, compressed_zlib_512);
    tcase_add_test(t, compressed_zstd);
    tcase_add_test(t, compressed_zstd_2m_extl2);
    tcase_add_test(t, compressed_zstd_v3_4k);
    tcase_add_test(t, runs_merge_across_l2_tables);
    tcase_add_test(t, huge_sparse_disk);
    tcase_add_test(t, l2_cache_eviction);
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
