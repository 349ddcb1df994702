/* Small path-level file helpers over util/fileio (so that the crash tests'
 * fault injection sees every change). */
#ifndef ES_UTIL_FSUTIL_H
#define ES_UTIL_FSUTIL_H

#include <stdbool.h>

#include "util/err.h"

/* Remove a file; a missing one is fine. */
int es_unlink_if_exists(const char *path, es_err *e);
/* fsync the directory holding path. */
int es_fsync_parent(const char *path, es_err *e);
/* Does path exist (without following a final symlink)? */
bool es_path_exists(const char *path);

#endif
