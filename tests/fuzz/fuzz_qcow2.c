/* libFuzzer harness for the qcow2 engine (not part of the test suite; see
 * README.md): the input is one image file. It is opened read-only (no
 * backing chain: a fuzzed backing name must not reach the real file
 * system), every reader runs over it (block status over the whole disk,
 * guest reads of what is mapped, info with the snapshot table and bitmap
 * directory, the read-only check), and each call must return 0 or -1 with
 * a message. The sanitizers report the rest. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qcow2/check.h"
#include "qcow2/image.h"
#include "qcow2/info.h"

#define MAX_CALLS 4096
#define MAX_READ (4u << 20)
#define CHUNK (64u << 10)

static void expect(int r, const es_err *e, const char *what)
{
    if (r == 0)
        return;
    if (r != -1 || !e->msg[0]) {
        fprintf(stderr, "%s returned %d with message '%s'\n", what, r, e->msg);
        abort();
    }
}

static void walk(es_image *img, uint8_t *buf)
{
    uint64_t off = 0, vs = img->virtual_size, read = 0;
    for (int calls = 0; off < vs && calls < MAX_CALLS; calls++) {
        es_block_status bs;
        es_err e = {0};
        int r = es_image_block_status(img, off, vs - off, &bs, &e);
        expect(r, &e, "es_image_block_status");
        if (r < 0)
            return;
        if (bs.len == 0 || bs.len > vs - off) {
            fprintf(stderr, "block status at 0x%llx: length %llu\n", (unsigned long long)off,
                    (unsigned long long)bs.len);
            abort();
        }
        if (bs.kind != ES_BS_UNALLOC && read < MAX_READ) {
            uint64_t n = bs.len < CHUNK ? bs.len : CHUNK;
            es_err re = {0};
            expect(es_image_read(img, buf, n, off, &re), &re, "es_image_read");
            read += n;
        }
        off += bs.len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *buf;
    static FILE *devnull;
    if (!buf) {
        buf = malloc(CHUNK);
        devnull = fopen("/dev/null", "w");
        if (!buf || !devnull)
            abort();
    }
    /* The image lives in memory; the engine opens it by path. */
    int fd = memfd_create("image", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    if (size && write(fd, data, size) != (ssize_t)size)
        abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);

    es_image *img = NULL;
    es_err e = {0};
    es_open_opts o = {.no_backing = true};
    int r = es_image_open(&img, path, &o, &e);
    expect(r, &e, "es_image_open");
    if (r == 0) {
        walk(img, buf);
        es_image_info info;
        es_err ie = {0};
        int ir = es_image_info_gather(img, &info, &ie);
        expect(ir, &ie, "es_image_info_gather");
        if (ir == 0)
            es_image_info_free(&info);
        es_image_close(img);
    }
    qcow2_check_result res;
    es_err ce = {0};
    expect(qcow2_check_pass(path, 0, devnull, &res, &ce), &ce, "qcow2_check_pass");
    close(fd);
    return 0;
}
