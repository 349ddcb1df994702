/* extsnap img compare: do two image chains show the guest the same
 * content? Non-strict, like `qemu-img compare` (7.2): unallocated reads as
 * zeroes, and a size difference is fine when the larger image's extra tail
 * reads as zeroes. */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/busy_hint.h"
#include "cmd/cmd.h"
#include "cmd/img_root.h"
#include "cmd/progress_opt.h"
#include "qcow2/image.h"
#include "qcow2/map_status.h"
#include "qcow2/prefetch.h"

#define COMPARE_EXIT_DIFFER 1
#define COMPARE_EXIT_ERROR 2
/* Not qemu-img's 1, which here means "images differ": a usage error is an
 * error, never a finding. */
#define COMPARE_EXIT_USAGE COMPARE_EXIT_ERROR
#define COMPARE_BUF (1u << 20) /* read this much from each side at a time */
#define SECTOR 512u            /* qemu-img reports mismatches per 512-byte sector */
#define PREFETCH_AHEAD (32u << 20) /* guest bytes read ahead of the comparison */
#define PREFETCH_STEP (8u << 20)   /* ... asked for this much at a time */

static int run(int argc, char **argv);

typedef struct compare_opts {
    const char *format[2];
    bool force_share, quiet;
    int progress;
    const char *root;
} compare_opts;

static const es_opt compare_table[] = {
    {.letter = 'f', .kind = ES_OPT_STRING, .arg = "FMT", .offset = offsetof(compare_opts, format),
     .help = "format of IMAGE1: qcow2 or raw (default: probe)"},
    {.letter = 'F', .kind = ES_OPT_STRING, .arg = "FMT",
     .offset = offsetof(compare_opts, format) + sizeof(const char *), .help = "format of IMAGE2"},
    {.name = "force-share", .letter = 'U', .kind = ES_OPT_FLAG,
     .offset = offsetof(compare_opts, force_share),
     .help = "read even if another process holds the images"},
    {.name = "quiet", .letter = 'q', .kind = ES_OPT_FLAG, .offset = offsetof(compare_opts, quiet),
     .help = "print nothing on stdout; use the exit status"},
    ES_PROGRESS_OPT(compare_opts, progress, NULL),
    ES_IMG_ROOT_OPT(compare_opts, root),
    ES_OPT_END,
};

const es_cmd es_cmd_img_compare = {
    .name = "img compare",
    .summary = "compare the guest content of two image chains (like qemu-img compare)",
    .run = run,
    .synopsis = "[OPTIONS] IMAGE1 IMAGE2",
    .description =
        "Compare what a guest would read from IMAGE1 and IMAGE2, each through its\n"
        "backing chain. Prints \"Images are identical.\" or \"Content mismatch at\n"
        "offset N!\" (N is the first differing 512-byte sector, as qemu-img reports it).\n",
    .details =
        "Unallocated ranges read as zeroes; images of different sizes are identical\n"
        "when the larger one's extra part reads as zeroes (a warning is printed).\n"
        "Ranges both chains report as zeroes, or map to the same bytes of the same\n"
        "file (a shared backing file), are skipped unread.\n",
    .exit_status = "0 identical, 1 different, 2 error (open, metadata, read) or usage error.",
    .opts = compare_table,
    .parse = ES_PARSE_IN_ORDER,
    .usage_status = COMPARE_EXIT_USAGE,
    .operands = ES_OPERANDS_IMAGE,
};

typedef struct compare_ctx {
    const es_cmd *cmd;
    es_image *img[2];
    uint8_t *buf[2];
    uint64_t ahead[2]; /* guest offset each image is prefetched up to */
    bool quiet;
    es_progress_meter meter; /* phase "compare" of IMAGE1: guest bytes compared */
    const char *name;        /* IMAGE1 as given */
    uint64_t size;           /* the larger virtual size */
} compare_ctx;

static void report(compare_ctx *c, uint64_t done)
{
    es_progress p = {"compare", c->name, NULL, done, c->size};
    es_progress_meter_update(&c->meter, &p);
}

