/* Removing a line of snapshots and merging their images down: the engine
 * of 'delete' (one snapshot) and 'commit BASE TOP' (a range at once:
 * snap/ops/commit.h).
 *
 * Terms (docs/snap-design.md): the frozen image of snapshot S for disk d is
 * the source in S's saved <domain> (it holds S's state); S's overlay is the
 * image that took the writes after S (its <disks> entry, or the overlay a
 * revert made over the frozen image).
 *
 * Per disk, over the snapshots of the range that froze it (first .. last):
 *   B    = first's frozen image: "BASE's image", the image the merge goes
 *          into; it survives (for 'delete' it is S's frozen image; for
 *          'commit' it is the overlay BASE took its writes in, or, with
 *          BASE 'base', the disk's original image);
 *   TF   = last's frozen image;
 *   X    = the one image that uses TF as backing file (last's overlay, the
 *          state after the range), or none;
 *   L    = X (or TF when there is no X) and every image below it, down to
 *          and without B: all merged into B in one pass, then deleted.
 * Images that used X as backing file are repointed to B; wherever a libvirt
 * file names an image of L, it names B afterwards.
 *
 * Refused, naming the files and what they are to the domain (imgrole.h),
 * where merging would change what another branch reads: TF used by more
 * than one image (two children, a revert branch in <revertDisks>, a
 * --no-metadata overlay over the frozen image, a stray copy); an image of L
 * or B used by anything but the next image up; another domain using any of
 * them; a snapshot outside the range whose state is an image of L (other
 * than X) or B; X not named by any libvirt file; B a block device. */
#ifndef ES_SNAP_COMMIT_RANGE_H
#define ES_SNAP_COMMIT_RANGE_H

#include <stdbool.h>
#include <stddef.h>

#include "domxml/snapshot.h"
#include "snap/context.h"
#include "snap/graph/imggraph.h"
#include "snap/graph/range.h"
#include "snap/txn/plan.h"
#include "util/err.h"

/* Merges, rebases and deletes of the range's images into p, and what
 * replaces what into repl. what names the operation in refusals
 * ("delete snapshot s2"). */
int snap_range_plan_images(snap_ctx *c, const snap_graph *g, const snap_range *r,
                           const char *what, snap_plan *p, snap_repls *repl, es_err *e);

typedef struct snap_meta_opts {
    const snap_repls *repl;  /* images replaced (NULL: none) */
    bool derive_base_disks;  /* the base's <disks> and <revertDisks> follow the overlay
                                rule (parent_disks.h) */
} snap_meta_opts;

/* The libvirt files once the range is gone: its metadata files removed;
 * its children re-parented to r->base; in every other snapshot's saved
 * <domain> and in the config, a replaced image named by its replacement;
 * r->base current when the current snapshot was in the range (none when
 * r->base is NULL); with derive_base_disks, r->base's <disks> and
 * <revertDisks> by the overlay rule (parent_disks.h). Snapshots are
 * changed in c->snaps. */
int snap_range_plan_metadata(snap_ctx *c, const snap_graph *g, const snap_range *r,
                             const snap_meta_opts *o, snap_plan *p, es_err *e);

#endif
