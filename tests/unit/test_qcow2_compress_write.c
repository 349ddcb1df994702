/* Writing compressed clusters (qcow2/compress_write.h): what is compressed
 * reads back through the read side (qcow2/compress.h) for zlib and zstd and
 * several cluster sizes; incompressible data is reported as such; packed
 * clusters share host clusters with the right refcounts; the descriptor
 * decodes to a range covering the bytes. */
#include "qcow2/compress.h"
#include "qcow2/compress_write.h"
#include "qcow2/format.h"
#include "qcow2/host_write.h"
#include "qcow2/image.h"
#include "qcow2/overlap.h"
#include "qcow2/refcount.h"
#include "qcow2_test_util.h"
#include "tu_skip.h"

static es_image *open_rw(const char *name)
{
    es_image *img;
    es_err e = {0};
    es_open_opts o = {.writable = true, .no_backing = true};
    char msg[2048];
    ck_assert_msg(es_image_open(&img, tu_path(name), &o, &e) == 0, "%s",
                  es_err_str(&e, msg, sizeof msg));
    ck_assert_int_eq(qcow2_refcount_open(img, &e), 0);
    return img;
}

/* Cluster k's content: compressible (a byte pattern with some text). */
static void fill(uint8_t *buf, size_t n, unsigned k)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)((i % 61 == 0) ? k + i / 61 : k);
}

static uint64_t refcount(es_image *img, uint64_t off)
{
    uint64_t rc;
    es_err e = {0};
    ck_assert_int_eq(qcow2_refcount_get(img, off / img->cluster_size, &rc, &e), 0);
    return rc;
}

static void round_trip(const char *opts)
{
    enum { N = 40 };
    tu_sh("qemu-img create -q -f qcow2 -o %s z.qcow2 16M", opts);
    es_image *img = open_rw("z.qcow2");
    const size_t cs = img->cluster_size;
    uint8_t *in = malloc(cs), *out = malloc(cs), *back = malloc(cs);
    uint64_t entries[N], offs[N], lens[N];
    qcow2_zalloc z = {0};
    es_err e = {0};
    char msg[2048];
    for (unsigned k = 0; k < N; k++) {
        fill(in, cs, k);
        size_t zl = 0;
        ck_assert_int_eq(qcow2_compress_cluster(img, in, out, &zl, &e), 1);
        ck_assert_uint_lt(zl, cs);
        ck_assert_int_eq(qcow2_alloc_bytes(img, &z, zl, &offs[k], &e), 0);
        ck_assert_msg(qcow2_host_write(img, QCOW2_OL_DATA, out, zl, offs[k], &e) == 0, "%s",
                      es_err_str(&e, msg, sizeof msg));
        lens[k] = zl;
        entries[k] = qcow2_compressed_entry(img, offs[k], zl);
        /* packed: each follows the previous one */
        if (k)
            ck_assert_uint_eq(offs[k], offs[k - 1] + lens[k - 1]);
        uint64_t ho, nb;
        qcow2_compressed_range(img->cluster_bits, entries[k], &ho, &nb);
        ck_assert_uint_eq(ho, offs[k]);
        ck_assert_uint_ge(nb, zl);
        ck_assert_uint_lt(nb, zl + 512);
        ck_assert_uint_eq((ho + nb) % 512, 0);
    }
    ck_assert_int_eq(qcow2_refcount_flush(img, &e), 0);
    for (unsigned k = 0; k < N; k++) {
        fill(in, cs, k);
        ck_assert_msg(qcow2_read_compressed_cluster(img, entries[k], back, &e) == 0, "%s",
                      es_err_str(&e, msg, sizeof msg));
        ck_assert_msg(!memcmp(in, back, cs), "cluster %u differs after the round trip", k);
    }
    /* Each host cluster's refcount: the compressed clusters touching it. */
    for (uint64_t h = offs[0] / cs * cs; h < offs[N - 1] + lens[N - 1]; h += cs) {
        uint64_t touching = 0;
        for (unsigned k = 0; k < N; k++)
            touching += offs[k] < h + cs && offs[k] + lens[k] > h;
        ck_assert_uint_eq(refcount(img, h), touching);
    }
    /* Random bytes do not compress below a cluster. */
    for (size_t i = 0; i < cs; i++)
        in[i] = (uint8_t)(rand() >> 7);
    size_t zl;
    ck_assert_int_eq(qcow2_compress_cluster(img, in, out, &zl, &e), 0);
    free(in);
    free(out);
    free(back);
    qcow2_refcount_close(img);
    es_image_close(img);
    /* qemu-img sees the refcounts as they are: no L2 entry points at the
     * bytes yet, so they are leaks, and nothing worse. */
    ck_assert_int_eq(tu_sh_status("qemu-img check -q z.qcow2 >/dev/null 2>&1"), 3);
}

START_TEST(test_zlib_64k)
{
    round_trip("compression_type=zlib");
}
END_TEST

START_TEST(test_zstd_4k)
{
    round_trip("compression_type=zstd,cluster_size=4096");
}
END_TEST

START_TEST(test_zlib_512_v2)
{
    round_trip("compat=0.10,cluster_size=512");
}
END_TEST

START_TEST(test_alloc_bytes_runs_on_and_restarts)
{
    tu_sh("qemu-img create -q -f qcow2 a.qcow2 16M");
    es_image *img = open_rw("a.qcow2");
    const uint64_t cs = img->cluster_size;
    qcow2_zalloc z = {0};
    es_err e = {0};
    uint64_t a, b, c;
    ck_assert_int_eq(qcow2_alloc_bytes(img, &z, cs - 100, &a, &e), 0);
    ck_assert_uint_eq(a % cs, 0);
    ck_assert_uint_eq(refcount(img, a), 1);
    /* 300 bytes: 100 in a's cluster, the rest in the next one (contiguous) */
    ck_assert_int_eq(qcow2_alloc_bytes(img, &z, 300, &b, &e), 0);
    ck_assert_uint_eq(b, a + cs - 100);
    ck_assert_uint_eq(refcount(img, a), 2);
    ck_assert_uint_eq(refcount(img, a + cs), 1);
    /* A cluster allocated in between: the next bytes start in a new one */
    uint64_t other;
    ck_assert_int_eq(qcow2_alloc_cluster(img, &other, &e), 0);
    ck_assert_int_eq(qcow2_alloc_bytes(img, &z, cs - 1, &c, &e), 0);
    ck_assert_uint_eq(c % cs, 0);
    ck_assert_uint_ne(c, other);
    ck_assert_uint_eq(refcount(img, a + cs), 1);
    /* n out of range */
    ck_assert_int_eq(qcow2_alloc_bytes(img, &z, cs, &c, &e), -1);
    ck_assert_int_eq(qcow2_alloc_bytes(img, &z, 0, &c, &e), -1);
    qcow2_refcount_close(img);
    es_image_close(img);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("qcow2_compress_write");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_zlib_64k);
    tcase_add_test(tc, test_zstd_4k);
    tcase_add_test(tc, test_zlib_512_v2);
    tcase_add_test(tc, test_alloc_bytes_runs_on_and_restarts);
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
