/* QMP message parser, QEMU file-name reduction and node mapping from canned
 * replies: no QEMU needed. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qmp/qmp_msg.h"
#include "qmp/qmp_nodes.h"
#include "qmp_canned.h"

static qmp_msg *parse_ok(const char *text)
{
    qmp_msg *m = NULL;
    es_err e = {0};
    int rc = qmp_msg_parse(text, strlen(text), &m, &e);
    ck_assert_msg(rc == 0, "parse of %s failed: %s", text, e.msg);
    ck_assert_ptr_nonnull(m);
    return m;
}

static void parse_bad(const char *bytes, size_t len, const char *expect)
{
    qmp_msg *m = (qmp_msg *)1;
    es_err e = {0};
    int rc = qmp_msg_parse(bytes, len, &m, &e);
    ck_assert_msg(rc == -1, "accepted: %.*s", (int)len, bytes);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(e.msg, "malformed QMP message") != NULL, "message: %s", e.msg);
    ck_assert_msg(strstr(e.msg, expect) != NULL, "expected '%s' in: %s", expect, e.msg);
}

static void parse_bad_s(const char *text, const char *expect)
{
    parse_bad(text, strlen(text), expect);
}

START_TEST(greeting)
{
    qmp_msg *m = parse_ok("{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, "
                          "\"major\": 7}, \"package\": \"Debian\"}, \"capabilities\": "
                          "[\"oob\"]}}\r\n");
    ck_assert_int_eq(m->kind, QMP_MSG_GREETING);
    ck_assert_int_eq(m->version_major, 7);
    ck_assert_int_eq(m->version_minor, 2);
    ck_assert_int_eq(m->version_micro, 22);
    qmp_msg_free(m);
}
END_TEST

START_TEST(return_error_event)
{
    qmp_msg *m = parse_ok("{\"return\": {\"x\": 1}, \"id\": \"extsnap-3\"}");
    ck_assert_int_eq(m->kind, QMP_MSG_RETURN);
    ck_assert(m->has_id);
    ck_assert_str_eq(m->id, "extsnap-3");
    ck_assert(json_object_is_type(m->value, json_type_object));
    qmp_msg_free(m);

    m = parse_ok("{\"id\": 7, \"return\": []}");
    ck_assert(m->has_id);
    ck_assert_ptr_null(m->id); /* not a string: never one of ours */
    qmp_msg_free(m);

    m = parse_ok("{\"id\": \"a\", \"error\": {\"class\": \"GenericError\", \"desc\": \"boom\"}}");
    ck_assert_int_eq(m->kind, QMP_MSG_ERROR);
    ck_assert_str_eq(m->error_class, "GenericError");
    ck_assert_str_eq(m->error_desc, "boom");
    qmp_msg_free(m);

    m = parse_ok("{\"timestamp\": {\"seconds\": 17, \"microseconds\": 5}, \"event\": "
                 "\"BLOCK_JOB_READY\", \"data\": {\"device\": \"j0\"}}");
    ck_assert_int_eq(m->kind, QMP_MSG_EVENT);
    ck_assert_str_eq(m->event, "BLOCK_JOB_READY");
    ck_assert_int_eq(m->ts_seconds, 17);
    ck_assert_int_eq(m->ts_microseconds, 5);
    ck_assert(!m->has_id);
    qmp_msg_free(m);

    m = parse_ok("{\"event\": \"STOP\"}");
    ck_assert_ptr_null(m->value);
    ck_assert_int_eq(m->ts_seconds, -1);
    qmp_msg_free(m);
}
END_TEST

