/* snap/online_socket + domxml/qemu_cmdline: finding a domain's QMP socket
 * in <qemu:commandline>, and libvirt's own monitor socket. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "domxml/domain.h"
#include "domxml/qemu_cmdline.h"
#include "online/online_socket.h"
#include "tu_skip.h"

/* Run the parser on a NULL-terminated list; returns the path or NULL. */
static char *parse(const char *const *argv, char **origin, char **unusable)
{
    size_t n = 0;
    while (argv[n])
        n++;
    char *path = NULL;
    es_err e = {0};
    int rc = snap_qmp_socket_from_args((char *const *)argv, n, &path, origin, unusable, &e);
    ck_assert_msg(rc == 0, "%s", e.msg);
    return path;
}

static void expect_path(const char *const *argv, const char *want)
{
    char *origin = NULL, *unusable = NULL;
    char *path = parse(argv, &origin, &unusable);
    ck_assert_msg(path && strcmp(path, want) == 0, "got %s (unusable: %s), want %s",
                  path ? path : "(none)", unusable ? unusable : "-", want);
    ck_assert_ptr_nonnull(origin);
    ck_assert_msg(strstr(origin, "<qemu:commandline>"), "%s", origin);
    ck_assert_ptr_null(unusable);
    free(path);
    free(origin);
}

static void expect_unusable(const char *const *argv, const char *needle)
{
    char *origin = NULL, *unusable = NULL;
    char *path = parse(argv, &origin, &unusable);
    ck_assert_msg(!path, "unexpected path %s", path);
    if (needle) {
        ck_assert_msg(unusable && strstr(unusable, needle), "reason [%s] lacks [%s]",
                      unusable ? unusable : "(none)", needle);
    } else {
        ck_assert_msg(!unusable, "unexpected reason %s", unusable);
    }
    free(unusable);
    free(origin);
}

START_TEST(qmp_option_forms)
{
    expect_path((const char *[]){"-qmp", "unix:/run/vm.qmp,server=on,wait=off", NULL},
                "/run/vm.qmp");
    expect_path((const char *[]){"--qmp", "unix:/run/vm.qmp,server,nowait", NULL}, "/run/vm.qmp");
    expect_path((const char *[]){"-qmp-pretty", "unix:/run/p.qmp,server=yes", NULL},
                "/run/p.qmp");
    /* ",," is a literal comma in QEMU's option syntax. */
    expect_path((const char *[]){"-qmp", "unix:/run/a,,b.qmp,server=on", NULL}, "/run/a,b.qmp");
    /* The last value of a key wins. */
    expect_path((const char *[]){"-qmp", "unix:/run/x.qmp,server=off,server=on", NULL},
                "/run/x.qmp");
    /* Other arguments around it are skipped. */
    expect_path((const char *[]){"-global", "x=y", "-qmp", "unix:/q,server=on", "-S", NULL},
                "/q");
}
END_TEST

START_TEST(chardev_and_mon)
{
    expect_path((const char *[]){"-chardev", "socket,id=qmp0,path=/run/c.sock,server=on,wait=off",
                                 "-mon", "chardev=qmp0,mode=control", NULL},
                "/run/c.sock");
    /* Monitor before its chardev; implied "chardev" key in -mon. */
    expect_path((const char *[]){"-mon", "qmp0,mode=control,pretty=on", "-chardev",
                                 "socket,path=/run/d.sock,id=qmp0,server=on", NULL},
                "/run/d.sock");
    /* -qmp chardev:ID */
    expect_path((const char *[]){"-chardev", "socket,id=m,path=/run/e.sock,server=on", "-qmp",
                                 "chardev:m", NULL},
                "/run/e.sock");
    /* An HMP monitor (mode readline, the default) is no candidate. */
    expect_unusable((const char *[]){"-chardev", "socket,id=h,path=/run/h.sock,server=on",
                                     "-mon", "chardev=h", NULL},
                    NULL);
    /* The first usable one wins; an HMP one before it is ignored. */
    expect_path((const char *[]){"-chardev", "socket,id=h,path=/run/h.sock,server=on", "-mon",
                                 "chardev=h,mode=readline", "-chardev",
                                 "socket,id=q,path=/run/q.sock,server=on", "-mon",
                                 "chardev=q,mode=control", NULL},
                "/run/q.sock");
}
END_TEST

