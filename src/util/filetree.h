/* Directory trees copied and removed crash-safely (a vTPM's state: swtpm's
 * directory). Regular files and directories only: anything else in a tree
 * is refused, never followed. Through util/fileio like every change. */
#ifndef ES_UTIL_FILETREE_H
#define ES_UTIL_FILETREE_H

#include <stdbool.h>

#include "util/err.h"

/* Make dst a copy of the directory src (every file and directory with its
 * owner, mode and security.* / user.* attributes; filecopy.h). The tree is
 * built as tmp (beside dst; a stale one is removed first) and flushed; then
 * an existing dst is renamed to old (beside it; a stale one is removed
 * first), tmp to dst, and old is removed. Running it again after a crash at
 * any point finishes it: src is never changed, and dst is at every moment
 * either the old tree, missing (then old holds it), or the whole copy. */
int es_copy_tree_replace(const char *src, const char *dst, const char *tmp, const char *old,
                         es_err *e);

/* Remove path and everything under it; a missing path is fine. */
int es_remove_tree(const char *path, es_err *e);

/* Is path a directory (not following a final symbolic link)? */
bool es_is_dir(const char *path);

#endif