static int fail(compare_ctx *c, const es_err *err)
{
    es_progress_meter_end(&c->meter);
    fflush(stdout);
    es_cmd_error(c->cmd->name, err);
    return COMPARE_EXIT_ERROR;
}

static void mismatch(compare_ctx *c, uint64_t off)
{
    es_progress_meter_end(&c->meter);
    if (!c->quiet)
        printf("Content mismatch at offset %llu!\n", (unsigned long long)off);
}

/* Offset of the first sector (counted from buffer start) where a and b differ, or len. */
static uint64_t first_diff_sector(const uint8_t *a, const uint8_t *b, uint64_t len)
{
    for (uint64_t i = 0; i < len; i += SECTOR) {
        uint64_t n = len - i < SECTOR ? len - i : SECTOR;
        if (memcmp(a + i, b + i, (size_t)n) != 0)
            return i;
    }
    return len;
}

/* Keep image i read ahead to PREFETCH_AHEAD past off (cold caches: the
 * clusters of a committed image are scattered). */
static void prefetch(compare_ctx *c, int i, uint64_t off)
{
    if (c->ahead[i] < off)
        c->ahead[i] = off;
    if (c->ahead[i] >= off + PREFETCH_AHEAD - PREFETCH_STEP || c->ahead[i] >= c->img[i]->virtual_size)
        return;
    uint64_t to = off + PREFETCH_AHEAD;
    es_image_prefetch(c->img[i], c->ahead[i], to - c->ahead[i]);
    c->ahead[i] = to;
}

/* Read [off, off+len) (len <= COMPARE_BUF) from both chains and compare. */
static int compare_range(compare_ctx *c, uint64_t off, uint64_t len)
{
    es_err err;
    for (int i = 0; i < 2; i++)
        prefetch(c, i, off);
    for (int i = 0; i < 2; i++)
        if (es_image_read(c->img[i], c->buf[i], len, off, &err) < 0)
            return fail(c, &err);
    uint64_t d = first_diff_sector(c->buf[0], c->buf[1], len);
    if (d < len) {
        mismatch(c, off + d);
        return COMPARE_EXIT_DIFFER;
    }
    return 0;
}

/* Both chains map the range to the same bytes of the same file (sibling
 * overlays over one backing): equal without reading. */
static bool same_host_bytes(const es_map_status *a, const es_map_status *b)
{
    return a->has_offset && b->has_offset && a->data == b->data && a->zero == b->zero &&
           a->offset == b->offset && a->layer->st_dev == b->layer->st_dev &&
           a->layer->st_ino == b->layer->st_ino;
}

/* Compare the part both images have. Runs that read as zeroes on both sides,
 * or come from the same file bytes, are skipped; the rest is gathered into
 * reads of up to COMPARE_BUF. */
static int compare_common(compare_ctx *c, uint64_t size)
{
    uint64_t pend_start = 0, pend_len = 0, off = 0;
    es_err err;
    while (off < size || pend_len) {
        bool both_zero = true;
        uint64_t n = 0;
        if (off < size) {
            es_map_status s1, s2;
            if (es_map_status_get(c->img[0], off, size - off, &s1, &err) < 0 ||
                es_map_status_get(c->img[1], off, s1.len, &s2, &err) < 0)
                return fail(c, &err);
            n = s2.len < s1.len ? s2.len : s1.len;
            both_zero = (s1.zero && s2.zero) || same_host_bytes(&s1, &s2);
        }
        if (!both_zero) {
            if (!pend_len)
                pend_start = off;
            pend_len += n;
        }
        off += n;
        /* Flush full buffers, and everything before a skipped run or at the end. */
        while (pend_len >= COMPARE_BUF || (pend_len && (both_zero || off >= size))) {
            uint64_t chunk = pend_len < COMPARE_BUF ? pend_len : COMPARE_BUF;
            int r = compare_range(c, pend_start, chunk);
            if (r)
                return r;
            pend_start += chunk;
            pend_len -= chunk;
        }
        report(c, pend_len ? pend_start : off);
    }
    return 0;
}

