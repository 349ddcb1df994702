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

int snap_lock_take(const char *path, const char *domain, bool exclusive, snap_lock *lk, es_err *e)
{
    lk->f = NULL;
    es_file *f = NULL;
    if (exclusive) {
        if (es_file_open(&f, path, O_RDWR | O_CREAT, 0600, e) < 0)
            return es_err_prefix(e, "cannot open the domain lock file");
    } else if (es_file_open(&f, path, O_RDONLY, 0, e) < 0) {
        if (e && e->errnum == ENOENT) {
            es_err_clear(e);
            return 0; /* nobody ever locked it */
        }
        return es_err_prefix(e, "cannot open the domain lock file");
    }
    if (flock(f->fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
        int err = errno;
        long pid = holder_pid(f);
        es_file_close(f);
        if (err == EWOULDBLOCK) {
            if (pid)
                return es_err_set(e, 0, path, "another extsnap is working on domain %s (pid %ld)",
                                  domain, pid);
            return es_err_set(e, 0, path, "another extsnap is working on domain %s", domain);
        }
        return es_err_set(e, err, path, "cannot lock");
    }
    lk->f = f;
    return 0;
}

void snap_lock_release(snap_lock *lk)
{
    if (lk->f)
        es_file_close(lk->f); /* closing drops the flock */
    lk->f = NULL;
}
