/* The one layer all file I/O goes through, with a fault-injection hook in the
 * spirit of SQLite's test VFS: tests can make the Nth read, write, flush or
 * mutating operation fail (EIO or ENOSPC) or stop the process right there
 * (a simulated crash: _exit without flushing anything further).
 *
 * Hook configuration, es_fault_install (the extsnap binary passes it the
 * environment's EXTSNAP_FAULT and EXTSNAP_FAULT_TRACE) or es_fault_set():
 *   EXTSNAP_FAULT=KIND:N:ACTION[,KIND:N:ACTION...]
 *     KIND   read | write | flush | mutate  (mutate = write, flush, create,
 *            truncate, rename, link, unlink, mkdir, rmdir, chown, chmod, fsync
 *            of a directory: anything that changes disk)
 *     N      1-based index of the operation of that kind
 *     ACTION eio | enospc | stop
 *   EXTSNAP_FAULT_TRACE=FILE  append one line per counted operation
 *            ("KIND N op path") so tests can enumerate fault points.
 * A stopped process exits with status 86 (ES_FAULT_STOP_STATUS). */
#ifndef ES_UTIL_FILEIO_H
#define ES_UTIL_FILEIO_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "util/err.h"

#define ES_FAULT_STOP_STATUS 86

typedef struct es_file {
    int fd;
    char *path;
    bool writable;
    /* es_file_copy's sharing probe, filled on first use: 0 not yet,
     * 1 a regular file whose file system may share extents, -1 not. */
    int share;
    dev_t dev;          /* st_dev */
    uint64_t block;     /* the file system's block size (statfs f_bsize) */
} es_file;

/* Open flags: O_RDONLY / O_RDWR etc. (O_CLOEXEC is added). A FIFO is
 * refused with e->errnum ESPIPE (opening one could wait forever). */
int es_file_open(es_file **out, const char *path, int flags, mode_t mode, es_err *e);
void es_file_close(es_file *f);

/* Read exactly n bytes at off; reading past EOF is an error naming the offset. */
int es_file_pread(es_file *f, void *buf, size_t n, uint64_t off, es_err *e);
/* Read up to n bytes; *got receives the count (short at EOF). */
int es_file_pread_some(es_file *f, void *buf, size_t n, uint64_t off, size_t *got, es_err *e);
int es_file_pwrite(es_file *f, const void *buf, size_t n, uint64_t off, es_err *e);
/* Copy n bytes from src at soff to dst at doff inside the kernel, falling
 * back to read/write where the kernel or file system cannot. Bytes past
 * src's end are copied as zeroes. Counted as one read and one write by the
 * fault hook (trace name "clone" when sharing is tried, else
 * "copy_file_range").
 *
 * Sharing (reflink) is the designed path: when both files are on one file
 * system (st_dev) and soff and doff are multiples of its block size, the
 * block-aligned part is shared with FICLONERANGE (XFS reflink=1, btrfs:
 * metadata only, no data written). FICLONERANGE rather than relying on
 * copy_file_range: it fails instead of silently copying, so the engine
 * knows which path it took (and the fault trace names it). Where it fails (ext4, tmpfs: EOPNOTSUPP, then not tried again for dst;
 * another mount of the same file system: EXDEV) the rest goes through
 * copy_file_range, which may still share. A shared range is made durable
 * by the same es_file_flush (fdatasync) as a copied one: the remap is a
 * change of dst's extent map, which fdatasync commits (XFS forces the log
 * holding it, checked by power cuts in tests/e2e/t_reflink.sh; btrfs logs
 * an inode that was a reflink target in full). */
int es_file_copy(es_file *src, uint64_t soff, es_file *dst, uint64_t doff, uint64_t n, es_err *e);
/* Share, never copy: *shared gets the length of the block-aligned head of
 * [soff, soff+n) that now shares src's extents at doff (0: the file system
 * cannot, or the offsets are not aligned; the caller writes the rest
 * itself, e.g. keeping zeroes as holes). Counted like es_file_copy when
 * sharing is tried; -1 only for an injected fault. */
int es_file_share(es_file *src, uint64_t soff, es_file *dst, uint64_t doff, uint64_t n,
                  uint64_t *shared, es_err *e);