START_TEST(malformed)
{
    parse_bad_s("", "empty");
    parse_bad_s("\r\n", "empty");
    parse_bad_s("{", "incomplete");
    parse_bad_s("{\"return\": ", "incomplete");
    parse_bad_s("garbage", "received \"garbage\"");
    parse_bad_s("[1, 2]", "not a JSON object");
    parse_bad_s("123", "not a JSON object");
    parse_bad_s("\"str\"", "not a JSON object");
    parse_bad_s("null", "not a JSON object");
    parse_bad_s("{\"foo\": 1}", "neither a reply");
    parse_bad_s("{\"error\": \"x\"}", "class and desc");
    parse_bad_s("{\"error\": {\"class\": 1, \"desc\": \"d\"}}", "class and desc");
    parse_bad_s("{\"event\": 5}", "event name");
    parse_bad_s("{\"event\": \"X\", \"data\": []}", "event data");
    parse_bad_s("{\"return\": {}, \"error\": {\"class\": \"a\", \"desc\": \"b\"}}", "both");
    parse_bad_s("{\"QMP\": {}}", "version");
    parse_bad_s("{\"QMP\": 3}", "QMP greeting");
    parse_bad_s("{\"QMP\": {\"version\": {\"qemu\": {\"major\": -1, \"minor\": 0, \"micro\": 0}}}", "version");
    parse_bad_s("{\"return\": {}} x", "received");
    parse_bad_s("{\"return\": {}}{\"return\": {}}", "received");
    parse_bad_s("{\"return\": {},}", "received");
    parse_bad_s("{\"return\": \"\xff\xfe\"}", "received");
    static const char nul[] = "{\"return\": \"a\0b\"}";
    parse_bad(nul, sizeof nul - 1, "NUL byte");
    static const unsigned char bin[] = {0x00, 0x01, 0xff, 0x7b, 0x22, 0x80};
    parse_bad((const char *)bin, sizeof bin, "NUL byte");
}
END_TEST

