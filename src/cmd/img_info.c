/* extsnap img info: what `qemu-img info` shows, with the same JSON names. */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/busy_hint.h"
#include "cmd/cmd.h"
#include "cmd/img_root.h"
#include "cmd/json_out.h"
#include "qcow2/image.h"
#include "qcow2/info.h"
#include "util/xalloc.h"

static int run(int argc, char **argv);

typedef struct info_opts {
    es_open_opts open;
    int json;
    bool chain;
} info_opts;

static const es_opt info_table[] = {
    {.name = "backing-chain", .kind = ES_OPT_FLAG, .offset = offsetof(info_opts, chain),
     .help = "show every image of the chain"},
    ES_OUTPUT_OPT(info_opts, json, "invalid --output '%s' (human or json)"),
    {.name = "format", .letter = 'f', .kind = ES_OPT_STRING, .arg = "FMT",
     .offset = offsetof(info_opts, open.format),
     .help = "format of IMAGE: qcow2 or raw (default: probe)"},
    {.name = "force-share", .letter = 'U', .kind = ES_OPT_FLAG,
     .offset = offsetof(info_opts, open.force_share),
     .help = "read even if another process holds the image"},
    ES_IMG_ROOT_OPT(info_opts, open.root),
    ES_OPT_END,
};

const es_cmd es_cmd_img_info = {
    .name = "img info",
    .summary = "show an image's size, format, backing file and snapshots (like qemu-img info)",
    .run = run,
    .synopsis = "[OPTIONS] IMAGE",
    .description =
        "Show what `qemu-img info` shows about IMAGE, with the same JSON field names:\n"
        "filename, format, virtual-size, actual-size, cluster-size, dirty-flag,\n"
        "backing-filename, full-backing-filename, backing-filename-format, snapshots,\n"
        "format-specific.\n",
    .details =
        "Without --backing-chain only IMAGE itself is opened (as qemu-img does): its\n"
        "backing file may be missing, and full-backing-filename shows where it would\n"
        "be looked for (relative to IMAGE's directory, as given on the command line).\n"
        "With --backing-chain the whole chain is opened and every image is shown,\n"
        "top first (a JSON array with --output=json); a missing backing file, a loop\n"
        "or a protocol backing name (json:, nbd: ...) is an error.\n",
    .exit_status = "0 success, 1 error or usage error.",
    .opts = info_table,
    .parse = ES_PARSE_IN_ORDER,
    .operands = ES_OPERANDS_IMAGE,
};

/* QEMU's size_to_str(): three significant digits, binary units, switching
 * unit once the value reaches 1000 of the smaller one. */
