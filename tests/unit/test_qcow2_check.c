/* qcow2 check/repair: refcount array packing, robustness on damaged input,
 * crash safety of repairs (fault hook: stop at every mutating operation and
 * verify the image is never worse and the guest data unchanged), and cost
 * bounded by the file, not the virtual size. qemu-img is the oracle. */
#include <check.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

#include "qcow2/check.h"
#include "qcow2/check_internal.h"
#include "qcow2_test_util.h"
#include "util/fileio.h"
#include "tu_skip.h"

/* ---- refcount array packing: every width, round trip and neighbours ---- */

START_TEST(refarray_all_widths)
{
    for (uint32_t order = 0; order <= 6; order++) {
        uint8_t a[64];
        memset(a, 0, sizeof a);
        uint64_t bits = 1u << order, max = order == 6 ? UINT64_MAX : (1ull << bits) - 1;
        uint64_t n = sizeof a * 8 / bits;
        for (uint64_t i = 0; i < n; i++)
            refarray_set(a, order, i, (i * 0x9e3779b97f4a7c15ull) & max);
        for (uint64_t i = 0; i < n; i++)
            ck_assert_uint_eq(refarray_get(a, order, i), (i * 0x9e3779b97f4a7c15ull) & max);
        /* Setting one entry leaves its neighbours alone. */
        refarray_set(a, order, 3, 0);
        ck_assert_uint_eq(refarray_get(a, order, 3), 0);
        ck_assert_uint_eq(refarray_get(a, order, 2), (2 * 0x9e3779b97f4a7c15ull) & max);
        ck_assert_uint_eq(refarray_get(a, order, 4), (4 * 0x9e3779b97f4a7c15ull) & max);
    }
    /* Sub-byte widths pack from the least significant bit (QEMU's layout:
     * a 1-bit refblock for clusters 0-9 starts ff 03). */
    uint8_t b[2] = {0, 0};
    for (int i = 0; i < 10; i++)
        refarray_set(b, 0, (uint64_t)i, 1);
    ck_assert_uint_eq(b[0], 0xff);
    ck_assert_uint_eq(b[1], 0x03);
    uint8_t c[2] = {0, 0};
    for (int i = 0; i < 5; i++)
        refarray_set(c, 1, (uint64_t)i, 1);
    ck_assert_uint_eq(c[0], 0x55);
    ck_assert_uint_eq(c[1], 0x01);
}
END_TEST

/* ---- helpers ---- */

static long qemu_json_field(const char *img, const char *field)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "qemu-img check --output=json %s 2>/dev/null | jq -r '.\"%s\" // 0'; true", img,
             field);
    char *out = tu_capture(cmd);
    long v = strtol(out, NULL, 10);
    free(out);
    return v;
}

static int qemu_check_status(const char *img)
{
    return tu_sh_status("qemu-img check -q %s 2>/dev/null", img);
}

/* Run one repair pass in a child that stops at mutating operation n
 * (0 = no fault). Returns the child's exit status. */
static int repair_in_child(const char *img, unsigned fix, uint64_t n)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        es_fault_reset();
        if (n)
            es_fault_set("mutate", n, ES_FAULT_STOP);
        qcow2_check_result r;
        bool repaired;
        es_err e;
        int rc = qcow2_check_image(tu_path(img), fix, NULL, &r, &repaired, &e);
        _exit(rc < 0 ? 1 : 0);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static uint64_t count_mutations(const char *img, unsigned fix)
{
    tu_sh("cp %s count.qcow2", img);
    es_fault_reset();
    qcow2_check_result r;
    bool repaired;
    es_err e;
    ck_assert_int_eq(qcow2_check_image(tu_path("count.qcow2"), fix, NULL, &r, &repaired, &e), 0);
    return es_fault_count("mutate");
}

/* Stop a repair at each of its mutating operations in turn: afterwards the
 * image must have no more corruptions than before, the guest must read the
 * same data, and a second repair must finish the job. */
