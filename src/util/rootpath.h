/* Paths under an optional --root DIR (a rescue shell with the host's root
 * mounted somewhere): every absolute path is taken relative to DIR, and
 * neither `..` nor a symlink may lead outside DIR. Symlinks are resolved one
 * component at a time, an absolute target again under DIR, so the kernel never
 * follows a link on the rescue system's side. An escape is an error, not a
 * clamp: a path that tries to leave DIR is almost certainly a mistake. */
#ifndef ES_UTIL_ROOTPATH_H
#define ES_UTIL_ROOTPATH_H

#include "util/err.h"

/* Resolve `path` under `root` into a host path (*out, malloc'd).
 * root NULL or "": *out is a copy of path, used as it is.
 * The string is what messages show; the tree may change before it is
 * opened, so this also makes the I/O layer hold `root` (es_io_root_set):
 * fileio opens, creates, renames and removes every path under it inside it.
 * With a root, relative paths are taken from DIR too. Components that do not
 * exist (yet) are kept as written, so new files can be named. */
int es_root_resolve(const char *root, const char *path, char **out, es_err *e);

/* A name that starts with root's DIR itself (as given, or its real path),
 * as a tool run in the rescue system writes it: the host's name inside it
 * (a pointer into name), else NULL. Such a name opens in the rescue system
 * and names nothing on the host. */
const char *es_root_strip_prefix(const char *root, const char *name);

/* Join a directory and a name with one '/' (*out, malloc'd). */
int es_path_join(const char *dir, const char *name, char **out, es_err *e);

#endif
