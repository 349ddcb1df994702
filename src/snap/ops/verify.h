/* 'verify DOMAIN': does the domain's state hold together, for CI and
 * before/after maintenance? Read only (shared lock). The invariants follow
 * from the model (docs/snap-design.md):
 *   - nothing is pending: no journal of an interrupted operation;
 *   - metadata: every entry of the snapshot directory loads as libvirt
 *     loads it, names are unique and equal to their file names, parents
 *     exist and never loop, at most one snapshot is current (none is a
 *     warning: libvirt accepts it, and 'revert base' leaves none);
 *   - images: every image the domain needs exists and opens, with its whole
 *     backing chain (the config's disks, every snapshot's saved images,
 *     <revertDisks> and the current snapshot's live <disks>); every qcow2
 *     image the domain's files name passes the engine's check (qemu-img
 *     check's rules: corruption is an error, leaked clusters a warning; an
 *     image a running VM writes is not checked, a warning);
 *   - the tree: each snapshot's overlay (<disks>, <revertDisks>), where it
 *     exists, has the snapshot's frozen image (its saved <domain> source) as
 *     backing file; a snapshot's frozen image lies above its parent's; the
 *     config's disks are the current snapshot's live overlays or above them;
 *     no disk is marked <snapshotDeleteInProgress/>;
 *   - no snapshot's saved state is recorded as inexact (a cancelled online
 *     delete or commit wrote part of the merge into it: inexact.h);
 *   - no qcow2 image in the directories holding the domain's images that
 *     nothing names (not this domain, not another one): a warning, never
 *     deleted;
 *   - what a disk description says about its image file holds for the file
 *     (verify_props.h): an <encryption> the header has, no overlay reading an
 *     encrypted image without its secret, no <slices> on a qcow2 overlay. */
#ifndef ES_SNAP_VERIFY_H
#define ES_SNAP_VERIFY_H

#include "snap/context.h"
#include "snap/ops/verify_report.h"
#include "util/err.h"

/* Check the domain of c (opened with SNAP_OPEN_READ). -1 only when the
 * check itself could not run (out of memory); problems go into r. */
int snap_verify(snap_ctx *c, snap_verify_report *r, es_err *e);

#endif
