/* extsnap img map: where the guest's data lives, through the whole chain,
 * printed the way `qemu-img map` (7.2) prints it. */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/busy_hint.h"
#include "cmd/cmd.h"
#include "cmd/img_root.h"
#include "qcow2/image.h"
#include "qcow2/map_status.h"

static int run(int argc, char **argv);

typedef struct map_opts {
    es_open_opts open;
    int json;
    unsigned long long start, max_len;
} map_opts;

static const es_opt map_table[] = {
    ES_OUTPUT_OPT(map_opts, json, "invalid --output '%s' (human or json)"),
    {.name = "format", .letter = 'f', .kind = ES_OPT_STRING, .arg = "FMT",
     .offset = offsetof(map_opts, open.format),
     .help = "format of IMAGE: qcow2 or raw (default: probe)"},
    {.name = "force-share", .letter = 'U', .kind = ES_OPT_FLAG,
     .offset = offsetof(map_opts, open.force_share),
     .help = "read even if another process holds the image"},
    {.name = "start-offset", .kind = ES_OPT_SIZE, .arg = "N", .offset = offsetof(map_opts, start),
     .help = "start at guest offset N (size suffixes K, M, G ...)"},
    {.name = "max-length", .kind = ES_OPT_SIZE, .arg = "N", .offset = offsetof(map_opts, max_len),
     .help = "map at most N bytes"},
    ES_IMG_ROOT_OPT(map_opts, open.root),
    ES_OPT_END,
};

const es_cmd es_cmd_img_map = {
    .name = "img map",
    .summary = "show where the guest data of an image chain is mapped (like qemu-img map)",
    .run = run,
    .synopsis = "[OPTIONS] IMAGE",
    .description =
        "Print the extents of IMAGE's guest view, walking its backing chain, in the\n"
        "format of `qemu-img map`.\n",
    .details =
        "JSON fields per extent: start, length, depth (0 = IMAGE, 1 = its backing\n"
        "...), present (allocated in the image at depth), zero, data, offset (host\n"
        "offset in that image, when it maps to one). Adjacent extents with equal\n"
        "fields (and contiguous offsets) are merged. Human output lists only data\n"
        "extents: Offset, Length, Mapped to, File; it fails on compressed clusters,\n"
        "which have no host offset of their own.\n",
    .exit_status = "0 success, 1 error or usage error.",
    .opts = map_table,
    .parse = ES_PARSE_IN_ORDER,
    .operands = ES_OPERANDS_IMAGE,
};

typedef struct map_entry {
    uint64_t start, length;
    int depth;
    bool present, zero, data, has_offset;
    uint64_t offset;
    const char *filename;
} map_entry;

/* qemu-img's entry_mergeable(). */
static bool mergeable(const map_entry *curr, const map_entry *next)
{
    if (curr->length == 0)
        return false;
    if (curr->zero != next->zero || curr->data != next->data || curr->depth != next->depth ||
        curr->present != next->present || curr->has_offset != next->has_offset)
        return false;
    if (curr->has_offset && strcmp(curr->filename, next->filename) != 0)
        return false;
    if (curr->has_offset && curr->offset + curr->length != next->offset)
        return false;
    return true;
}

/* qemu-img's dump_map_entry(); returns -1 for the human format's refusal. */
static int dump_entry(bool json, const map_entry *e, map_entry *next)
{
    if (json) {
        printf("{ \"start\": %llu, \"length\": %llu, \"depth\": %d, \"present\": %s, \"zero\": %s, "
               "\"data\": %s",
               (unsigned long long)e->start, (unsigned long long)e->length, e->depth,
               e->present ? "true" : "false", e->zero ? "true" : "false",
               e->data ? "true" : "false");
        if (e->has_offset)
            printf(", \"offset\": %llu", (unsigned long long)e->offset);
        putchar('}');
        if (next)
            puts(",");
        return 0;
    }
    if (e->data && !e->has_offset)
        return -1;
    if (e->data && !e->zero)
        printf("%#-16llx%#-16llx%#-16llx%s\n", (unsigned long long)e->start,
               (unsigned long long)e->length, (unsigned long long)e->offset, e->filename);
    /* The human format ignores the difference between unallocated, zero and
     * zero-with-data: normalise so that such extents merge. */
    if (next && (!next->data || next->zero)) {
        next->data = false;
        next->zero = true;
    }
    return 0;
}

static int map_image(const es_cmd *cmd, es_image *img, bool json, uint64_t start, uint64_t max_len)
{
    uint64_t end = img->virtual_size;
    if (start > end)
        end = start; /* nothing to map; qemu-img prints one empty extent */
    if (max_len < end - start)
        end = start + max_len;
    if (json)
        putchar('[');
    else
        printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");

    map_entry curr = {.start = start, .filename = img->filename};
    while (curr.start + curr.length < end) {
        uint64_t off = curr.start + curr.length;
        es_map_status st;
        es_err err;
        if (es_map_status_get(img, off, end - off, &st, &err) < 0) {
            fflush(stdout);
            es_cmd_error(cmd->name, &err);
            return ES_EXIT_FAIL;
        }
        map_entry next = {off, st.len, st.depth, st.present, st.zero, st.data, st.has_offset,
                          st.offset, st.layer->filename};
        if (mergeable(&curr, &next)) {
            curr.length += next.length;
            continue;
        }
        if (curr.length > 0 && dump_entry(json, &curr, &next) < 0)
            goto compressed;
        curr = next;
    }
    if (dump_entry(json, &curr, NULL) < 0)
        goto compressed;
    if (json)
        puts("]");
    return ES_EXIT_OK;
compressed:
    fflush(stdout);
    es_cmd_errorf(cmd->name,
                  "%s: guest offset 0x%llx is in a compressed cluster (%s), which has no host "
                  "offset to show; use --output=json",
                  img->filename, (unsigned long long)curr.start, curr.filename);
    return ES_EXIT_FAIL;
}

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_img_map;
    map_opts mo = {.max_len = ~0ull};
    int r = es_opt_parse(cmd, argc, argv, &mo);
    if (r >= 0)
        return r;
    es_open_opts opts = mo.open;
    bool json = mo.json == 1;
    unsigned long long start = mo.start, max_len = mo.max_len;
    if (argc - optind != 1)
        return es_cmd_usage_error(cmd, "expected one IMAGE");
    int rc = es_img_root_check(cmd, opts.root, ES_EXIT_FAIL);
    if (rc >= 0)
        return rc;

    es_image *img = NULL;
    es_err err;
    char *name = NULL;
    if (es_img_root_name(opts.root, argv[optind], &name, &err) < 0 ||
        es_image_open(&img, name, &opts, &err) < 0) {
        es_img_root_fix_err(&err, opts.root, NULL, name ? name : argv[optind]);
        es_busy_hint(&err, ES_HINT_FORCE_SHARE);
        es_cmd_error(cmd->name, &err);
        free(name);
        return ES_EXIT_FAIL;
    }
    free(name);
    rc = map_image(cmd, img, json, start, max_len);
    es_image_close(img);
    return rc;
}
