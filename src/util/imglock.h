/* Image locks that interoperate with QEMU's (block/file-posix.c, 7.2).
 *
 * QEMU marks its use of an image file with OFD byte-range locks, always
 * F_RDLCK (so holders never conflict with each other, only with testers):
 *   byte 100+i  held while it holds permission i,
 *   byte 200+i  held while it refuses to let others have permission i,
 * with i: 0 consistent-read, 1 write, 2 write-unchanged, 3 resize (QEMU
 * before 6.1 also used 4 graph-mod: bytes 104/204; extsnap neither wants
 * nor refuses it, so it never tests them). An opener first sets its own
 * bytes, then tests with F_OFD_GETLK/F_WRLCK: byte 200+i for each permission
 * it wants, byte 100+i for each one it will not share. Setting before
 * testing closes the race: of two openers, the later tester sees the other.
 *
 * What extsnap takes (the same sets qemu-img takes, verified with strace):
 *   write (img commit, rebase, check -r, create of an existing file ...):
 *       100 101 103 201 203  = consistent-read + write + resize held, write
 *       and resize refused to others; like `qemu-img commit` and like the
 *       active image of a running VM. A VM started on the image fails
 *       ("Failed to get "write" lock"); a second extsnap writer fails too.
 *   read (img info, map, compare, check):
 *       100 201 203  = consistent-read held, write and resize refused; like
 *       `qemu-img map/check/compare` and like a VM's backing files. So we
 *       read backing files a VM reads, but refuse an image a VM writes
 *       instead of reading torn metadata, and no VM can start writing an
 *       image while we read it. (`qemu-img info` takes only 201 203 because
 *       it reads no guest data; 100 costs nothing and matches the readers.)
 *   --force-share: take and test nothing (like qemu-img -U).
 *
 * OFD locks belong to the open file description, not the process: they are
 * dropped when the last descriptor of that description is closed, and a
 * second open() of the same file in the same process is "another user".
 * Hold the locks on the descriptor the engine does its I/O with; closing it
 * releases them. To reopen an image read-write, upgrade the read-only
 * descriptor's lock (es_imglock_acquire_write on it: QEMU does the same),
 * then es_imglock_move() the lock to the new descriptor and close the old.
 *
 * Conflicts are reported with the holder's pid and command line, found
 * through the "lock:" lines of /proc/PID/fdinfo/N (F_OFD_GETLK reports
 * l_pid = -1 for OFD locks, /proc/locks shows -1 too). */
#ifndef ES_UTIL_IMGLOCK_H
#define ES_UTIL_IMGLOCK_H

#include <stdbool.h>
#include <sys/types.h>

#include "util/err.h"

#define ES_IMGLOCK_PERM_BASE 100   /* byte 100+i: permission i held */
#define ES_IMGLOCK_SHARED_BASE 200 /* byte 200+i: permission i not shared */
#define ES_IMGLOCK_NPERMS 4

/* QEMU's permission bits (include/block/block-common.h, 7.2). */
enum {
    ES_PERM_CONSISTENT_READ = 1u << 0,
    ES_PERM_WRITE = 1u << 1,
    ES_PERM_WRITE_UNCHANGED = 1u << 2,
    ES_PERM_RESIZE = 1u << 3,
    ES_PERM_ALL = (1u << ES_IMGLOCK_NPERMS) - 1,
};

/* The two modes extsnap uses (see above). */
#define ES_IMGLOCK_WRITE_PERMS (ES_PERM_CONSISTENT_READ | ES_PERM_WRITE | ES_PERM_RESIZE)
#define ES_IMGLOCK_WRITE_UNSHARED (ES_PERM_WRITE | ES_PERM_RESIZE)
#define ES_IMGLOCK_READ_PERMS (ES_PERM_CONSISTENT_READ)
#define ES_IMGLOCK_READ_UNSHARED (ES_PERM_WRITE | ES_PERM_RESIZE)

#define ES_LOCK_HOLDER_CMDLINE_MAX 160

/* Who is in the way, when a probe or an acquire finds a conflict. */
typedef struct es_lock_holder {
    bool conflict;      /* another open file description's lock is in the way */
    unsigned perm;      /* the one ES_PERM_* bit concerned */
    bool refuses_share; /* byte 200+i (it refuses to share perm), else 100+i (it holds perm) */
    int byte;           /* the conflicting byte */
    pid_t pid;          /* 0 when the holder could not be identified */
    char cmdline[ES_LOCK_HOLDER_CMDLINE_MAX]; /* NULs as spaces, "..." when cut; "" if unknown */
} es_lock_holder;

/* Locks held on one descriptor. Zero-initialise ({0}) before first use. */
typedef struct es_imglock {
    int fd;
    unsigned perms;    /* bytes 100+i held */
    unsigned unshared; /* bytes 200+i held */
    es_lock_holder conflict; /* filled when an acquire fails on a conflict */
} es_imglock;

/* May we write this image? Tests (without taking anything) what an acquire
 * in write mode tests. 0 when free; -1 with e.g. "image is in use by process
 * 1234 (qemu-system-x86_64 -machine none ...): it holds a write lock" (holder,
 * if non-NULL, says which lock and who). Locks of fd's own file description
 * never count. */
int es_imglock_probe_write(int fd, const char *path, es_lock_holder *holder, es_err *e);
/* May we read this image consistently? -1 with "image is being written by
 * process N (...); use --force-share to read it anyway" when a writer holds it. */
int es_imglock_probe_read(int fd, const char *path, es_lock_holder *holder, es_err *e);

/* Take the write (or read) locks on fd, then test for others; on a conflict
 * the bytes just taken are given back, lk->conflict says who, and the error
 * reads as for the probes. fd needs only read access. Calling acquire_write
 * on a lock holding read mode upgrades it in place (on the same fd). */
int es_imglock_acquire_write(int fd, const char *path, es_imglock *lk, es_err *e);
int es_imglock_acquire_read(int fd, const char *path, es_imglock *lk, es_err *e);

/* General forms: perms/unshared are ES_PERM_* masks. */
int es_imglock_probe(int fd, const char *path, unsigned perms, unsigned unshared,
                     es_lock_holder *holder, es_err *e);
int es_imglock_acquire(int fd, const char *path, unsigned perms, unsigned unshared,
                       es_imglock *lk, es_err *e);

/* Take the same bytes on new_fd (another description of the same file) and
 * give them up on the old one, which the caller then closes. No test is
 * needed: the old description kept everyone else out meanwhile. */
int es_imglock_move(es_imglock *lk, int new_fd, const char *path, es_err *e);

/* Give back every byte held (closing the descriptor does the same). */
void es_imglock_release(es_imglock *lk);

/* True when lk holds anything. */
bool es_imglock_held(const es_imglock *lk);

/* Identify who holds a lock covering `byte` of the file open as fd (not
 * counting fd itself): fills pid and cmdline, or leaves pid 0. Exposed for
 * diagnostics such as "is a VM running on this image?". */
/* Is e one of the conflicts reported above (another process holds the
 * image)? */
bool es_imglock_conflict(const es_err *e);

#endif
