/* The plan around a real run: with -v it is printed once, before the work,
 * and the result then names it by its summary instead of repeating it. */
#ifndef ES_CMD_PLAN_OUT_H
#define ES_CMD_PLAN_OUT_H

#include <stdbool.h>

#include "cmd/domain_opts.h"

/* -v (human output): the plan on stdout, flushed before the work starts. */
void es_plan_print_before(const es_domain_opts *o, const snap_plan *p);

/* True when the result must not list the plan again. */
bool es_plan_printed_before(const es_domain_opts *o);

/* The result of a finished run: the whole plan (human or JSON), or its
 * title line only when es_plan_print_before printed it. */
void es_plan_print_done(const es_domain_opts *o, const snap_plan *p, const char *title);

#endif
