/* qcow2/commit: the engine on chains made by qemu-img/qemu-io, with
 * qemu-img check / compare as oracles and the L2 entries BASE ends up with
 * inspected directly (zero flags, subcluster bitmaps, COPIED, never writing
 * a shared or compressed cluster in place), plus the refusals that must
 * leave every file unchanged. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/commit.h"
#include "qcow2/format.h"
#include "qcow2/image.h"
#include "qcow2/l2_write.h"
#include "qcow2/make_empty.h"
#include "qcow2_test_util.h"
#include "tu_skip.h"

static const char *err_text(const es_err *e)
{
    static char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
    return es_err_str(e, buf, sizeof buf);
}

/* Commit top into base (NULL: top's backing); returns es_commit's result
 * and leaves the error in *e. */
static int try_commit(const char *top, const char *base, bool keep, es_err *e)
{
    es_image *img = NULL;
    if (es_image_open(&img, tu_path(top), NULL, e) < 0)
        return -1;
    es_image *b = base ? es_commit_find_base(img, tu_path(base), e) : img->backing;
    int r = -1;
    if (b) {
        es_commit_opts o = {.keep_top = keep};
        r = es_commit(img, b, &o, e);
    } else if (!base) {
        es_err_set(e, 0, top, "no backing");
    }
    es_image_close(img);
    return r;
}

static void commit_ok(const char *top, const char *base, bool keep)
{
    es_err e = {0};
    ck_assert_msg(try_commit(top, base, keep, &e) == 0, "%s", err_text(&e));
}

/* L2 entry and bitmap of guest offset off in image name. */
static void l2_of(const char *name, uint64_t off, uint64_t *entry, uint64_t *bitmap)
{
    es_image *img = NULL;
    es_err e = {0};
    es_open_opts o = {.no_backing = true};
    ck_assert_msg(es_image_open(&img, tu_path(name), &o, &e) == 0, "%s", err_text(&e));
    ck_assert_msg(qcow2_l2_lookup(img, off, entry, bitmap, &e) == 0, "%s", err_text(&e));
    es_image_close(img);
}

static void check_clean(const char *name)
{
    int rc = tu_sh_status("qemu-img check -q %s 2>&1", name);
    ck_assert_msg(rc == 0, "qemu-img check %s exits %d", name, rc);
}

/* The image reads like a saved copy of what TOP showed before. */
static void same_content(const char *a, const char *b)
{
    int rc = tu_sh_status("qemu-img compare -q %s %s", a, b);
    ck_assert_msg(rc == 0, "qemu-img compare %s %s exits %d", a, b, rc);
}

static void snapshot_view(const char *top, const char *out)
{
    tu_sh("qemu-img convert -O raw %s %s", top, out);
}

START_TEST(data_and_zeroes_into_v3)
{
    tu_sh("qemu-img create -q -f qcow2 b.qcow2 8M && "
          "qemu-io -c 'write -P 1 0 1M' -c 'write -P 2 2M 64k' b.qcow2 && "
          "qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 t.qcow2 && "
          "qemu-io -c 'write -P 3 64k 128k' -c 'write -z 512k 64k' -c 'write -z -u 2M 64k' "
          "-c 'write -P 4 5M 1000' t.qcow2");
    snapshot_view("t.qcow2", "before.raw");
    commit_ok("t.qcow2", NULL, false);
    check_clean("b.qcow2");
    check_clean("t.qcow2");
    same_content("before.raw", "b.qcow2");
    same_content("before.raw", "t.qcow2");
    uint64_t ent, bm;
    /* Zeroes over data: a zero-flag cluster, the data cluster released. */
    l2_of("b.qcow2", 512 << 10, &ent, &bm);
    ck_assert_uint_eq(ent, QCOW2_OFLAG_ZERO);
    l2_of("b.qcow2", 2 << 20, &ent, &bm);
    ck_assert_uint_eq(ent, QCOW2_OFLAG_ZERO);
    /* Data overwritten in place keeps COPIED (refcount 1). */
    l2_of("b.qcow2", 64 << 10, &ent, &bm);
    ck_assert(ent & QCOW2_OFLAG_COPIED);
    /* TOP was emptied the way qemu-img leaves it: 4 clusters. */
    struct stat st;
    ck_assert_int_eq(stat(tu_path("t.qcow2"), &st), 0);
    ck_assert_int_eq(st.st_size, 4 * 65536);
    l2_of("t.qcow2", 64 << 10, &ent, &bm);
    ck_assert_uint_eq(ent, 0);
}
END_TEST

