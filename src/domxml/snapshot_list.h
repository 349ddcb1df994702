/* All snapshots of one domain, as libvirt loads them at start-up from
 * <snapshot-dir>/<domain>/: every entry of that directory is read, whatever
 * its name. Queries (current, children) and the tree's consistency rules. */
#ifndef ES_DOMXML_SNAPSHOT_LIST_H
#define ES_DOMXML_SNAPSHOT_LIST_H

#include <stddef.h>

#include "domxml/snapshot.h"
#include "util/err.h"

typedef struct domxml_snapshot_list {
    char *dir;               /* the directory read (host path) */
    domxml_snapshot **snaps; /* ordered by file name */
    char **files;            /* the directory entry each came from */
    size_t n;
    /* With DOMXML_LOAD_SKIP_BAD: entries that did not parse, and why. */
    char **bad_files;
    char **bad_errors;
    size_t nbad;
} domxml_snapshot_list;

enum {
    /* Record unreadable entries in bad_files/bad_errors instead of failing
     * (for commands that report or repair). */
    DOMXML_LOAD_SKIP_BAD = 1u << 0,
};

/* Load every entry of dir, a path as seen under root (root NULL: a host
 * path). A missing directory is an empty list: the domain has no snapshots.
 * Without SKIP_BAD, the first entry that does not parse is an error naming
 * it. */
int domxml_snapshot_list_load(const char *root, const char *dir, unsigned flags,
                              domxml_snapshot_list **out, es_err *e);
void domxml_snapshot_list_free(domxml_snapshot_list *l);

domxml_snapshot *domxml_snapshot_list_find(const domxml_snapshot_list *l, const char *name);
/* The snapshot with <active>1</active> (the first, if check was skipped), or NULL. */
domxml_snapshot *domxml_snapshot_list_current(const domxml_snapshot_list *l);
/* The snapshots whose parent is name (NULL: the roots), in list order.
 * *out is malloc'd (NULL when *n is 0). */
int domxml_snapshot_list_children(const domxml_snapshot_list *l, const char *name,
                                  domxml_snapshot ***out, size_t *n, es_err *e);

enum {
    /* Accept a non-empty list with no current snapshot (libvirt allows it,
     * e.g. after snapshot-delete --metadata of a current root). */
    DOMXML_CHECK_ALLOW_NO_CURRENT = 1u << 0,
    /* Accept several snapshots claiming to be current (libvirt loads them,
     * picking one by directory order): for the command that repairs it. */
    DOMXML_CHECK_ALLOW_MANY_CURRENT = 1u << 1,
};

/* The rules that keep libvirt and extsnap agreeing on the tree: each file is
 * <name>.xml, names are valid and unique, exactly one snapshot is current,
 * every parent exists, and no parent chain loops. The error names the
 * snapshot and file concerned. */
int domxml_snapshot_list_check(const domxml_snapshot_list *l, unsigned flags, es_err *e);

#endif
