/* Planning 'delete DOMAIN NAME': removing one snapshot offline, where
 * libvirt needs QEMU (9.0 only for the current leaf) or refuses (>= 9.7:
 * non-leaf outside the active chain, several children).
 *
 *   - current snapshot, or one with children: its overlay (per disk: the one
 *     image that uses its frozen image as backing file) is merged into the
 *     frozen image, which survives, then removed; what used the overlay is
 *     repointed (commit_range.h has the rules and the refusals);
 *   - a leaf that is not current: the changes after it were discarded when
 *     the domain left it, so nothing is merged; its frozen images, the
 *     images between them and the parent's frozen images (--no-metadata
 *     overlays) and any overlay left over are deleted when nothing else
 *     needs them (config,
 *     every other snapshot's saved definition and <revertDisks>, the
 *     current snapshot's live <disks>, another domain, any other image
 *     using them as backing file) and they are overlays (a base image with
 *     no backing file is never deleted: the note says so);
 *   - metadata_only (--metadata): only the metadata files; children are
 *     re-parented and the parent becomes current if it was; images and
 *     config untouched (libvirt's snapshot-delete --metadata).
 * Always: children re-parented to its parent, the parent current when it
 * was current (no current snapshot when it was a root), and the parent's
 * <disks> and <revertDisks> follow the overlay rule (parent_disks.h). */
#ifndef ES_SNAP_DELETE_H
#define ES_SNAP_DELETE_H

#include <stdbool.h>

#include "snap/context.h"
#include "snap/txn/plan.h"
#include "util/err.h"

int snap_plan_delete(snap_ctx *c, const char *name, bool metadata_only, snap_plan **out,
                     es_err *e);

#endif
