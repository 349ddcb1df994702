#include "snap/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "util/fileio.h"

/* The pid holding an flock on the file open as f, from /proc/locks
 * ("1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"), or 0. Nothing is
 * written into the lock file, so taking the lock changes no file. */
static long holder_pid(es_file *f)
{
    struct stat st;
    if (fstat(f->fd, &st) < 0)
        return 0;
    FILE *fp = fopen("/proc/locks", "r");
    if (!fp)
        return 0;
    char line[256];
    long found = 0;
    while (!found && fgets(line, sizeof line, fp)) {
        char type[16];
        long pid;
        unsigned maj, min;
        unsigned long long ino;
        if (sscanf(line, "%*[^:]: %15s %*s %*s %ld %x:%x:%llu", type, &pid, &maj, &min, &ino) == 5 &&
            strcmp(type, "FLOCK") == 0 && ino == (unsigned long long)st.st_ino &&
            maj == major(st.st_dev) && min == minor(st.st_dev) && pid != (long)getpid())
            found = pid;
    }
    fclose(fp);
    return found;
}

/* Does path still name the file open as f? A writer that releases the
 * lock removes the file first, so one locked meanwhile may be gone. */
static bool still_named(const char *path, es_file *f)
{
    struct stat a, b;
    return fstat(f->fd, &a) == 0 && es_fs_stat(path, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

#define LOCK_TRIES 16

int snap_lock_take(const char *path, const char *domain, bool exclusive, snap_lock *lk, es_err *e)
{
    lk->f = NULL;
    lk->exclusive = exclusive;
    for (int attempt = 0; attempt < LOCK_TRIES; attempt++) {
        es_file *f = NULL;
        if (exclusive) {
            es_err oe;
            if (es_file_open(&f, path, O_RDWR, 0, &oe) < 0) {
                if (oe.errnum != ENOENT) {
                    if (e)
                        *e = oe;
                    return es_err_prefix(e, "cannot open the domain lock file");
                }
                if (es_file_open(&f, path, O_RDWR | O_CREAT | O_EXCL, 0600, &oe) < 0) {
                    if (oe.errnum == EEXIST)
                        continue; /* made by another locker just now */
                    if (e)
                        *e = oe;
                    return es_err_prefix(e, "cannot create the domain lock file");
                }
            }
        } else if (es_file_open(&f, path, O_RDONLY, 0, e) < 0) {
            if (e && e->errnum == ENOENT) {
                es_err_clear(e);
                return 0; /* nobody holds it */
            }
            return es_err_prefix(e, "cannot open the domain lock file");
        }
        if (flock(f->fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
            int err = errno;
            long pid = holder_pid(f);
            es_file_close(f);
            if (err == EWOULDBLOCK) {
                if (pid)
                    return es_err_set(e, 0, path,
                                      "another extsnap is working on domain %s (pid %ld)", domain,
                                      pid);
                return es_err_set(e, 0, path, "another extsnap is working on domain %s", domain);
            }
            return es_err_set(e, err, path, "cannot lock");
        }
        if (still_named(path, f)) {
            lk->f = f;
            return 0;
        }
        es_file_close(f); /* its holder removed it as we locked it: again */
    }
    return es_err_set(e, 0, path, "the domain lock file keeps changing; is another extsnap looping?");
}

void snap_lock_release(snap_lock *lk)
{
    if (!lk->f)
        return;
    /* A writer removes the file while it still holds it, whoever made it
     * (a locker that lost the race, or a run that crashed), so a refused or
     * finished command leaves nothing behind; whoever opened it meanwhile
     * sees it gone once locked and starts over. Readers (shared) never
     * remove it: others may hold it too. A fault point like every change,
     * but not fatal: the file holds no data, a stale empty one is harmless
     * and the next writer removes it. */
    if (lk->exclusive)
        (void)es_fs_unlink(lk->f->path, NULL);
    es_file_close(lk->f); /* closing drops the flock */
    lk->f = NULL;
}
