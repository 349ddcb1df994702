/* File helpers of the snapshot manager, over util/fileio (so that the crash
 * tests' fault injection sees every change). */
#ifndef ES_SNAP_FSUTIL_H
#define ES_SNAP_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

/* Read a whole file (at most max bytes; larger is an error). A missing file
 * is not an error: *exists false, *text NULL. */
int snap_read_file(const char *path, size_t max, char **text, size_t *len, bool *exists,
                   es_err *e);
/* Remove a file; a missing one is fine. */
int snap_unlink_if_exists(const char *path, es_err *e);
/* fsync the directory holding path. */
int snap_fsync_parent(const char *path, es_err *e);
/* Does path exist (without following a final symlink)? */
bool snap_path_exists(const char *path);

#endif
