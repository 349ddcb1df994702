/* Which image files are still needed, so that nothing another chain uses is
 * ever deleted (peers' pain #1: "deleting a snapshot destroyed the wrong
 * file"). A file is needed when the domain config, or any snapshot's
 * <domain>, <disks> or <revertDisks>, names it or names an image whose
 * backing chain goes through it; and, checked separately, when an image in
 * the same directory uses it as its backing file. Files are compared by
 * identity (device and inode), not by name. */
#ifndef ES_SNAP_REFS_H
#define ES_SNAP_REFS_H

#include <stdbool.h>
#include <stddef.h>

#include "domxml/domain.h"
#include "domxml/snapshot.h"
#include "util/err.h"
#include "util/str.h"
#include "util/strv.h"

typedef struct snap_fileset {
    unsigned long long *dev, *ino;
    size_t n;
} snap_fileset;

void snap_fileset_free(snap_fileset *s);
bool snap_fileset_has(const snap_fileset *s, unsigned long long dev, unsigned long long ino);
/* Add the file at path alone (nothing when it does not exist). */
int snap_fileset_add_file(snap_fileset *s, const char *root, const char *path, es_err *e);
/* Add the chains of every disk source of a domain. */
int snap_fileset_add_domain(snap_fileset *s, const char *root, const domxml_domain *d,
                            es_err *e);
/* Add the chains of a snapshot's <domain>; of its <disks> unless
 * skip_disks; of its <revertDisks>. */
int snap_fileset_add_snapshot(snap_fileset *s, const char *root, const domxml_snapshot *snap,
                              bool skip_disks, es_err *e);

/* Is the file at path (as seen under root) in s? A missing file is not. */
bool snap_fileset_has_path(const snap_fileset *s, const char *root, const char *path);

/* Images in path's directory, other than those in `ignore`, whose backing
 * file is path: *users gets their names. */
int snap_find_dependents(const char *root, const char *path, const es_strv *ignore,
                         es_strv *users, es_err *e);

#endif
