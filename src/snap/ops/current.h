/* Planning 'current DOMAIN NAME': make NAME libvirt's current snapshot
 * (<active>1</active> in its file, 0 in the old current's), nothing else.
 *
 * In extsnap's model (and newer libvirt's, reference libvirt.md §7, §10)
 * the current snapshot is the one whose live overlays the domain's disks
 * are on: its <revertDisks> when it has them, else its <disks>. refresh
 * discards what lies above them, revert and libvirt >= 9.7 delete them as
 * "the state being left", create makes the next snapshot its child, and
 * delete merges them. Flipping the marker alone must not change what the
 * domain runs on, so it is allowed only when that is already so: for every
 * disk of the config that NAME froze, the config's image is NAME's live
 * overlay, or lies above it (a --no-metadata overlay), and no image of
 * that stretch of the chain, NAME's live overlay included, is the frozen
 * image of a snapshot (that snapshot, not NAME, is then what the domain's
 * state descends from). Otherwise revert is the way to NAME's state.
 * Also refused: a NAME without a saved <domain> (its frozen images are
 * unknown), and an old current with <revertDisks> (they would be left on
 * a snapshot that is not current, where nothing reads them). */
#ifndef ES_SNAP_CURRENT_H
#define ES_SNAP_CURRENT_H

#include "snap/context.h"
#include "snap/txn/plan.h"
#include "util/err.h"

/* The rule above for one disk k of the config that t froze: 0 when k is
 * on t's state, else -1 and e says why (verify reports the same for the
 * current snapshot). */
int snap_current_disk_check(snap_ctx *c, const domxml_snapshot *t, const domxml_disk *k,
                            es_err *e);

/* The plan; an empty one (snap_plan_empty) when name is already current. */
int snap_plan_set_current(snap_ctx *c, const char *name, snap_plan **out, es_err *e);

#endif