/* fdatasync: an ordering point. */
int es_file_flush(es_file *f, es_err *e);
int es_file_truncate(es_file *f, uint64_t size, es_err *e);
/* Owner and mode of an open file (counted as "mutate"). */
int es_file_chown(es_file *f, uid_t uid, gid_t gid, es_err *e);
int es_file_chmod(es_file *f, mode_t mode, es_err *e);
int es_file_size(es_file *f, uint64_t *size, es_err *e);
/* Bytes actually allocated on disk (st_blocks * 512). */
int es_file_allocated(es_file *f, uint64_t *bytes, es_err *e);

/* A performance hint (no effect on contents or durability, never fails,
 * not counted by the fault hook): start writing back the dirty pages of
 * [off, off+len) without waiting; an fdatasync is still needed. */
void es_file_start_writeback(es_file *f, uint64_t off, uint64_t len);

/* A buffer for file data, page-aligned (free() it; never NULL, see
 * util/xalloc.h): the kernel copies
 * between the page cache and an aligned buffer several times faster than
 * into malloc's 16-byte-aligned memory (measured: `img compare` of two
 * cached 2.9 GB images, 3.6 s of which 3 s copying, against 0.9 s). */
void *es_io_alloc(size_t n);

/* A performance hint as well: start reading [off, off+len) into the page
 * cache without waiting, so that reads to come find it there. */
void es_file_prefetch(es_file *f, uint64_t off, uint64_t len);

/* --root: hold DIR (a directory) as the root. From then on every path under
 * it (its real path, then '/'), as es_root_resolve makes them, is opened,
 * created, examined, renamed or removed by the functions here inside DIR by
 * construction: resolved by the kernel from a descriptor of DIR
 * (openat2 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS; where the kernel has no
 * openat2, a walk with O_NOFOLLOW per component), so a directory swapped for
 * a symbolic link meanwhile cannot lead outside. The path strings stay what
 * messages show. NULL, "" or "/": no root (paths are used as they are).
 * es_root_resolve calls it with its root; one root at a time. */
int es_io_root_set(const char *dir, es_err *e);
/* Tests: resolve under the root by the fallback walk, even with openat2. */
void es_io_root_walk_only(bool on);

/* Path-level operations that change nothing (not counted by the hook),
 * inside the root as above; same results and errno as stat(2), lstat(2),
 * statvfs(3), opendir(3) and readlink(2). */
int es_fs_stat(const char *path, struct stat *st);
int es_fs_lstat(const char *path, struct stat *st);
int es_fs_statvfs(const char *path, struct statvfs *st);
DIR *es_fs_opendir(const char *path);
ssize_t es_fs_readlink(const char *path, char *buf, size_t size);
/* The name for connect(2) to reach the UNIX socket at path: under the root,
 * "/proc/self/fd/N" of a descriptor of the socket file found inside it
 * (*held = N: close it once connected); elsewhere path itself (*held = -1).
 * 0, or -1 with errno set. */
int es_fs_socket_name(const char *path, char *name, size_t size, int *held);

/* Path-level mutating operations, counted as "mutate", inside the root as
 * above: the directory holding the target is opened inside the root and the
 * operation applies to its last component (never followed). */
int es_fs_rename(const char *from, const char *to, es_err *e);
int es_fs_unlink(const char *path, es_err *e);
int es_fs_fsync_dir(const char *dir, es_err *e);
int es_fs_mkdir(const char *path, mode_t mode, es_err *e);
int es_fs_rmdir(const char *path, es_err *e);
/* A second name for an existing file (link(2): no data copied). */
int es_fs_link(const char *from, const char *to, es_err *e);
int es_fs_chown(const char *path, uid_t uid, gid_t gid, es_err *e);
int es_fs_chmod(const char *path, mode_t mode, es_err *e);

/* Fault hook control (tests). kind: "read","write","flush","mutate". */
typedef enum { ES_FAULT_EIO, ES_FAULT_ENOSPC, ES_FAULT_STOP } es_fault_action;
int es_fault_set(const char *kind, uint64_t nth, es_fault_action action);
void es_fault_reset(void);
/* Counters since start (or last reset). */
uint64_t es_fault_count(const char *kind);
/* Add the faults of spec (EXTSNAP_FAULT's syntax above; NULL or "": none;
 * malformed entries are ignored) and set the trace file (NULL: no trace).
 * -1 only when out of memory. */
int es_fault_install(const char *spec, const char *trace_path);

#endif
