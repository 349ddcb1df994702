/* extsnap recover: finish or undo an interrupted operation on a domain. */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include "cmd/cmd.h"
#include "cmd/domain_opts.h"
#include "snap/context.h"
#include "snap/txn/session.h"
#include "snap/txn/journal.h"
#include "online/online_exec.h"
#include "snap/txn/plan_json.h"
#include "snap/txn/recover.h"
#include "cmd/json_out.h"

static int run(int argc, char **argv);

typedef struct recover_opts {
    es_domain_opts d;
} recover_opts;

static const es_opt recover_table[] = {
    ES_ONLINE_OPT(recover_opts, d),
    ES_DOMAIN_OPTS(recover_opts, d),
    {.name = "description", .kind = ES_OPT_IGNORE, .arg = "TEXT", .section = "Accepted and ignored",
     .help = "as the interrupted command took it"},
    {.name = "disk", .kind = ES_OPT_IGNORE, .arg = "LIST", .section = "Accepted and ignored",
     .help = "as the interrupted command took it"},
    {.name = "no-metadata", .kind = ES_OPT_IGNORE, .section = "Accepted and ignored",
     .help = "as the interrupted command took it"},
    {.name = "metadata", .kind = ES_OPT_IGNORE, .section = "Accepted and ignored",
     .help = "as the interrupted command took it"},
    {.name = "force", .kind = ES_OPT_IGNORE, .section = "Accepted and ignored",
     .help = "as the interrupted command took it"},
    {.name = "no-vm-state", .kind = ES_OPT_IGNORE, .section = "Accepted and ignored",
     .help = "as the interrupted command took it"},
    ES_OPT_END,
};

const es_cmd es_cmd_snap_recover = {
    .name = "recover",
    .summary = "finish or undo an interrupted extsnap operation on a domain",
    .synopsis = "[OPTIONS] DOMAIN",
    .description =
        "Every extsnap operation on a domain records its plan in a journal\n"
        "(<snapshot-dir>/DOMAIN.extsnap.journal) before it changes anything, and\n"
        "removes it when done. If a run was interrupted (crash, power loss, kill),\n"
        "this finishes or undoes it, so that the domain is wholly before or wholly\n"
        "after the operation, and says which.\n",
    .details =
        "  - interrupted before its commit point: rolled back (new overlays removed,\n"
        "    every XML file and backing pointer given back its old content);\n"
        "  - interrupted while merging or after the commit point: rolled forward\n"
        "    (merges repeated, files written, discarded files deleted).\n"
        "Every mutating command does this first by itself; 'recover' does only this.\n"
        "When the VM runs, this goes through its QMP socket (--qmp, else the\n"
        "config's, as for the interrupted command): block jobs an interrupted run\n"
        "left in QEMU are cancelled (before the commit point) or finished (after it),\n"
        "merges still to do are done by QEMU.\n"
        "With --dry-run it shows the interrupted operation and what would be done.\n"
        "The messages of an interrupted command name the recover command line to run\n"
        "(with the same --root, directories and --qmp).\n"
        "\n"
        "The other options of the mutating commands (--description, --disk,\n"
        "--no-metadata, --metadata, --force) are accepted and change nothing, so that\n"
        "the interrupted command line works with 'recover DOMAIN' in place of the\n"
        "command and its operands.\n"
        "\n" ES_DOMAIN_ARG_USAGE "\n"
        "JSON output: {domain, found (false: nothing to do), action (rolled-back |\n"
        "rolled-forward), phase (prepare | merge | committed), dry-run, operation\n"
        "(the interrupted plan, as the other commands print it)}.\n",
    .exit_status = "0 recovered or nothing to do, 1 failed, 1 also for a usage error.",
    .opts = recover_table,
    .operands = ES_OPERANDS_DOMAIN,
    .run = run,
};