/* BASE shares clusters with an internal snapshot: they are copied, never
 * written in place, and the snapshot still reads as before. */
START_TEST(snapshot_clusters_not_overwritten)
{
    tu_sh("qemu-img create -q -f qcow2 b.qcow2 4M && qemu-io -c 'write -P 1 0 4M' b.qcow2 && "
          "qemu-img snapshot -c s1 b.qcow2 && "
          "qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 t.qcow2 && "
          "qemu-io -c 'write -P 2 0 64k' -c 'write -P 3 100k 1k' -c 'write -z 1M 64k' t.qcow2 && "
          "qemu-img convert -O raw -l snapshot.name=s1 b.qcow2 snap_before.raw");
    uint64_t old_ent, bm;
    l2_of("b.qcow2", 0, &old_ent, &bm);
    ck_assert(!(old_ent & QCOW2_OFLAG_COPIED)); /* shared: refcount 2 */
    snapshot_view("t.qcow2", "before.raw");
    commit_ok("t.qcow2", NULL, true);
    check_clean("b.qcow2");
    same_content("before.raw", "b.qcow2");
    tu_sh("qemu-img convert -O raw -l snapshot.name=s1 b.qcow2 snap_after.raw && "
          "cmp snap_before.raw snap_after.raw");
    uint64_t ent;
    l2_of("b.qcow2", 0, &ent, &bm);
    ck_assert_uint_ne(ent & QCOW2_L2E_OFFSET_MASK, old_ent & QCOW2_L2E_OFFSET_MASK);
    ck_assert(ent & QCOW2_OFLAG_COPIED);
    /* The partly covered cluster keeps BASE's own data around TOP's 1k. */
    ck_assert_int_ne(tu_sh_status("qemu-io -c 'read -P 1 64k 36k' -c 'read -P 3 100k 1k' "
                                  "-c 'read -P 1 101k 27k' b.qcow2 | grep -q 'verification failed'"),
                     0);
}
END_TEST

/* A compressed cluster of BASE is replaced by a new normal cluster. */
START_TEST(compressed_base_cluster_replaced)
{
    tu_sh("qemu-img create -q -f qcow2 src.qcow2 4M && qemu-io -c 'write -P 7 0 4M' src.qcow2 && "
          "qemu-img convert -c -O qcow2 src.qcow2 b.qcow2 && "
          "qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 t.qcow2 && "
          "qemu-io -c 'write -P 8 4k 4k' -c 'write -z 1M 64k' t.qcow2");
    uint64_t ent, bm;
    l2_of("b.qcow2", 0, &ent, &bm);
    ck_assert(ent & QCOW2_OFLAG_COMPRESSED);
    snapshot_view("t.qcow2", "before.raw");
    commit_ok("t.qcow2", NULL, false);
    check_clean("b.qcow2");
    same_content("before.raw", "b.qcow2");
    l2_of("b.qcow2", 0, &ent, &bm);
    ck_assert(!(ent & QCOW2_OFLAG_COMPRESSED));
    ck_assert(ent & QCOW2_OFLAG_COPIED);
    l2_of("b.qcow2", 1 << 20, &ent, &bm);
    ck_assert_uint_eq(ent, QCOW2_OFLAG_ZERO);
    /* Untouched compressed clusters stay compressed. */
    l2_of("b.qcow2", 2 << 20, &ent, &bm);
    ck_assert(ent & QCOW2_OFLAG_COMPRESSED);
}
END_TEST

/* Extended-L2 BASE receiving partial-cluster data: only the subclusters
 * written above change; zeroes become subcluster zero bits. */