/* Nesting far beyond any sane reply: an error, never a crash. */
START_TEST(deep_nesting)
{
    size_t depth = 100000;
    char *buf = malloc(2 * depth + 16);
    size_t n = 0;
    memcpy(buf, "{\"return\":", 10);
    n = 10;
    for (size_t i = 0; i < depth; i++)
        buf[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        buf[n++] = ']';
    buf[n++] = '}';
    parse_bad(buf, n, "received");
    free(buf);

    /* A long backing chain nests ~2 levels per image: 300 levels must pass. */
    char *ok = malloc(4096);
    n = 0;
    memcpy(ok, "{\"return\":", 10);
    n = 10;
    for (int i = 0; i < 300; i++)
        ok[n++] = '[';
    for (int i = 0; i < 300; i++)
        ok[n++] = ']';
    ok[n++] = '}';
    qmp_msg *m = NULL;
    es_err e = {0};
    ck_assert_int_eq(qmp_msg_parse(ok, n, &m, &e), 0);
    qmp_msg_free(m);
    free(ok);
}
END_TEST

START_TEST(plain_filenames)
{
    char *p = qmp_plain_filename("/var/img/a.qcow2");
    ck_assert_str_eq(p, "/var/img/a.qcow2");
    free(p);
    p = qmp_plain_filename("json:{\"backing\": {\"driver\": \"qcow2\", \"file\": {\"driver\": "
                           "\"file\", \"filename\": \"/x/base.qcow2\"}}, \"driver\": \"qcow2\", "
                           "\"file\": {\"driver\": \"file\", \"filename\": \"/x/top.qcow2\"}}");
    ck_assert_str_eq(p, "/x/top.qcow2");
    free(p);
    p = qmp_plain_filename("json:{\"driver\": \"qcow2\", \"file\": {\"image\": {\"driver\": "
                           "\"file\", \"filename\": \"/x/base.qcow2\"}, \"driver\": "
                           "\"blkdebug\", \"inject-error.0.errno\": 28}}");
    ck_assert_str_eq(p, "/x/base.qcow2");
    free(p);
    ck_assert_ptr_null(qmp_plain_filename("json:{\"driver\": \"nbd\", \"server\": {}}"));
    ck_assert_ptr_null(qmp_plain_filename("json:{\"driver\": "));
    ck_assert_ptr_null(qmp_plain_filename("json:[1]"));
    ck_assert_ptr_null(qmp_plain_filename(NULL));
}
END_TEST

/* ---- node mapping from canned replies (shapes as QEMU 7.2 sends them) ---- */

typedef struct canned {
    json_object *qb, *named, *graph;
} canned;

static canned canned_load(void)
{
    canned c = {json_tokener_parse(QUERY_BLOCK), json_tokener_parse(NAMED),
                json_tokener_parse(GRAPH)};
    ck_assert_ptr_nonnull(c.qb);
    ck_assert_ptr_nonnull(c.named);
    ck_assert_ptr_nonnull(c.graph);
    return c;
}

static void canned_free(canned *c)
{
    json_object_put(c->qb);
    json_object_put(c->named);
    json_object_put(c->graph);
}

START_TEST(chain_with_graph)
{
    canned cj = canned_load();
    qmp_chain ch;
    es_err e = {0};
    ck_assert_int_eq(qmp_chain_from_replies(cj.qb, cj.named, cj.graph, "drive0", &ch, &e), 0);
    ck_assert_str_eq(ch.device, "drive0");
    ck_assert_str_eq(ch.root_node, "#block1");
    ck_assert_uint_eq(ch.n, 3);
    ck_assert_str_eq(ch.nodes[0].node_name, "#block1");
    ck_assert_str_eq(ch.nodes[1].node_name, "#block2");
    ck_assert_str_eq(ch.nodes[2].node_name, "#block3");
    ck_assert_str_eq(ch.nodes[2].filename, "/i/base.qcow2");
    ck_assert(ch.nodes[2].read_only);
    qmp_chain_free(&ch);

    /* The shared base: drive1 reaches its own node of the same file. */
    ck_assert_int_eq(qmp_chain_from_replies(cj.qb, cj.named, cj.graph, "drive1", &ch, &e), 0);
    ck_assert_uint_eq(ch.n, 2);
    ck_assert_str_eq(ch.nodes[1].node_name, "#block6");
    ck_assert_str_eq(ch.nodes[1].filename, "/i/base.qcow2");
    qmp_chain_free(&ch);

    /* A node without device, and a node given by name. */
    ck_assert_int_eq(qmp_chain_from_replies(cj.qb, cj.named, cj.graph, "bare", &ch, &e), 0);
    ck_assert_ptr_null(ch.device);
    ck_assert_uint_eq(ch.n, 1);
    qmp_chain_free(&ch);
    ck_assert_int_eq(qmp_chain_from_replies(cj.qb, cj.named, cj.graph, "#block1", &ch, &e), 0);
    ck_assert_str_eq(ch.device, "drive0");
    qmp_chain_free(&ch);

    ck_assert_int_eq(qmp_chain_from_replies(cj.qb, cj.named, cj.graph, "nope", &ch, &e), -1);
    ck_assert_msg(strstr(e.msg, "no block device or node named nope"), "%s", e.msg);
    ck_assert_int_eq(qmp_chain_from_replies(cj.qb, cj.named, cj.graph, "cd0", &ch, &e), -1);
    ck_assert_msg(strstr(e.msg, "no medium"), "%s", e.msg);
    canned_free(&cj);
}
END_TEST

START_TEST(chain_without_graph)
{
    canned cj = canned_load();
    qmp_chain ch;
    es_err e = {0};
    ck_assert_int_eq(qmp_chain_from_replies(cj.qb, cj.named, NULL, "drive0", &ch, &e), -1);
    /* base.qcow2 is open twice (#block3 and #block6): file names cannot tell. */
    ck_assert_msg(strstr(e.msg, "more than one block node"), "%s", e.msg);
    ck_assert_str_eq(e.path, "/i/base.qcow2");

    /* Without the second chain the match is unique. */
    json_object *qb = json_tokener_parse(QUERY_BLOCK);
    json_object_array_del_idx(qb, 1, 2);
    json_object *named = json_tokener_parse(NAMED);
    json_object_array_del_idx(named, 6, 2);
    ck_assert_int_eq(qmp_chain_from_replies(qb, named, NULL, "drive0", &ch, &e), 0);
    ck_assert_uint_eq(ch.n, 3);
    ck_assert_str_eq(ch.nodes[1].node_name, "#block2");
    ck_assert_str_eq(ch.nodes[2].node_name, "#block3");
    qmp_chain_free(&ch);
    ck_assert_int_eq(qmp_chain_from_replies(qb, named, NULL, "bare", &ch, &e), -1);
    ck_assert_msg(strstr(e.msg, "x-debug-query-block-graph"), "%s", e.msg);
    json_object_put(qb);
    json_object_put(named);
    canned_free(&cj);
}
END_TEST

START_TEST(locate)
{
    canned cj = canned_load();
    qmp_file_location *locs;
    size_t n;
    es_err e = {0};
    ck_assert_int_eq(qmp_locate_from_replies(cj.qb, cj.named, cj.graph, "/i/base.qcow2", NULL,
                                             &locs, &n, &e),
                     0);
    ck_assert_uint_eq(n, 2);
    bool seen0 = false, seen1 = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(locs[i].device, "drive0") == 0) {
            seen0 = true;
            ck_assert_str_eq(locs[i].node_name, "#block3");
            ck_assert_uint_eq(locs[i].depth, 2);
        } else {
            seen1 = strcmp(locs[i].device, "drive1") == 0;
            ck_assert_str_eq(locs[i].node_name, "#block6");
            ck_assert_str_eq(locs[i].root_node, "#block5");
            ck_assert_uint_eq(locs[i].depth, 1);
        }
    }
    ck_assert(seen0 && seen1);
    qmp_file_locations_free(locs, n);

    ck_assert_int_eq(qmp_locate_from_replies(cj.qb, cj.named, cj.graph, "/i/bare.qcow2", NULL,
                                             &locs, &n, &e),
                     0);
    ck_assert_uint_eq(n, 1);
    ck_assert_ptr_null(locs[0].device);
    ck_assert_str_eq(locs[0].node_name, "bare");
    qmp_file_locations_free(locs, n);

    ck_assert_int_eq(qmp_locate_from_replies(cj.qb, cj.named, cj.graph, "/i/none.qcow2", NULL,
                                             &locs, &n, &e),
                     0);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(locs);

    /* Garbage replies are errors, not crashes. */
    json_object *junk = json_object_new_int(3);
    ck_assert_int_eq(
        qmp_locate_from_replies(junk, cj.named, cj.graph, "/i/x", NULL, &locs, &n, &e), -1);
    ck_assert_int_eq(qmp_locate_from_replies(cj.qb, junk, NULL, "/i/x", NULL, &locs, &n, &e),
                     -1);
    ck_assert_int_eq(
        qmp_locate_from_replies(cj.qb, cj.named, junk, "/i/x", NULL, &locs, &n, &e), -1);
    json_object_put(junk);
    canned_free(&cj);
}
END_TEST

