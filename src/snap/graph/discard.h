/* Which files an operation that leaves the current state (revert, refresh)
 * deletes: the images that held only that state. An image is discarded
 * when it lies in a chain being left (a disk of the old config, or a live
 * overlay of the old current snapshot) ABOVE an image the snapshots still
 * need, and nothing needs it any more (refs.h): not the new config, not any
 * snapshot's <domain>, <disks> or <revertDisks> (the old current's <disks>
 * excepted when they were its live overlays), and no image in the same
 * directory uses it as backing file. A chain that never reaches an image
 * the snapshots need (a disk added by hand, say) is left alone entirely. */
#ifndef ES_SNAP_DISCARD_H
#define ES_SNAP_DISCARD_H

#include <stdbool.h>

#include "domxml/domain.h"
#include "domxml/snapshot_list.h"
#include "snap/context.h"
#include "snap/txn/plan.h"
#include "util/err.h"
#include "util/str.h"
#include "util/strv.h"

typedef struct snap_discard_input {
    const domxml_domain *old_config;
    const domxml_domain *new_config;
    const domxml_snapshot_list *snaps;   /* the metadata as the plan leaves it */
    const domxml_snapshot *old_current;  /* current before, not after (NULL: none) */
    bool old_current_live_in_disks;      /* its <disks> were its live overlays */
    const es_strv *live;               /* the old current's live overlays */
} snap_discard_input;

/* Add the deletes (with reason) and notes about kept files to p. */
int snap_plan_discards(snap_ctx *c, const snap_discard_input *d, const char *reason,
                       snap_plan *p, es_err *e);

#endif