/* The larger image's tail must read as zeroes. */
static int check_tail(compare_ctx *c, int which, uint64_t from, uint64_t to)
{
    es_image *img = c->img[which];
    es_err err;
    uint64_t off = from;
    while (off < to) {
        es_map_status st;
        if (es_map_status_get(img, off, to - off, &st, &err) < 0)
            return fail(c, &err);
        if (st.zero) {
            off += st.len;
            continue;
        }
        uint64_t end = off + st.len;
        while (off < end) {
            uint64_t chunk = end - off < COMPARE_BUF ? end - off : COMPARE_BUF;
            prefetch(c, which, off);
            if (es_image_read(img, c->buf[0], chunk, off, &err) < 0)
                return fail(c, &err);
            memset(c->buf[1], 0, (size_t)chunk);
            uint64_t d = first_diff_sector(c->buf[0], c->buf[1], chunk);
            if (d < chunk) {
                mismatch(c, off + d);
                return COMPARE_EXIT_DIFFER;
            }
            off += chunk;
            report(c, off);
        }
        report(c, off);
    }
    return 0;
}

static int compare(compare_ctx *c)
{
    uint64_t s0 = c->img[0]->virtual_size, s1 = c->img[1]->virtual_size;
    uint64_t common = s0 < s1 ? s0 : s1;
    c->size = s0 > s1 ? s0 : s1;
    report(c, 0);
    int r = compare_common(c, common);
    if (r)
        return r;
    if (s0 != s1) {
        if (!c->quiet)
            printf("Warning: Image size mismatch!\n");
        r = check_tail(c, s0 > s1 ? 0 : 1, common, s0 > s1 ? s0 : s1);
        if (r)
            return r;
    }
    report(c, c->size);
    es_progress_meter_end(&c->meter);
    if (!c->quiet)
        printf("Images are identical.\n");
    return ES_EXIT_OK;
}

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_img_compare;
    compare_opts co = {0};
    int r = es_opt_parse(cmd, argc, argv, &co);
    if (r >= 0)
        return r;
    es_open_opts opts[2] = {{0}, {0}};
    for (int i = 0; i < 2; i++)
        opts[i] = (es_open_opts){.format = co.format[i], .force_share = co.force_share,
                                 .root = co.root};
    compare_ctx c = {.cmd = cmd, .quiet = co.quiet};
    if (argc - optind != 2) {
        es_cmd_usage_error(cmd, "expected IMAGE1 and IMAGE2");
        return COMPARE_EXIT_USAGE;
    }
    int rc = es_img_root_check(cmd, opts[0].root, COMPARE_EXIT_ERROR);
    if (rc >= 0)
        return rc == ES_EXIT_USAGE ? COMPARE_EXIT_USAGE : rc;
    es_progress_meter_init(&c.meter, es_progress_opt_mode(co.progress, c.quiet), stderr);
    c.name = argv[optind];

    es_err err;
    rc = COMPARE_EXIT_ERROR;
    for (int i = 0; i < 2; i++) {
        char *name = NULL;
        if (es_img_root_name(opts[i].root, argv[optind + i], &name, &err) < 0 ||
            es_image_open(&c.img[i], name, &opts[i], &err) < 0) {
            es_img_root_fix_err(&err, opts[i].root, NULL, name ? name : argv[optind + i]);
            es_busy_hint(&err, ES_HINT_FORCE_SHARE);
            free(name);
            fail(&c, &err);
            goto out;
        }
        free(name);
    }
    c.buf[0] = es_io_alloc(COMPARE_BUF);
    c.buf[1] = es_io_alloc(COMPARE_BUF);
    rc = compare(&c);
out:
    free(c.buf[0]);
    free(c.buf[1]);
    es_image_close(c.img[0]);
    es_image_close(c.img[1]);
    return rc;
}
