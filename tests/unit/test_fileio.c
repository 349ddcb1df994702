/* util/fileio: the in-kernel copy (es_file_copy) and its fallback. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dlfcn.h>
#include <stdarg.h>
#include <linux/fs.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "util/fileio.h"
#include "tu_skip.h"

static char dir_a[64], dir_b[64];
static bool b_mounted;

/* copy_file_range as es_file_copy sees it: this definition in the test
 * program takes the place of libc's for the statically linked library, so
 * the test knows whether the kernel copied or refused (and the fallback
 * ran), and can make it refuse (EXDEV, as across file systems). */
static int cfr_calls, cfr_refused, cfr_force_errno;

ssize_t copy_file_range(int fd_in, off_t *off_in, int fd_out, off_t *off_out, size_t len,
                        unsigned flags)
{
    static ssize_t (*real)(int, off_t *, int, off_t *, size_t, unsigned);
    if (!real)
        real = (ssize_t(*)(int, off_t *, int, off_t *, size_t, unsigned))dlsym(RTLD_NEXT,
                                                                            "copy_file_range");
    cfr_calls++;
    if (cfr_force_errno) {
        cfr_refused++;
        errno = cfr_force_errno;
        return -1;
    }
    ssize_t r = real(fd_in, off_in, fd_out, off_out, len, flags);
    if (r < 0)
        cfr_refused++;
    return r;
}

/* FICLONERANGE as es_file_copy sees it, the same way: counted, its
 * arguments kept, refused with clone_force_errno when set (else the real
 * file system answers: ext4 and tmpfs refuse, XFS and btrfs share). */
static int clone_calls, clone_force_errno;
static struct file_clone_range clone_last;

int ioctl(int fd, unsigned long req, ...)
{
    static int (*real)(int, unsigned long, ...);
    if (!real)
        real = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (req == FICLONERANGE) {
        clone_calls++;
        clone_last = *(struct file_clone_range *)arg;
        if (clone_force_errno) {
            errno = clone_force_errno;
            return -1;
        }
    }
    return real(fd, req, arg);
}

static void make_dirs(void)
{
    strcpy(dir_a, "/tmp/es-fileio-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir_a));
    strcpy(dir_b, "/tmp/es-fileio-b-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir_b));
    b_mounted = false;
}

/* dir_b on a file system of its own: a small tmpfs mounted on it. false
 * when this host does not let the test mount one. */
static bool mount_b(void)
{
    if (mount("es-fileio", dir_b, "tmpfs", 0, "size=16m") != 0) {
        fprintf(stderr, "mount tmpfs on %s: %s\n", dir_b, strerror(errno));
        return false;
    }
    b_mounted = true;
    struct stat sa, sb;
    ck_assert_int_eq(stat(dir_a, &sa), 0);
    ck_assert_int_eq(stat(dir_b, &sb), 0);
    ck_assert_msg(sa.st_dev != sb.st_dev, "%s and %s on the same file system", dir_a, dir_b);
    return true;
}

static void remove_dirs(void)
{
    if (b_mounted)
        ck_assert_int_eq(umount(dir_b), 0);
    b_mounted = false;
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", dir_a, dir_b);
    ck_assert_int_eq(system(cmd), 0);
}

static es_file *open_in(const char *dir, const char *name, int flags)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    es_file *f;
    es_err e = {0};
    ck_assert_int_eq(es_file_open(&f, path, flags | O_CREAT, 0600, &e), 0);
    return f;
}

static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + seed + (i >> 12));
    return p;
}

/* Copy 3 MiB at an odd offset from a 2.5 MiB source: the last 0.5 MiB+
 * past the source's end must arrive as zeroes. */
