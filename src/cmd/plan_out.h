/* The common end of a mutating domain command: the plan printed (--dry-run)
 * or executed and reported. With -v the plan is printed once, before the
 * work, and the result then names it by its summary instead of repeating it. */
#ifndef ES_CMD_PLAN_OUT_H
#define ES_CMD_PLAN_OUT_H

#include <stdbool.h>

#include "cmd/domain_opts.h"
#include "snap/context.h"
#include "snap/txn/plan.h"

/* -v (human output): the plan on stdout, flushed before the work starts. */
void es_plan_print_before(const es_domain_opts *o, const snap_plan *p);

/* True when the result must not list the plan again. */
bool es_plan_printed_before(const es_domain_opts *o);

/* The result of a finished run: the whole plan (human or JSON), or its
 * title line only when es_plan_print_before printed it. */
void es_plan_print_done(const es_domain_opts *o, const snap_plan *p, const char *title);

/* Dry run: print the plan. Otherwise execute it and print what was done
 * (unless -q). Returns the exit status. */
int es_domain_run_plan(const es_cmd *cmd, const es_domain_opts *o, snap_ctx *c,
                       const snap_plan *p);

/* The plan as JSON with "dry-run" set, or NULL (the error printed). */
json_object *es_plan_json(const es_domain_opts *o, const snap_plan *p, bool dry_run);

/* Print a plan as the commands do (human or JSON), with the dry-run flag. */
void es_domain_print_plan(const es_domain_opts *o, const snap_plan *p, const char *title,
                          bool dry_run);

#endif
