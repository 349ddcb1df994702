#include "util/fileio_root.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/xalloc.h"

/* Same limit as the kernel's path walk (MAXSYMLINKS). */
#define ROOT_MAX_SYMLINKS 40
/* openat2 gives EAGAIN when a rename raced a ".." it had to check. */
#define ROOT_EAGAIN_TRIES 64

static struct {
    int fd;           /* O_PATH descriptor of the root, -1: none held */
    char *real;       /* its real path: the prefix of the paths under it */
    size_t len;
    bool no_openat2;  /* the kernel said ENOSYS once */
    bool walk_only;   /* tests: take the fallback walk */
} root = {.fd = -1};

int es_io_root_set(const char *dir, es_err *e)
{
    if (dir && root.real && strcmp(dir, root.real) == 0)
        return 0; /* es_root_resolve, with the real path, every time */
    char *real = NULL;
    if (dir && *dir) {
        real = realpath(dir, NULL);
        if (!real)
            return es_err_set(e, errno, dir, "cannot resolve the root directory");
    }
    if (real && root.real && strcmp(real, root.real) == 0) {
        free(real);
        return 0;
    }
    int fd = -1;
    /* "/" confines nothing: paths under it are host paths already. */
    if (real && strcmp(real, "/") != 0) {
        fd = open(real, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            free(real);
            return es_err_set(e, err, dir, "cannot open the root directory");
        }
    }
    if (root.fd >= 0)
        close(root.fd);
    free(root.real);
    root.fd = fd;
    root.real = real;
    root.len = real ? strlen(real) : 0;
    return 0;
}

void es_io_root_walk_only(bool on)
{
    root.walk_only = on;
}

/* The part of path below the root ("." for the root itself), or NULL when
 * path does not lie under it. */
static const char *under_root(const char *path)
{
    if (root.fd < 0 || strncmp(path, root.real, root.len) != 0)
        return NULL;
    const char *rel = path + root.len;
    if (*rel && *rel != '/')
        return NULL; /* "/r/rootx" is not under "/r/root" */
    while (*rel == '/')
        rel++;
    return *rel ? rel : ".";
}

