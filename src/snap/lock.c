#include "snap/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* The pid the holder wrote, or 0. */
static long holder_pid(es_file *f)
{
    char buf[32] = {0};
    size_t got = 0;
    if (es_file_pread_some(f, buf, sizeof buf - 1, 0, &got, NULL) < 0)
        return 0;
    buf[got] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    return pid > 0 ? pid : 0;
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
    if (exclusive) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
        if (es_file_truncate(f, 0, e) < 0 || es_file_pwrite(f, buf, (size_t)n, 0, e) < 0) {
            es_file_close(f);
            return -1;
        }
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
