/* A line of snapshots that a plan removes, and the images it merges away
 * with what takes their place: what commit_range.h plans and what the
 * overlay rule (parent_disks.h) reads, in a header of their own so that
 * neither includes the other. */
#ifndef ES_SNAP_RANGE_H
#define ES_SNAP_RANGE_H

#include <stdbool.h>
#include <stddef.h>

#include "domxml/domain.h"
#include "domxml/snapshot.h"

typedef struct snap_range {
    domxml_snapshot **v;   /* the snapshots removed, oldest first; v[i+1]'s parent is v[i] */
    size_t n;
    domxml_snapshot *base; /* v[0]'s parent, which stays; NULL: v[0] is a root */
} snap_range;

/* An image removed, and the image that takes its place in libvirt's files. */
typedef struct snap_repl {
    size_t node;
    char *to;          /* as libvirt names it (absolute) */
    char *to_format;   /* qcow2 or raw */
    const domxml_disk *to_disk; /* the saved disk describing `to` (borrowed from the
                                   context): its image-only properties (image_props.h) */
} snap_repl;

typedef struct snap_repls {
    snap_repl *v;
    size_t n;
} snap_repls;

void snap_repls_free(snap_repls *r);

/* Is s one of the range's snapshots? */
bool snap_range_has(const snap_range *r, const domxml_snapshot *s);

#endif
