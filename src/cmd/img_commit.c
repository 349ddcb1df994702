/* extsnap img commit: merge a chain's upper layers into a lower image, as
 * `qemu-img commit` does, without QEMU. */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/busy_hint.h"
#include "cmd/check_hint.h"
#include "cmd/cmd.h"
#include "cmd/cmd_env.h"
#include "cmd/img_commit_qmp.h"
#include "cmd/img_root.h"
#include "cmd/progress_opt.h"
#include "qcow2/commit.h"

static int run(int argc, char **argv);

typedef es_img_commit_opts commit_opts;

#define QMP_ONLY "--qmp only: "
static const es_opt commit_table[] = {
    {.name = "format", .letter = 'f', .kind = ES_OPT_STRING, .arg = "FMT",
     .offset = offsetof(commit_opts, format), .help = "format of TOP (qcow2; default: probe)"},
    {.name = "base", .letter = 'b', .kind = ES_OPT_STRING, .arg = "BASE", .flags = ES_OPTF_FILE,
     .offset = offsetof(commit_opts, base),
     .help = "commit into BASE, an image of TOP's backing chain (implies -d)"},
    {.letter = 'd', .kind = ES_OPT_FLAG, .offset = offsetof(commit_opts, keep_top),
     .help = "do not empty TOP afterwards"},
    ES_PROGRESS_OPT(commit_opts, progress, NULL),
    {.name = "quiet", .letter = 'q', .kind = ES_OPT_FLAG, .offset = offsetof(commit_opts, quiet),
     .help = "print nothing on success"},
    {.name = "root", .kind = ES_OPT_STRING, .arg = "DIR", .offset = offsetof(commit_opts, root),
     .flags = ES_OPTF_DIR,
     .help = "DIR holds a host's root file system (a rescue shell's /mnt/sysimage): TOP, BASE "
             "and every backing file name are the host's paths, opened under DIR (a relative "
             "TOP is taken from DIR, i.e. the host's /; a relative BASE is looked for beside "
             "each image of the chain, then from DIR); '..' and symlinks may not lead out of "
             "DIR. Names are shown as the host sees them. Not with --qmp (QEMU opens the "
             "images itself)."},
    {.name = "qmp", .kind = ES_OPT_STRING, .arg = "SOCKET", .flags = ES_OPTF_FILE,
     .offset = offsetof(commit_opts, socket), .section = "Running VM",
     .help = "commit through the QMP socket of the QEMU that runs TOP"},
    {.name = "device", .kind = ES_OPT_STRING, .arg = "DEV", .offset = offsetof(commit_opts, device),
     .section = "Running VM", .help = QMP_ONLY "the QEMU block device (-drive id=, or the qdev id)"},
    {.name = "node", .kind = ES_OPT_STRING, .arg = "NODE", .offset = offsetof(commit_opts, node),
     .section = "Running VM",
     .help = QMP_ONLY "the node name of the chain's active layer (-blockdev node-name=)"},
    {.name = "speed", .kind = ES_OPT_SIZE, .arg = "BYTES", .offset = offsetof(commit_opts, speed),
     .section = "Running VM", .help = QMP_ONLY "rate limit in bytes per second (suffixes K, M, G)"},
    {.name = "timeout", .kind = ES_OPT_MSEC, .arg = "SECONDS",
     .offset = offsetof(commit_opts, timeout_ms), .bad = "invalid --timeout '%s' (seconds)",
     .section = "Running VM",
     .help = QMP_ONLY "how long to wait for each QMP reply (default 30; env EXTSNAP_QMP_TIMEOUT)"},
    {.name = "stall", .kind = ES_OPT_MSEC, .arg = "SECONDS",
     .offset = offsetof(commit_opts, stall_ms), .bad = "invalid --stall '%s' (seconds)",
     .section = "Running VM",
     .help = QMP_ONLY "no progress this long (the amount left to copy not shrinking: e.g. the "
             "guest writes faster than the copy) first lifts the --speed limit, then cancels "
             "(default: the --timeout value)"},
    {.name = "output", .kind = ES_OPT_ENUM, .arg = "FMT", .offset = offsetof(commit_opts, json),
     .choices = es_output_choices, .bad = "invalid --output '%s' (human or json)",
     .section = "Running VM", .help = QMP_ONLY "human (default) or json: JSON lines on stdout"},
    ES_OPT_END,
};