static void crash_every_step(const char *img, unsigned fix)
{
    long corrupt_before = qemu_json_field(img, "corruptions");
    uint64_t total = count_mutations(img, fix);
    ck_assert_uint_gt(total, 0);
    for (uint64_t n = 1; n <= total; n++) {
        tu_sh("cp %s crash.qcow2", img);
        int st = repair_in_child("crash.qcow2", fix, n);
        ck_assert_msg(st == ES_FAULT_STOP_STATUS, "%s: stop at mutation %llu: child exited %d",
                      img, (unsigned long long)n, st);
        long corrupt_after = qemu_json_field("crash.qcow2", "corruptions");
        ck_assert_msg(corrupt_after <= corrupt_before,
                      "%s: stopped at mutation %llu of %llu: %ld corruptions, %ld before", img,
                      (unsigned long long)n, (unsigned long long)total, corrupt_after,
                      corrupt_before);
        ck_assert_msg(tu_sh_status("qemu-img compare -q %s crash.qcow2 2>/dev/null", img) == 0,
                      "%s: stopped at mutation %llu: guest data changed", img,
                      (unsigned long long)n);
        ck_assert_int_eq(repair_in_child("crash.qcow2", fix, 0), 0);
        ck_assert_msg(qemu_check_status("crash.qcow2") == 0,
                      "%s: after a stop at mutation %llu, a second repair did not make the "
                      "image clean",
                      img, (unsigned long long)n);
    }
}

/* ---- crash safety of repairs ---- */

START_TEST(crash_during_leak_repair)
{
    tu_sh("qemu-img create -q -f qcow2 -o cluster_size=4096 img.qcow2 8M");
    tu_sh("qemu-io -c 'write -P 1 0 64k' -c 'write -P 2 1M 64k' img.qcow2");
    /* Refcounts of the header and of two freed clusters raised: leaks. */
    uint64_t l1 = tu_get_be("img.qcow2", 40, 8);
    uint64_t l2 = tu_get_be("img.qcow2", l1, 8) & 0x00fffffffffffe00ull;
    uint64_t h1 = tu_get_be("img.qcow2", l2 + 8 * 4, 8) & 0x00fffffffffffe00ull;
    uint64_t h2 = tu_get_be("img.qcow2", l2 + 8 * 5, 8) & 0x00fffffffffffe00ull;
    tu_sh("qemu-io -c 'discard 16k 8k' img.qcow2");
    uint64_t rb = tu_get_be("img.qcow2", tu_get_be("img.qcow2", 48, 8), 8);
    tu_put_be("img.qcow2", rb, 2, 3);
    tu_put_be("img.qcow2", rb + 2 * (h1 / 4096), 2, 1);
    tu_put_be("img.qcow2", rb + 2 * (h2 / 4096), 2, 2);
    ck_assert_int_eq(qemu_check_status("img.qcow2"), 3);
    crash_every_step("img.qcow2", QCOW2_CHECK_FIX_LEAKS);
}
END_TEST

START_TEST(crash_during_rebuild)
{
    /* A crash with lazy refcounts: referenced clusters with refcount 0. */
    tu_sh("qemu-img create -q -f qcow2 -o lazy_refcounts=on,cluster_size=4096 img.qcow2 8M");
    tu_sh("(qemu-io -c 'write -P 7 0 12k' -c 'write -P 8 3M 8k' -c abort img.qcow2 "
          ">/dev/null 2>&1; true) 2>/dev/null");
    ck_assert_int_eq(qemu_check_status("img.qcow2"), 2);
    crash_every_step("img.qcow2", QCOW2_CHECK_FIX_ALL);
}
END_TEST

