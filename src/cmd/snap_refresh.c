/* extsnap refresh: discard the changes since the current snapshot. */
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

typedef struct refresh_opts {
    es_domain_opts d;
    bool force;
    bool no_vm_state;
} refresh_opts;

static const es_opt refresh_table[] = {
    {.name = "force", .kind = ES_OPT_FLAG, .offset = offsetof(refresh_opts, force),
     .help = "refresh even when the current snapshot's saved state is inexact"},
    {.name = "no-vm-state", .kind = ES_OPT_FLAG, .offset = offsetof(refresh_opts, no_vm_state),
     .help = "leave the VM's NVRAM (UEFI variables) and vTPM state as they are instead of "
             "putting the snapshot's saved copies back"},
    ES_DOMAIN_OPTS(refresh_opts, d),
    ES_OPT_END,
};

const es_cmd es_cmd_snap_refresh = {
    .name = "refresh",
    .summary = "discard a shut-off domain's changes since its current snapshot",
    .synopsis = "[OPTIONS] DOMAIN [--force]",
    .description =
        "Discard everything the domain's disks received since the current snapshot:\n"
        "the same as 'extsnap revert DOMAIN <current snapshot>'. The discarded\n"
        "overlays are deleted (and listed); fresh, empty overlays take their place,\n"
        "and the NVRAM and vTPM state saved with the snapshot are put back (unless\n"
        "--no-vm-state).\n"
        "Refused when no snapshot is current, or when its saved state is recorded as\n"
        "inexact (a cancelled online delete or commit of it; see 'extsnap revert').\n",
    .details =
        "\n" ES_DOMAIN_SAFETY_USAGE "\n" ES_DOMAIN_ARG_USAGE "\n" ES_PLAN_JSON_USAGE,
    .exit_status = "0 done (or planned, with --dry-run), 1 refused, failed or a usage error.",
    .opts = refresh_table,
    .operands = ES_OPERANDS_DOMAIN,
    .run = run,
};

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_snap_refresh;
    refresh_opts all = {0};
    int r = es_domain_parse(cmd, &all.d, &all, argc, argv, 1, "DOMAIN");
    es_domain_opts o = all.d;
    bool force = all.force;
    if (r >= 0)
        return r;
    es_err e = {0};
    snap_ctx *ctx = NULL;
    snap_plan *p = NULL;
    int status = ES_EXIT_FAIL;
    if (snap_session_begin(&o.env, argv[optind], SNAP_OPEN_WRITE, &ctx, &e) < 0) {
        es_cmd_error(cmd->name, &e);
    } else {
        domxml_snapshot *cur = domxml_snapshot_list_current(ctx->snaps);
        if (!cur)
            es_cmd_errorf(cmd->name,
                          "domain %s has no current snapshot to go back to (after 'revert "
                          "base', use 'revert %s base' again)",
                          ctx->name, ctx->name);
        else if (snap_plan_revert_to(ctx,
                                     &(snap_revert_args){.target = cur->name,
                                                         .now = (long long)time(NULL),
                                                         .refresh = true, .force = force,
                                                .no_vm_state = all.no_vm_state},
                                     &p, &e) < 0)
            es_cmd_error(cmd->name, &e);
        else
            status = es_domain_run_plan(cmd, &o, ctx, p);
    }
    snap_plan_free(p);
    snap_ctx_close(ctx);
    return status;
}
