/* The files the snapshot model needs to exist, one rule for verify (a
 * missing one is an error) and doctor (the same, and nothing else missing
 * is). A file is required when the domain config names it as a disk
 * source, or a snapshot's <domain> or <revertDisks> does (what the
 * snapshot froze, what a revert left), or, for the current snapshot when
 * it has no <revertDisks>, its <disks> (the overlays it made, the live
 * images then). Any other snapshot's <disks> name overlays that a revert
 * or a later snapshot's merge may have removed: libvirt's files keep the
 * names, the files are rightly gone. Network and volume sources are not
 * files. The chains below required files are required too; callers walk
 * them in their own graph. */
#ifndef ES_SNAP_REQUIRED_H
#define ES_SNAP_REQUIRED_H

#include "snap/context.h"

/* who: "the domain config" or the snapshot's name (owned by c). */
typedef void (*snap_required_fn)(const char *path, const char *who, void *arg);

/* Call fn for every required file of domain c, config first. */
void snap_required_files(const snap_ctx *c, snap_required_fn fn, void *arg);

#endif
