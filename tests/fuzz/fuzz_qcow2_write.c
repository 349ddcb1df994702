/* libFuzzer harness, qcow2 write side: the input is a top image and its
 * backing image (fz_split), written as top.img and base.img in a scratch
 * directory that is also the --root (a fuzzed backing name stays inside).
 * Both files get `check -r all`, then top is committed into base.img (TOP
 * emptied). Post-conditions when the commit succeeds: both images check
 * with no more corruptions, check errors or leaks than check -r all left
 * before, and the guest sees through the chain what it saw before the
 * commit. A refusal is fine when it leaves both files as they were (no
 * write before the engine knows it can finish); a crash, a hang, a
 * half-done commit or a wrong result is not. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "qcow2/check.h"
#include "qcow2/commit.h"
#include "qcow2/image.h"

#define VIEW_MAX (1u << 20) /* guest bytes compared before/after the commit */

/* check -r all, then a read-only pass: *res (zeroed if the check failed). */
static bool repair(const char *name, FILE *log, qcow2_check_result *res)
{
    memset(res, 0, sizeof *res);
    bool is_qcow2 = false, repaired = false;
    es_err e = {0};
    int r = qcow2_check_is_qcow2(fz_path(0, name), &is_qcow2, &e);
    fz_expect(r, &e, "qcow2_check_is_qcow2");
    if (r < 0 || !is_qcow2)
        return false;
    r = qcow2_check_image(fz_path(0, name), QCOW2_CHECK_FIX_ALL, log, res, &repaired, &e);
    fz_expect(r, &e, "qcow2_check_image -r all");
    return r == 0;
}

/* The guest's first bytes through the chain of top.img; false if unreadable. */
static bool guest_view(uint8_t *buf, uint64_t *len)
{
    es_image *img = NULL;
    es_err e = {0};
    es_open_opts o = {.root = fz_dir()};
    if (es_image_open(&img, "/top.img", &o, &e) < 0)
        return false;
    *len = img->virtual_size < VIEW_MAX ? img->virtual_size : VIEW_MAX;
    bool ok = es_image_read(img, buf, *len, 0, &e) == 0;
    es_image_close(img);
    return ok;
}

/* Commit top.img into base.img: 0 done, -1 refused or failed (e says
 * why), 1 not attempted (no chain to commit). */
static int commit(void)
{
    es_image *img = NULL;
    es_err e = {0};
    es_open_opts o = {.root = fz_dir()};
    int r = es_image_open(&img, "/top.img", &o, &e);
    fz_expect(r, &e, "es_image_open");
    if (r < 0)
        return 1;
    es_image *b = img->backing ? es_commit_find_base_root(img, "/base.img", fz_dir(), &e) : NULL;
    if (!b) {
        es_image_close(img);
        return 1;
    }
    es_commit_opts co = {.skip_space_check = true};
    r = es_commit(img, b, &co, &e);
    fz_expect(r, &e, "es_commit");
    es_image_close(img);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *before, *after;
    static FILE *devnull;
    if (!before) {
        before = malloc(VIEW_MAX);
        after = malloc(VIEW_MAX);
        devnull = fopen("/dev/null", "w");
        if (!before || !after || !devnull)
            abort();
    }
    const uint8_t *top, *base;
    size_t ntop, nbase;
    fz_split(data, size, &top, &ntop, &base, &nbase);
    fz_write("top.img", top, ntop);
    fz_write("base.img", base, nbase);

    qcow2_check_result top0, base0;
    bool top_q = repair("top.img", devnull, &top0);
    bool base_q = repair("base.img", devnull, &base0);

    uint64_t len0 = 0, len1 = 0;
    bool readable = guest_view(before, &len0);

    fz_digest top_was = fz_file_digest("top.img"), base_was = fz_file_digest("base.img");
    int r = commit();
    if (r < 0) {
        FZ_ASSERT(fz_digest_eq(fz_file_digest("top.img"), top_was),
                  "the commit failed after writing top.img");
        FZ_ASSERT(fz_digest_eq(fz_file_digest("base.img"), base_was),
                  "the commit failed after writing base.img");
    }
    if (r != 0)
        return 0;

    es_err e = {0};
    qcow2_check_result res;
    const struct {
        const char *name;
        bool qcow2;
        const qcow2_check_result *pre;
    } files[] = {{"top.img", top_q, &top0}, {"base.img", base_q, &base0}};
    for (size_t i = 0; i < 2; i++) {
        if (!files[i].qcow2)
            continue;
        int cr = qcow2_check_pass(fz_path(0, files[i].name), 0, devnull, &res, &e);
        FZ_ASSERT(cr == 0, "%s does not check after the commit: %s", files[i].name, e.msg);
        /* What check -r all could not repair may stay; nothing may be added. */
        FZ_ASSERT(res.corruptions <= files[i].pre->corruptions &&
                      res.check_errors <= files[i].pre->check_errors,
                  "%s after the commit: %lld corruptions, %lld check errors (%lld, %lld before)",
                  files[i].name, (long long)res.corruptions, (long long)res.check_errors,
                  (long long)files[i].pre->corruptions, (long long)files[i].pre->check_errors);
        FZ_ASSERT(res.leaks <= files[i].pre->leaks, "%s after the commit: %lld leaks (%lld before)",
                  files[i].name, (long long)res.leaks, (long long)files[i].pre->leaks);
    }
    /* (A chain that did not read before, a corrupt compressed cluster in
     * base.img say, need not read after.) */
    if (readable) {
        FZ_ASSERT(guest_view(after, &len1), "the chain no longer reads after the commit");
        FZ_ASSERT(len0 == len1, "guest size %llu before, %llu after", (unsigned long long)len0,
                  (unsigned long long)len1);
        FZ_ASSERT(memcmp(before, after, len0) == 0, "the guest's data changed in the commit");
    }
    return 0;
}
