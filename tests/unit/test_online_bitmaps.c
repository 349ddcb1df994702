/* online/online_bitmaps: which dirty-bitmap actions go with a snapshot and
 * a commit on a running VM (libvirt 9.0's rules, plus the offline rule for
 * BASE's own bitmaps), the refusals, and the bitmaps read from QEMU's
 * query-named-block-nodes. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "online/online_bitmaps.h"
#include "qmp/qmp_nodes.h"

/* A chain of n nodes "n0" (active) .. ; bitmaps given per node as
 * "name:flags" with flags p(ersistent) r(ecording) i(nconsistent) b(usy),
 * granularity 64 KiB, or 128 KiB with 'g'. */
typedef struct {
    qmp_chain ch;
    qmp_chain_node nodes[4];
    qmp_bitmap bms[4][8];
    char names[4][8];
} fixture;

static void add_bitmap(fixture *f, size_t node, const char *spec)
{
    qmp_chain_node *x = &f->nodes[node];
    qmp_bitmap *b = &f->bms[node][x->nbitmaps++];
    const char *colon = strchr(spec, ':');
    b->name = strndup(spec, (size_t)(colon - spec));
    b->persistent = strchr(colon, 'p') != NULL;
    b->recording = strchr(colon, 'r') != NULL;
    b->inconsistent = strchr(colon, 'i') != NULL;
    b->busy = strchr(colon, 'b') != NULL;
    b->granularity = strchr(colon, 'g') ? 131072 : 65536;
}

static void fixture_init(fixture *f, size_t n)
{
    memset(f, 0, sizeof *f);
    f->ch.n = n;
    f->ch.nodes = f->nodes;
    for (size_t i = 0; i < n; i++) {
        snprintf(f->names[i], sizeof f->names[i], "n%zu", i);
        f->nodes[i].node_name = f->names[i];
        f->nodes[i].filename = f->names[i];
        f->nodes[i].bitmaps = f->bms[i];
    }
}

static void fixture_free(fixture *f)
{
    for (size_t i = 0; i < 4; i++)
        for (size_t k = 0; k < f->nodes[i].nbitmaps; k++)
            free(f->bms[i][k].name);
}

/* The actions as one compact line per action: "add n2 bn 65536",
 * "merge n2 b1 <- n0 n1". */
static char *render(json_object *actions)
{
    char buf[2048] = "";
    for (size_t i = 0; i < json_object_array_length(actions); i++) {
        json_object *a = json_object_array_get_idx(actions, i), *t, *d, *v;
        json_object_object_get_ex(a, "type", &t);
        json_object_object_get_ex(a, "data", &d);
        const char *type = json_object_get_string(t);
        json_object_object_get_ex(d, "node", &v);
        char line[512];
        if (strcmp(type, "block-dirty-bitmap-add") == 0) {
            json_object *name, *g, *p, *dis;
            json_object_object_get_ex(d, "name", &name);
            json_object_object_get_ex(d, "persistent", &p);
            json_object_object_get_ex(d, "disabled", &dis);
            ck_assert(json_object_get_boolean(p) && !json_object_get_boolean(dis));
            snprintf(line, sizeof line, "add %s %s %s", json_object_get_string(v),
                     json_object_get_string(name),
                     json_object_object_get_ex(d, "granularity", &g) ? json_object_get_string(g)
                                                                      : "-");
        } else {
            json_object *target, *srcs;
            json_object_object_get_ex(d, "target", &target);
            json_object_object_get_ex(d, "bitmaps", &srcs);
            snprintf(line, sizeof line, "merge %s %s <-", json_object_get_string(v),
                     json_object_get_string(target));
            for (size_t k = 0; k < json_object_array_length(srcs); k++) {
                json_object *s = json_object_array_get_idx(srcs, k), *sn, *sb;
                json_object_object_get_ex(s, "node", &sn);
                json_object_object_get_ex(s, "name", &sb);
                ck_assert_str_eq(json_object_get_string(sb), json_object_get_string(target));
                snprintf(line + strlen(line), sizeof line - strlen(line), " %s",
                         json_object_get_string(sn));
            }
        }
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", buf[0] ? "|" : "", line);
    }
    return strdup(buf);
}

static void expect_commit(fixture *f, size_t top, size_t base, const char *want)
{
    json_object *actions = json_object_new_array();
    es_strv what = {0};
    snap_online_bitmaps_commit_actions(&f->ch, top, base, actions, &what);
    char *got = render(actions);
    ck_assert_str_eq(got, want);
    /* One description per bitmap name merged. */
    size_t merges = 0;
    for (const char *p = got; (p = strstr(p, "merge ")); p++)
        merges++;
    ck_assert_uint_eq(what.n, merges);
    free(got);
    es_strv_free(&what);
    json_object_put(actions);
}

START_TEST(commit_valid_chains)
{
    fixture f;
    fixture_init(&f, 3);
    add_bitmap(&f, 0, "b1:pr");
    add_bitmap(&f, 1, "b1:pr");
    add_bitmap(&f, 2, "b1:pr");
    add_bitmap(&f, 0, "bn:prg"); /* only in TOP: added to BASE with TOP's granularity */
    /* Active commit of n0 into n2. */
    expect_commit(&f, 0, 2, "merge n2 b1 <- n0 n1|add n2 bn 131072|merge n2 bn <- n0");
    /* Intermediate n1 into n2: bn is above TOP, not part of it. */
    expect_commit(&f, 1, 2, "merge n2 b1 <- n1");
    fixture_free(&f);
}
END_TEST