START_TEST(extended_l2_base_gets_subclusters)
{
    tu_sh("qemu-img create -q -f qcow2 -o extended_l2=on b.qcow2 4M && "
          "qemu-io -c 'write -P 1 0 2k' b.qcow2 && "
          "qemu-img create -q -f qcow2 -o cluster_size=4k -b b.qcow2 -F qcow2 t.qcow2 && "
          "qemu-io -c 'write -P 2 4k 4k' -c 'write -z 64k 8k' -c 'write -P 3 128k 4k' t.qcow2");
    snapshot_view("t.qcow2", "before.raw");
    commit_ok("t.qcow2", NULL, false);
    check_clean("b.qcow2");
    same_content("before.raw", "b.qcow2");
    uint64_t ent, bm;
    /* 64k clusters: 2k subclusters. Subcluster 0 (BASE's) and 2-3 (TOP's). */
    l2_of("b.qcow2", 0, &ent, &bm);
    ck_assert_uint_eq(bm, 0xdull);
    ck_assert(ent & QCOW2_OFLAG_COPIED);
    /* write -z 8k at 64k: zero bits for subclusters 0-3, no host cluster. */
    l2_of("b.qcow2", 64 << 10, &ent, &bm);
    ck_assert_uint_eq(bm, 0xfull << 32);
    ck_assert_uint_eq(ent, 0);
    l2_of("b.qcow2", 128 << 10, &ent, &bm);
    ck_assert_uint_eq(bm, 0x3ull);
}
END_TEST

/* Standard-L2 BASE receiving subcluster-granular data from an extended-L2
 * TOP: the rest of the cluster comes from BASE's own view (here: BASE's
 * backing file, as BASE has nothing there). */
START_TEST(standard_base_from_extended_top)
{
    tu_sh("qemu-img create -q -f qcow2 bb.qcow2 4M && qemu-io -c 'write -P 9 0 4M' bb.qcow2 && "
          "qemu-img create -q -f qcow2 -b bb.qcow2 -F qcow2 b.qcow2 && "
          "qemu-io -c 'write -P 1 64k 64k' b.qcow2 && "
          "qemu-img create -q -f qcow2 -o extended_l2=on -b b.qcow2 -F qcow2 t.qcow2 && "
          "qemu-io -c 'write -P 2 2k 2k' -c 'write -P 3 66k 2k' -c 'write -z 200k 2k' t.qcow2");
    snapshot_view("t.qcow2", "before.raw");
    commit_ok("t.qcow2", NULL, true);
    check_clean("b.qcow2");
    same_content("before.raw", "b.qcow2");
    uint64_t ent, bm;
    l2_of("b.qcow2", 0, &ent, &bm);
    ck_assert(ent & QCOW2_OFLAG_COPIED);
    ck_assert_uint_ne(ent & QCOW2_L2E_OFFSET_MASK, 0);
    /* Zeroes over part of a cluster nothing in BASE holds: explicit data. */
    l2_of("b.qcow2", 192 << 10, &ent, &bm);
    ck_assert_uint_ne(ent & QCOW2_L2E_OFFSET_MASK, 0);
}
END_TEST

/* v2 BASE: zeroes with nothing below stay unallocated or become so; with a
 * backing file below BASE they are written as zeroes. */
