/* extsnap img check: what `qemu-img check` reports, for several images at
 * once, plus the state of each image's backing chain. */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/busy_hint.h"
#include "cmd/cmd.h"
#include "cmd/img_root.h"
#include "cmd/json_out.h"
#include "cmd/progress_opt.h"
#include "qcow2/check.h"
#include "qcow2/check_chain.h"

static int run(int argc, char **argv);

typedef struct check_opts {
    int json, repair, progress;
    bool quiet, force_share;
    const char *root;
} check_opts;

static const char *const repair_choices[] = {"leaks", "all", NULL};

static const es_opt check_table[] = {
    ES_OUTPUT_OPT(check_opts, json, "invalid --output '%s' (human or json)"),
    {.name = "repair", .letter = 'r', .kind = ES_OPT_ENUM, .arg = "leaks|all",
     .offset = offsetof(check_opts, repair), .choices = repair_choices,
     .bad = "--repair (-r) expects 'leaks' or 'all', not '%s'",
     .help = "leaks: free leaked clusters; all: also fix refcounts that are too low and "
             "COPIED flags, rebuild the refcount structure when it is broken (new "
             "structure at the end of the file) and clear the dirty and corrupt bits once "
             "the image is consistent"},
    {.name = "quiet", .letter = 'q', .kind = ES_OPT_FLAG, .offset = offsetof(check_opts, quiet),
     .help = "no summary on stdout (detail lines still on stderr)"},
    {.name = "force-share", .letter = 'U', .kind = ES_OPT_FLAG,
     .offset = offsetof(check_opts, force_share),
     .help = "check even if another process writes the image (the result may then be "
             "inconsistent); not with -r"},
    ES_PROGRESS_OPT(check_opts, progress, NULL),
    ES_IMG_ROOT_OPT(check_opts, root),
    ES_OPT_END,
};

const es_cmd es_cmd_img_check = {
    .name = "img check",
    .summary = "check (and repair) qcow2 images and their backing chains (like qemu-img check)",
    .run = run,
    .synopsis = "[OPTIONS] IMAGE...",
    .description =
        "Check each qcow2 IMAGE the way `qemu-img check` does and report the same\n"
        "figures: refcounts too high (leaked clusters: wasted space), refcounts too\n"
        "low, wrong COPIED flags and broken L1/L2/refcount entries (corruptions),\n"
        "image end offset and allocation statistics. Detail lines go to stderr.\n",
    .details =
        "The check reads the on-disk structures itself, so it also works on images\n"
        "that cannot be opened normally (truncated, dirty, marked corrupt).\n"
        "\n"
        "It also follows the chain IMAGE stands on and reports backing files that\n"
        "are missing, named without a backing format, of another format than named,\n"
        "protocol names (never followed) and loops (JSON field \"backing-errors\",\n"
        "an extsnap addition; qemu-img does not check the chain).\n"
        "\n"
        "--output=json prints one object per image; an array when several images\n"
        "are given. With --root, a backing name that leads out of DIR stops the\n"
        "check of that image before anything is read or repaired (exit status 1).\n"
        "\n"
        "Image locks are QEMU's: a check refuses an image a running VM writes\n"
        "(unless -U), a repair refuses an image anyone else has open.\n"
        "After a repair the image is checked again and that result is reported,\n"
        "with corruptions-fixed/leaks-fixed from the repair (as qemu-img does).\n"
        "\n"
        "Exit status (as qemu-img check):\n"
        "  0  no problems (or all repaired)\n"
        "  1  the check could not complete (open error, internal error, or\n"
        "     -r leaks on an image whose refcount structure must be rebuilt)\n"
        "  2  corruptions found, or the backing chain is broken\n"
        "  3  only leaked clusters found\n"
        "  63 the image format has no check (raw)\n"
        "With several images the worst status wins, in the order 1, 2, 3, 63, 0.\n",
    .exit_status = "0 no problems (or all repaired), 1 could not complete or a usage error, "
                   "2 corruptions or a broken chain, 3 only leaks, 63 no check for the format.",
    .opts = check_table,
    .parse = ES_PARSE_IN_ORDER,
    .operands = ES_OPERANDS_IMAGE,
};

#define EXIT_CORRUPT 2
#define EXIT_LEAKS 3
#define EXIT_NO_CHECK 63

/* Severity order for several images: 1 > 2 > 3 > 63 > 0. */
static int severity(int code)
{
    switch (code) {
    case ES_EXIT_FAIL: return 4;
    case EXIT_CORRUPT: return 3;
    case EXIT_LEAKS: return 2;
    case EXIT_NO_CHECK: return 1;
    default: return 0;
    }
}

