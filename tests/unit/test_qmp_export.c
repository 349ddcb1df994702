/* query-block-exports (qmp_export.h): the reply parsed as QEMU 7.2 sends
 * it, malformed replies refused, writability read from the block graph, a
 * QEMU without the command (fake server), and a real QEMU's exports. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../qmp/qmp_test_harness.h"
#include "qmp/qmp_client.h"
#include "qmp/qmp_export.h"
#include "tu_skip.h"

/* As QEMU 7.2 answers (an export moves onto a job's filter node). */
static const char *const EXPORTS =
    "[{\"node-name\": \"#block062\", \"shutting-down\": false, \"type\": \"nbd\", \"id\": \"w\"},"
    " {\"node-name\": \"b\", \"shutting-down\": true, \"type\": \"nbd\", \"id\": \"r\"},"
    " {\"node-name\": \"c\", \"shutting-down\": false, \"type\": \"nbd\", \"id\": \"c\"}]";

/* Export w's BlockBackend (no name) writes #block062; r's only reads b; on
 * c a device's BlockBackend (named) writes, the export's only reads. */
static const char *const GRAPH =
    "{\"nodes\": [{\"name\": \"#block062\", \"type\": \"block-driver\", \"id\": 4},"
    " {\"name\": \"b\", \"type\": \"block-driver\", \"id\": 6},"
    " {\"name\": \"c\", \"type\": \"block-driver\", \"id\": 2},"
    " {\"name\": \"\", \"type\": \"block-backend\", \"id\": 3},"
    " {\"name\": \"\", \"type\": \"block-backend\", \"id\": 5},"
    " {\"name\": \"\", \"type\": \"block-backend\", \"id\": 7},"
    " {\"name\": \"drive-c\", \"type\": \"block-backend\", \"id\": 1}],"
    " \"edges\": ["
    "{\"name\": \"root\", \"parent\": 3, \"perm\": [\"write\", \"consistent-read\"], "
    "\"shared-perm\": [\"write\"], \"child\": 4},"
    "{\"name\": \"root\", \"parent\": 5, \"perm\": [\"consistent-read\"], "
    "\"shared-perm\": [\"write\"], \"child\": 6},"
    "{\"name\": \"root\", \"parent\": 7, \"perm\": [\"consistent-read\"], "
    "\"shared-perm\": [\"write\"], \"child\": 2},"
    "{\"name\": \"root\", \"parent\": 1, \"perm\": [\"write\", \"consistent-read\"], "
    "\"shared-perm\": [\"write\"], \"child\": 2}]}";

static void parse(const char *text, qmp_block_exports *x)
{
    json_object *j = json_tokener_parse(text);
    ck_assert(j);
    es_err e = {0};
    ck_assert_msg(qmp_block_exports_from_reply(j, x, &e) == 0, "%s", QT_ERRSTR(e));
    json_object_put(j);
}

START_TEST(reply_parsed)
{
    qmp_block_exports x;
    parse(EXPORTS, &x);
    ck_assert_uint_eq(x.n, 3);
    ck_assert_str_eq(x.v[0].id, "w");
    ck_assert_str_eq(x.v[0].node_name, "#block062");
    ck_assert_str_eq(x.v[0].type, "nbd");
    ck_assert(!x.v[0].shutting_down);
    ck_assert(x.v[1].shutting_down);
    for (size_t i = 0; i < x.n; i++)
        ck_assert_msg(x.v[i].may_write, "export %zu: writable until the graph says not", i);
    qmp_block_exports_free(&x);
    parse("[]", &x);
    ck_assert_uint_eq(x.n, 0);
    qmp_block_exports_free(&x);
}
END_TEST

START_TEST(malformed_refused)
{
    const char *bad[] = {
        "{}",
        "[{\"type\": \"nbd\", \"id\": \"x\"}]",
        "[{\"type\": \"nbd\", \"node-name\": \"n\"}]",
        "[{\"node-name\": 7, \"id\": \"x\"}]",
        "[1]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_object *j = json_tokener_parse(bad[i]);
        ck_assert(j);
        qmp_block_exports x;
        es_err e = {0};
        ck_assert_msg(qmp_block_exports_from_reply(j, &x, &e) == -1, "accepted: %s", bad[i]);
        ck_assert(strstr(e.msg, "query-block-exports") != NULL);
        ck_assert_uint_eq(x.n, 0);
        json_object_put(j);
    }
}
END_TEST

START_TEST(writability_from_graph)
{
    qmp_block_exports x;
    parse(EXPORTS, &x);
    json_object *g = json_tokener_parse(GRAPH);
    ck_assert(g);
    qmp_block_exports_mark_writable(&x, g);
    ck_assert(x.v[0].may_write);  /* its own BlockBackend writes */
    ck_assert(!x.v[1].may_write); /* reads only */
    ck_assert(!x.v[2].may_write); /* the device writes, not the export */
    qmp_block_exports_mark_writable(&x, NULL); /* no graph: each may write */
    for (size_t i = 0; i < x.n; i++)
        ck_assert(x.v[i].may_write);
    json_object_put(g);
    qmp_block_exports_free(&x);
}
END_TEST

