/* libFuzzer harness, qcow2 read side: the input is a top image and its
 * backing image (fuzz_common.h: fz_split), written as top.img and base.img
 * in a scratch directory that is also the --root, so a fuzzed backing name
 * resolves inside it and never reaches the real file system. The chain is
 * opened, block status walks the whole disk with guest reads of what is
 * mapped (map), info gathers the snapshot table and bitmap directory, and
 * the read-only check runs on both files. Every call returns 0 or -1 with a
 * message; block status never returns an empty or overlong extent. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "qcow2/check.h"
#include "qcow2/image.h"
#include "qcow2/info.h"

#define MAX_CALLS 4096
#define MAX_READ (4u << 20)
#define CHUNK (64u << 10)

static void walk(es_image *img, uint8_t *buf)
{
    uint64_t off = 0, vs = img->virtual_size, read = 0;
    for (int calls = 0; off < vs && calls < MAX_CALLS; calls++) {
        es_block_status bs;
        es_err e = {0};
        int r = es_image_block_status(img, off, vs - off, &bs, &e);
        fz_expect(r, &e, "es_image_block_status");
        if (r < 0)
            return;
        FZ_ASSERT(bs.len > 0 && bs.len <= vs - off, "block status at 0x%llx: length %llu",
                  (unsigned long long)off, (unsigned long long)bs.len);
        if (bs.kind != ES_BS_UNALLOC && read < MAX_READ) {
            uint64_t n = bs.len < CHUNK ? bs.len : CHUNK;
            es_err re = {0};
            fz_expect(es_image_read(img, buf, n, off, &re), &re, "es_image_read");
            read += n;
        }
        off += bs.len;
    }
}

static void check_file(const char *path, FILE *log)
{
    qcow2_check_result res;
    es_err e = {0};
    fz_expect(qcow2_check_pass(path, 0, log, &res, &e), &e, "qcow2_check_pass");
}

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
    const uint8_t *top, *base;
    size_t ntop, nbase;
    fz_split(data, size, &top, &ntop, &base, &nbase);
    fz_write("top.img", top, ntop);
    fz_write("base.img", base, nbase);

    es_image *img = NULL;
    es_err e = {0};
    es_open_opts o = {.root = fz_dir()};
    int r = es_image_open(&img, "/top.img", &o, &e);
    fz_expect(r, &e, "es_image_open");
    if (r == 0) {
        /* The chain as the guest sees it, then each image on its own. */
        for (es_image *i = img; i; i = i->backing) {
            walk(i, buf);
            es_image_info info;
            es_err ie = {0};
            int ir = es_image_info_gather(i, &info, &ie);
            fz_expect(ir, &ie, "es_image_info_gather");
            if (ir == 0)
                es_image_info_free(&info);
        }
        es_image_close(img);
    }
    check_file(fz_path(0, "top.img"), devnull);
    check_file(fz_path(0, "base.img"), devnull);
    return 0;
}
