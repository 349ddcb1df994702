/* Copying a small file (a VM's NVRAM) crash-safely, with what makes it the
 * same file to the VM: owner, mode, and the extended attributes that carry
 * its labels (security.* such as the SELinux label, and user.*). */
#ifndef ES_UTIL_FILECOPY_H
#define ES_UTIL_FILECOPY_H

#include "util/err.h"

/* Make dst a copy of the regular file src: the bytes go to tmp (same
 * directory as dst; a stale one is removed first), with src's owner (best
 * effort for an unprivileged user), mode and security.* / user.* extended
 * attributes, are flushed, then tmp is renamed over dst and the directory
 * synced. A reader of dst sees the old file or the whole copy, never a part;
 * running it again after a crash gives the same result. On failure tmp is
 * removed and dst is untouched. */
int es_copy_file_replace(const char *src, const char *dst, const char *tmp, es_err *e);

#endif
