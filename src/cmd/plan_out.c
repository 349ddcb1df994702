#include "cmd/plan_out.h"

#include <stdio.h>

#include "cmd/json_out.h"
#include "snap/txn/exec.h"
#include "snap/txn/plan_check.h"
#include "snap/txn/plan_json.h"
#include "snap/txn/plan_print.h"

bool es_plan_printed_before(const es_domain_opts *o)
{
    return o->env.verbose && !o->json;
}

void es_plan_print_before(const es_domain_opts *o, const snap_plan *p)
{
    if (!es_plan_printed_before(o))
        return;
    snap_plan_print(stdout, p, "Plan:");
    /* Before a long merge, and in order with the errors on stderr. */
    fflush(stdout);
}

void es_plan_print_done(const es_domain_opts *o, const snap_plan *p, const char *title)
{
    if (es_plan_printed_before(o))
        snap_plan_print_title(stdout, p, title);
    else
        es_domain_print_plan(o, p, title, false);
}

json_object *es_plan_json(const es_domain_opts *o, const snap_plan *p, bool dry_run)
{
    json_object *j = NULL;
    es_err e = {0};
    if (snap_plan_to_json(p, false, &j, &e) < 0) {
        es_cmd_error(o->env.cmd, &e);
        return NULL;
    }
    json_object_object_add(j, "dry-run", json_object_new_boolean(dry_run));
    return j;
}

void es_domain_print_plan(const es_domain_opts *o, const snap_plan *p, const char *title,
                          bool dry_run)
{
    if (!o->json) {
        snap_plan_print(stdout, p, title);
        return;
    }
    json_object *j = es_plan_json(o, p, dry_run);
    if (!j)
        return;
    es_json_print(stdout, j);
    fputc('\n', stdout);
    json_object_put(j);
}

int es_domain_run_plan(const es_cmd *cmd, const es_domain_opts *o, snap_ctx *c,
                       const snap_plan *p)
{
    es_err e = {0};
    if (o->env.dry_run) {
        /* The refusals the real run makes before its journal. */
        if (snap_plan_check(c, p, &e) < 0) {
            es_cmd_error(cmd->name, &e);
            return ES_EXIT_FAIL;
        }
        if (!o->env.quiet)
            es_domain_print_plan(o, p, "Plan (dry run, nothing changed):", true);
        return ES_EXIT_OK;
    }
    es_plan_print_before(o, p);
    int rc = snap_execute(c, p, &e);
    es_domain_progress_end(o);
    if (rc < 0) {
        es_cmd_error(cmd->name, &e);
        return ES_EXIT_FAIL;
    }
    if (!o->env.quiet)
        es_plan_print_done(o, p, "Done:");
    return ES_EXIT_OK;
}
