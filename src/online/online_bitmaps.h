/* Persistent dirty bitmaps on the running-VM path, kept as libvirt 9.0
 * keeps them (and as the offline path does, qcow2/bitmap_merge.h,
 * qcow2/bitmap_inherit.h):
 *
 *  - create: in the snapshot's own transaction, each new overlay gets an
 *    empty enabled persistent bitmap of the same name and granularity for
 *    every recording, persistent, consistent bitmap of the image it covers
 *    (block-dirty-bitmap-add on the new node);
 *  - commit: QEMU's job marks in BASE's enabled bitmaps what it copies;
 *    then every bitmap name of TOP whose chain is valid (TOP down through
 *    consecutive images, each persistent, recording, consistent) is merged
 *    into BASE: added there (persistent, enabled, granularity of TOP's) when
 *    BASE lacks it, then block-dirty-bitmap-merge from the same-named
 *    bitmaps of TOP down to the image above BASE. On top of libvirt, a
 *    recording persistent bitmap of BASE that has no valid chain from TOP
 *    still gets the same-named bitmaps above it merged in (the offline
 *    rule), so no bit the offline path keeps is lost. Disabled bitmaps of
 *    BASE are never touched.
 *
 * When (snap_online_bitmaps_merge): once every commit job is pending and
 * before any is finalized, one transaction for all disks. Then an active
 * commit's disk is drained (a device's writes wait; QEMU 7.2 lets an NBD
 * export's through into TOP, lost with it: docs/online.md, Caveats) and BASE
 * holds every copied cluster; an intermediate commit's BASE is still
 * read-write (QEMU reopens it read-only at finalize, storing the bitmaps).
 * So no write can fall between the merge and the pivot (libvirt needs a
 * temporary bitmap for that: it merges after the pivot), the merged
 * images' nodes still exist (a -drive chain's are freed at the pivot), and
 * no blockdev-reopen is needed. A failed merge transaction changes nothing
 * (QEMU's transactions are atomic) and cancels the jobs: nothing is
 * switched. */
#ifndef ES_ONLINE_BITMAPS_H
#define ES_ONLINE_BITMAPS_H

#include <stddef.h>

#include <json-c/json.h>

#include "online/online_chain.h"
#include "qmp/qmp_client.h"
#include "qmp/qmp_nodes.h"
#include "util/err.h"
#include "util/strv.h"

/* -1 (e saying why) when a node of ch from index first to last holds a
 * bitmap that is inconsistent (QEMU stopped without storing it) or busy
 * (a backup job or an NBD export uses it). */
int snap_online_bitmaps_refuse(const qmp_chain *ch, size_t first, size_t last, const char *disk,
                               es_err *e);

/* create: append to actions the bitmap adds for a new overlay node called
 * overlay_node over below; what is added goes to what (text, may be NULL). */
void snap_online_bitmaps_propagate(const qmp_chain_node *below, const char *overlay_node,
                                   json_object *actions, es_strv *what);

/* commit of ch->nodes[top] down to (not including) ch->nodes[base] into
 * base: append the add and merge actions to actions (may be NULL: only
 * describe) and their description to what (may be NULL). */
void snap_online_bitmaps_commit_actions(const qmp_chain *ch, size_t top, size_t base,
                                        json_object *actions, es_strv *what);

/* The merges of n planned commits, run once their jobs are pending (see
 * above): chains read again from QEMU, one transaction for all. */
int snap_online_bitmaps_merge(qmp_client *c, const snap_online_commit *ocs, size_t n, es_err *e);

#endif
