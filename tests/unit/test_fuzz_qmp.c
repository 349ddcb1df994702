/* Deterministic mutation fuzzing of what extsnap parses from QEMU: whole QMP
 * lines (qmp_msg_parse: byte flips, cuts, splices, hostile tokens), the
 * replies the node mapping walks (qmp_chain_from_replies and
 * qmp_locate_from_replies on JSON trees with nodes replaced by other types,
 * deleted, duplicated or nested deep), and QEMU's file names
 * (qmp_plain_filename on mutated "json:{...}" names), and the block exports
 * with their writability (qmp_block_exports_from_reply, _mark_writable).
 *
 * Nothing QEMU sends may crash the client: every call returns a result or
 * -1 with a message, and stays ASan/UBSan/LSan clean (the unit tests also
 * run sanitized in CI). A failure names FUZZ_SEED and the case index.
 * Environment: FUZZ_SEED (default 1), FUZZ_ITERS (cases per test, default
 * 4000). */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmp/qmp_export.h"
#include "qmp/qmp_msg.h"
#include "qmp/qmp_nodes.h"
#include "fuzz_mutate.h"
#include "qmp_canned.h"

/* Lines as QEMU 7.2 sends them. */
static const char *const LINES[] = {
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "
    "\"package\": \"Debian 1:7.2+dfsg-7\"}, \"capabilities\": [\"oob\"]}}",
    "{\"return\": {}, \"id\": \"extsnap-1\"}",
    "{\"return\": [{\"auto-finalize\": true, \"io-status\": \"ok\", \"device\": \"c0\", "
    "\"auto-dismiss\": true, \"busy\": false, \"len\": 67108864, \"offset\": 1048576, "
    "\"status\": \"running\", \"paused\": false, \"speed\": 0, \"ready\": false, "
    "\"type\": \"commit\"}], \"id\": \"extsnap-7\"}",
    "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Device 'drive0' not found\"}, "
    "\"id\": \"extsnap-3\"}",
    "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 123456}, \"event\": "
    "\"BLOCK_JOB_COMPLETED\", \"data\": {\"device\": \"c0\", \"len\": 67108864, \"offset\": "
    "67108864, \"speed\": 0, \"type\": \"commit\", \"error\": \"No space left on device\"}}",
    "{\"timestamp\": {\"seconds\": 1700000001, \"microseconds\": 5}, \"event\": "
    "\"JOB_STATUS_CHANGE\", \"data\": {\"status\": \"ready\", \"id\": \"c0\"}}",
    "{\"timestamp\": {\"seconds\": 1700000002, \"microseconds\": 0}, \"event\": "
    "\"BLOCK_JOB_READY\", \"data\": {\"device\": \"c0\", \"len\": 1, \"offset\": 1, "
    "\"speed\": 0, \"type\": \"commit\"}}",
};

/* Both outcomes must be common, or the mutations miss the parser's logic
 * (everything rejected at the first byte, or nothing really changed). */
static void assert_mix(const char *what, uint64_t ok, uint64_t iters)
{
    ck_assert_msg(ok * 20 >= iters && (iters - ok) * 20 >= iters,
                  "%s: %" PRIu64 " of %" PRIu64 " cases accepted: the mutations do not reach "
                  "both paths",
                  what, ok, iters);
}

START_TEST(msg_parse_mutated_lines)
{
    uint64_t iters = env_u64("FUZZ_ITERS", 4000), ok = 0;
    for (uint64_t i = 0; i < iters; i++) {
        rng r = {seed_of(i)};
        const char *src = LINES[below(&r, sizeof LINES / sizeof *LINES)];
        buf b = mutated_copy(&r, src, LINES, sizeof LINES / sizeof *LINES);
        qmp_msg *m = NULL;
        es_err e = {0};
        int rc = qmp_msg_parse(b.p, b.n, &m, &e);
        if (rc == 0) {
            ck_assert_msg(m != NULL, "FUZZ_SEED=%" PRIu64 " case %" PRIu64 ": no message",
                          env_u64("FUZZ_SEED", 1), i);
            /* What a parsed message promises its users. */
            if (m->kind == QMP_MSG_EVENT)
                ck_assert_ptr_nonnull(m->event);
            if (m->kind == QMP_MSG_ERROR)
                ck_assert(m->error_class && m->error_desc);
            ck_assert_ptr_nonnull(qmp_msg_kind_name(m->kind));
            qmp_msg_free(m);
            ok++;
        } else {
            ck_assert_msg(rc == -1 && m == NULL && e.msg[0],
                          "FUZZ_SEED=%" PRIu64 " case %" PRIu64 ": rc %d without a message",
                          env_u64("FUZZ_SEED", 1), i, rc);
        }
        free(b.p);
    }
    assert_mix("qmp_msg_parse", ok, iters);
}
END_TEST