START_TEST(unusable_sockets)
{
    expect_unusable((const char *[]){"-qmp", "tcp:127.0.0.1:4444,server=on", NULL},
                    "not a UNIX socket");
    expect_unusable((const char *[]){"-qmp", "unix:/run/c.sock", NULL}, "no server=on");
    expect_unusable((const char *[]){"-qmp", "unix:rel.sock,server=on", NULL}, "relative path");
    expect_unusable((const char *[]){"-mon", "chardev=nope,mode=control", NULL},
                    "which no -chardev defines");
    expect_unusable((const char *[]){"-chardev", "pty,id=p", "-mon", "chardev=p,mode=control",
                                     NULL},
                    "not a socket chardev");
    expect_unusable((const char *[]){"-chardev", "socket,id=t,host=localhost,port=4,server=on",
                                     "-mon", "chardev=t,mode=control", NULL},
                    "not a UNIX socket");
    /* Nothing QMP at all: no reason either. */
    expect_unusable((const char *[]){"-S", "-no-shutdown", NULL}, NULL);
    /* A trailing option without its value is not read past the end. */
    expect_unusable((const char *[]){"-qmp", NULL}, NULL);
}
END_TEST

static const char dom_head[] = "<domain type='qemu' xmlns:qemu='" DOMXML_QEMU_NS "'>\n"
                               "  <name>vm1</name>\n"
                               "  <devices/>\n";

static domxml_domain *domain_with(const char *tail)
{
    char text[4096];
    snprintf(text, sizeof text, "%s%s</domain>\n", dom_head, tail);
    domxml_domain *d = NULL;
    es_err e = {0};
    ck_assert_msg(domxml_domain_parse(text, strlen(text), "test.xml", &d, &e) == 0, "%s", e.msg);
    return d;
}

