/* Helpers shared by the domxml unit tests (header-only: each test_*.c is
 * its own executable). Fixtures are found relative to this source file, so
 * the tests need no environment; scratch files go under $ES_TEST_TMP. */
#ifndef TEST_DOMXML_UTIL_H
#define TEST_DOMXML_UTIL_H

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "domxml/files.h"
#include "tu_skip.h"
#include "util/err.h"
#include "util/readfile.h"

/* snprintf that fails the test on truncation (and keeps the compiler's
 * truncation analysis out of test code). */
__attribute__((format(printf, 3, 4))) static inline void pathf(char *buf, size_t len,
                                                                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    ck_assert_msg(n >= 0 && (size_t)n < len, "path too long");
}

/* tests/fixtures/domxml/<name>, from this file's path (tests/unit/...). */
static inline char *fixture_path(const char *name)
{
    static char buf[4096];
    const char *here = __FILE__;
    const char *slash = strrchr(here, '/');
    size_t dirlen = slash ? (size_t)(slash - here) : 0;
    if (slash)
        snprintf(buf, sizeof buf, "%.*s/../fixtures/domxml/%s", (int)dirlen, here, name);
    else
        snprintf(buf, sizeof buf, "../fixtures/domxml/%s", name);
    return buf;
}

static inline char *read_all(const char *path, size_t *len)
{
    es_err e = {0};
    char *text = NULL, msg[2048];
    size_t l = 0;
    if (es_read_file(path, DOMXML_FILE_MAX, &text, &l, &e) < 0)
        ck_abort_msg("cannot read %s", es_err_str(&e, msg, sizeof msg));
    if (len)
        *len = l;
    return text;
}

static inline char *read_fixture(const char *name, size_t *len)
{
    return read_all(fixture_path(name), len);
}

static inline void write_all(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static inline void mkdir_p(const char *path)
{
    char buf[8192];
    pathf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    mkdir(buf, 0755);
}

/* A fresh empty directory for one test. */
static inline char *scratch_dir(const char *tag)
{
    static char buf[4096];
    const char *base = getenv("ES_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir_p(base);
    snprintf(buf, sizeof buf, "%s/domxml-%s-XXXXXX", base, tag);
    ck_assert_msg(mkdtemp(buf) != NULL, "mkdtemp %s: %s", buf, strerror(errno));
    return buf;
}

static inline size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static inline const char *err_text(const es_err *e)
{
    static char buf[4096];
    return es_err_str(e, buf, sizeof buf);
}

/* Run virt-xml-validate on a file; 1 = valid, 0 = invalid (its output in
 * out), -1 = no tool (a skip is recorded: the program exits 77). */
static inline int xml_validate(const char *path, const char *type, char *out, size_t outlen)
{
    out[0] = '\0';
    if (!tu_have_tool("virt-xml-validate")) {
        tu_skip_note("virt-xml-validate not installed: schema check of %s not done", path);
        return -1;
    }
    char cmd[8192];
    pathf(cmd, sizeof cmd, "virt-xml-validate '%s' %s 2>&1", path, type);
    FILE *p = popen(cmd, "r");
    if (!p)
        return 0;
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    return pclose(p) == 0 ? 1 : 0;
}

static inline void assert_validates(const char *path, const char *type)
{
    char out[4096];
    int v = xml_validate(path, type, out, sizeof out);
    ck_assert_msg(v != 0, "%s does not pass virt-xml-validate %s: %s", path, type, out);
}

/* Count lines that differ between two texts with the same number of lines;
 * -1 if the line counts differ. */
static inline int differing_lines(const char *a, const char *b)
{
    int diff = 0;
    while (*a || *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        if (!ea || !eb)
            return (ea || eb) ? -1 : diff + (strcmp(a, b) != 0);
        if (ea - a != eb - b || memcmp(a, b, (size_t)(ea - a)) != 0)
            diff++;
        a = ea + 1;
        b = eb + 1;
    }
    return diff;
}

#define RUN_SUITE(make_suite)                                         \
    int main(void)                                                    \
    {                                                                 \
        SRunner *sr = srunner_create(make_suite());                  \
        srunner_run_all(sr, CK_NORMAL);                               \
        int failed = srunner_ntests_failed(sr);                       \
        srunner_free(sr);                                             \
        return tu_exit_status(failed);                                \
    }

#endif