/* A QEMU without query-block-exports: greeting, capabilities, then
 * CommandNotFound for the query. */
static void old_qemu(int fd)
{
    const char *greet = "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 1, "
                        "\"major\": 5}, \"package\": \"fake\"}, \"capabilities\": []}}\r\n";
    char buf[4096];
    if (write(fd, greet, strlen(greet)) < 0)
        _exit(3);
    for (int k = 0; k < 2; k++) {
        size_t n = 0;
        while (n + 1 < sizeof buf && read(fd, buf + n, 1) == 1 && buf[n] != '\n')
            n++;
        buf[n] = '\0';
        json_object *req = json_tokener_parse(buf), *id = NULL;
        json_object_object_get_ex(req, "id", &id);
        char reply[512];
        snprintf(reply, sizeof reply,
                 k == 0 ? "{\"return\": {}, \"id\": %s}\r\n"
                        : "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command "
                          "query-block-exports has not been found\"}, \"id\": %s}\r\n",
                 id ? json_object_to_json_string(id) : "null");
        json_object_put(req);
        if (write(fd, reply, strlen(reply)) < 0)
            _exit(3);
    }
    pause();
    _exit(0);
}

START_TEST(without_the_command)
{
    int sv[2];
    ck_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(sv[0]);
        old_qemu(sv[1]);
    }
    close(sv[1]);
    qmp_client *c = NULL;
    es_err e = {0};
    qmp_client_opts o = {.timeout_ms = 5000};
    ck_assert_msg(qmp_client_open_fd(&c, sv[0], "old.sock", &o, &e) == 0, "%s", QT_ERRSTR(e));
    qmp_block_exports x;
    bool known = true;
    ck_assert_msg(qmp_block_exports_query(c, &x, &known, &e) == 0, "%s", QT_ERRSTR(e));
    ck_assert(!known);
    ck_assert_uint_eq(x.n, 0);
    qmp_client_close(c);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}
END_TEST

START_TEST(real_qemu)
{
    if (!qt_have_qemu())
        return;
    char dir[QT_PATH_MAX], a[QT_PATH_MAX], b[QT_PATH_MAX], nbd[QT_PATH_MAX];
    char arg_a[QT_PATH_MAX + 64], arg_b[QT_PATH_MAX + 64], args[QT_PATH_MAX + 128];
    qt_tmpdir(dir, sizeof dir);
    qt_path(a, sizeof a, dir, "a.qcow2");
    qt_path(b, sizeof b, dir, "b.qcow2");
    qt_path(nbd, sizeof nbd, dir, "nbd.sock");
    qt_img_create(a, "1M", NULL);
    qt_img_create(b, "1M", NULL);
    snprintf(arg_a, sizeof arg_a, "driver=qcow2,node-name=a,file.driver=file,file.filename=%s", a);
    snprintf(arg_b, sizeof arg_b, "driver=qcow2,node-name=b,file.driver=file,file.filename=%s", b);
    const char *extra[] = {"-blockdev", arg_a, "-blockdev", arg_b, NULL};
    qt_qemu q;
    qt_qemu_start(&q, dir, extra);
    qmp_client *c = qt_connect(&q);
    snprintf(args, sizeof args, "{\"addr\": {\"type\": \"unix\", \"data\": {\"path\": \"%s\"}}}",
             nbd);
    json_object_put(qt_exec(c, "nbd-server-start", args));
    json_object_put(qt_exec(c, "block-export-add",
                            "{\"type\": \"nbd\", \"id\": \"w\", \"node-name\": \"a\", "
                            "\"writable\": true}"));
    json_object_put(qt_exec(c, "block-export-add",
                            "{\"type\": \"nbd\", \"id\": \"r\", \"node-name\": \"b\", "
                            "\"writable\": false}"));
    qmp_block_exports x;
    bool known = false;
    es_err e = {0};
    ck_assert_msg(qmp_block_exports_query(c, &x, &known, &e) == 0, "%s", QT_ERRSTR(e));
    ck_assert(known);
    ck_assert_uint_eq(x.n, 2);
    for (size_t i = 0; i < x.n; i++) {
        bool w = strcmp(x.v[i].id, "w") == 0;
        ck_assert_str_eq(x.v[i].node_name, w ? "a" : "b");
        ck_assert_str_eq(x.v[i].type, "nbd");
        ck_assert_msg(x.v[i].may_write == w, "export %s: may_write %d", x.v[i].id,
                      x.v[i].may_write);
    }
    qmp_block_exports_free(&x);
    qmp_client_close(c);
    qt_qemu_stop(&q);
    qt_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("qmp_export");
    TCase *tc = tcase_create("exports");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, reply_parsed);
    tcase_add_test(tc, malformed_refused);
    tcase_add_test(tc, writability_from_graph);
    tcase_add_test(tc, without_the_command);
    tcase_add_test(tc, real_qemu);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return tu_exit_status(failed);
}