typedef struct check_out {
    bool json, quiet, several;
    const char *root;   /* --root DIR, or NULL */
    json_object *array; /* several images in JSON */
    es_progress_meter meter; /* phase "check": the walk of the active L1 table */
} check_out;

static void put_count(json_object *o, const char *key, int64_t v)
{
    if (v)
        es_json_add_i64(o, key, v);
}

/* qemu-img's field order (its dictionary order), zero counts omitted. */
static json_object *result_json(const char *path, const char *format,
                                const qcow2_check_result *r, const qcow2_chain_problems *chain,
                                const char *error)
{
    json_object *o = es_json_new_object();
    if (r) {
        put_count(o, "image-end-offset", r->image_end_offset);
        put_count(o, "compressed-clusters", r->compressed_clusters);
        put_count(o, "total-clusters", r->total_clusters);
        put_count(o, "corruptions", r->corruptions);
        put_count(o, "corruptions-fixed", r->corruptions_fixed);
    }
    es_json_add_i64(o, "check-errors", r ? r->check_errors : 0);
    if (r) {
        put_count(o, "leaks", r->leaks);
        put_count(o, "leaks-fixed", r->leaks_fixed);
        put_count(o, "allocated-clusters", r->allocated_clusters);
    }
    es_json_add_str(o, "filename", path);
    if (format)
        es_json_add_str(o, "format", format);
    if (r)
        put_count(o, "fragmented-clusters", r->fragmented_clusters);
    if (chain && chain->n) {
        json_object *list = es_json_new_array();
        for (size_t i = 0; i < chain->n; i++)
            es_json_append(list, es_json_str(chain->msgs[i]));
        es_json_add(o, "backing-errors", list);
    }
    if (error)
        es_json_add_str(o, "error", error);
    return o;
}

static void emit_json(check_out *out, json_object *o)
{
    if (out->several) {
        es_json_append(out->array, o);
        return;
    }
    if (!out->quiet) {
        es_json_print(stdout, o);
        fputc('\n', stdout);
    }
    json_object_put(o);
}

/* qemu-img's dump_human_image_check(), then the chain. */
static void print_human(const qcow2_check_result *r, const qcow2_chain_problems *chain)
{
    if (!(r->corruptions || r->leaks || r->check_errors)) {
        printf("No errors were found on the image.\n");
    } else {
        if (r->corruptions)
            printf("\n%lld errors were found on the image.\n"
                   "Data may be corrupted, or further writes to the image may corrupt it.\n",
                   (long long)r->corruptions);
        if (r->leaks)
            printf("\n%lld leaked clusters were found on the image.\n"
                   "This means waste of disk space, but no harm to data.\n",
                   (long long)r->leaks);
        if (r->check_errors)
            printf("\n%lld internal errors have occurred during the check.\n",
                   (long long)r->check_errors);
    }
    if (r->total_clusters != 0 && r->allocated_clusters != 0)
        printf("%lld/%lld = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% compressed "
               "clusters\n",
               (long long)r->allocated_clusters, (long long)r->total_clusters,
               r->allocated_clusters * 100.0 / r->total_clusters,
               r->fragmented_clusters * 100.0 / r->allocated_clusters,
               r->compressed_clusters * 100.0 / r->allocated_clusters);
    if (r->image_end_offset)
        printf("Image end offset: %lld\n", (long long)r->image_end_offset);
    if (chain->n) {
        printf("\n%zu %s found in the backing chain:\n", chain->n,
               chain->n == 1 ? "problem was" : "problems were");
        for (size_t i = 0; i < chain->n; i++)
            printf("    %s\n", chain->msgs[i]);
    }
}

/* A check that produced no result: message on stderr, an object in JSON. */
static int no_result(check_out *out, const char *path, const char *format, int code,
                     const qcow2_check_result *partial, const char *msg)
{
    es_cmd_errorf(es_cmd_img_check.name, "%s: %s", path, msg);
    if (out->json)
        emit_json(out, result_json(path, format, partial, NULL, msg));
    return code;
}

/* A check that could not start: the error on stderr, an object in JSON. */
static int not_started(check_out *out, const char *path, es_err *err)
{
    char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
    qcow2_check_result none = {.check_errors = 1};
    es_cmd_error(es_cmd_img_check.name, err);
    if (out->json)
        emit_json(out, result_json(path, NULL, &none, NULL, es_err_str(err, buf, sizeof buf)));
    return ES_EXIT_FAIL;
}

/* path: the image as the user (the host) names it; open_path: where it is
 * opened (under --root; the same string without). */
