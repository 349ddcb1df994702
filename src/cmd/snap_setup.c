/* extsnap setup: move a new domain's images to PATH/disks. */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include "cmd/cmd.h"
#include "cmd/domain_opts.h"
#include "cmd/plan_out.h"
#include "snap/context.h"
#include "snap/txn/session.h"
#include "snap/txn/exec.h"
#include "util/fsutil.h"
#include "util/readfile.h"
#include "snap/ops/setup.h"
#include "snap/txn/plan_print.h"

static int run(int argc, char **argv);

typedef struct setup_opts {
    es_domain_opts d;
} setup_opts;

static const es_opt setup_table[] = {
    ES_DOMAIN_OPTS(setup_opts, d),
    ES_OPT_END,
};

const es_cmd es_cmd_snap_setup = {
    .name = "setup",
    .summary = "move a domain's disk images to PATH/disks before its first snapshot",
    .synopsis = "[OPTIONS] DOMAIN PATH",
    .description =
        "Prepare a shut-off domain for snapshots (the original script's setup): move\n"
        "each writable disk's image to PATH/disks/<domain>-<target>.base (e.g.\n"
        "/srv/vm/disks/web-vda.base; one name scheme for any number of disks, and\n"
        "snapshot overlays then land beside it as <domain>-<target>.<snapshot>) and\n"
        "point the domain config at it. PATH must exist (as seen under --root);\n"
        "PATH/disks is created. Readonly disks, cdroms, floppies and non-file disks\n"
        "stay where they are.\n",
    .details =
        "On the same file system the image gets its new name as a hard link (no data\n"
        "copied). Across file systems, or where the link is refused, it is copied\n"
        "sparsely (SEEK_DATA/SEEK_HOLE: holes and zero blocks stay holes; within\n"
        "one XFS or btrfs the extents are shared, not written), flushed, and\n"
        "compared byte for byte with the original under a temporary name before it\n"
        "takes the new name. The config then switches every disk at once (journal),\n"
        "and only after that are the original names removed. A run interrupted\n"
        "before the switch leaves the new files; setup run again takes them over\n"
        "when they hold the same bytes.\n"
        "\n"
        "Refused once the domain has snapshots, for an image with a backing file (a\n"
        "chain cannot be moved piece by piece: flatten it first), for an image\n"
        "another domain or another image's backing link uses, and when a new name\n"
        "is taken by a file with other content.\n"
        "\n" ES_DOMAIN_SAFETY_USAGE "\n" ES_DOMAIN_ARG_USAGE "\n" ES_PLAN_JSON_USAGE,
    .exit_status = "0 done (or planned, with --dry-run), 1 refused, failed or a usage error.",
    .opts = setup_table,
    .operands = ES_OPERANDS_DOMAIN,
    .run = run,
};

static int execute(const es_cmd *cmd, const es_domain_opts *o, snap_ctx *c, snap_setup *s,
                   const snap_plan *p)
{
    if (o->env.dry_run) {
        es_domain_print_plan(o, p, "Plan (dry run, nothing changed):", true);
        return ES_EXIT_OK;
    }
    if (snap_plan_empty(p)) {
        if (!o->env.quiet)
            es_domain_print_plan(o, p, "Nothing to do:", false);
        return ES_EXIT_OK;
    }
    es_plan_print_before(o, p);
    es_err e = {0};
    int rc = snap_setup_stage(c, s, &e);
    es_domain_progress_end(o);
    if (rc < 0) {
        es_err_prefix(&e, "nothing was changed");
        es_cmd_error(cmd->name, &e);
        return ES_EXIT_FAIL;
    }
    if (snap_execute(c, p, &e) < 0) {
        /* Before its commit point the plan undid itself: the staged names
         * are then the only trace; after it they are the disks. */
        if (!es_path_exists(c->journal_path))
            snap_setup_unstage(c, s);
        es_cmd_error(cmd->name, &e);
        return ES_EXIT_FAIL;
    }
    if (!o->env.quiet)
        es_plan_print_done(o, p, "Done:");
    return ES_EXIT_OK;
}

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_snap_setup;
    setup_opts all = {0};
    int parsed = es_domain_parse(cmd, &all.d, &all, argc, argv, 2, "DOMAIN PATH");
    es_domain_opts o = all.d;
    if (parsed >= 0)
        return parsed;
    es_err e = {0};
    snap_ctx *ctx = NULL;
    snap_plan *p = NULL;
    snap_setup *s = NULL;
    int status = ES_EXIT_FAIL;
    if (snap_session_begin(&o.env, argv[optind], SNAP_OPEN_WRITE, &ctx, &e) < 0 ||
        snap_plan_setup(ctx, argv[optind + 1], &s, &p, &e) < 0)
        es_cmd_error(cmd->name, &e);
    else
        status = execute(cmd, &o, ctx, s, p);
    snap_plan_free(p);
    snap_setup_free(s);
    snap_ctx_close(ctx);
    return status;
}
