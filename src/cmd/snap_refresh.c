/* extsnap refresh: discard the changes since the current snapshot. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "cmd/cmd.h"
#include "cmd/domain_opts.h"
#include "snap/context.h"
#include "snap/revert.h"

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
    enum { OPT_FORCE = 0x2000 };
    static const struct option longopts[] = {
        ES_DOMAIN_LONGOPTS, {"force", no_argument, NULL, OPT_FORCE}, {NULL, 0, NULL, 0}};
    es_domain_opts o;
    es_domain_opts_init(&o, cmd);
    bool force = false;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ES_DOMAIN_SHORTOPTS, longopts, NULL)) != -1) {
        if (c == OPT_FORCE) {
            force = true;
            continue;
        }
        int h = es_domain_opt(cmd, &o, c, optarg);
        if (h < 0)
            return ES_EXIT_USAGE;
        if (h == 0)
            return es_domain_bad_option(cmd, argv);
    }
    if (argc - optind != 1)
        return es_cmd_usage_error(cmd, "expected DOMAIN");
    if (es_domain_opts_check(cmd, &o) < 0)
        return ES_EXIT_FAIL;
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
        else if (snap_plan_revert_ex(ctx, "refresh", cur->name, (long long)time(NULL), force,
                                     &p, &e) < 0)
            es_cmd_error(cmd->name, &e);
        else
            status = es_domain_run_plan(cmd, &o, ctx, p);
    }
    snap_plan_free(p);
    snap_ctx_close(ctx);
    return status;
}
