/* What a snapshot's <disks> and <revertDisks> must name once the tree
 * changed under it (a child deleted, merged or committed away): the one
 * rule every plan that removes snapshots applies to the snapshot that loses
 * a child (docs/snap-design.md, "The overlay rule").
 *
 * For each disk d that snapshot P froze, with F = P's frozen image of d
 * (the source in P's saved <domain>), an overlay of F is in use
 *   - by a child C of P (as the plan leaves the tree): the image directly
 *     above F in the backing chain of C's saved image of d (C's frozen
 *     image, or what lies between it and F, e.g. a --no-metadata overlay);
 *   - by the live config when P is current: the image directly above F in
 *     the chain of the config's disk d.
 * Then:
 *   <disks>:       with children using an overlay of F: the entry as it is
 *                  when it names one of those, else the oldest such
 *                  child's (creation time, then name). Without: the live
 *                  overlay when P is current; for a non-current leaf the
 *                  entry stays as it is (it names the overlay that held
 *                  the state discarded when the domain left P; libvirt
 *                  leaves it too, and the file may be gone), except that
 *                  a leaf's <revertDisks> become its <disks>.
 *   <revertDisks>: P current: the live overlays, one entry per <disks>
 *                  entry, when for some disk the live overlay is not the
 *                  <disks> one; none otherwise. Other snapshots' are not
 *                  touched (libvirt never leaves any there).
 * A disk whose frozen image or in-use overlays cannot be told (no saved
 * definition, a chain that does not reach F) keeps its entries. */
#ifndef ES_SNAP_PARENT_DISKS_H
#define ES_SNAP_PARENT_DISKS_H

#include <stdbool.h>

#include "domxml/domain.h"
#include "domxml/snapshot.h"
#include "snap/context.h"
#include "snap/graph/imggraph.h"
#include "snap/graph/range.h"
#include "util/err.h"
#include "util/str.h"
#include "util/strv.h"

/* The domain's files as a plan leaves them: c->snaps already changed
 * (parents, saved definitions, current), minus the snapshots in gone. */
typedef struct snap_after {
    const snap_range *gone;       /* snapshots the plan removes (NULL: none) */
    const domxml_domain *config;  /* the domain config the plan writes */
    const snap_repls *repl;       /* images merged away, and what replaces them */
} snap_after;

/* Did snapshot s freeze disk target (an external <disks> entry with a
 * source)? */
bool snap_froze_disk(const domxml_snapshot *s, const char *target);

/* Apply the rule to p (a snapshot that stays) in place; a line for each
 * change goes to why. g: the image graph from before the plan. */
int snap_parent_disks_derive(const snap_ctx *c, const snap_graph *g, const snap_after *a,
                             domxml_snapshot *p, es_strv *why, es_err *e);

#endif