START_TEST(crash_during_copied_and_refcount_fix)
{
    /* Snapshot-shared cluster with refcount 1 (too low, not zero) and an L2
     * entry with COPIED cleared. */
    tu_sh("qemu-img create -q -f qcow2 -o cluster_size=4096 img.qcow2 8M");
    tu_sh("qemu-io -c 'write -P 1 0 32k' img.qcow2 && qemu-img snapshot -c s1 img.qcow2");
    tu_sh("qemu-io -c 'write -P 2 1M 8k' img.qcow2");
    uint64_t cs = 4096, l1 = tu_get_be("img.qcow2", 40, 8);
    /* After the write L1[0] holds a private copy of the L2 table. */
    uint64_t l2 = tu_get_be("img.qcow2", l1, 8) & 0x00fffffffffffe00ull;
    uint64_t shared = tu_get_be("img.qcow2", l2, 8) & 0x00fffffffffffe00ull;
    uint64_t rb = tu_get_be("img.qcow2", tu_get_be("img.qcow2", 48, 8), 8);
    ck_assert_uint_eq(tu_get_be("img.qcow2", rb + 2 * (shared / cs), 2), 2);
    tu_put_be("img.qcow2", rb + 2 * (shared / cs), 2, 1);
    uint64_t own = l2 + 8 * ((1u << 20) / cs);
    tu_put_be("img.qcow2", own, 8, tu_get_be("img.qcow2", own, 8) & ~(1ull << 63));
    ck_assert_int_eq(qemu_check_status("img.qcow2"), 2);
    crash_every_step("img.qcow2", QCOW2_CHECK_FIX_ALL);
}
END_TEST

/* ---- robustness: random damage never crashes, never hangs ---- */

START_TEST(random_damage_is_reported_not_fatal)
{
    unsigned seed = (unsigned)time(NULL);
    srand(seed);
    tu_sh("qemu-img create -q -f qcow2 -o cluster_size=512 base.qcow2 2M");
    tu_sh("qemu-io -c 'write -P 1 0 8k' -c 'write -P 2 1M 3k' base.qcow2");
    tu_sh("qemu-img snapshot -c s1 base.qcow2 && qemu-io -c 'write -P 3 1k 2k' base.qcow2");
    size_t len;
    uint8_t *orig = tu_slurp("base.qcow2", &len);
    for (int round = 0; round < 200; round++) {
        uint8_t *img = malloc(len);
        ck_assert_ptr_nonnull(img);
        memcpy(img, orig, len);
        int flips = 1 + rand() % 6;
        for (int k = 0; k < flips; k++)
            img[8 + (size_t)rand() % (len - 8)] = (uint8_t)rand();
        FILE *f = fopen(tu_path("fz.qcow2"), "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(img, 1, len, f), len);
        fclose(f);
        free(img);
        qcow2_check_result r;
        bool repaired;
        es_err e;
        /* Any outcome is fine but a crash (ASan/UBSan in CI) or a hang. */
        (void)qcow2_check_image(tu_path("fz.qcow2"), 0, NULL, &r, &repaired, &e);
        (void)qcow2_check_image(tu_path("fz.qcow2"), QCOW2_CHECK_FIX_ALL, NULL, &r, &repaired,
                                &e);
    }
    free(orig);
    (void)seed;
}
END_TEST

/* ---- cost follows the file, not the virtual size ---- */

START_TEST(huge_virtual_size_is_cheap)
{
    tu_sh("qemu-img create -q -f qcow2 big.qcow2 256T");
    tu_sh("qemu-io -c 'write -P 1 0 64k' -c 'write -P 2 200T 64k' big.qcow2");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    qcow2_check_result r;
    bool repaired;
    es_err e;
    ck_assert_int_eq(qcow2_check_image(tu_path("big.qcow2"), 0, NULL, &r, &repaired, &e), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_msg(secs < 5.0, "check of a sparse 256 TiB image took %.1f s", secs);
    ck_assert_int_eq(r.corruptions + r.leaks + r.check_errors, 0);
    ck_assert_int_eq(r.allocated_clusters, 2);
    ck_assert_int_eq(r.total_clusters, qemu_json_field("big.qcow2", "total-clusters"));
    ck_assert_int_eq(r.image_end_offset, qemu_json_field("big.qcow2", "image-end-offset"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("qcow2_check");
    TCase *t = tcase_create("check");
    tcase_add_checked_fixture(t, tu_setup, tu_teardown);
    tcase_set_timeout(t, 300);
    tcase_add_test(t, refarray_all_widths);
    tcase_add_test(t, crash_during_leak_repair);
    tcase_add_test(t, crash_during_rebuild);
    tcase_add_test(t, crash_during_copied_and_refcount_fix);
    tcase_add_test(t, random_damage_is_reported_not_fatal);
    tcase_add_test(t, huge_virtual_size_is_cheap);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    tu_need_tools("qemu-img", "qemu-io", "jq", NULL);
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return tu_exit_status(failed);
}
