/* extsnap current: show or set a domain's current snapshot (virsh
 * snapshot-current), offline. */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include "cmd/cmd.h"
#include "cmd/domain_opts.h"
#include "cmd/plan_out.h"
#include "cmd/json_out.h"
#include "snap/context.h"
#include "snap/ops/current.h"
#include "snap/query.h"
#include "snap/txn/session.h"

static int run(int argc, char **argv);

typedef struct current_opts {
    es_domain_opts d;
} current_opts;

static const es_opt current_table[] = {
    ES_DOMAIN_OPTS(current_opts, d),
    ES_OPT_END,
};

const es_cmd es_cmd_snap_current = {
    .name = "current",
    .summary = "show or set a domain's current snapshot",
    .synopsis = "[OPTIONS] DOMAIN\n[OPTIONS] DOMAIN NAME",
    .description =
        "Without NAME, print the name of the domain's current snapshot (what 'virsh\n"
        "snapshot-current --name' prints); when no snapshot is current, print\n"
        "nothing and exit 0 (libvirt accepts that state, e.g. after 'revert base'),\n"
        "so that scripts can test for an empty string. With NAME, make NAME the\n"
        "current snapshot: <active> is rewritten in its metadata file and in the\n"
        "old current's (in every other file marked current), nothing else, and\n"
        "only when the disks already are on NAME's state (below).\n",
    .details =
        "Setting the marker is a repair, not a way to move between snapshots: the\n"
        "current snapshot is the one whose live overlays (its <revertDisks>, else\n"
        "its <disks>) the domain's disks are on. 'refresh' and 'revert' discard\n"
        "what lies above them, libvirt >= 9.7 deletes them when it reverts, and\n"
        "'create' makes the next snapshot a child of the current one. So NAME is\n"
        "made current only when the config already is on its state: for every\n"
        "disk NAME froze, the config's image is NAME's live overlay or lies above\n"
        "it (a --no-metadata overlay), and no image of that stretch, NAME's overlay\n"
        "included, is another snapshot's frozen image. Otherwise it is refused\n"
        "with the disk and image concerned: to go back to NAME's state, use\n"
        "revert, which gives the disks fresh overlays on NAME's frozen images.\n"
        "Refused too: a NAME without a saved <domain> (its images are unknown), and\n"
        "an old current snapshot with <revertDisks>. NAME already current: nothing\n"
        "to do, exit 0. Typical use: the marker was lost (a hand edit), put on the\n"
        "wrong snapshot, or is on several (libvirt then picks one by directory\n"
        "order; the other commands refuse such a domain, this one clears the\n"
        "others).\n"
        "\n" ES_DOMAIN_SAFETY_USAGE "\n" ES_DOMAIN_ARG_USAGE "\n"
        "JSON output (--output=json) without NAME: {domain, current (name or null)}.\n"
        "With NAME: the plan, as the other changing commands print it.\n"
        "\n" ES_PLAN_JSON_USAGE,
    .exit_status = "0 shown, set, already current (or planned, with --dry-run), 1 refused, "
                   "failed or a usage error.",
    .opts = current_table,
    .operands = ES_OPERANDS_DOMAIN,
    .run = run,
};

static int show(const es_cmd *cmd, const es_domain_opts *o, const char *domain)
{
    es_err e = {0};
    snap_ctx *ctx = NULL;
    if (snap_session_begin(&o->env, domain, SNAP_OPEN_READ, &ctx, &e) < 0) {
        es_cmd_error(cmd->name, &e);
        return ES_EXIT_FAIL;
    }
    /* Two markers (libvirt picks one by directory order) or a broken tree
     * (libvirt then has none): the name printed is not what libvirt uses. */
    es_err chk = {0};
    if (snap_query_check_tree(ctx, &chk) < 0)
        es_cmd_errorf(cmd->name, "warning: %s", es_err_str(&chk, (char[2048]){0}, 2048));
    const domxml_snapshot *cur = snap_query_current(ctx);
    if (o->json) {
        json_object *j = es_json_new_object();
        es_json_add_str(j, "domain", ctx->name);
        es_json_add_str_or_null(j, "current", cur ? cur->name : NULL);
        es_json_print(stdout, j);
        fputc('\n', stdout);
        json_object_put(j);
    } else if (cur) {
        printf("%s\n", cur->name);
    }
    snap_ctx_close(ctx);
    return ES_EXIT_OK;
}

static int set(const es_cmd *cmd, es_domain_opts *o, const char *domain, const char *name)
{
    es_err e = {0};
    snap_ctx *ctx = NULL;
    snap_plan *p = NULL;
    int status = ES_EXIT_FAIL;
    if (snap_session_begin(&o->env, domain, SNAP_OPEN_WRITE_MARKERS, &ctx, &e) < 0 ||
        snap_plan_set_current(ctx, name, &p, &e) < 0) {
        es_cmd_error(cmd->name, &e);
    } else if (snap_plan_empty(p)) {
        /* Nothing to write: no journal either. */
        if (!o->env.quiet)
            es_domain_print_plan(o, p, "Nothing to do:", o->env.dry_run);
        status = ES_EXIT_OK;
    } else {
        status = es_domain_run_plan(cmd, o, ctx, p);
    }
    snap_plan_free(p);
    snap_ctx_close(ctx);
    return status;
}

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_snap_current;
    current_opts all = {0};
    int r = es_domain_parse(cmd, &all.d, &all, argc, argv, -1, NULL);
    if (r >= 0)
        return r;
    es_domain_opts o = all.d;
    int n = argc - optind;
    if (n < 1 || n > 2)
        return es_cmd_usage_error(cmd, "expected DOMAIN [NAME]");
    if (es_domain_opts_check(cmd, &o) < 0)
        return ES_EXIT_FAIL;
    if (n == 1) {
        if (o.env.dry_run)
            return es_cmd_usage_error(cmd, "--dry-run needs NAME (showing changes nothing)");
        return show(cmd, &o, argv[optind]);
    }
    return set(cmd, &o, argv[optind], argv[optind + 1]);
}