START_TEST(v2_base_zeroes)
{
    tu_sh("qemu-img create -q -f qcow2 -o compat=0.10 b.qcow2 4M && "
          "qemu-io -c 'write -P 1 0 128k' b.qcow2 && "
          "qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 t.qcow2 && "
          "qemu-io -c 'write -z 0 64k' -c 'write -z 1M 64k' t.qcow2");
    snapshot_view("t.qcow2", "before.raw");
    commit_ok("t.qcow2", NULL, false);
    check_clean("b.qcow2");
    same_content("before.raw", "b.qcow2");
    uint64_t ent, bm;
    l2_of("b.qcow2", 0, &ent, &bm);
    ck_assert_uint_eq(ent, 0);
    l2_of("b.qcow2", 1 << 20, &ent, &bm);
    ck_assert_uint_eq(ent, 0);

    tu_sh("qemu-img create -q -f qcow2 bb.qcow2 4M && qemu-io -c 'write -P 5 0 4M' bb.qcow2 && "
          "qemu-img create -q -f qcow2 -o compat=0.10 -b bb.qcow2 -F qcow2 m.qcow2 && "
          "qemu-img create -q -f qcow2 -b m.qcow2 -F qcow2 t2.qcow2 && "
          "qemu-io -c 'write -z 0 64k' t2.qcow2");
    snapshot_view("t2.qcow2", "before2.raw");
    commit_ok("t2.qcow2", NULL, false);
    check_clean("m.qcow2");
    same_content("before2.raw", "m.qcow2");
    l2_of("m.qcow2", 0, &ent, &bm);
    ck_assert_uint_ne(ent & QCOW2_L2E_OFFSET_MASK, 0);
}
END_TEST

/* BASE smaller than TOP grows (L1 grows too); where BASE's own backing is
 * larger than BASE was, the new range reads as zeroes, as it did in TOP. */
START_TEST(base_grows)
{
    tu_sh("qemu-img create -q -f qcow2 bb.qcow2 64M && qemu-io -c 'write -P 5 0 64M' bb.qcow2 && "
          "qemu-img create -q -f qcow2 -o cluster_size=4k -b bb.qcow2 -F qcow2 b.qcow2 1M && "
          "qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 t.qcow2 64M && "
          "qemu-io -c 'write -P 6 40M 64k' t.qcow2");
    snapshot_view("t.qcow2", "before.raw");
    commit_ok("t.qcow2", NULL, false);
    check_clean("b.qcow2");
    same_content("before.raw", "b.qcow2");
    char *info = tu_capture("qemu-img info --output=json b.qcow2");
    ck_assert_msg(strstr(info, "\"virtual-size\": 67108864") != NULL, "%s", info);
    free(info);
}
END_TEST

START_TEST(raw_base)
{
    tu_sh("qemu-img create -q -f raw b.raw 1M && qemu-io -f raw -c 'write -P 1 0 1M' b.raw && "
          "qemu-img create -q -f qcow2 -b b.raw -F raw t.qcow2 3M && "
          "qemu-io -c 'write -P 2 4k 4k' -c 'write -z 8k 4k' -c 'write -P 3 2M 4k' t.qcow2");
    snapshot_view("t.qcow2", "before.raw");
    commit_ok("t.qcow2", NULL, false);
    same_content("before.raw", "b.raw");
    struct stat st;
    ck_assert_int_eq(stat(tu_path("b.raw"), &st), 0);
    ck_assert_int_eq(st.st_size, 3 << 20);
    check_clean("t.qcow2");
}
END_TEST

/* An intermediate image shorter than TOP reads as zeroes past its end: those
 * zeroes are committed too (-b through it). */
START_TEST(short_intermediate_hides_base)
{
    tu_sh("qemu-img create -q -f qcow2 b.qcow2 4M && qemu-io -c 'write -P 1 0 4M' b.qcow2 && "
          "qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 m.qcow2 1M && "
          "qemu-img create -q -f qcow2 -b m.qcow2 -F qcow2 t.qcow2 4M");
    snapshot_view("t.qcow2", "before.raw");
    commit_ok("t.qcow2", "b.qcow2", true);
    check_clean("b.qcow2");
    same_content("before.raw", "b.qcow2");
}
END_TEST

/* The slow emptying path (v2 TOP keeps its L2 tables) reads through and
 * checks clean. */
START_TEST(v2_top_emptied)
{
    tu_sh("qemu-img create -q -f qcow2 b.qcow2 8M && "
          "qemu-img create -q -f qcow2 -o compat=0.10 -b b.qcow2 -F qcow2 t.qcow2 && "
          "qemu-io -c 'write -P 2 0 1M' -c 'write -P 3 6M 100k' t.qcow2");
    snapshot_view("t.qcow2", "before.raw");
    commit_ok("t.qcow2", NULL, false);
    check_clean("b.qcow2");
    check_clean("t.qcow2");
    same_content("before.raw", "t.qcow2");
    uint64_t ent, bm;
    l2_of("t.qcow2", 0, &ent, &bm);
    ck_assert_uint_eq(ent, 0);
}
END_TEST

