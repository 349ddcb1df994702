/* QEMU-compatible image locks: see imglock.h for the byte layout.
 * /proc is read with plain stdio, not through fileio: those reads are
 * diagnostics, not image I/O, and must not shift the fault-hook counters. */
#include "util/imglock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const perm_names[ES_IMGLOCK_NPERMS] = {
    "consistent-read", "write", "write-unchanged", "resize"};
/* "it does not allow others to ..." */
static const char *const perm_refusals[ES_IMGLOCK_NPERMS] = {
    "read it consistently (a block job may be running)", "write it",
    "write it (even unchanged)", "resize it"};

static int perm_index(unsigned bit)
{
    for (int i = 0; i < ES_IMGLOCK_NPERMS; i++)
        if (bit == 1u << i)
            return i;
    return 0;
}

/* ---- finding the holder ------------------------------------------------ */

/* Non-negative decimal d_name, else -1. */
static long dir_number(const char *name)
{
    if (*name < '0' || *name > '9')
        return -1;
    char *end;
    errno = 0;
    long v = strtol(name, &end, 10);
    return (*end || errno) ? -1 : v;
}

/* A "lock:" line of fdinfo ("lock:\t1: OFDLCK ADVISORY  READ -1 fe:00:123 100 101")
 * ends with the locked range; "EOF" means to the end of the file. */
static bool lock_line_covers(const char *line, long long byte)
{
    char copy[512];
    snprintf(copy, sizeof copy, "%s", line);
    const char *prev = NULL, *last = NULL;
    char *save = NULL;
    for (char *tok = strtok_r(copy, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
        prev = last;
        last = tok;
    }
    if (!prev || !last)
        return false;
    char *end;
    errno = 0;
    long long start = strtoll(prev, &end, 10);
    if (*end || errno)
        return false;
    long long stop = LLONG_MAX;
    if (strcmp(last, "EOF") != 0) {
        stop = strtoll(last, &end, 10);
        if (*end || errno)
            return false;
    }
    return start <= byte && byte <= stop;
}

/* fdinfo lists exactly the locks owned through that descriptor. */
static bool fdinfo_has_lock_on(const char *fdinfo, long long byte)
{
    FILE *f = fopen(fdinfo, "re");
    if (!f)
        return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        if (strncmp(line, "lock:", 5) == 0 && !strstr(line, "->")) /* "->": a waiter */
            found = lock_line_covers(line + 5, byte);
    fclose(f);
    return found;
}

/* Does process pid hold a lock on `byte` of file (skipping its descriptor skip_fd)? */
static bool process_holds(long pid, long skip_fd, const struct stat *file, long long byte)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%ld/fd", pid);
    DIR *d = opendir(path);
    if (!d)
        return false; /* gone, or not ours to look at */
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d))) {
        long n = dir_number(de->d_name);
        if (n < 0 || n == skip_fd)
            continue;
        struct stat st;
        snprintf(path, sizeof path, "/proc/%ld/fd/%ld", pid, n);
        if (stat(path, &st) < 0 || st.st_dev != file->st_dev || st.st_ino != file->st_ino)
            continue;
        snprintf(path, sizeof path, "/proc/%ld/fdinfo/%ld", pid, n);
        found = fdinfo_has_lock_on(path, byte);
    }
    closedir(d);
    return found;
}

/* /proc/PID/cmdline with NULs as spaces, cut with "..."; [comm] for kernel threads. */
static void read_cmdline(long pid, char *out, size_t size)
{
    char path[64], raw[ES_LOCK_HOLDER_CMDLINE_MAX + 1];
    out[0] = '\0';
    snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t n = 0;
    if (fd >= 0) {
        while (n < sizeof raw) {
            ssize_t got = read(fd, raw + n, sizeof raw - n);
            if (got <= 0)
                break;
            n += (size_t)got;
        }
        close(fd);
    }
    for (size_t i = 0; i < n; i++)
        if (raw[i] == '\0' || raw[i] == '\n')
            raw[i] = ' ';
    bool cut = n == sizeof raw;
    while (n > 0 && raw[n - 1] == ' ')
        n--;
    if (n == 0) {
        snprintf(path, sizeof path, "/proc/%ld/comm", pid);
        FILE *f = fopen(path, "re");
        char comm[64] = "";
        if (f) {
            if (fgets(comm, sizeof comm, f))
                comm[strcspn(comm, "\n")] = '\0';
            fclose(f);
        }
        if (comm[0])
            snprintf(out, size, "[%s]", comm);
        return;
    }
    if (cut || n >= size) {
        size_t keep = (n < size - 4 ? n : size - 4);
        snprintf(out, size, "%.*s...", (int)keep, raw);
    } else {
        snprintf(out, size, "%.*s", (int)n, raw);
    }
}

