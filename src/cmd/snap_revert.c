/* extsnap revert: return a shut-off domain to a snapshot (or to base). */
#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "cmd/cmd.h"
#include "cmd/domain_opts.h"
#include "cmd/plan_out.h"
#include "snap/context.h"
#include "snap/txn/session.h"
#include "snap/ops/revert.h"

static int run(int argc, char **argv);

typedef struct revert_opts {
    es_domain_opts d;
    bool force;
    bool no_vm_state;
} revert_opts;

static const es_opt revert_table[] = {
    {.name = "force", .kind = ES_OPT_FLAG, .offset = offsetof(revert_opts, force),
     .help = "revert even to a snapshot whose saved state is inexact"},
    {.name = "no-vm-state", .kind = ES_OPT_FLAG, .offset = offsetof(revert_opts, no_vm_state),
     .help = "leave the VM's NVRAM (UEFI variables) and vTPM state as they are instead of "
             "putting the snapshot's saved copies back"},
    ES_DOMAIN_OPTS(revert_opts, d),
    ES_OPT_END,
};

const es_cmd es_cmd_snap_revert = {
    .name = "revert",
    .summary = "return a shut-off domain's disks to a snapshot (or to base)",
    .synopsis = "[OPTIONS] DOMAIN NAME|base [--force]",
    .description =
        "Return the disks of a shut-off domain to the state of snapshot NAME, the way\n"
        "newer libvirt (9.9+) reverts external snapshots, without libvirtd: fresh\n"
        "overlays over the images the snapshot froze, the config saved with it, NAME\n"
        "current; the state being left is discarded.\n",
    .details =
        "In detail:\n"
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
        "    metadata or another image in the same directory still needs;\n"
        "  - the VM's NVRAM file (UEFI variables) and vTPM state directory get the\n"
        "    copies saved with the snapshot back (the directory replaced whole),\n"
        "    unless --no-vm-state; a snapshot without them (taken by libvirt or with\n"
        "    --no-vm-state) leaves them as they are, with a note; a recorded copy\n"
        "    that is missing is refused.\n"
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
        "\n" ES_DOMAIN_SAFETY_USAGE "\n" ES_DOMAIN_ARG_USAGE "\n" ES_PLAN_JSON_USAGE,
    .exit_status = "0 done (or planned, with --dry-run), 1 refused, failed or a usage error.",
    .opts = revert_table,
    .operands = ES_OPERANDS_DOMAIN,
    .run = run,
};

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_snap_revert;
    revert_opts all = {0};
    int r = es_domain_parse(cmd, &all.d, &all, argc, argv, 2, "DOMAIN NAME|base");
    es_domain_opts o = all.d;
    bool force = all.force;
    if (r >= 0)
        return r;
    es_err e = {0};
    snap_ctx *ctx = NULL;
    snap_plan *p = NULL;
    int status = ES_EXIT_FAIL;
    if (snap_session_begin(&o.env, argv[optind], SNAP_OPEN_WRITE, &ctx, &e) < 0 ||
        snap_plan_revert_to(ctx,
                            &(snap_revert_args){.target = argv[optind + 1],
                                                .now = (long long)time(NULL), .force = force,
                                                .no_vm_state = all.no_vm_state},
                            &p, &e) < 0)
        es_cmd_error(cmd->name, &e);
    else
        status = es_domain_run_plan(cmd, &o, ctx, p);
    snap_plan_free(p);
    snap_ctx_close(ctx);
    return status;
}