/* TOP with an internal snapshot: emptied the slow way (its shared tables
 * are unlinked, not rewritten), the snapshot still reads as before. */
START_TEST(top_with_snapshot_emptied)
{
    tu_sh("qemu-img create -q -f qcow2 b.qcow2 8M && "
          "qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 t.qcow2 && "
          "qemu-io -c 'write -P 1 0 1M' -c 'write -P 9 3M 64k' t.qcow2 && "
          "qemu-img snapshot -c s t.qcow2 && "
          "qemu-io -c 'write -P 2 512k 1M' -c 'write -z 3M 64k' t.qcow2");
    snapshot_view("t.qcow2", "before.raw");
    commit_ok("t.qcow2", NULL, false);
    check_clean("b.qcow2");
    check_clean("t.qcow2");
    same_content("before.raw", "b.qcow2");
    same_content("before.raw", "t.qcow2");
    /* The snapshot's own clusters (elsewhere it reads through to BASE,
     * which changed, as with qemu-img). */
    tu_sh("qemu-img convert -O raw -l snapshot.name=s t.qcow2 snap.raw");
    ck_assert_int_ne(tu_sh_status("qemu-io -f raw -c 'read -P 1 0 1M' -c 'read -P 9 3M 64k' "
                                  "snap.raw | grep -q 'verification failed'"),
                     0);
}
END_TEST

/* -b names are found like QEMU finds them: relative to the images of the
 * chain (not to the working directory). */
START_TEST(base_found_relative_to_chain)
{
    tu_sh("mkdir d && qemu-img create -q -f qcow2 d/b.qcow2 8M && "
          "qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 d/m.qcow2 && "
          "qemu-img create -q -f qcow2 -b m.qcow2 -F qcow2 d/t.qcow2");
    es_image *top = NULL;
    es_err e = {0};
    ck_assert_msg(es_image_open(&top, tu_path("d/t.qcow2"), NULL, &e) == 0, "%s", err_text(&e));
    ck_assert_ptr_eq(es_commit_find_base(top, "b.qcow2", &e), top->backing->backing);
    ck_assert_ptr_eq(es_commit_find_base(top, tu_path("d/m.qcow2"), &e), top->backing);
    ck_assert_ptr_null(es_commit_find_base(top, "t.qcow2", &e));
    ck_assert_msg(strstr(e.msg, "not in the backing chain") != NULL, "%s", e.msg);
    es_image_close(top);
}
END_TEST

static void sum(const char *name, char *out, size_t len)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "sha256sum %s", name);
    char *s = tu_capture(cmd);
    snprintf(out, len, "%.64s", s);
    free(s);
}