static void es_imglock_find_holder(int fd, int byte, es_lock_holder *h)
{
    h->pid = 0;
    h->cmdline[0] = '\0';
    struct stat st;
    if (fstat(fd, &st) < 0)
        return;
    DIR *proc = opendir("/proc");
    if (!proc)
        return;
    long self = (long)getpid();
    struct dirent *de;
    while ((de = readdir(proc))) {
        long pid = dir_number(de->d_name);
        if (pid <= 0)
            continue;
        /* Our own fd's locks never conflict with fd; a second fd of ours may. */
        if (process_holds(pid, pid == self ? fd : -1, &st, byte)) {
            h->pid = (pid_t)pid;
            read_cmdline(pid, h->cmdline, sizeof h->cmdline);
            break;
        }
    }
    closedir(proc);
}

/* ---- testing and setting bytes ------------------------------------------ */

static int conflict_error(const char *path, bool reader, const es_lock_holder *h, es_err *e)
{
    char who[ES_LOCK_HOLDER_CMDLINE_MAX + 64];
    if (h->pid > 0 && h->cmdline[0])
        snprintf(who, sizeof who, "process %ld (%s)", (long)h->pid, h->cmdline);
    else if (h->pid > 0)
        snprintf(who, sizeof who, "process %ld", (long)h->pid);
    else
        snprintf(who, sizeof who, "another process (holder unknown)");
    /* No hint here: what to do depends on the command (cmd/busy_hint.h). */
    int i = perm_index(h->perm);
    if (h->refuses_share)
        return es_err_set(e, 0, path, "image is in use by %s: it does not allow others to %s",
                          who, perm_refusals[i]);
    if (reader && h->perm == ES_PERM_WRITE)
        return es_err_set(e, 0, path, "image is being written by %s", who);
    return es_err_set(e, 0, path, "image is in use by %s: it holds a %s lock", who,
                      perm_names[i]);
}

bool es_imglock_conflict(const es_err *e)
{
    return strstr(e->msg, "image is in use by ") || strstr(e->msg, "image is being written by ");
}

/* Is byte locked through another open file description? */
static int byte_taken(int fd, const char *path, int byte, bool *taken, es_err *e)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl); /* l_pid must be 0 for OFD requests */
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = byte;
    fl.l_len = 1;
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
        return es_err_set(e, errno, path, "cannot test image lock byte %d", byte);
    *taken = fl.l_type != F_UNLCK;
    return 0;
}

static int set_byte(int fd, int byte, short type)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = byte;
    fl.l_len = 1;
    return fcntl(fd, F_OFD_SETLK, &fl);
}

static void unlock_bits(int fd, unsigned perms, unsigned unshared)
{
    for (int i = 0; i < ES_IMGLOCK_NPERMS; i++) {
        if (perms & (1u << i))
            set_byte(fd, ES_IMGLOCK_PERM_BASE + i, F_UNLCK);
        if (unshared & (1u << i))
            set_byte(fd, ES_IMGLOCK_SHARED_BASE + i, F_UNLCK);
    }
}

static void note_conflict(int fd, int byte, es_lock_holder *h)
{
    h->conflict = true;
    h->byte = byte;
    h->refuses_share = byte >= ES_IMGLOCK_SHARED_BASE;
    h->perm = 1u << (byte - (h->refuses_share ? ES_IMGLOCK_SHARED_BASE : ES_IMGLOCK_PERM_BASE));
    es_imglock_find_holder(fd, byte, h);
}

/* Tests the bytes QEMU's raw_check_lock_bytes tests, in its order, except
 * that a held write lock (byte 101) is looked at first: "it is being
 * written" is what a user needs to hear about a running VM's image, which
 * also refuses to share write (byte 201). */
int es_imglock_probe(int fd, const char *path, unsigned perms, unsigned unshared,
                     es_lock_holder *holder, es_err *e)
{
    es_lock_holder local;
    if (!holder)
        holder = &local;
    memset(holder, 0, sizeof *holder);
    bool reader = !(perms & ES_PERM_WRITE);
    int order[1 + 2 * ES_IMGLOCK_NPERMS], n = 0;
    if (unshared & ES_PERM_WRITE)
        order[n++] = ES_IMGLOCK_PERM_BASE + 1;
    for (int i = 0; i < ES_IMGLOCK_NPERMS; i++) {
        if (perms & (1u << i))
            order[n++] = ES_IMGLOCK_SHARED_BASE + i; /* does anyone refuse to share it? */
        if ((unshared & (1u << i)) && i != 1)
            order[n++] = ES_IMGLOCK_PERM_BASE + i; /* does anyone hold what we refuse? */
    }
    for (int k = 0; k < n; k++) {
        bool taken = false;
        if (byte_taken(fd, path, order[k], &taken, e) < 0)
            return -1;
        if (taken) {
            note_conflict(fd, order[k], holder);
            return conflict_error(path, reader, holder, e);
        }
    }
    return 0;
}

