/* A plan for people: one line per file it touches, in execution order. */
#ifndef ES_SNAP_PLAN_PRINT_H
#define ES_SNAP_PLAN_PRINT_H

#include <stdio.h>

#include "snap/txn/plan.h"

/* First line: title (e.g. "Plan:" or "Done:") and the plan's summary. */
void snap_plan_print(FILE *out, const snap_plan *p, const char *title);

/* That first line only: for a result whose plan was printed before (-v). */
void snap_plan_print_title(FILE *out, const snap_plan *p, const char *title);

#endif
