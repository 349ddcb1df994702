/* extsnap delete: remove one snapshot of a shut-off domain, merging its
 * overlays down where they are in use. */
#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cmd/cmd.h"
#include "cmd/domain_opts.h"
#include "cmd/online_domain.h"
#include "snap/context.h"
#include "snap/ops/delete.h"

static int run(int argc, char **argv);

typedef struct delete_opts {
    es_domain_opts d;
    bool metadata;
} delete_opts;

static const es_opt delete_table[] = {
    {.name = "metadata", .kind = ES_OPT_FLAG, .offset = offsetof(delete_opts, metadata),
     .help = "delete only the metadata file (libvirt's snapshot-delete --metadata): children re-parented, the parent made current if NAME was, its <disks>/<revertDisks> as above; images and config untouched"},
    ES_ONLINE_OPT(delete_opts, d),
    ES_DOMAIN_OPTS(delete_opts, d),
    ES_OPT_END,
};

const es_cmd es_cmd_snap_delete = {
    .name = "delete",
    .summary = "delete a snapshot, merging its overlays down",
    .synopsis = "[OPTIONS] DOMAIN NAME [--metadata]",
    .description =
        "Delete snapshot NAME of a shut-off domain without libvirtd or QEMU, for the\n"
        "current snapshot, a leaf, or a snapshot with children (also outside the\n"
        "active chain, where libvirt refuses): its overlays are merged down where\n"
        "they are in use, its children re-parented.\n",
    .details =
        "In detail:\n"
        "  - per disk the snapshot froze, the one image that uses its frozen image\n"
        "    (the source in its saved <domain>) as backing file - its overlay, the\n"
        "    state after it - is merged into the frozen image, which survives, in\n"
        "    one pass with the qcow2 commit engine; the overlay is removed, images\n"
        "    that used it as backing file are repointed to the frozen image (absolute\n"
        "    name, as libvirt writes it), and every libvirt file that named it (the\n"
        "    config, the children's saved definitions) names the frozen image;\n"
        "  - a leaf that is not current has nothing to merge: the changes after it\n"
        "    were discarded when the domain left it (as libvirt >= 9.7 does); its\n"
        "    frozen images and leftover overlay are deleted when nothing else needs\n"
        "    them (another snapshot, the config, another domain, an image using them\n"
        "    as backing file); a base image with no backing file is never deleted;\n"
        "  - children are re-parented to NAME's parent, which becomes current if\n"
        "    NAME was (no snapshot is current after deleting a current root); the\n"
        "    parent's <disks> then name the overlays its remaining children froze,\n"
        "    or, with none, its live overlays when it is current, and its\n"
        "    <revertDisks> the live overlays when those differ;\n"
        "  - the NVRAM and vTPM state saved with NAME (see 'extsnap create') are\n"
        "    removed once the rest is done: the state at NAME is gone; with\n"
        "    --metadata they stay, like the images.\n"
        "\n"
        "Refused, naming the files and the branch, where merging would change what\n"
        "another branch reads: the frozen image also backs another image (a second\n"
        "child, a revert branch in <revertDisks>, a --no-metadata overlay, a copy in\n"
        "the directory, another domain's disk), or another snapshot's state is in an\n"
        "image the merge changes or removes. Refused too: a frozen image that is a\n"
        "block device, a missing or broken chain, not enough free space.\n"
        "\n"
        "Once merging starts the operation only goes forward: if it is interrupted,\n"
        "the next extsnap command on the domain (or 'extsnap recover') repeats the\n"
        "merge, which is idempotent (the overlay is removed only at the very end).\n"
        "Before anything is written, every cause a merge could fail on is checked:\n"
        "another process using an image it changes (named), what the merge engine\n"
        "refuses (a persistent bitmap marked in use or that BASE cannot take, a\n"
        "corrupt BASE), free space for all merges on one file system; should a\n"
        "merge still fail, fix the cause and run 'extsnap recover DOMAIN'.\n"
        "Persistent dirty bitmaps are kept as 'extsnap img commit' keeps them,\n"
        "also those a backup tool added to the overlays after the snapshot.\n"
        "\n" ES_ONLINE_USAGE
        "\n" ES_DOMAIN_SAFETY_USAGE "\n" ES_DOMAIN_ARG_USAGE "\n" ES_PLAN_JSON_USAGE,
    .exit_status = "0 done (or planned, with --dry-run), 1 refused, failed or a usage error.",
    .opts = delete_table,
    .operands = ES_OPERANDS_DOMAIN,
    .run = run,
};

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_snap_delete;
    delete_opts all = {0};
    int r = es_domain_parse(cmd, &all.d, &all, argc, argv, 2, "DOMAIN NAME");
    es_domain_opts o = all.d;
    bool metadata = all.metadata;
    const char *qmp = o.env.qmp;
    if (r >= 0)
        return r;
    es_err e = {0};
    snap_ctx *ctx = NULL;
    snap_plan *p = NULL;
    snap_online *ol = NULL;
    int status = ES_EXIT_FAIL;
    if (snap_online_open(&o.env, argv[optind], qmp, &ctx, &ol, &e) < 0 ||
        snap_plan_delete(ctx, argv[optind + 1], metadata, &p, &e) < 0)
        es_cmd_error(cmd->name, &e);
    else
        status = es_online_run_plan(cmd, &o, ctx, ol, p);
    snap_plan_free(p);
    snap_online_close(ol);
    snap_ctx_close(ctx);
    return status;
}