START_TEST(commandline_args)
{
    /* Two <qemu:commandline> elements are concatenated, a foreign element and
     * an arg in another namespace are ignored, entities are decoded. */
    domxml_domain *d = domain_with("  <qemu:commandline>\n"
                                   "    <qemu:arg value='-qmp'/>\n"
                                   "    <arg value='ignored'/>\n"
                                   "  </qemu:commandline>\n"
                                   "  <q2:commandline xmlns:q2='" DOMXML_QEMU_NS "'>\n"
                                   "    <q2:arg value='unix:/run/a&amp;b,server=on'/>\n"
                                   "    <q2:env name='X' value='1'/>\n"
                                   "  </q2:commandline>\n");
    char **args = NULL;
    size_t n = 0;
    es_err e = {0};
    ck_assert_int_eq(domxml_qemu_cmdline_args(d->text, d->len, d->origin, &args, &n, &e), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(args[0], "-qmp");
    ck_assert_str_eq(args[1], "unix:/run/a&b,server=on");
    ck_assert_ptr_null(args[2]);
    domxml_qemu_args_free(args);

    snap_qmp_socket s;
    ck_assert_int_eq(snap_qmp_socket_find(d, NULL, NULL, "/nonexistent-run", &s, &e), 0);
    ck_assert_str_eq(s.path, "/run/a&b");
    snap_qmp_socket_clear(&s);
    /* --qmp wins over the config. */
    ck_assert_int_eq(snap_qmp_socket_find(d, "/x.sock", NULL, NULL, &s, &e), 0);
    ck_assert_str_eq(s.path, "/x.sock");
    ck_assert_str_eq(s.origin, "--qmp");
    snap_qmp_socket_clear(&s);
    domxml_domain_free(d);

    /* No passthrough at all: an empty list. */
    d = domain_with("");
    ck_assert_int_eq(domxml_qemu_cmdline_args(d->text, d->len, d->origin, &args, &n, &e), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(args[0]);
    domxml_qemu_args_free(args);
    domxml_domain_free(d);

    /* <qemu:arg> without value: libvirt rejects it, so do we. */
    d = domain_with("  <qemu:commandline><qemu:arg/></qemu:commandline>\n");
    ck_assert_int_eq(domxml_qemu_cmdline_args(d->text, d->len, d->origin, &args, &n, &e), -1);
    ck_assert_msg(strstr(e.msg, "without value") && strstr(e.msg, "line 4"), "%s", e.msg);
    domxml_domain_free(d);
}
END_TEST

static void make_socket(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    ck_assert_uint_lt(strlen(path), sizeof sa.sun_path);
    strcpy(sa.sun_path, path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
}

START_TEST(libvirt_monitor_and_messages)
{
    /* The longest socket name below is $ES_TEST_TMP + 62 bytes: under a deep
     * $ES_TEST_TMP it would not fit in sun_path, so /tmp then. */
    const char *base = getenv("ES_TEST_TMP");
    if (!base || !*base || strlen(base) + 62 >= sizeof((struct sockaddr_un *)0)->sun_path)
        base = "/tmp";
    mkdir(base, 0755);
    char root[PATH_MAX], p[PATH_MAX + 128];
    snprintf(root, sizeof root, "%s/onlsockXXXXXX", base);
    ck_assert_ptr_nonnull(mkdtemp(root));
    const char *dirs[] = {"/var",
                          "/var/lib",
                          "/var/lib/libvirt",
                          "/var/lib/libvirt/qemu",
                          "/var/lib/libvirt/qemu/domain-7-vm1",
                          "/var/lib/libvirt/qemu/domain-8-vm10",
                          "/run",
                          NULL};
    for (size_t i = 0; dirs[i]; i++) {
        snprintf(p, sizeof p, "%s%s", root, dirs[i]);
        ck_assert_int_eq(mkdir(p, 0755), 0);
    }
    /* domain-8-vm10 belongs to another domain: not taken for vm1's. */
    snprintf(p, sizeof p, "%s/var/lib/libvirt/qemu/domain-8-vm10/monitor.sock", root);
    make_socket(p);

    domxml_domain *d = domain_with("");
    snap_qmp_socket s;
    es_err e = {0};
    ck_assert_int_eq(snap_qmp_socket_find(d, NULL, root, "/run", &s, &e), 0);
    ck_assert_ptr_null(s.path);
    ck_assert_ptr_null(s.libvirt_monitor);
    ck_assert_int_eq(snap_qmp_socket_missing(&s, "vm1", "pid 42 (qemu-system-x86)", &e), -1);
    ck_assert_msg(strstr(e.msg, "domain vm1 is running (pid 42 (qemu-system-x86))") &&
                      strstr(e.msg, "no QMP socket") && strstr(e.msg, "-qmp unix:PATH"),
                  "%s", e.msg);
    snap_qmp_socket_clear(&s);

    snprintf(p, sizeof p, "%s/var/lib/libvirt/qemu/domain-7-vm1/monitor.sock", root);
    make_socket(p);
    ck_assert_int_eq(snap_qmp_socket_find(d, NULL, root, "/run", &s, &e), 0);
    ck_assert_ptr_null(s.path);
    ck_assert_str_eq(s.libvirt_monitor, p);
    ck_assert_int_eq(snap_qmp_socket_missing(&s, "vm1", NULL, &e), -1);
    ck_assert_msg(strstr(e.msg, "libvirt's monitor, which libvirtd holds"), "%s", e.msg);
    ck_assert_str_eq(e.path, p);
    snap_qmp_socket_clear(&s);
    domxml_domain_free(d);

    /* A config socket is resolved under root. */
    d = domain_with("  <qemu:commandline><qemu:arg value='-qmp'/>"
                    "<qemu:arg value='unix:/run/vm1.qmp,server=on,wait=off'/>"
                    "</qemu:commandline>\n");
    ck_assert_int_eq(snap_qmp_socket_find(d, NULL, root, "/run", &s, &e), 0);
    snprintf(p, sizeof p, "%s/run/vm1.qmp", root);
    ck_assert_str_eq(s.path, p);
    snap_qmp_socket_clear(&s);
    domxml_domain_free(d);

    /* Unusable options: the reason is in the message. */
    d = domain_with("  <qemu:commandline><qemu:arg value='-qmp'/>"
                    "<qemu:arg value='tcp:localhost:4444,server=on'/>"
                    "</qemu:commandline>\n");
    ck_assert_int_eq(snap_qmp_socket_find(d, NULL, root, "/run", &s, &e), 0);
    ck_assert_ptr_null(s.path);
    ck_assert_int_eq(snap_qmp_socket_missing(&s, "vm1", NULL, &e), -1);
    ck_assert_msg(strstr(e.msg, "not usable: -qmp tcp:localhost:4444"), "%s", e.msg);
    snap_qmp_socket_clear(&s);
    domxml_domain_free(d);

    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("online_socket");
    TCase *tc = tcase_create("socket");
    tcase_add_test(tc, qmp_option_forms);
    tcase_add_test(tc, chardev_and_mon);
    tcase_add_test(tc, unusable_sockets);
    tcase_add_test(tc, commandline_args);
    tcase_add_test(tc, libvirt_monitor_and_messages);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return tu_exit_status(failed);
}
