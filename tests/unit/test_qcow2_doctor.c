/* The chain doctor's content evidence (qcow2/doctor_content.c) through
 * qcow2_doctor_diagnose: an overlay made and written with qemu-img and
 * qemu-io (partial-cluster writes, so QEMU copied the rest of each cluster
 * up from the backing file), its backing file moved away beside a decoy
 * whose headers are the same. The real file must win on content alone; two
 * copies, and an empty backing file (zero-only evidence), must stay a tie.
 * With extended L2 entries the copy-up is per subcluster: still evidence. */
#include "qcow2/doctor.h"
#include "qcow2/doctor_content.h"
#include "qcow2_test_util.h"
#include "tu_skip.h"

/* base (pattern 0x41, or empty), decoy (0x51) of the same size, and top
 * over base with a 4k write at 8k into each of its 64k clusters; then base
 * goes to store/real.qcow2, the decoy to store/decoy.qcow2. */
static void make(bool base_data, const char *top_opts)
{
    tu_sh("qemu-img create -q -f qcow2 base.qcow2 2M");
    if (base_data)
        tu_sh("qemu-io -c 'write -P 0x41 0 2M' base.qcow2");
    tu_sh("qemu-img create -q -f qcow2 decoy.qcow2 2M && "
          "qemu-io -c 'write -P 0x51 0 2M' decoy.qcow2");
    tu_sh("qemu-img create -q -f qcow2 %s -b base.qcow2 -F qcow2 top.qcow2", top_opts);
    tu_sh("for i in $(seq 0 31); do echo \"write -P 0x77 $((i * 65536 + 8192)) 4k\"; done | "
          "qemu-io top.qcow2");
    tu_sh("mkdir store && mv base.qcow2 store/real.qcow2 && mv decoy.qcow2 store/decoy.qcow2");
}

static const qcow2_doctor_finding *diagnose(qcow2_doctor_report *r)
{
    const char *search[] = {tu_path("store")};
    qcow2_doctor_opts o = {.search = search, .nsearch = 1};
    es_err e = {0};
    char msg[2048];
    ck_assert_msg(qcow2_doctor_diagnose(tu_path("top.qcow2"), &o, r, &e) == 0, "%s",
                  es_err_str(&e, msg, sizeof msg));
    for (size_t i = 0; i < r->nfindings; i++)
        if (r->findings[i].kind == QCOW2_DOCTOR_MISSING_BACKING)
            return &r->findings[i];
    ck_abort_msg("no missing-backing finding");
    return NULL;
}

static const qcow2_doctor_candidate *named(const qcow2_doctor_finding *f, const char *base)
{
    for (size_t i = 0; i < f->ncandidates; i++) {
        const char *slash = strrchr(f->candidates[i].filename, '/');
        if (strcmp(slash ? slash + 1 : f->candidates[i].filename, base) == 0)
            return &f->candidates[i];
    }
    ck_abort_msg("no candidate %s", base);
    return NULL;
}

START_TEST(content_picks_the_real_file)
{
    make(true, "");
    qcow2_doctor_report r;
    const qcow2_doctor_finding *f = diagnose(&r);
    const qcow2_doctor_candidate *real = named(f, "real.qcow2"), *decoy = named(f, "decoy.qcow2");
    ck_assert_int_eq(real->score, decoy->score); /* the headers tie */
    ck_assert(real->chosen);
    ck_assert(!decoy->chosen);
    ck_assert(real->content.measured && decoy->content.measured);
    ck_assert_uint_eq(real->content.allocated_clusters, 32);
    ck_assert_uint_eq(real->content.sampled_clusters, 32);
    ck_assert_uint_eq(real->content.max_clusters, QCOW2_DOCTOR_SAMPLE_CLUSTERS);
    /* Per cluster: 128 sectors, 8 written by the guest, 120 copied up. */
    ck_assert_uint_eq(real->content.compared_sectors, 32 * 128);
    ck_assert_uint_eq(real->content.matching_sectors, 32 * 120);
    ck_assert_uint_eq(real->content.matching_clusters, 32);
    ck_assert_uint_eq(decoy->content.matching_sectors, 0);
    ck_assert_int_eq(r.nsteps, 1);
    ck_assert_str_eq(r.steps[0].backing, tu_path("store/real.qcow2"));
    qcow2_doctor_report_free(&r);
}
END_TEST

