/* extsnap revert: return a shut-off domain to a snapshot (or to base). */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "cmd/cmd.h"
#include "cmd/domain_opts.h"
#include "snap/context.h"
#include "snap/ops/revert.h"

static int run(int argc, char **argv);

const es_cmd es_cmd_snap_revert = {
    "revert",
    "return a shut-off domain's disks to a snapshot (or to base)",
    "usage: extsnap revert [OPTIONS] DOMAIN NAME|base [--force]\n"
    "\n"
    "Return the disks of a shut-off domain to the state of snapshot NAME, the way\n"
    "newer libvirt (9.9+) reverts external snapshots, without libvirtd:\n"
    "  - every writable disk gets a fresh qcow2 overlay over the image the\n"
    "    snapshot froze (its saved <domain>'s disk source), named\n"
    "    <image minus its extension>.<Unix seconds> (the next free second if\n"
    "    taken); frozen images are never written, so revert works any number of\n"
    "    times; readonly disks, cdroms and empty disks keep their image;\n"
    "  - the config becomes the domain definition saved in the snapshot, with\n"
    "    the new overlays as disk sources (the config file's comment kept);\n"
    "  - NAME becomes the current snapshot; if NAME has children, the new overlays\n"
    "    are recorded in its <revertDisks> (its <disks> back the children),\n"
    "    otherwise they become its <disks>;\n"
    "  - the state being left is discarded: the overlays above the snapshots'\n"
    "    frozen images in the old config (the changes since the current snapshot)\n"
    "    are deleted and listed, but never a file that the config, any snapshot's\n"
    "    metadata or another image in the same directory still needs.\n"
    "To keep the current state, take a snapshot first.\n"
    "\n"
    "'base' is the state before the first snapshot: the images the root snapshot\n"
    "froze (the root above the current snapshot). After it no snapshot is current.\n"
    "\n"
    "Refused when the snapshot has no saved <domain>, or when an image it needs is\n"
    "missing or broken, or is a block device, or when its saved state is recorded\n"
    "as inexact: an online delete or commit of it was cancelled after QEMU had\n"
    "started merging into its saved images (QEMU does not undo that; 'extsnap\n"
    "verify' reports it, 'extsnap list' marks it; running that delete or commit\n"
    "again finishes it).\n"
    "\n"
    "  --force   revert even to a snapshot whose saved state is inexact\n"
    "\n" ES_DOMAIN_SAFETY_USAGE "\n" ES_DOMAIN_OPTS_USAGE "\n" ES_PLAN_JSON_USAGE "\n"
    "Exit status: 0 done (or planned, with --dry-run), 1 refused or failed, 2 usage.\n",
    run,
};

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_snap_revert;
    es_domain_opts o;
    bool force;
    int r = es_domain_parse_flag(cmd, &o, argc, argv, 2, "DOMAIN NAME|base", "force", &force);
    if (r >= 0)
        return r;
    es_err e = {0};
    snap_ctx *ctx = NULL;
    snap_plan *p = NULL;
    int status = ES_EXIT_FAIL;
    if (snap_ctx_open(&o.env, argv[optind], SNAP_OPEN_WRITE, &ctx, &e) < 0 ||
        snap_plan_revert_to(ctx,
                            &(snap_revert_args){.target = argv[optind + 1],
                                                .now = (long long)time(NULL), .force = force},
                            &p, &e) < 0)
        es_cmd_error(cmd->name, &e);
    else
        status = es_domain_run_plan(cmd, &o, ctx, p);
    snap_plan_free(p);
    snap_ctx_close(ctx);
    return status;
}
