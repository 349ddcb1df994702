/* The L2 caches of all images together stay under QCOW2_L2_CACHE_TOTAL:
 * a read down a 6-image chain of 2 MiB-cluster images that touches 8 L2
 * tables (2 MiB each) in every image would otherwise hold 96 MiB. */
#include "qcow2/image.h"
#include "qcow2/l2_cache.h"
#include "qcow2_test_util.h"
#include "tu_skip.h"

#define DEPTH 6
#define REGIONS 8
#define REGION (512ull << 30) /* guest bytes one L2 table maps at 2 MiB clusters */

START_TEST(chain_read_stays_under_the_total)
{
    tu_setup();
    char cmd[4096];
    for (int j = 0; j < DEPTH; j++) {
        if (j == 0)
            snprintf(cmd, sizeof cmd, "qemu-img create -q -f qcow2 -o cluster_size=2M i0.qcow2 4T");
        else
            snprintf(cmd, sizeof cmd,
                     "qemu-img create -q -f qcow2 -o cluster_size=2M -b i%d.qcow2 -F qcow2 i%d.qcow2",
                     j - 1, j);
        tu_sh("%s", cmd);
        /* Image j owns cluster j of every region: lookups of cluster 0 go
         * through every image's table of that region. */
        char io[2048] = "";
        size_t len = 0;
        for (int k = 0; k < REGIONS; k++)
            len += (size_t)snprintf(io + len, sizeof io - len, " -c 'write -P %d %llu 4k'",
                                    0x10 + j * REGIONS + k,
                                    (unsigned long long)(k * REGION + (uint64_t)j * (2u << 20)));
        tu_sh("qemu-io -f qcow2%s i%d.qcow2", io, j);
    }
    size_t before = qcow2_l2_cache_total_bytes();
    es_image *top;
    es_err e = {0};
    char name[32];
    snprintf(name, sizeof name, "i%d.qcow2", DEPTH - 1);
    ck_assert_msg(es_image_open(&top, tu_path(name), NULL, &e) == 0, "%s", e.msg);
    size_t peak = 0;
    uint8_t buf[4096];
    for (int k = 0; k < REGIONS; k++) {
        ck_assert_int_eq(es_image_read(top, buf, sizeof buf, k * REGION, &e), 0);
        for (size_t b = 0; b < sizeof buf; b++)
            ck_assert_uint_eq(buf[b], 0x10 + k); /* image 0's pattern */
        size_t now = qcow2_l2_cache_total_bytes() - before;
        if (now > peak)
            peak = now;
    }
    /* The second pass reads the same data back after evictions. */
    for (int k = REGIONS - 1; k >= 0; k--) {
        ck_assert_int_eq(es_image_read(top, buf, sizeof buf, k * REGION + (2u << 20) * 3, &e), 0);
        ck_assert_uint_eq(buf[0], 0x10 + 3 * REGIONS + k);
        size_t now = qcow2_l2_cache_total_bytes() - before;
        if (now > peak)
            peak = now;
    }
    ck_assert_msg(peak <= QCOW2_L2_CACHE_TOTAL, "L2 caches held %zu bytes", peak);
    ck_assert_msg(peak >= QCOW2_L2_CACHE_TOTAL / 2, "caches barely used (%zu bytes)", peak);
    es_image_close(top);
    ck_assert_uint_eq(qcow2_l2_cache_total_bytes(), before);
    tu_teardown();
}
END_TEST

int main(void)
{
    tu_need_tools("qemu-img", "qemu-io", NULL);
    Suite *s = suite_create("l2_cache_budget");
    TCase *tc = tcase_create("total");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, chain_read_stays_under_the_total);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return tu_exit_status(failed);
}