/* ---- JSON trees ---- */

static json_object *parse_canned(const char *text)
{
    json_object *o = json_tokener_parse(text);
    ck_assert_ptr_nonnull(o);
    return o;
}

START_TEST(node_mapping_mutated_replies)
{
    static const char *const names[] = {"drive0", "drive1", "cd0", "bare", "#block1",
                                        "#block3", "nope", ""};
    static const char *const paths[] = {"/i/base.qcow2", "/i/top.qcow2", "/i/other.qcow2",
                                        "/nowhere"};
    uint64_t iters = env_u64("FUZZ_ITERS", 4000), chains = 0, located = 0;
    for (uint64_t i = 0; i < iters; i++) {
        rng r = {seed_of(i)};
        json_object *t[3] = {parse_canned(QUERY_BLOCK), parse_canned(NAMED),
                             parse_canned(GRAPH)};
        int which = (int)below(&r, 4); /* 3: all of them */
        for (int j = 0; j < 3; j++)
            if (which == 3 || which == j)
                mutate_tree(&r, &t[j]);
        json_object *graph = below(&r, 4) == 0 ? NULL : t[2];
        es_err e = {0};
        qmp_chain ch;
        memset(&ch, 0, sizeof ch);
        const char *name = names[below(&r, sizeof names / sizeof *names)];
        int rc = qmp_chain_from_replies(t[0], t[1], graph, name, &ch, &e);
        ck_assert_msg(rc == 0 || (rc == -1 && e.msg[0]),
                      "FUZZ_SEED=%" PRIu64 " case %" PRIu64 ": chain rc %d without a message",
                      env_u64("FUZZ_SEED", 1), i, rc);
        if (rc == 0) {
            for (size_t k = 0; k < ch.n; k++)
                ck_assert_ptr_nonnull(ch.nodes[k].node_name);
            qmp_chain_free(&ch);
            chains++;
        }
        qmp_file_location *locs = NULL;
        size_t n = 0;
        e = (es_err){0};
        const char *path = paths[below(&r, sizeof paths / sizeof *paths)];
        rc = qmp_locate_from_replies(t[0], t[1], graph, path, below(&r, 2) ? "/" : NULL, &locs,
                                     &n, &e);
        ck_assert_msg(rc == 0 || (rc == -1 && e.msg[0]),
                      "FUZZ_SEED=%" PRIu64 " case %" PRIu64 ": locate rc %d without a message",
                      env_u64("FUZZ_SEED", 1), i, rc);
        if (rc == 0) {
            for (size_t k = 0; k < n; k++)
                ck_assert_ptr_nonnull(locs[k].node_name);
            qmp_file_locations_free(locs, n);
            located += n > 0;
        }
        for (int j = 0; j < 3; j++)
            json_object_put(t[j]);
    }
    assert_mix("qmp_chain_from_replies", chains, iters);
    ck_assert_msg(located * 20 >= iters, "qmp_locate_from_replies found a file in %" PRIu64
                  " of %" PRIu64 " cases only", located, iters);
}
END_TEST

/* query-block-exports and a graph with the exports' BlockBackends, as QEMU
 * 7.2 answers them (export w writes node a, r reads b). */
static const char *const EXPORTS =
    "[{\"node-name\": \"a\", \"shutting-down\": false, \"type\": \"nbd\", \"id\": \"w\"},"
    " {\"node-name\": \"b\", \"shutting-down\": false, \"type\": \"nbd\", \"id\": \"r\"}]";