START_TEST(copies_stay_a_tie)
{
    make(true, "");
    tu_sh("rm store/decoy.qcow2 && cp store/real.qcow2 store/copy.qcow2");
    qcow2_doctor_report r;
    const qcow2_doctor_finding *f = diagnose(&r);
    const qcow2_doctor_candidate *a = named(f, "real.qcow2"), *b = named(f, "copy.qcow2");
    ck_assert_uint_eq(a->content.matching_sectors, 32 * 120);
    ck_assert_uint_eq(b->content.matching_sectors, 32 * 120);
    ck_assert(!a->chosen && !b->chosen);
    ck_assert_int_eq(r.nsteps, 0);
    ck_assert_uint_eq(r.unrepaired_errors, 1);
    qcow2_doctor_report_free(&r);
}
END_TEST

START_TEST(zeroes_are_no_evidence)
{
    make(false, "");
    qcow2_doctor_report r;
    const qcow2_doctor_finding *f = diagnose(&r);
    const qcow2_doctor_candidate *real = named(f, "real.qcow2"), *decoy = named(f, "decoy.qcow2");
    /* What was copied up is zeroes: only the guest's sectors are compared. */
    ck_assert_uint_eq(real->content.compared_sectors, 32 * 8);
    ck_assert_uint_eq(real->content.matching_sectors, 0);
    ck_assert_uint_eq(decoy->content.matching_sectors, 0);
    ck_assert(!real->chosen && !decoy->chosen);
    ck_assert_int_eq(r.nsteps, 0);
    qcow2_doctor_report_free(&r);
}
END_TEST

START_TEST(extended_l2_subclusters)
{
    /* 64k clusters of 32 subclusters of 2k: the 4k write allocates two
     * subclusters, nothing is copied up but what they held beside it: here
     * nothing (the write covers both whole). So the real file gets no
     * evidence either: a tie. */
    make(true, "-o extended_l2=on");
    qcow2_doctor_report r;
    const qcow2_doctor_finding *f = diagnose(&r);
    const qcow2_doctor_candidate *real = named(f, "real.qcow2");
    ck_assert(real->content.measured);
    ck_assert_uint_eq(real->content.allocated_clusters, 32);
    ck_assert_uint_eq(real->content.compared_sectors, 32 * 8);
    ck_assert_uint_eq(real->content.matching_sectors, 0);
    ck_assert_int_eq(r.nsteps, 0);
    qcow2_doctor_report_free(&r);
    /* A write of 1k into a subcluster: the other 1k is copied up. */
    tu_sh("mv store/real.qcow2 base.qcow2 && "
          "qemu-io -c 'write -P 0x78 100k 1k' -c 'write -P 0x78 900k 1k' top.qcow2 && "
          "mv base.qcow2 store/real.qcow2");
    f = diagnose(&r);
    real = named(f, "real.qcow2");
    ck_assert_uint_eq(real->content.matching_sectors, 2 * 2);
    ck_assert(!real->chosen); /* 4 equal sectors: below the minimum */
    qcow2_doctor_report_free(&r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("qcow2_doctor");
    TCase *t = tcase_create("content");
    tcase_add_checked_fixture(t, tu_setup, tu_teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, content_picks_the_real_file);
    tcase_add_test(t, copies_stay_a_tie);
    tcase_add_test(t, zeroes_are_no_evidence);
    tcase_add_test(t, extended_l2_subclusters);
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