/* --root: QEMU names /i/bare.qcow2, which on this system is ROOT/i/bare.qcow2
 * (a VM seeing libvirt's paths); without the root it is not found. */
START_TEST(locate_under_root)
{
    const char *tmp = getenv("ES_TEST_TMP");
    char root[512], dir[600], file[700];
    snprintf(root, sizeof root, "%s/qmp-msg-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(root));
    snprintf(dir, sizeof dir, "%s/i", root);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    snprintf(file, sizeof file, "%s/bare.qcow2", dir);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    canned cj = canned_load();
    qmp_file_location *locs;
    size_t n;
    es_err e = {0};
    ck_assert_int_eq(
        qmp_locate_from_replies(cj.qb, cj.named, cj.graph, file, NULL, &locs, &n, &e), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(
        qmp_locate_from_replies(cj.qb, cj.named, cj.graph, file, root, &locs, &n, &e), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(locs[0].node_name, "bare");
    qmp_file_locations_free(locs, n);
    canned_free(&cj);
    unlink(file);
    rmdir(dir);
    rmdir(root);
}
END_TEST

/* A graph whose backing edges form a loop must not hang. */
START_TEST(graph_loop)
{
    json_object *qb = json_tokener_parse("[]");
    json_object *named = json_tokener_parse(
        "[{\"node-name\": \"a\", \"drv\": \"qcow2\", \"file\": \"/a\"},"
        " {\"node-name\": \"b\", \"drv\": \"qcow2\", \"file\": \"/b\"}]");
    json_object *graph = json_tokener_parse(
        "{\"nodes\": [{\"id\": 1, \"type\": \"block-driver\", \"name\": \"a\"},"
        " {\"id\": 2, \"type\": \"block-driver\", \"name\": \"b\"}],"
        " \"edges\": [{\"parent\": 1, \"child\": 2, \"name\": \"backing\"},"
        " {\"parent\": 2, \"child\": 1, \"name\": \"backing\"}]}");
    qmp_chain ch;
    es_err e = {0};
    ck_assert_int_eq(qmp_chain_from_replies(qb, named, graph, "a", &ch, &e), -1);
    ck_assert_msg(strstr(e.msg, "loops"), "%s", e.msg);
    json_object_put(qb);
    json_object_put(named);
    json_object_put(graph);
}
END_TEST

static Suite *qmp_msg_suite(void)
{
    Suite *s = suite_create("qmp_msg");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, greeting);
    tcase_add_test(tc, return_error_event);
    tcase_add_test(tc, malformed);
    tcase_add_test(tc, deep_nesting);
    tcase_add_test(tc, plain_filenames);
    suite_add_tcase(s, tc);
    TCase *tn = tcase_create("nodes");
    tcase_add_test(tn, chain_with_graph);
    tcase_add_test(tn, chain_without_graph);
    tcase_add_test(tn, locate);
    tcase_add_test(tn, locate_under_root);
    tcase_add_test(tn, graph_loop);
    suite_add_tcase(s, tn);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(qmp_msg_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
