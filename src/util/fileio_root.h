/* The I/O layer's root (internal to src/util: fileio.c and its helpers).
 *
 * Paths under --root are host strings for messages (es_root_resolve makes
 * them: the root's real path, then the path under it). Checking them
 * component by component and then opening them by their string lets a
 * directory swapped for a symbolic link in between lead outside the root.
 * So the I/O layer holds the root as a directory descriptor, and every
 * path under it is resolved by the kernel inside that descriptor:
 * openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), or where the kernel lacks
 * openat2, a walk from the descriptor one component at a time with
 * O_NOFOLLOW, reading each symbolic link and resolving its target inside the
 * root too (an absolute target from the root, ".." never above it).
 * A path not under the root (or with no root held) is used as it is. */
#ifndef ES_UTIL_FILEIO_ROOT_H
#define ES_UTIL_FILEIO_ROOT_H

#include <stdbool.h>
#include <sys/types.h>

/* The system calls the I/O layer makes on paths, with the same results and
 * errno, inside the root when the path lies under it (the last component of
 * rename, unlink, rmdir, mkdir and link is never followed, as by the system
 * calls; open, chown and chmod follow links, but inside the root). */
int es_root_open(const char *path, int flags, mode_t mode);
int es_root_rename(const char *from, const char *to);
int es_root_unlink(const char *path);
int es_root_rmdir(const char *path);
int es_root_mkdir(const char *path, mode_t mode);
int es_root_link(const char *from, const char *to);
int es_root_chown(const char *path, uid_t uid, gid_t gid);
int es_root_chmod(const char *path, mode_t mode);

#endif
