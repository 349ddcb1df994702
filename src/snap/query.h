/* What the read-only commands show of a domain (list, disks, verify --all),
 * in the words of libvirt's files: gathered and decided here, printed by
 * cmd, which so needs no domxml of its own. */
#ifndef ES_SNAP_QUERY_H
#define ES_SNAP_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#include "domxml/domain.h"
#include "domxml/snapshot.h"
#include "snap/context.h"
#include "util/str.h"
#include "util/strv.h"
#include "util/err.h"

/* The snapshots of c, oldest first (creation time, then name): a new array
 * (free it) of pointers borrowed from c->snaps, *n of them. */
void snap_query_snapshots(const snap_ctx *c, domxml_snapshot ***out, size_t *n);

/* The current snapshot, or NULL. */
const domxml_snapshot *snap_query_current(const snap_ctx *c);

/* Is s the top of a tree among v[0..n): no parent, or one not among v. */
bool snap_query_is_root(domxml_snapshot *const *v, size_t n, const domxml_snapshot *s);

/* Does the snapshot tree hold together as libvirt requires (no current
 * snapshot is accepted)? -1 with what does not in e. */
int snap_query_check_tree(const snap_ctx *c, es_err *e);

/* A snapshot's disk entry: "external" (a default with a source), "default",
 * or the mode libvirt writes ("no", "internal", "manual" ...). */
const char *snap_query_snap_disk_mode(const domxml_snap_disk *d);

/* A config disk's type ("file", "block" ...) and device ("disk", "cdrom" ...). */
const char *snap_query_disk_type(const domxml_disk *k);
const char *snap_query_disk_device(const domxml_disk *k);

/* Has disk k a backing chain to walk (a file or block device with a source)? */
bool snap_query_disk_has_chain(const domxml_disk *k);

/* The snapshot called name; NULL with an error saying why: the domain has
 * none by that name, or its file is one libvirt would not load (c read
 * with bad files tolerated). */
const domxml_snapshot *snap_query_find(const snap_ctx *c, const char *name, es_err *e);

/* s's children (all: every descendant), oldest first: a new array (free
 * it) of pointers borrowed from c->snaps, *n of them. */
void snap_query_children(const snap_ctx *c, const domxml_snapshot *s, bool all,
                         domxml_snapshot ***out, size_t *n);

/* virsh snapshot-info's Location: "external" when the memory or a disk is
 * an external snapshot, else "internal" (libvirt's rule; a file without
 * <disks> so says internal). */
const char *snap_query_location(const domxml_snapshot *s);

/* The disk called target in s's saved <domain> (when s froze it,
 * snap/graph/parent_disks.h's snap_froze_disk, its source is the frozen
 * image), or NULL. */
const domxml_disk *snap_query_saved_disk(const domxml_snapshot *s, const char *target);

/* The metadata file of snapshot s exactly as stored (*text malloc'd). */
int snap_query_snapshot_text(const snap_ctx *c, const domxml_snapshot *s, char **text,
                             size_t *len, es_err *e);

/* The domains of env's config directory (its *.xml files, without the
 * suffix), sorted, added to names. */
int snap_query_domains(const snap_env *env, es_strv *names, es_err *e);

#endif