static int check_one(check_out *out, const char *path, const char *open_path, unsigned fix)
{
    es_err err;
    char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
    bool is_qcow2;
    if (qcow2_check_is_qcow2(open_path, &is_qcow2, &err) < 0) {
        es_img_root_fix_err(&err, out->root, open_path, path);
        return not_started(out, path, &err);
    }
    if (!is_qcow2)
        return no_result(out, path, "raw", EXIT_NO_CHECK, NULL,
                         "this image format (raw) does not support checks");
    /* Under --root, a backing name leading out of DIR stops everything
     * before a repair could write. */
    if (qcow2_check_chain_names_in_root(path, out->root, &err) < 0)
        return not_started(out, path, &err);

    if (out->several && !out->json && !out->quiet)
        printf("%s:\n", path);
    qcow2_check_result r;
    bool repaired;
    es_progress_sink pr = es_progress_meter_sink(&out->meter);
    int cr = qcow2_check_image_progress(open_path, fix, stderr, &pr, &r, &repaired, &err);
    es_progress_meter_end(&out->meter);
    if (cr < 0) {
        /* The path is printed anyway: only what failed, and why. */
        char msg[sizeof buf + 32];
        err.path[0] = '\0';
        if (fix == 0) /* only reading: -U would do */
            es_busy_hint(&err, ES_HINT_FORCE_SHARE);
        snprintf(msg, sizeof msg, "Check failed: %s", es_err_str(&err, buf, sizeof buf));
        if (r.check_errors == 0)
            r.check_errors = 1;
        return no_result(out, path, "qcow2", ES_EXIT_FAIL, &r, msg);
    }
    qcow2_chain_problems chain = {0};
    bool chain_failed = qcow2_check_backing_chain_root(path, out->root, &chain, &err) < 0;
    if (chain_failed) {
        /* The image itself was checked; its header is what failed here. */
        es_cmd_error(es_cmd_img_check.name, &err);
    }
    if (!out->quiet && !out->json && repaired)
        printf("The following inconsistencies were found and repaired:\n\n"
               "    %lld leaked clusters\n"
               "    %lld corruptions\n\n"
               "Double checking the fixed image now...\n",
               (long long)r.leaks_fixed, (long long)r.corruptions_fixed);
    if (out->json)
        emit_json(out, result_json(path, "qcow2", &r, &chain, NULL));
    else if (!out->quiet)
        print_human(&r, &chain);

    int code = 0;
    if (r.check_errors || chain_failed) {
        if (r.check_errors)
            es_cmd_errorf(es_cmd_img_check.name, "%s: Check failed", path);
        code = ES_EXIT_FAIL;
    } else if (r.corruptions || chain.n) {
        code = EXIT_CORRUPT;
    } else if (r.leaks) {
        code = EXIT_LEAKS;
    }
    qcow2_chain_problems_free(&chain);
    if (out->several && !out->json && !out->quiet)
        printf("\n");
    return code;
}

/* One IMAGE argument: its host name and where to open it, then the check. */
static int check_arg(check_out *out, const char *arg, unsigned fix)
{
    es_err err;
    char *path = NULL, *open_path = NULL;
    int code;
    if (es_img_root_name(out->root, arg, &path, &err) < 0)
        code = not_started(out, arg, &err);
    else if (es_img_root_open_path(out->root, path, &open_path, &err) < 0)
        code = not_started(out, path, &err);
    else
        code = check_one(out, path, open_path, fix);
    free(path);
    free(open_path);
    return code;
}

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_img_check;
    check_opts co = {.repair = -1}; /* -1: no repair, else an index of repair_choices */
    int r = es_opt_parse(cmd, argc, argv, &co);
    if (r >= 0)
        return r;
    check_out out = {.json = co.json == 1, .quiet = co.quiet, .root = co.root};
    unsigned fix = co.repair == 0 ? QCOW2_CHECK_FIX_LEAKS
                 : co.repair == 1 ? QCOW2_CHECK_FIX_ALL
                                  : 0;
    bool force_share = co.force_share;
    if (optind >= argc)
        return es_cmd_usage_error(cmd, "expected at least one IMAGE");
    if (force_share && fix)
        return es_cmd_usage_error(cmd, "--force-share (-U) cannot be used with --repair (-r)");
    int rc = es_img_root_check(cmd, out.root, ES_EXIT_FAIL);
    if (rc >= 0)
        return rc;
    es_progress_meter_init(&out.meter, es_progress_opt_mode(co.progress, out.quiet), stderr);
    if (force_share)
        fix |= QCOW2_CHECK_FORCE_SHARE;
    out.several = argc - optind > 1;
    if (out.several && out.json)
        out.array = es_json_new_array();
    int worst = 0;
    for (int i = optind; i < argc; i++) {
        int code = check_arg(&out, argv[i], fix);
        if (severity(code) > severity(worst))
            worst = code;
        fflush(stdout);
    }
    if (out.array) {
        if (!out.quiet) {
            es_json_print(stdout, out.array);
            fputc('\n', stdout);
        }
        json_object_put(out.array);
    }
    return worst;
}