START_TEST(commit_invalid_chains)
{
    fixture f;
    fixture_init(&f, 4);
    add_bitmap(&f, 0, "gap:pr"); /* n0, n2: a gap at n1 */
    add_bitmap(&f, 2, "gap:pr");
    add_bitmap(&f, 0, "dis:pr"); /* BASE's is disabled: never touched */
    add_bitmap(&f, 2, "dis:p");
    add_bitmap(&f, 0, "tmp:r"); /* not persistent */
    add_bitmap(&f, 0, "deep:pr"); /* valid down to n1, but n3 below has it disabled */
    add_bitmap(&f, 1, "deep:pr");
    add_bitmap(&f, 3, "deep:p");
    /* libvirt merges none of them; the offline rule still gives BASE's
     * recording bitmap "gap" the same-named one above it. */
    expect_commit(&f, 0, 2, "merge n2 gap <- n0");
    fixture_free(&f);
}
END_TEST

START_TEST(propagate_and_refuse)
{
    fixture f;
    fixture_init(&f, 2);
    add_bitmap(&f, 0, "a:pr");
    add_bitmap(&f, 0, "off:p");
    add_bitmap(&f, 0, "tmp:r");
    add_bitmap(&f, 0, "big:prg");
    json_object *actions = json_object_new_array();
    es_strv what = {0};
    snap_online_bitmaps_propagate(&f.nodes[0], "ov", actions, &what);
    char *got = render(actions);
    ck_assert_str_eq(got, "add ov a 65536|add ov big 131072");
    ck_assert_uint_eq(what.n, 2);
    free(got);
    es_strv_free(&what);
    json_object_put(actions);

    es_err e = {0};
    ck_assert_int_eq(snap_online_bitmaps_refuse(&f.ch, 0, 1, "vda", &e), 0);
    add_bitmap(&f, 1, "old:pi");
    ck_assert_int_eq(snap_online_bitmaps_refuse(&f.ch, 0, 0, "vda", &e), 0);
    ck_assert_int_eq(snap_online_bitmaps_refuse(&f.ch, 0, 1, "vda", &e), -1);
    ck_assert_msg(strstr(e.msg, "dirty bitmap 'old' of this image as inconsistent"), "%s", e.msg);
    ck_assert_str_eq(e.path, "n1");
    add_bitmap(&f, 0, "bk:prb");
    ck_assert_int_eq(snap_online_bitmaps_refuse(&f.ch, 0, 0, "vda", &e), -1);
    ck_assert_msg(strstr(e.msg, "disk vda: dirty bitmap 'bk' of this image is in use"), "%s",
                  e.msg);
    fixture_free(&f);
}
END_TEST

START_TEST(bitmaps_from_qemu)
{
    json_object *qb = json_tokener_parse(
        "[{\"device\": \"d\", \"inserted\": {\"node-name\": \"t\", \"image\": {\"filename\": "
        "\"/i/t.qcow2\", \"format\": \"qcow2\", \"backing-image\": {\"filename\": "
        "\"/i/b.qcow2\", \"format\": \"qcow2\"}}}}]");
    json_object *named = json_tokener_parse(
        "[{\"node-name\": \"t\", \"drv\": \"qcow2\", \"file\": \"/i/t.qcow2\", \"ro\": false,"
        "  \"backing_file_depth\": 1, \"dirty-bitmaps\": ["
        "   {\"name\": \"b1\", \"granularity\": 65536, \"recording\": true, \"persistent\": true,"
        "    \"busy\": false, \"count\": 0},"
        "   {\"granularity\": 512, \"recording\": true, \"persistent\": false, \"busy\": true,"
        "    \"count\": 0}]},"
        " {\"node-name\": \"b\", \"drv\": \"qcow2\", \"file\": \"/i/b.qcow2\", \"ro\": true,"
        "  \"backing_file_depth\": 0, \"dirty-bitmaps\": ["
        "   {\"name\": \"b1\", \"granularity\": 131072, \"recording\": false, \"persistent\": true,"
        "    \"busy\": false, \"count\": 0, \"inconsistent\": true}]}]");
    ck_assert_ptr_nonnull(qb);
    ck_assert_ptr_nonnull(named);
    qmp_chain ch;
    es_err e = {0};
    ck_assert_msg(qmp_chain_from_replies(qb, named, NULL, "d", &ch, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(ch.n, 2);
    ck_assert_uint_eq(ch.nodes[0].nbitmaps, 1); /* the unnamed (a job's) is not listed */
    const qmp_bitmap *t = qmp_chain_node_bitmap(&ch.nodes[0], "b1");
    ck_assert_ptr_nonnull(t);
    ck_assert(t->persistent && t->recording && !t->inconsistent && !t->busy);
    ck_assert_uint_eq(t->granularity, 65536);
    const qmp_bitmap *b = qmp_chain_node_bitmap(&ch.nodes[1], "b1");
    ck_assert_ptr_nonnull(b);
    ck_assert(b->inconsistent && !b->recording);
    ck_assert_uint_eq(b->granularity, 131072);
    ck_assert_ptr_null(qmp_chain_node_bitmap(&ch.nodes[1], "none"));
    ck_assert_int_eq(snap_online_bitmaps_refuse(&ch, 0, 1, "vda", &e), -1);
    qmp_chain_free(&ch);
    json_object_put(qb);
    json_object_put(named);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("online_bitmaps");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, commit_valid_chains);
    tcase_add_test(tc, commit_invalid_chains);
    tcase_add_test(tc, propagate_and_refuse);
    tcase_add_test(tc, bitmaps_from_qemu);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