static void copy_and_check(const char *src_dir, const char *dst_dir)
{
    const size_t src_len = (5u << 20) / 2, n = 3u << 20;
    const uint64_t soff = 4096, doff = 65536 * 3;
    uint8_t *src_data = pattern(src_len, 3);
    es_file *s = open_in(src_dir, "src", O_RDWR), *d = open_in(dst_dir, "dst", O_RDWR);
    es_err e = {0};
    ck_assert_int_eq(es_file_pwrite(s, src_data, src_len, 0, &e), 0);
    ck_assert_int_eq(es_file_copy(s, soff, d, doff, n, &e), 0);
    uint8_t *got = malloc(n);
    ck_assert_int_eq(es_file_pread(d, got, n, doff, &e), 0);
    size_t from_src = src_len - soff;
    ck_assert_int_eq(memcmp(got, src_data + soff, from_src), 0);
    /* One assertion, not one per byte: check reports every assertion to
     * its parent through a pipe, and a million of them take seconds. */
    size_t nonzero = from_src;
    while (nonzero < n && got[nonzero] == 0)
        nonzero++;
    ck_assert_msg(nonzero == n, "byte %zu past the source's end is 0x%02x, not zero", nonzero,
                  nonzero < n ? got[nonzero] : 0);
    uint64_t size;
    ck_assert_int_eq(es_file_size(d, &size, &e), 0);
    ck_assert_uint_eq(size, doff + n);
    free(got);
    free(src_data);
    es_file_close(s);
    es_file_close(d);
}

START_TEST(copy_same_fs)
{
    make_dirs();
    copy_and_check(dir_a, dir_a);
    remove_dirs();
}
END_TEST

/* Across two file systems the kernel refuses (EXDEV) and the plain
 * read/write fallback copies, with the same result. */
START_TEST(copy_cross_fs_falls_back)
{
    make_dirs();
    if (!mount_b()) {
        remove_dirs();
        TU_SKIP_IF(true, "cannot mount a tmpfs: no second file system for the cross-fs copy");
    }
    cfr_calls = cfr_refused = 0;
    copy_and_check(dir_b, dir_a);
    ck_assert_msg(cfr_calls >= 1 && cfr_refused >= 1,
                  "tmpfs -> ext4: copy_file_range called %d times, refused %d: the fallback did "
                  "not run",
                  cfr_calls, cfr_refused);
    cfr_calls = cfr_refused = 0;
    copy_and_check(dir_a, dir_b);
    ck_assert_msg(cfr_calls >= 1 && cfr_refused >= 1,
                  "-> tmpfs: copy_file_range called %d times, refused %d: the fallback did not run",
                  cfr_calls, cfr_refused);
    remove_dirs();
}
END_TEST

/* The fallback alone (the kernel refuses every copy, as some file systems
 * do even within themselves) gives the same bytes. */
START_TEST(copy_fallback_when_kernel_refuses)
{
    make_dirs();
    cfr_calls = cfr_refused = 0;
    cfr_force_errno = EOPNOTSUPP;
    copy_and_check(dir_a, dir_a);
    cfr_force_errno = 0;
    ck_assert_int_eq(cfr_calls, 1);
    ck_assert_int_eq(cfr_refused, 1);
    remove_dirs();
}
END_TEST

START_TEST(copy_is_a_fault_point)
{
    make_dirs();
    es_file *s = open_in(dir_a, "src", O_RDWR), *d = open_in(dir_a, "dst", O_RDWR);
    es_err e = {0};
    uint8_t buf[4096] = {1};
    ck_assert_int_eq(es_file_pwrite(s, buf, sizeof buf, 0, &e), 0);
    es_fault_reset();
    ck_assert_int_eq(es_fault_set("write", 1, ES_FAULT_ENOSPC), 0);
    ck_assert_int_eq(es_file_copy(s, 0, d, 0, sizeof buf, &e), -1);
    ck_assert_int_eq(e.errnum, ENOSPC);
    ck_assert_ptr_nonnull(strstr(e.path, "/dst"));
    ck_assert_uint_eq(es_fault_count("read"), 1);
    ck_assert_uint_eq(es_fault_count("mutate"), 1);
    uint64_t size;
    ck_assert_int_eq(es_file_size(d, &size, &e), 0);
    ck_assert_uint_eq(size, 0); /* nothing written */
    es_fault_reset();
    es_file_close(s);
    es_file_close(d);
    remove_dirs();
}
END_TEST