static void human_size(char *buf, size_t len, uint64_t val)
{
    static const char *const suffixes[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    int i = 0;
    double unit = 1.0;
    while (i < 6 && (double)val >= 1000.0 * unit) {
        i++;
        unit *= 1024.0;
    }
    snprintf(buf, len, "%0.3g %sB", (double)val / unit, suffixes[i]);
}

static json_object *snapshot_json(const qcow2_snapshot *sn)
{
    json_object *o = es_json_new_object();
    if (sn->icount != QCOW2_SNAPSHOT_ICOUNT_NONE)
        es_json_add_u64(o, "icount", sn->icount);
    es_json_add_u64(o, "vm-clock-nsec", sn->vm_clock_nsec % 1000000000ull);
    es_json_add_str(o, "name", sn->name);
    es_json_add_u64(o, "date-sec", sn->date_sec);
    es_json_add_u64(o, "date-nsec", sn->date_nsec);
    es_json_add_u64(o, "vm-clock-sec", sn->vm_clock_nsec / 1000000000ull);
    es_json_add_str(o, "id", sn->id);
    es_json_add_u64(o, "vm-state-size", sn->vm_state_size);
    return o;
}

static json_object *bitmaps_json(const qcow2_bitmap_dir *d)
{
    json_object *list = es_json_new_array();
    for (uint32_t i = 0; i < d->count; i++) {
        const qcow2_bitmap *bm = &d->entries[i];
        json_object *o = es_json_new_object(), *flags = es_json_new_array();
        if (bm->flags & QCOW2_BITMAP_FLAG_IN_USE)
            es_json_append(flags, es_json_str("in-use"));
        if (bm->flags & QCOW2_BITMAP_FLAG_AUTO)
            es_json_append(flags, es_json_str("auto"));
        es_json_add(o, "flags", flags);
        es_json_add_str(o, "name", bm->name);
        es_json_add_u64(o, "granularity", 1ull << bm->granularity_bits);
        es_json_append(list, o);
    }
    return list;
}

/* format-specific.data; QEMU shows fewer fields for v2 images. */
static json_object *qcow2_specific_json(const es_image_info *in)
{
    json_object *d = es_json_new_object();
    bool v3 = in->qcow2_version >= 3;
    es_json_add_str(d, "compat", v3 ? "1.1" : "0.10");
    es_json_add_str(d, "compression-type", in->compression_type);
    if (v3)
        es_json_add_bool(d, "lazy-refcounts", in->lazy_refcounts);
    if (v3 && in->bitmaps.count)
        es_json_add(d, "bitmaps", bitmaps_json(&in->bitmaps));
    es_json_add_u64(d, "refcount-bits", in->refcount_bits);
    if (v3) {
        es_json_add_bool(d, "corrupt", in->corrupt);
        es_json_add_bool(d, "extended-l2", in->extended_l2);
    }
    json_object *fs = es_json_new_object();
    es_json_add_str(fs, "type", "qcow2");
    es_json_add(fs, "data", d);
    return fs;
}

/* Keys in the order qemu-img 7.2 prints them, so outputs can be diffed. */
static json_object *info_json(const es_image_info *in)
{
    json_object *o = es_json_new_object();
    if (in->snapshots.count) {
        json_object *list = es_json_new_array();
        for (uint32_t i = 0; i < in->snapshots.count; i++)
            es_json_append(list, snapshot_json(&in->snapshots.entries[i]));
        es_json_add(o, "snapshots", list);
    }
    if (in->backing_format)
        es_json_add_str(o, "backing-filename-format", in->backing_format);
    es_json_add_u64(o, "virtual-size", in->virtual_size);
    es_json_add_str(o, "filename", in->filename);
    if (in->format == ES_FMT_QCOW2)
        es_json_add_u64(o, "cluster-size", in->cluster_size);
    es_json_add_str(o, "format", in->format == ES_FMT_QCOW2 ? "qcow2" : "raw");
    if (in->has_actual_size)
        es_json_add_u64(o, "actual-size", in->actual_size);
    if (in->format == ES_FMT_QCOW2)
        es_json_add(o, "format-specific", qcow2_specific_json(in));
    if (in->full_backing_filename)
        es_json_add_str(o, "full-backing-filename", in->full_backing_filename);
    if (in->backing_filename)
        es_json_add_str(o, "backing-filename", in->backing_filename);
    es_json_add_bool(o, "dirty-flag", in->dirty);
    return o;
}

static void print_snapshot_line(const qcow2_snapshot *sn)
{
    char date[64] = "", clock[64], size[64], icount[32] = "";
    time_t t = (time_t)sn->date_sec;
    struct tm tm;
    if (localtime_r(&t, &tm))
        strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
    uint64_t secs = sn->vm_clock_nsec / 1000000000ull;
    snprintf(clock, sizeof clock, "%02llu:%02llu:%02llu.%03llu", (unsigned long long)(secs / 3600),
             (unsigned long long)((secs / 60) % 60), (unsigned long long)(secs % 60),
             (unsigned long long)((sn->vm_clock_nsec / 1000000) % 1000));
    human_size(size, sizeof size, sn->vm_state_size);
    if (sn->icount != QCOW2_SNAPSHOT_ICOUNT_NONE)
        snprintf(icount, sizeof icount, "%llu", (unsigned long long)sn->icount);
    printf("%-9s %-16s %8s%20s%13s%11s\n", sn->id, sn->name, size, date, clock, icount);
}

/* qemu-img's human layout (block/qapi.c bdrv_image_info_dump). */
static void print_human(const es_image_info *in, json_object *specific)
{
    char vsize[64], dsize[64] = "unavailable";
    human_size(vsize, sizeof vsize, in->virtual_size);
    if (in->has_actual_size)
        human_size(dsize, sizeof dsize, in->actual_size);
    printf("image: %s\nfile format: %s\nvirtual size: %s (%llu bytes)\ndisk size: %s\n",
           in->filename, in->format == ES_FMT_QCOW2 ? "qcow2" : "raw", vsize,
           (unsigned long long)in->virtual_size, dsize);
    if (in->format == ES_FMT_QCOW2)
        printf("cluster_size: %llu\n", (unsigned long long)in->cluster_size);
    if (in->dirty)
        printf("cleanly shut down: no\n");
    if (in->backing_filename) {
        printf("backing file: %s", in->backing_filename);
        if (!in->full_backing_filename)
            printf(" (cannot determine actual path)");
        else if (strcmp(in->backing_filename, in->full_backing_filename) != 0)
            printf(" (actual path: %s)", in->full_backing_filename);
        printf("\n");
        if (in->backing_format)
            printf("backing file format: %s\n", in->backing_format);
    }
    if (in->snapshots.count) {
        printf("Snapshot list:\n");
        printf("%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT");
        for (uint32_t i = 0; i < in->snapshots.count; i++)
            print_snapshot_line(&in->snapshots.entries[i]);
    }
    if (specific) {
        printf("Format specific information:\n");
        es_json_print_human(stdout, json_object_object_get(specific, "data"), 1);
    }
}

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_img_info;
    info_opts o = {0};
    int r = es_opt_parse(cmd, argc, argv, &o);
    if (r >= 0)
        return r;
    es_open_opts opts = o.open;
    bool json = o.json == 1, chain = o.chain;
    if (argc - optind != 1)
        return es_cmd_usage_error(cmd, "expected one IMAGE");
    int rc = es_img_root_check(cmd, opts.root, ES_EXIT_FAIL);
    if (rc >= 0)
        return rc;

    /* Like qemu-img: a single image is shown without opening its backing. */
    opts.no_backing = !chain;
    es_image *top = NULL;
    es_err err;
    char *name = NULL;
    if (es_img_root_name(opts.root, argv[optind], &name, &err) < 0 ||
        es_image_open(&top, name, &opts, &err) < 0) {
        es_img_root_fix_err(&err, opts.root, NULL, name ? name : argv[optind]);
        es_busy_hint(&err, ES_HINT_FORCE_SHARE);
        es_cmd_error(cmd->name, &err);
        free(name);
        return ES_EXIT_FAIL;
    }
    free(name);
    /* Gather everything first so that an error prints nothing but itself. */
    int count = 0;
    for (es_image *img = top; img; img = img->backing)
        count++;
    es_image_info *infos = es_xcalloc((size_t)count, sizeof *infos);
    int n = 0;
    for (es_image *img = top; img; img = img->backing, n++) {
        if (es_image_info_gather(img, &infos[n], &err) < 0) {
            es_cmd_error(cmd->name, &err);
            for (int i = 0; i < n; i++)
                es_image_info_free(&infos[i]);
            free(infos);
            es_image_close(top);
            return ES_EXIT_FAIL;
        }
    }
    json_object *all = es_json_new_array();
    for (int i = 0; i < count; i++) {
        json_object *o = info_json(&infos[i]);
        if (!json) {
            if (i)
                printf("\n");
            print_human(&infos[i], json_object_object_get(o, "format-specific"));
        }
        es_json_append(all, o);
        es_image_info_free(&infos[i]);
    }
    free(infos);
    if (json) {
        es_json_print(stdout, chain ? all : json_object_array_get_idx(all, 0));
        printf("\n");
    }
    json_object_put(all);
    es_image_close(top);
    return ES_EXIT_OK;
}
