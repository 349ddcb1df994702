#include "cmd/plan_out.h"

#include <stdio.h>

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
