/* extsnap refresh: discard the changes since the current snapshot. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "cmd/cmd.h"
#include "cmd/domain_opts.h"
#include "snap/context.h"
#include "snap/ops/revert.h"

static int run(int argc, char **argv);

const es_cmd es_cmd_snap_refresh = {
    "refresh",
    "discard a shut-off domain's changes since its current snapshot",
    "usage: extsnap refresh [OPTIONS] DOMAIN [--force]\n"
    "\n"
    "Discard everything the domain's disks received since the current snapshot:\n"
    "the same as 'extsnap revert DOMAIN <current snapshot>'. The discarded\n"
    "overlays are deleted (and listed); fresh, empty overlays take their place.\n"
    "Refused when no snapshot is current, or when its saved state is recorded as\n"
    "inexact (a cancelled online delete or commit of it; see 'extsnap revert').\n"
    "\n"
    "  --force   refresh even when the current snapshot's saved state is inexact\n"
    "\n" ES_DOMAIN_SAFETY_USAGE "\n" ES_DOMAIN_OPTS_USAGE "\n" ES_PLAN_JSON_USAGE "\n"
    "Exit status: 0 done (or planned, with --dry-run), 1 refused or failed, 2 usage.\n",
    run,
};

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_snap_refresh;
    es_domain_opts o;
    bool force;
    int r = es_domain_parse_flag(cmd, &o, argc, argv, 1, "DOMAIN", "force", &force);
    if (r >= 0)
        return r;
    es_err e = {0};
    snap_ctx *ctx = NULL;
    snap_plan *p = NULL;
    int status = ES_EXIT_FAIL;
    if (snap_ctx_open(&o.env, argv[optind], SNAP_OPEN_WRITE, &ctx, &e) < 0) {
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
                                                         .refresh = true, .force = force},
                                     &p, &e) < 0)
            es_cmd_error(cmd->name, &e);
        else
            status = es_domain_run_plan(cmd, &o, ctx, p);
    }
    snap_plan_free(p);
    snap_ctx_close(ctx);
    return status;
}
