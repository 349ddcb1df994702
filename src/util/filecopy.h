/* Copying a small file (a VM's NVRAM, a file of swtpm's state) crash-safely, with what makes it the
 * same file to the VM: owner, mode, and the extended attributes that carry
 * its labels (security.* such as the SELinux label, and user.*). */
#ifndef ES_UTIL_FILECOPY_H
#define ES_UTIL_FILECOPY_H

#include <sys/stat.h>

#include "util/err.h"
#include "util/fileio.h"

/* Make dst a copy of the regular file src: the bytes go to tmp (same
 * directory as dst; a stale one is removed first), with src's owner (best
 * effort for an unprivileged user), mode and security.* / user.* extended
 * attributes, are flushed, then tmp is renamed over dst and the directory
 * synced. A reader of dst sees the old file or the whole copy, never a part;
 * running it again after a crash gives the same result. On failure tmp is
 * removed and dst is untouched. */
int es_copy_file_replace(const char *src, const char *dst, const char *tmp, es_err *e);

/* The same copy into dst, which must not exist (no temporary file: for a
 * file inside a directory tree that is itself built under a temporary name,
 * filetree.h). On failure dst is removed. */
int es_copy_file_new(const char *src, const char *dst, es_err *e);

/* The pieces, on open files (a directory's too): owner (best effort for an
 * unprivileged user) and mode of st; security.* and user.* attributes. */
int es_copy_owner_mode_fd(es_file *out, const struct stat *st, es_err *e);
int es_copy_xattrs_fd(es_file *in, es_file *out, es_err *e);

#endif
