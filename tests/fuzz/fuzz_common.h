/* Shared by the libFuzzer harnesses (README.md): the contract every library
 * call must keep (0, or -1 with a message), a private scratch directory for
 * inputs the library reads by path, and the two-part input of the qcow2
 * harnesses. Test code: plain stdio and POSIX calls are fine here. */
#ifndef ES_FUZZ_COMMON_H
#define ES_FUZZ_COMMON_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <stdbool.h>

#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A library call returned r: anything but 0 or -1-with-a-message is a bug. */
static inline void fz_expect(int r, const es_err *e, const char *what)
{
    if (r == 0)
        return;
    if (r != -1 || !e->msg[0]) {
        fprintf(stderr, "%s returned %d with message '%s'\n", what, r, e->msg);
        abort();
    }
}

/* A post-condition of the harness itself. */
#define FZ_ASSERT(cond, ...)                                                                   \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "fuzz: %s:%d: %s: ", __FILE__, __LINE__, #cond);                   \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

static char fz_dir_path[4096];

static inline void fz_dir_remove(void)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir_path);
    if (fz_dir_path[0] && system(cmd) != 0)
        fprintf(stderr, "fuzz: could not remove %s\n", fz_dir_path);
}

/* This process's scratch directory (made on first use, removed at exit). */
static inline const char *fz_dir(void)
{
    if (!fz_dir_path[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fz_dir_path, sizeof fz_dir_path, "%s/es-fuzz-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(fz_dir_path)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fz_dir_remove);
    }
    return fz_dir_path;
}

/* Host path of name in the scratch directory (a static buffer per slot). */
static inline const char *fz_path(int slot, const char *name)
{
    static char buf[4][4200];
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", fz_dir(), name);
    return buf[slot];
}

/* Replace the scratch file name with data[0..len). */
static inline void fz_write(const char *name, const uint8_t *data, size_t len)
{
    const char *p = fz_path(3, name);
    unlink(p);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(p);
        abort();
    }
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n <= 0) {
            perror(p);
            abort();
        }
        data += n;
        len -= (size_t)n;
    }
    close(fd);
}

/* A fingerprint of scratch file name: its size and a CRC of its data
 * extents with their offsets (holes skipped: a repair may grow a file to
 * gigabytes of them). Size UINT64_MAX: no such file. */
typedef struct fz_digest {
    uint64_t size;
    uLong crc;
} fz_digest;

static inline fz_digest fz_file_digest(const char *name)
{
    fz_digest d = {UINT64_MAX, crc32(0L, Z_NULL, 0)};
    int fd = open(fz_path(3, name), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return d;
    off_t end = lseek(fd, 0, SEEK_END);
    d.size = end < 0 ? 0 : (uint64_t)end;
    static uint8_t buf[1 << 16];
    off_t pos = 0;
    while (pos < end) {
        off_t data = lseek(fd, pos, SEEK_DATA);
        if (data < 0)
            break;
        off_t hole = lseek(fd, data, SEEK_HOLE);
        if (hole < 0)
            hole = end;
        uint8_t where[8];
        for (int i = 0; i < 8; i++)
            where[i] = (uint8_t)((uint64_t)data >> (8 * i));
        d.crc = crc32(d.crc, where, 8);
        for (off_t at = data; at < hole;) {
            ssize_t n = pread(fd, buf, (size_t)(hole - at < (off_t)sizeof buf ? hole - at : (off_t)sizeof buf), at);
            if (n <= 0)
                break;
            d.crc = crc32(d.crc, buf, (uInt)n);
            at += n;
        }
        pos = hole;
    }
    close(fd);
    return d;
}

static inline bool fz_digest_eq(fz_digest a, fz_digest b)
{
    return a.size == b.size && a.crc == b.crc;
}

/* The qcow2 harnesses' input: a 4-byte little-endian length N, N bytes of
 * the top image, the rest is its backing image (base.img beside it). */
static inline void fz_split(const uint8_t *data, size_t size, const uint8_t **top, size_t *ntop,
                            const uint8_t **base, size_t *nbase)
{
    size_t n = 0;
    if (size >= 4)
        n = (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 |
            (size_t)data[3] << 24;
    size_t rest = size >= 4 ? size - 4 : 0;
    if (n > rest)
        n = rest;
    *top = data + (size >= 4 ? 4 : size);
    *ntop = n;
    *base = *top + n;
    *nbase = rest - n;
}

#endif
