/* Atomic file replacement: a reader sees the old file or the new one, never
 * a mix, even after a crash. The data goes to a temporary file (which the
 * caller places outside any directory a reader scans), is flushed, renamed
 * over the target, and the directory is synced. */
#ifndef ES_UTIL_ATOMIC_FILE_H
#define ES_UTIL_ATOMIC_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "util/err.h"

/* Replace `path` with `len` bytes of `data`, going through `tmp_path`, which
 * must be on the same file system. A stale tmp_path from an interrupted run is
 * removed first. An existing target keeps its owner, group and mode; a new one
 * gets `new_mode`. A target that exists but is not a regular file (symlink,
 * directory, device) is refused. On failure the temporary file is removed and
 * the target is untouched, except when only the final directory sync failed. */
int es_atomic_replace(const char *path, const char *tmp_path, const void *data, size_t len,
                      mode_t new_mode, es_err *e);

#endif