static void report(const es_domain_opts *o, const snap_ctx *c, const snap_recovery *r)
{
    const char *action = r->rolled_back ? "rolled-back" : "rolled-forward";
    if (o->json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "domain", json_object_new_string(c->name));
        json_object_object_add(j, "found", json_object_new_boolean(r->found));
        if (r->found) {
            json_object *plan = NULL;
            es_err e = {0};
            json_object_object_add(j, "action", json_object_new_string(action));
            json_object_object_add(j, "phase", json_object_new_string(snap_phase_name(r->phase)));
            if (snap_plan_to_json(r->plan, false, &plan, &e) == 0)
                json_object_object_add(j, "operation", plan);
        }
        json_object_object_add(j, "dry-run", json_object_new_boolean(o->env.dry_run));
        es_json_print(stdout, j);
        fputc('\n', stdout);
        json_object_put(j);
        return;
    }
    if (!r->found) {
        printf("Nothing to recover for domain %s.\n", c->name);
        return;
    }
    const char *head = r->rolled_back ? "interrupted before its commit point"
                                      : "interrupted after its commit point";
    printf("%s %s (%s, phase %s)\n",
           o->env.dry_run ? (r->rolled_back ? "Would roll back:" : "Would finish:")
                          : (r->rolled_back ? "Rolled back:" : "Finished:"),
           r->plan->summary ? r->plan->summary : r->plan->op, head, snap_phase_name(r->phase));
    const snap_plan *p = r->plan;
    if (r->rolled_back) {
        for (size_t i = p->nxml; i-- > 0;)
            printf("  %-10s %s\n", p->xml[i].old_text ? "restored" : "removed", p->xml[i].path);
        for (size_t i = p->nrebases; i-- > 0;)
            printf("  %-10s %s (backing file %s)\n", "restored", p->rebases[i].path,
                   p->rebases[i].old_backing ? p->rebases[i].old_backing : "none");
        for (size_t i = p->noverlays; i-- > 0;)
            printf("  %-10s %s (new overlay of disk %s)\n",
                   p->overlays[i].existed_empty ? "emptied" : "removed", p->overlays[i].path,
                   p->overlays[i].disk);
        return;
    }
    if (r->phase == SNAP_PHASE_MERGE) {
        for (size_t i = 0; i < p->nmerges; i++)
            printf("  %-10s %s into %s\n", "merged", p->merges[i].top, p->merges[i].base);
        for (size_t i = 0; i < p->nrebases; i++)
            printf("  %-10s %s\n", "rebased", p->rebases[i].path);
        for (size_t i = 0; i < p->nxml; i++)
            printf("  %-10s %s\n", p->xml[i].new_text ? "wrote" : "removed", p->xml[i].path);
    }
    for (size_t i = 0; i < p->nvmcopies; i++)
        if (p->vmcopies[i].restore)
            printf("  %-10s %s\n", "restored", p->vmcopies[i].to);
    for (size_t i = 0; i < p->ndeletes; i++)
        printf("  %-10s %s\n", "deleted", p->deletes[i].path);
}

/* The options of every command a run may have been interrupted in (create,
 * delete, commit, revert, refresh, setup) are taken, so that its command
 * line works with 'recover' in place of the command: the domain and VM
 * options locate what to recover, the others change nothing in it. */
static int parse(const es_cmd *cmd, es_domain_opts *o, int argc, char **argv)
{
    recover_opts all = {0};
    int r = es_domain_parse(cmd, &all.d, &all, argc, argv, 1, "DOMAIN");
    *o = all.d;
    return r;
}

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_snap_recover;
    es_domain_opts o;
    int parsed = parse(cmd, &o, argc, argv);
    if (parsed >= 0)
        return parsed;
    es_err e = {0};
    snap_ctx *ctx = NULL;
    snap_recovery r = {0};
    int status = ES_EXIT_FAIL;
    /* A running VM: through its QMP socket (QEMU's jobs left by the run too). */
    if (snap_online_recover_domain(&o.env, argv[optind], &ctx, &r, &e) < 0 ||
        (!ctx && (snap_session_begin(&o.env, argv[optind], SNAP_OPEN_RECOVER, &ctx, &e) < 0 ||
                  (o.env.dry_run ? snap_recover_inspect(ctx, &r, &e)
                                 : snap_recover(ctx, &r, &e)) < 0))) {
        es_cmd_error(cmd->name, &e);
    } else {
        status = ES_EXIT_OK;
        if (!o.env.quiet)
            report(&o, ctx, &r);
    }
    snap_recovery_clear(&r);
    snap_ctx_close(ctx);
    return status;
}