static int openat2_in_root(const char *rel, int flags, mode_t mode)
{
    struct open_how how = {
        .flags = (unsigned)flags,
        /* openat2 refuses a mode it would not use (O_TMPFILE has O_DIRECTORY's bit) */
        .mode = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? mode : 0,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    long fd = -1;
    for (int i = 0; i < ROOT_EAGAIN_TRIES; i++) {
        fd = syscall(SYS_openat2, root.fd, rel, &how, sizeof how);
        if (fd >= 0 || errno != EAGAIN)
            break;
    }
    return (int)fd;
}

/* --- the fallback walk --------------------------------------------------- */

typedef struct {
    int *fds; /* fds[0] is the root (not owned); the last is where we are */
    size_t n, cap;
} dirstack;

static int ds_top(const dirstack *s)
{
    return s->fds[s->n - 1];
}

static void ds_push(dirstack *s, int fd)
{
    if (s->n == s->cap) {
        size_t cap = s->cap * 2;
        s->fds = es_xreallocarray(s->fds, cap, sizeof *s->fds);
        s->cap = cap;
    }
    s->fds[s->n++] = fd;
}

/* ".." never goes above the root; an absolute link target starts there. */
static void ds_pop_to(dirstack *s, size_t n)
{
    while (s->n > n)
        close(s->fds[--s->n]);
}

/* Replace *pending with target + "/" + rest. */
static void splice_target(char **pending, const char *rest, const char *target)
{
    size_t tl = strlen(target), rl = strlen(rest);
    char *p = es_xmalloc(tl + 1 + rl + 1);
    memcpy(p, target, tl);
    p[tl] = '/';
    memcpy(p + tl + 1, rest, rl + 1);
    free(*pending);
    *pending = p;
}

/* The target of the symbolic link open as lfd (O_PATH | O_NOFOLLOW). */
static char *link_target(int lfd)
{
    char *buf = es_xmalloc(PATH_MAX);
    ssize_t n = readlinkat(lfd, "", buf, PATH_MAX);
    if (n < 0 || n >= PATH_MAX) {
        if (n >= PATH_MAX)
            errno = ENAMETOOLONG;
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* Is name in dir a symbolic link? Its target (malloc'd) when it is. */
static char *symlink_at(int dir, const char *name, bool *is_link)
{
    *is_link = false;
    int lfd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (lfd < 0)
        return NULL;
    struct stat st;
    char *target = NULL;
    if (fstat(lfd, &st) == 0 && S_ISLNK(st.st_mode)) {
        *is_link = true;
        target = link_target(lfd);
    }
    int err = errno;
    close(lfd);
    errno = err;
    return target;
}

static int walk_in_root(const char *rel, int flags, mode_t mode)
{
    dirstack s = {.fds = es_xcalloc(8, sizeof(int)), .n = 1, .cap = 8};
    char *pending = es_xstrdup(rel);
    s.fds[0] = root.fd;
    int links = 0, result = -1;
    size_t pos = 0;
    char *comp = NULL;
    for (;;) {
        while (pending[pos] == '/')
            pos++;
        size_t start = pos;
        while (pending[pos] && pending[pos] != '/')
            pos++;
        size_t after = pos;
        while (pending[after] == '/')
            after++;
        bool last = !pending[after];
        free(comp);
        /* An empty component: the path named the directory we are in. */
        comp = pos > start ? es_xstrdup_len(pending + start, pos - start) : es_xstrdup(".");
        if (strcmp(comp, "..") == 0) {
            if (s.n > 1)
                ds_pop_to(&s, s.n - 1);
            if (!last)
                continue;
            strcpy(comp, ".");
        }
        if (strcmp(comp, ".") == 0 && !last)
            continue;

        char *target = NULL;
        bool is_link = false;
        if (!last) {
            int fd = openat(ds_top(&s), comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
            struct stat st;
            if (fd < 0)
                break;
            if (fstat(fd, &st) < 0) {
                close(fd);
                break;
            }
            if (S_ISLNK(st.st_mode)) {
                is_link = true;
                target = link_target(fd);
                close(fd);
            } else if (!S_ISDIR(st.st_mode)) {
                close(fd);
                errno = ENOTDIR;
                break;
            } else {
                ds_push(&s, fd);
                continue;
            }
        } else {
            int fd = openat(ds_top(&s), comp, flags | O_NOFOLLOW, mode);
            if (fd >= 0 && (flags & O_PATH) && !(flags & O_NOFOLLOW)) {
                /* O_PATH | O_NOFOLLOW opens a link itself: follow it here. */
                struct stat st;
                if (fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
                    is_link = true;
                    target = link_target(fd);
                    close(fd);
                    fd = -1;
                }
            } else if (fd < 0 && (errno == ELOOP || errno == ENOTDIR) &&
                       !(flags & O_NOFOLLOW)) {
                /* ELOOP: O_NOFOLLOW met a link; ENOTDIR: so did O_DIRECTORY. */
                int err = errno;
                target = symlink_at(ds_top(&s), comp, &is_link);
                if (is_link && (flags & O_CREAT) && (flags & O_EXCL)) {
                    free(target);
                    errno = EEXIST; /* as open(2) says of O_EXCL on a link */
                    break;
                }
                if (!is_link)
                    errno = err;
            }
            if (!is_link) {
                result = fd;
                break;
            }
        }
        if (!target)
            break;
        if (++links > ROOT_MAX_SYMLINKS) {
            free(target);
            errno = ELOOP;
            break;
        }
        if (target[0] == '/')
            ds_pop_to(&s, 1);
        splice_target(&pending, pending + pos, target);
        free(target);
        pos = 0;
    }
    int err = errno;
    free(comp);
    free(pending);
    ds_pop_to(&s, 1);
    free(s.fds);
    errno = err;
    return result;
}

static int open_in_root(const char *rel, int flags, mode_t mode)
{
    if (!root.no_openat2 && !root.walk_only) {
        int fd = openat2_in_root(rel, flags, mode);
        /* EAGAIN: renames kept racing its ".." checks; the walk needs none.
         * EPERM: what some container sandboxes answer for a system call
         * they do not know (a real EPERM, the walk meets again). */
        if (fd >= 0 || (errno != ENOSYS && errno != EAGAIN && errno != EPERM))
            return fd;
        if (errno == ENOSYS)
            root.no_openat2 = true;
    }
    return walk_in_root(rel, flags, mode);
}

int es_root_open(const char *path, int flags, mode_t mode)
{
    const char *rel = under_root(path);
    if (!rel)
        return open(path, flags, mode);
    return open_in_root(rel, flags, mode);
}

/* What the path-level operations below are made of: the
 * directory holding path's last component, opened inside the root (O_PATH),
 * and that component, for the *at(2) calls. Outside the root: dirfd is
 * AT_FDCWD and name the path itself. */
typedef struct {
    int dirfd;
    const char *name;
    char *owned; /* storage behind name, when it was split off */
} es_root_at;

/* 0, or -1 with errno set (nothing to release then). */
static int es_root_at_open(const char *path, es_root_at *at)
{
    *at = (es_root_at){.dirfd = AT_FDCWD, .name = path};
    const char *rel = under_root(path);
    if (!rel)
        return 0;
    size_t n = strlen(rel);
    while (n > 1 && rel[n - 1] == '/')
        n--;
    size_t cut = n;
    while (cut > 0 && rel[cut - 1] != '/')
        cut--;
    char *copy = es_xstrdup_len(rel, n);
    const char *name = copy + cut;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        /* the root itself, or a name that is not one entry of a directory */
        free(copy);
        errno = EINVAL;
        return -1;
    }
    if (cut > 0)
        copy[cut - 1] = '\0';
    int fd = open_in_root(cut > 0 ? copy : ".", O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0) {
        int err = errno;
        free(copy);
        errno = err;
        return -1;
    }
    at->dirfd = fd;
    at->name = name;
    at->owned = copy;
    return 0;
}

static void es_root_at_close(es_root_at *at)
{
    if (at->dirfd >= 0)
        close(at->dirfd);
    free(at->owned);
    *at = (es_root_at){.dirfd = AT_FDCWD};
}

/* Keep errno across the cleanup after a call that set it. */
static int done_at(int r, es_root_at *at)
{
    int err = errno;
    es_root_at_close(at);
    errno = err;
    return r;
}

static int done_fd(int r, int fd)
{
    int err = errno;
    close(fd);
    errno = err;
    return r;
}

int es_root_rename(const char *from, const char *to)
{
    es_root_at a, b;
    if (es_root_at_open(from, &a) < 0)
        return -1;
    if (es_root_at_open(to, &b) < 0)
        return done_at(-1, &a);
    int r = renameat(a.dirfd, a.name, b.dirfd, b.name);
    done_at(r, &b);
    return done_at(r, &a);
}

int es_root_link(const char *from, const char *to)
{
    es_root_at a, b;
    if (es_root_at_open(from, &a) < 0)
        return -1;
    if (es_root_at_open(to, &b) < 0)
        return done_at(-1, &a);
    int r = linkat(a.dirfd, a.name, b.dirfd, b.name, 0);
    done_at(r, &b);
    return done_at(r, &a);
}

static int unlink_in_root(const char *path, int flags)
{
    es_root_at at;
    if (es_root_at_open(path, &at) < 0)
        return -1;
    return done_at(unlinkat(at.dirfd, at.name, flags), &at);
}

int es_root_unlink(const char *path)
{
    return unlink_in_root(path, 0);
}

int es_root_rmdir(const char *path)
{
    return unlink_in_root(path, AT_REMOVEDIR);
}

int es_root_mkdir(const char *path, mode_t mode)
{
    es_root_at at;
    if (es_root_at_open(path, &at) < 0)
        return -1;
    return done_at(mkdirat(at.dirfd, at.name, mode), &at);
}

int es_root_chown(const char *path, uid_t uid, gid_t gid)
{
    int fd = es_root_open(path, O_PATH | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    return done_fd(fchownat(fd, "", uid, gid, AT_EMPTY_PATH), fd);
}

/* Syscall numbers from 424 on are the same on every architecture; the
 * C library's headers may predate this one (Linux 6.6). */
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

int es_root_chmod(const char *path, mode_t mode)
{
    int fd = es_root_open(path, O_PATH | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* fchmod refuses O_PATH descriptors: fchmodat2 takes one as it is;
     * before Linux 6.6, the descriptor's /proc name (the file found inside
     * the root, whatever the tree does meanwhile). */
    if (syscall(SYS_fchmodat2, fd, "", mode, AT_EMPTY_PATH) == 0)
        return done_fd(0, fd);
    if (errno != ENOSYS && errno != EINVAL)
        return done_fd(-1, fd);
    char name[40];
    snprintf(name, sizeof name, "/proc/self/fd/%d", fd);
    return done_fd(chmod(name, mode), fd);
}

/* --- the path-level operations of fileio.h that change nothing ------------ */

static int stat_in_root(const char *path, struct stat *st, int nofollow)
{
    int fd = es_root_open(path, O_PATH | O_CLOEXEC | nofollow, 0);
    if (fd < 0)
        return -1;
    return done_fd(fstat(fd, st), fd);
}

int es_fs_stat(const char *path, struct stat *st)
{
    return stat_in_root(path, st, 0);
}

int es_fs_lstat(const char *path, struct stat *st)
{
    return stat_in_root(path, st, O_NOFOLLOW);
}

int es_fs_statvfs(const char *path, struct statvfs *st)
{
    int fd = es_root_open(path, O_PATH | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    return done_fd(fstatvfs(fd, st), fd);
}

DIR *es_fs_opendir(const char *path)
{
    int fd = es_root_open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    DIR *d = fdopendir(fd);
    if (!d)
        done_fd(-1, fd);
    return d;
}

ssize_t es_fs_readlink(const char *path, char *buf, size_t size)
{
    int fd = es_root_open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    ssize_t n = readlinkat(fd, "", buf, size);
    done_fd(0, fd);
    return n;
}

int es_fs_socket_name(const char *path, char *name, size_t size, int *held)
{
    *held = -1;
    if (!under_root(path)) {
        if (strlen(path) >= size) {
            errno = ENAMETOOLONG;
            return -1;
        }
        strcpy(name, path);
        return 0;
    }
    int fd = es_root_open(path, O_PATH | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return done_fd(-1, fd);
    if (!S_ISSOCK(st.st_mode)) {
        errno = ECONNREFUSED; /* what connect(2) says of a file that is no socket */
        return done_fd(-1, fd);
    }
    int n = snprintf(name, size, "/proc/self/fd/%d", fd);
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return done_fd(-1, fd);
    }
    *held = fd;
    return 0;
}