int es_imglock_probe_write(int fd, const char *path, es_lock_holder *holder, es_err *e)
{
    return es_imglock_probe(fd, path, ES_IMGLOCK_WRITE_PERMS, ES_IMGLOCK_WRITE_UNSHARED, holder,
                            e);
}

int es_imglock_probe_read(int fd, const char *path, es_lock_holder *holder, es_err *e)
{
    return es_imglock_probe(fd, path, ES_IMGLOCK_READ_PERMS, ES_IMGLOCK_READ_UNSHARED, holder,
                            e);
}

bool es_imglock_held(const es_imglock *lk)
{
    return lk->perms || lk->unshared;
}

/* Set every byte of (perms, unshared) on fd; on failure give back what this
 * call set and fill *failed_byte (and errno). */
static int set_bits(int fd, unsigned perms, unsigned unshared, int *failed_byte)
{
    unsigned done_p = 0, done_u = 0;
    for (int i = 0; i < ES_IMGLOCK_NPERMS; i++) {
        for (int k = 0; k < 2; k++) {
            unsigned want = k ? unshared : perms;
            if (!(want & (1u << i)))
                continue;
            int byte = (k ? ES_IMGLOCK_SHARED_BASE : ES_IMGLOCK_PERM_BASE) + i;
            if (set_byte(fd, byte, F_RDLCK) < 0) {
                int saved = errno;
                unlock_bits(fd, done_p, done_u);
                *failed_byte = byte;
                errno = saved;
                return -1;
            }
            if (k)
                done_u |= 1u << i;
            else
                done_p |= 1u << i;
        }
    }
    return 0;
}

static int set_failed(int fd, const char *path, int byte, bool reader, es_lock_holder *h,
                      es_err *e)
{
    int err = errno;
    if (err != EAGAIN && err != EACCES)
        return es_err_set(e, err, path, "cannot take image lock byte %d", byte);
    /* Someone holds an exclusive (F_WRLCK) lock there: not QEMU's way, but in the way. */
    note_conflict(fd, byte, h);
    return conflict_error(path, reader, h, e);
}

/* QEMU's order (raw_handle_perm_lock): set our bytes first, then test, so
 * two openers racing cannot both miss each other. */
int es_imglock_acquire(int fd, const char *path, unsigned perms, unsigned unshared,
                       es_imglock *lk, es_err *e)
{
    if ((perms | unshared) & ~ES_PERM_ALL)
        return es_err_set(e, EINVAL, path, "invalid image lock permissions 0x%x/0x%x", perms,
                          unshared);
    bool had = es_imglock_held(lk);
    if (had && lk->fd != fd)
        return es_err_set(e, EINVAL, path, "image lock is already held on another descriptor");
    unsigned old_p = had ? lk->perms : 0, old_u = had ? lk->unshared : 0;
    unsigned new_p = old_p | perms, new_u = old_u | unshared;
    memset(&lk->conflict, 0, sizeof lk->conflict);
    bool reader = !(new_p & ES_PERM_WRITE);

    int failed_byte = 0;
    if (set_bits(fd, new_p & ~old_p, new_u & ~old_u, &failed_byte) < 0)
        return set_failed(fd, path, failed_byte, reader, &lk->conflict, e);
    if (es_imglock_probe(fd, path, new_p, new_u, &lk->conflict, e) < 0) {
        unlock_bits(fd, new_p & ~old_p, new_u & ~old_u);
        return -1;
    }
    lk->fd = fd;
    lk->perms = new_p;
    lk->unshared = new_u;
    return 0;
}

int es_imglock_acquire_write(int fd, const char *path, es_imglock *lk, es_err *e)
{
    return es_imglock_acquire(fd, path, ES_IMGLOCK_WRITE_PERMS, ES_IMGLOCK_WRITE_UNSHARED, lk, e);
}

int es_imglock_acquire_read(int fd, const char *path, es_imglock *lk, es_err *e)
{
    return es_imglock_acquire(fd, path, ES_IMGLOCK_READ_PERMS, ES_IMGLOCK_READ_UNSHARED, lk, e);
}

int es_imglock_move(es_imglock *lk, int new_fd, const char *path, es_err *e)
{
    if (!es_imglock_held(lk) || lk->fd == new_fd) {
        if (!es_imglock_held(lk))
            lk->fd = new_fd;
        return 0;
    }
    int failed_byte = 0;
    if (set_bits(new_fd, lk->perms, lk->unshared, &failed_byte) < 0)
        return set_failed(new_fd, path, failed_byte, !(lk->perms & ES_PERM_WRITE),
                          &lk->conflict, e);
    unlock_bits(lk->fd, lk->perms, lk->unshared);
    lk->fd = new_fd;
    return 0;
}

void es_imglock_release(es_imglock *lk)
{
    if (es_imglock_held(lk))
        unlock_bits(lk->fd, lk->perms, lk->unshared);
    lk->perms = 0;
    lk->unshared = 0;
    lk->fd = -1;
}