START_TEST(refusals_change_nothing)
{
    tu_sh("qemu-img create -q -f qcow2 b.qcow2 4M && qemu-io -c 'write -P 1 0 64k' b.qcow2 && "
          "qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 t.qcow2 && "
          "qemu-io -c 'write -P 2 0 64k' t.qcow2 && qemu-img create -q -f qcow2 other.qcow2 4M");
    char b0[80], t0[80], b1[80], t1[80];
    sum("t.qcow2", t0, sizeof t0);
    es_err e = {0};
    /* No backing file. */
    ck_assert_int_eq(try_commit("b.qcow2", NULL, false, &e), -1);
    /* BASE not in the chain. */
    ck_assert_int_eq(try_commit("t.qcow2", "other.qcow2", true, &e), -1);
    ck_assert_msg(strstr(e.msg, "not in the backing chain") != NULL, "%s", e.msg);
    /* BASE dirty, then corrupt: refused, nothing written. */
    uint64_t inc = tu_get_be("b.qcow2", 72, 8);
    static const struct {
        uint64_t bit;
        const char *want;
    } bad[] = {{QCOW2_INCOMPAT_DIRTY, "check -r all"}, {QCOW2_INCOMPAT_CORRUPT, "corrupt"}};
    for (size_t i = 0; i < 2; i++) {
        tu_put_be("b.qcow2", 72, 8, inc | bad[i].bit);
        sum("b.qcow2", b0, sizeof b0);
        sum("t.qcow2", t0, sizeof t0);
        ck_assert_int_eq(try_commit("t.qcow2", NULL, false, &e), -1);
        ck_assert_msg(strstr(e.msg, bad[i].want), "%s", e.msg);
        sum("b.qcow2", b1, sizeof b1);
        sum("t.qcow2", t1, sizeof t1);
        ck_assert_str_eq(b0, b1);
        ck_assert_str_eq(t0, t1);
    }
    tu_put_be("b.qcow2", 72, 8, inc);
    /* Persistent dirty bitmaps in BASE that would grow: refused (QEMU
     * sizes a bitmap to its image). */
    tu_sh("cp b.qcow2 nobitmap.qcow2 && qemu-img bitmap --add b.qcow2 bm0 && "
          "qemu-img resize -q t.qcow2 +1M");
    sum("b.qcow2", b0, sizeof b0);
    sum("t.qcow2", t0, sizeof t0);
    ck_assert_int_eq(try_commit("t.qcow2", NULL, false, &e), -1);
    ck_assert_msg(strstr(e.msg, "dirty bitmaps and would grow"), "%s", e.msg);
    sum("b.qcow2", b1, sizeof b1);
    sum("t.qcow2", t1, sizeof t1);
    ck_assert_str_eq(b0, b1);
    ck_assert_str_eq(t0, t1);
    tu_sh("mv nobitmap.qcow2 b.qcow2");
    /* An unwritable BASE (immutable file: even root cannot write it). */
    TU_SKIP_IF(tu_sh_status("chattr +i b.qcow2") != 0,
               "chattr +i failed (needs root and a file system with the immutable flag): "
               "the unwritable-BASE case did not run");
    sum("b.qcow2", b0, sizeof b0);
    int rc = try_commit("t.qcow2", NULL, false, &e);
    tu_sh("chattr -i b.qcow2");
    ck_assert_int_eq(rc, -1);
    ck_assert_msg(strstr(e.msg, "cannot open for writing") != NULL, "%s", e.msg);
    sum("b.qcow2", b1, sizeof b1);
    sum("t.qcow2", t1, sizeof t1);
    ck_assert_str_eq(b0, b1);
    ck_assert_str_eq(t0, t1);
}
END_TEST

/* Committing again after a finished commit changes nothing visible. */
START_TEST(commit_is_repeatable)
{
    tu_sh("qemu-img create -q -f qcow2 b.qcow2 8M && qemu-io -c 'write -P 1 0 1M' b.qcow2 && "
          "qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 t.qcow2 && "
          "qemu-io -c 'write -P 2 512k 1M' -c 'write -z 3M 1M' t.qcow2");
    snapshot_view("t.qcow2", "before.raw");
    commit_ok("t.qcow2", NULL, true);
    commit_ok("t.qcow2", NULL, true);
    check_clean("b.qcow2");
    same_content("before.raw", "b.qcow2");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("qcow2_commit");
    TCase *t = tcase_create("commit");
    tcase_add_checked_fixture(t, tu_setup, tu_teardown);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, data_and_zeroes_into_v3);
    tcase_add_test(t, snapshot_clusters_not_overwritten);
    tcase_add_test(t, compressed_base_cluster_replaced);
    tcase_add_test(t, extended_l2_base_gets_subclusters);
    tcase_add_test(t, standard_base_from_extended_top);
    tcase_add_test(t, v2_base_zeroes);
    tcase_add_test(t, base_grows);
    tcase_add_test(t, raw_base);
    tcase_add_test(t, short_intermediate_hides_base);
    tcase_add_test(t, v2_top_emptied);
    tcase_add_test(t, top_with_snapshot_emptied);
    tcase_add_test(t, base_found_relative_to_chain);
    tcase_add_test(t, refusals_change_nothing);
    tcase_add_test(t, commit_is_repeatable);
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