const es_cmd es_cmd_img_commit = {
    .name = "img commit",
    .summary = "commit an image's changes into its backing file (like qemu-img commit)",
    .run = run,
    .synopsis = "[OPTIONS] TOP",
    .description =
        "Copy every cluster allocated in TOP, and in every image between BASE and\n"
        "TOP, into BASE (default: TOP's backing file), as `qemu-img commit` does.\n"
        "Afterwards TOP is emptied (it then reads entirely through to its backing\n"
        "file) unless -d or -b is given. When QEMU runs the image, --qmp asks QEMU.\n",
    .details =
        "BASE grows when TOP is larger (never shrinks); zeroes above become zero\n"
        "clusters in a qcow2 v3 BASE and explicit zeroes where BASE cannot say\n"
        "\"zero\" (v2, raw) and something would otherwise show; compressed clusters\n"
        "are written uncompressed; clusters BASE shares with an internal snapshot\n"
        "are never overwritten in place. No image header names another file\n"
        "afterwards: TOP keeps its backing file, and images between BASE and TOP\n"
        "are left as they are (they are no longer valid on their own once BASE\n"
        "changed).\n"
        "\n"
        "Nothing is written before these checks pass: TOP has a backing file; BASE\n"
        "is in its chain; BASE (and TOP unless kept) can be opened for writing;\n"
        "BASE is neither marked corrupt nor dirty (run 'extsnap img check -r all'\n"
        "first); no persistent dirty bitmap of BASE or of an image above it is\n"
        "marked in use (inconsistent), BASE with bitmaps does not have to grow,\n"
        "and a bitmap of TOP that BASE lacks can be added (BASE does not grow, is\n"
        "qcow2 version 3, has room for the bitmaps header extension);\n"
        "BASE's file system has room for\n"
        "what the commit allocates, counted from the allocation maps: the clusters\n"
        "BASE must newly allocate (data, L2 tables, L1 and refcount growth) and the\n"
        "holes of BASE's file that writes in place fill (preallocation=metadata,\n"
        "sparse raw images), in whole file-system blocks.\n"
        "\n"
        "Where TOP and BASE are on one file system that shares extents (XFS with\n"
        "reflink=1, btrfs), whole clusters are shared instead of copied: the merge\n"
        "then writes metadata, not data.\n"
        "\n"
        "Persistent dirty bitmaps (incremental backups) are kept, as QEMU's\n"
        "block-commit followed by libvirt's block-dirty-bitmap-merge leaves them:\n"
        "each enabled bitmap of BASE gets the bits of every range the images above\n"
        "BASE allocate and of their bitmaps of the same name; disabled bitmaps stay\n"
        "untouched. A bitmap of TOP that BASE lacks is added to BASE, as libvirt\n"
        "adds it after block-commit: enabled, at TOP's granularity, with the bits\n"
        "of the same-named bitmaps from TOP down to the image above BASE; only when\n"
        "that name is in TOP and in the images below it without a gap, enabled and\n"
        "consistent (a name TOP lacks is dropped: a bitmap made without TOP's\n"
        "writes would miss changes). They are written before any data, so an\n"
        "interruption leaves extra bits at worst, never a missed change. With --qmp\n"
        "QEMU does it: once the job is pending, one transaction merges TOP's\n"
        "bitmaps into BASE as libvirt does (refused: a bitmap QEMU reports\n"
        "inconsistent or busy).\n"
        "\n"
        "Crash safety: a crash or power loss at any point leaves at worst leaked\n"
        "clusters in BASE (reclaimed by 'extsnap img check -r leaks'), never a\n"
        "corrupt image; run the same commit again to finish it, with the same\n"
        "result. TOP is emptied only after BASE is complete and on disk.\n"
        "\n"
        "Environment: EXTSNAP_SKIP_SPACE_CHECK=1 skips the free-space check (for\n"
        "tests that need a real ENOSPC in the middle of a commit).\n"
        "\n"
        ES_IMG_COMMIT_QMP_USAGE,
    .exit_status = "0 success, 1 error or usage error.",
    .opts = commit_table,
    .parse = ES_PARSE_IN_ORDER,
    .operands = ES_OPERANDS_IMAGE,
};

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_img_commit;
    commit_opts o = {0};
    int r = es_opt_parse(cmd, argc, argv, &o);
    if (r >= 0)
        return r;
    if (o.socket) {
        if (o.root)
            return es_cmd_usage_error(cmd, "--root cannot be used with --qmp: the running QEMU "
                                           "opens the images by its own names");
        return es_img_commit_qmp_run(cmd, &o, argc, argv); /* a running VM: through QEMU */
    }
    if (o.device || o.node || o.speed || o.timeout_ms || o.stall_ms || o.json)
        return es_cmd_usage_error(cmd, "--device, --node, --speed, --timeout, --stall and "
                                       "--output=json need --qmp");
    es_open_opts oo = {.format = o.format, .root = o.root};
    es_commit_opts co = {.keep_top = o.keep_top || o.base};
    const char *base_path = o.base;
    bool quiet = o.quiet;
    if (argc - optind != 1)
        return es_cmd_usage_error(cmd, argc - optind < 1 ? "TOP is missing" : "too many arguments");
    int rc = es_img_root_check(cmd, oo.root, ES_EXIT_FAIL);
    if (rc >= 0)
        return rc;
    co.skip_space_check = es_env_skip_space_check();
    es_progress_meter meter;
    es_progress_meter_init(&meter, es_progress_opt_mode(o.progress, quiet), stderr);
    co.progress = es_progress_meter_sink(&meter);

    es_err err;
    es_image *top = NULL;
    char *name = NULL;
    if (es_img_root_name(oo.root, argv[optind], &name, &err) < 0 ||
        es_image_open(&top, name, &oo, &err) < 0) {
        es_img_root_fix_err(&err, oo.root, NULL, name ? name : argv[optind]);
        es_busy_hint(&err, ES_HINT_QMP);
        es_img_check_hint(&err, oo.root);
        es_cmd_error(cmd->name, &err);
        free(name);
        return ES_EXIT_FAIL;
    }
    free(name);
    rc = ES_EXIT_OK;
    es_image *base = top->backing;
    if (!base) {
        es_err_set(&err, 0, top->filename, "Image does not have a backing file");
        rc = ES_EXIT_FAIL;
    } else if (base_path && !(base = es_commit_find_base_root(top, base_path, oo.root, &err))) {
        rc = ES_EXIT_FAIL;
    } else if (es_commit(top, base, &co, &err) < 0) {
        rc = ES_EXIT_FAIL;
    }
    es_progress_meter_end(&meter);
    es_image_close(top);
    if (rc != ES_EXIT_OK) {
        es_busy_hint(&err, ES_HINT_QMP);
        es_img_check_hint(&err, oo.root);
        es_cmd_error(cmd->name, &err);
        return rc;
    }
    if (!quiet)
        printf("Image committed.\n");
    return ES_EXIT_OK;
}
