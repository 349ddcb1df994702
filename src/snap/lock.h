/* One extsnap at a time per domain: an flock on
 * <snapshot-dir>/<domain>.extsnap.lock (beside, never inside, the domain's
 * snapshot directory, which libvirt parses entry by entry). The holder is
 * named from /proc/locks; nothing is written into the file. A writer removes
 * the file before it lets go, whoever created it (a locker checks that the
 * path still names what it locked), so no command leaves a lock file behind;
 * one a crash left is removed by the next writer (a read-only command leaves
 * it: it changes no file). */
#ifndef ES_SNAP_LOCK_H
#define ES_SNAP_LOCK_H

#include <stdbool.h>

#include "util/err.h"
#include "util/fileio.h"

typedef struct snap_lock {
    es_file *f;
    bool exclusive; /* a writer: it removes the file when it lets go */
} snap_lock;

/* Take the lock at host path `path` for domain `domain` (for messages).
 * exclusive: writers; otherwise shared (readers, dry runs), which does not
 * create a missing lock file and then holds nothing. Never waits: a busy
 * lock is an error "another extsnap is working on domain X (pid N)". */
int snap_lock_take(const char *path, const char *domain, bool exclusive, snap_lock *lk, es_err *e);
void snap_lock_release(snap_lock *lk);

#endif
