/* Helpers for qcow2 unit tests that use qemu-img / qemu-io as oracles:
 * a scratch directory per test, shell commands run inside it, whole files
 * read into memory, big-endian patching of image bytes. Header-only so each
 * test executable stays one .c file. */
#ifndef ES_TEST_QCOW2_TEST_UTIL_H
#define ES_TEST_QCOW2_TEST_UTIL_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tu_dir[4096];

/* Create a fresh scratch directory under $ES_TEST_TMP (or /tmp). */
static inline void tu_setup(void)
{
    const char *base = getenv("ES_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", base);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(tu_dir, sizeof tu_dir, "%s/es-qcow2-XXXXXX", base);
    ck_assert_ptr_nonnull(mkdtemp(tu_dir));
}

static inline void tu_teardown(void)
{
    if (!tu_dir[0])
        return;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tu_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tu_dir);
    tu_dir[0] = '\0';
}

/* Run a shell command inside the scratch directory; stdout is discarded,
 * stderr kept for debugging. Returns the exit status. */
static inline int tu_sh_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int tu_sh_status(const char *fmt, ...)
{
    char body[8192], cmd[8192 + sizeof tu_dir + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && { %s\n} >/dev/null", tu_dir, body);
    int r = system(cmd);
    return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

#define tu_sh(...)                                                                                 \
    do {                                                                                           \
        char tu_cmd_[8192];                                                                        \
        snprintf(tu_cmd_, sizeof tu_cmd_, __VA_ARGS__);                                            \
        int tu_rc_ = tu_sh_status("%s", tu_cmd_);                                                  \
        ck_assert_msg(tu_rc_ == 0, "command failed (exit %d): %s", tu_rc_, tu_cmd_);               \
    } while (0)

/* Path of a file in the scratch directory (static buffer, rotates 4). */
static inline const char *tu_path(const char *name)
{
    static char bufs[4][4200];
    static int i;
    char *b = bufs[i++ & 3];
    snprintf(b, sizeof bufs[0], "%s/%s", tu_dir, name);
    return b;
}

/* Read a whole file of the scratch directory (malloc'd). */
static inline uint8_t *tu_slurp(const char *name, size_t *len)
{
    FILE *f = fopen(tu_path(name), "rb");
    ck_assert_msg(f != NULL, "cannot open %s", name);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Run a command in the scratch directory and capture its stdout (malloc'd). */
static inline char *tu_capture(const char *cmdline)
{
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "cd '%s' && %s", tu_dir, cmdline);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    ck_assert_ptr_nonnull(out);
    size_t n;
    while ((n = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            out = realloc(out, cap);
            ck_assert_ptr_nonnull(out);
        }
    }
    out[len] = '\0';
    int rc = pclose(p);
    ck_assert_msg(rc == 0, "command failed: %s", cmdline);
    return out;
}

static inline void tu_pread(const char *name, void *buf, size_t n, uint64_t off)
{
    int fd = open(tu_path(name), O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, buf, n, (off_t)off), (ssize_t)n);
    close(fd);
}

static inline void tu_pwrite(const char *name, const void *buf, size_t n, uint64_t off)
{
    int fd = open(tu_path(name), O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
    close(fd);
}

static inline uint64_t tu_get_be(const char *name, uint64_t off, int bytes)
{
    uint8_t b[8] = {0};
    tu_pread(name, b, (size_t)bytes, off);
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | b[i];
    return v;
}

static inline void tu_put_be(const char *name, uint64_t off, int bytes, uint64_t v)
{
    uint8_t b[8];
    for (int i = bytes - 1; i >= 0; i--) {
        b[i] = (uint8_t)v;
        v >>= 8;
    }
    tu_pwrite(name, b, (size_t)bytes, off);
}

#endif
