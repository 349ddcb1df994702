/* extsnap describe: set or remove a snapshot's description, offline. */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include "cmd/cmd.h"
#include "cmd/domain_opts.h"
#include "cmd/plan_out.h"
#include "snap/context.h"
#include "snap/ops/describe.h"
#include "snap/txn/session.h"

static int run(int argc, char **argv);

typedef struct describe_opts {
    es_domain_opts d;
    const char *text;
} describe_opts;

static const es_opt describe_table[] = {
    {.name = "description", .kind = ES_OPT_STRING, .arg = "TEXT",
     .offset = offsetof(describe_opts, text),
     .help = "the new description (UTF-8; tab and newline are the only control characters allowed); an empty TEXT removes it"},
    ES_DOMAIN_OPTS(describe_opts, d),
    ES_OPT_END,
};

const es_cmd es_cmd_snap_describe = {
    .name = "describe",
    .summary = "set or remove a snapshot's description",
    .synopsis = "[OPTIONS] DOMAIN NAME --description TEXT",
    .description =
        "Set the description of snapshot NAME (the <description> element of its\n"
        "metadata, what 'virsh snapshot-edit' would change and 'extsnap list'\n"
        "shows), or remove it with an empty TEXT. Only that element of the file\n"
        "changes; the text is escaped for XML and must read back as written.\n",
    .details =
        "Refused: TEXT that is not UTF-8, or holds a control character other than\n"
        "tab and newline (a carriage return included: XML readers turn it into a\n"
        "newline) or a code point XML cannot carry. The same description already:\n"
        "nothing to do, exit 0.\n"
        "\n" ES_DOMAIN_SAFETY_USAGE "\n" ES_DOMAIN_ARG_USAGE "\n" ES_PLAN_JSON_USAGE,
    .exit_status = "0 done, already so (or planned, with --dry-run), 1 refused, failed or a "
                   "usage error.",
    .opts = describe_table,
    .operands = ES_OPERANDS_DOMAIN,
    .run = run,
};

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_snap_describe;
    describe_opts all = {0};
    int r = es_domain_parse(cmd, &all.d, &all, argc, argv, 2, "DOMAIN NAME");
    es_domain_opts o = all.d;
    if (r >= 0)
        return r;
    if (!all.text)
        return es_cmd_usage_error(cmd, "expected --description TEXT (an empty TEXT removes it)");
    es_err e = {0};
    snap_ctx *ctx = NULL;
    snap_plan *p = NULL;
    int status = ES_EXIT_FAIL;
    if (snap_session_begin(&o.env, argv[optind], SNAP_OPEN_WRITE, &ctx, &e) < 0 ||
        snap_plan_describe(ctx, argv[optind + 1], all.text, &p, &e) < 0) {
        es_cmd_error(cmd->name, &e);
    } else if (snap_plan_empty(p)) {
        /* Nothing to write: no journal either. */
        if (!o.env.quiet)
            es_domain_print_plan(&o, p, "Nothing to do:", o.env.dry_run);
        status = ES_EXIT_OK;
    } else {
        status = es_domain_run_plan(cmd, &o, ctx, p);
    }
    snap_plan_free(p);
    snap_ctx_close(ctx);
    return status;
}