START_TEST(copy_read_error_names_source)
{
    make_dirs();
    es_file *s = open_in(dir_a, "src", O_RDWR), *d = open_in(dir_a, "dst", O_RDWR);
    es_err e = {0};
    es_fault_reset();
    ck_assert_int_eq(es_fault_set("read", 1, ES_FAULT_EIO), 0);
    ck_assert_int_eq(es_file_copy(s, 0, d, 0, 4096, &e), -1);
    ck_assert_int_eq(e.errnum, EIO);
    ck_assert_ptr_nonnull(strstr(e.path, "/src"));
    es_fault_reset();
    es_file_close(s);
    es_file_close(d);
    remove_dirs();
}
END_TEST

/* Sharing is tried for the block-aligned part of an aligned copy, once per
 * destination when the file system says it cannot; the copy falls back. */
static void aligned_copy(es_file *s, es_file *d, uint64_t soff, uint64_t doff, uint64_t n,
                         const uint8_t *data)
{
    es_err e = {0};
    ck_assert_int_eq(es_file_copy(s, soff, d, doff, n, &e), 0);
    uint8_t *got = malloc(n);
    ck_assert_int_eq(es_file_pread(d, got, n, doff, &e), 0);
    ck_assert_int_eq(memcmp(got, data + soff, n), 0);
    free(got);
}

START_TEST(copy_shares_aligned_ranges)
{
    make_dirs();
    const size_t len = 1u << 20;
    uint8_t *data = pattern(len, 9);
    es_file *s = open_in(dir_a, "src", O_RDWR), *d = open_in(dir_a, "dst", O_RDWR);
    es_err e = {0};
    ck_assert_int_eq(es_file_pwrite(s, data, len, 0, &e), 0);
    clone_calls = 0;
    clone_force_errno = EXDEV; /* another mount: tried again next time */
    aligned_copy(s, d, 65536, 131072, 65536 * 3 + 100, data);
    ck_assert_int_eq(clone_calls, 1);
    ck_assert_uint_eq(clone_last.src_offset, 65536);
    ck_assert_uint_eq(clone_last.dest_offset, 131072);
    ck_assert_uint_eq(clone_last.src_length, 65536 * 3); /* the aligned head only */
    aligned_copy(s, d, 0, 0, 65536, data);
    ck_assert_int_eq(clone_calls, 2);
    clone_force_errno = EOPNOTSUPP; /* the file system cannot: never again for d */
    aligned_copy(s, d, 0, 65536, 65536, data);
    aligned_copy(s, d, 65536, 0, 65536, data);
    ck_assert_int_eq(clone_calls, 3);
    clone_force_errno = 0;
    es_file *d2 = open_in(dir_a, "dst2", O_RDWR);
    clone_calls = 0;
    aligned_copy(s, d2, 100, 100, 65536, data); /* unaligned: not tried */
    ck_assert_int_eq(clone_calls, 0);
    es_file_close(d2);
    es_file_close(s);
    es_file_close(d);
    free(data);
    remove_dirs();
}
END_TEST

/* es_file_share never copies: refused, nothing is written. */
START_TEST(share_never_copies)
{
    make_dirs();
    uint8_t *data = pattern(65536, 5);
    es_file *s = open_in(dir_a, "src", O_RDWR), *d = open_in(dir_a, "dst", O_RDWR);
    es_err e = {0};
    ck_assert_int_eq(es_file_pwrite(s, data, 65536, 0, &e), 0);
    clone_calls = 0;
    clone_force_errno = EOPNOTSUPP;
    uint64_t shared = 1, size = 1;
    ck_assert_int_eq(es_file_share(s, 0, d, 0, 65536, &shared, &e), 0);
    clone_force_errno = 0;
    ck_assert_int_eq(clone_calls, 1);
    ck_assert_uint_eq(shared, 0);
    ck_assert_int_eq(es_file_size(d, &size, &e), 0);
    ck_assert_uint_eq(size, 0);
    es_file_close(s);
    es_file_close(d);
    free(data);
    remove_dirs();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fileio");
    TCase *tc = tcase_create("copy");
    tcase_add_test(tc, copy_same_fs);
    tcase_add_test(tc, copy_cross_fs_falls_back);
    tcase_add_test(tc, copy_fallback_when_kernel_refuses);
    tcase_add_test(tc, copy_is_a_fault_point);
    tcase_add_test(tc, copy_read_error_names_source);
    tcase_add_test(tc, copy_shares_aligned_ranges);
    tcase_add_test(tc, share_never_copies);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return tu_exit_status(failed);
}
