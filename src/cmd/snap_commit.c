/* extsnap commit: merge a range of snapshots into BASE's image at once. */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include "cmd/cmd.h"
#include "cmd/domain_opts.h"
#include "cmd/online_domain.h"
#include "snap/ops/commit.h"
#include "snap/context.h"

static int run(int argc, char **argv);

typedef struct commit_opts {
    es_domain_opts d;
} commit_opts;

static const es_opt commit_table[] = {
    ES_ONLINE_OPT(commit_opts, d),
    ES_DOMAIN_OPTS(commit_opts, d),
    ES_OPT_END,
};

const es_cmd es_cmd_snap_commit = {
    .name = "commit",
    .summary = "merge the snapshots after BASE up to TOP into BASE's image",
    .synopsis = "[OPTIONS] DOMAIN BASE TOP",
    .description =
        "Merge the overlays of every snapshot after BASE up to and including TOP into\n"
        "BASE's image in one pass per disk, then delete those snapshots: the same\n"
        "result as deleting them one by one (see 'extsnap delete'), with one merge\n"
        "instead of many. TOP must be a descendant of BASE, and TOP's state must be\n"
        "in use (TOP current, or with children); BASE may be 'base': the images below\n"
        "the first snapshot of TOP's line.\n",
    .details =
        "BASE's image, per disk: the image BASE's writes went into, i.e. the frozen\n"
        "image (saved <domain> source) of the first snapshot after BASE that has an\n"
        "overlay for the disk; with BASE 'base', the disk's original image. It\n"
        "survives and afterwards holds what the disk held after TOP: TOP's child's\n"
        "state, or the live state when TOP is current. BASE's own state is untouched.\n"
        "\n"
        "Per disk, the images above BASE's image up to TOP's overlay (the one image\n"
        "using TOP's frozen image as backing file) are merged and removed; images\n"
        "that used TOP's overlay as backing file are repointed to BASE's image; the\n"
        "snapshots in the range are deleted, their children re-parented to BASE,\n"
        "and the config and the remaining snapshots' saved definitions name BASE's\n"
        "image where they named a removed one. BASE becomes current when the\n"
        "current snapshot was in the range (with 'base': no snapshot is current).\n"
        "The NVRAM and vTPM state saved with the snapshots in the range are removed\n"
        "with them; BASE's stay.\n"
        "\n"
        "Refused, naming the files and the branch, when any image in the range (or\n"
        "BASE's image) is used by anything but the next image up - another branch,\n"
        "a revert, another domain, a stray copy - or holds the state of a snapshot\n"
        "outside the range. Refused too, before anything is written: another\n"
        "process using an image the commit changes (named), what the merge engine\n"
        "refuses (a persistent bitmap marked in use or that BASE cannot take, a\n"
        "corrupt BASE), not enough free space for all merges on one file system.\n"
        "Persistent dirty bitmaps are kept as 'extsnap img commit' keeps them, also\n"
        "those a backup tool added to the overlays after the snapshot.\n"
        "\n" ES_ONLINE_USAGE
        "\n" ES_DOMAIN_SAFETY_USAGE "\n" ES_DOMAIN_ARG_USAGE "\n" ES_PLAN_JSON_USAGE,
    .exit_status = "0 done (or planned, with --dry-run), 1 refused, failed or a usage error.",
    .opts = commit_table,
    .operands = ES_OPERANDS_DOMAIN,
    .run = run,
};

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_snap_commit;
    commit_opts all = {0};
    int r = es_domain_parse(cmd, &all.d, &all, argc, argv, 3, "DOMAIN BASE TOP");
    es_domain_opts o = all.d;
    const char *qmp = o.env.qmp;
    if (r >= 0)
        return r;
    es_err e = {0};
    snap_ctx *ctx = NULL;
    snap_plan *p = NULL;
    snap_online *ol = NULL;
    int status = ES_EXIT_FAIL;
    if (snap_online_open(&o.env, argv[optind], qmp, &ctx, &ol, &e) < 0 ||
        snap_plan_commit(ctx, argv[optind + 1], argv[optind + 2], &p, &e) < 0)
        es_cmd_error(cmd->name, &e);
    else
        status = es_online_run_plan(cmd, &o, ctx, ol, p);
    snap_plan_free(p);
    snap_online_close(ol);
    snap_ctx_close(ctx);
    return status;
}