static const char *const EXPORT_GRAPH =
    "{\"nodes\": [{\"name\": \"a\", \"type\": \"block-driver\", \"id\": 4},"
    " {\"name\": \"b\", \"type\": \"block-driver\", \"id\": 6},"
    " {\"name\": \"\", \"type\": \"block-backend\", \"id\": 3},"
    " {\"name\": \"\", \"type\": \"block-backend\", \"id\": 5}],"
    " \"edges\": [{\"name\": \"root\", \"parent\": 3, \"perm\": [\"write\", "
    "\"consistent-read\"], \"shared-perm\": [\"write\"], \"child\": 4},"
    " {\"name\": \"root\", \"parent\": 5, \"perm\": [\"consistent-read\"], "
    "\"shared-perm\": [\"write\"], \"child\": 6}]}";

START_TEST(exports_mutated_replies)
{
    uint64_t iters = env_u64("FUZZ_ITERS", 4000), ok = 0;
    for (uint64_t i = 0; i < iters; i++) {
        rng r = {seed_of(i)};
        json_object *t[2] = {parse_canned(EXPORTS), parse_canned(EXPORT_GRAPH)};
        int which = (int)below(&r, 3); /* 2: both */
        for (int j = 0; j < 2; j++)
            if (which == 2 || which == j)
                mutate_tree(&r, &t[j]);
        qmp_block_exports x;
        es_err e = {0};
        int rc = qmp_block_exports_from_reply(t[0], &x, &e);
        ck_assert_msg(rc == 0 || (rc == -1 && e.msg[0] && x.n == 0),
                      "FUZZ_SEED=%" PRIu64 " case %" PRIu64 ": rc %d without a message",
                      env_u64("FUZZ_SEED", 1), i, rc);
        if (rc == 0) {
            qmp_block_exports_mark_writable(&x, below(&r, 4) == 0 ? NULL : t[1]);
            for (size_t k = 0; k < x.n; k++)
                ck_assert(x.v[k].id && x.v[k].node_name && x.v[k].type);
            qmp_block_exports_free(&x);
            ok++;
        }
        for (int j = 0; j < 2; j++)
            json_object_put(t[j]);
    }
    assert_mix("qmp_block_exports_from_reply", ok, iters);
}
END_TEST

START_TEST(plain_filename_mutated_names)
{
    static const char *const seeds[] = {
        "/var/img/a.qcow2",
        "json:{\"backing\": {\"driver\": \"qcow2\", \"file\": {\"driver\": \"file\", "
        "\"filename\": \"/x/base.qcow2\"}}, \"driver\": \"qcow2\", \"file\": {\"driver\": "
        "\"file\", \"filename\": \"/x/top.qcow2\"}}",
        "json:{\"driver\": \"qcow2\", \"file\": {\"image\": {\"driver\": \"file\", "
        "\"filename\": \"/x/base.qcow2\"}, \"driver\": \"blkdebug\"}}",
    };
    uint64_t iters = env_u64("FUZZ_ITERS", 4000);
    for (uint64_t i = 0; i < iters; i++) {
        rng r = {seed_of(i)};
        const char *src = seeds[below(&r, sizeof seeds / sizeof *seeds)];
        buf b = mutated_copy(&r, src, LINES, sizeof LINES / sizeof *LINES);
        buf_insert(&b, b.n, "", 1); /* a C string */
        char *p = qmp_plain_filename(b.p);
        if (p)
            ck_assert_msg(strlen(p) < b.n, "FUZZ_SEED=%" PRIu64 " case %" PRIu64 ": %s",
                          env_u64("FUZZ_SEED", 1), i, p);
        free(p);
        free(b.p);
    }
}
END_TEST

static Suite *fuzz_qmp_suite(void)
{
    Suite *s = suite_create("fuzz_qmp");
    TCase *tc = tcase_create("mutations");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, msg_parse_mutated_lines);
    tcase_add_test(tc, node_mapping_mutated_replies);
    tcase_add_test(tc, plain_filename_mutated_names);
    tcase_add_test(tc, exports_mutated_replies);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(fuzz_qmp_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
