#include "util/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "util/fileio_root.h"
#include "util/xalloc.h"

enum { K_READ, K_WRITE, K_FLUSH, K_MUTATE, K_COUNT };
static const char *const kind_names[K_COUNT] = {"read", "write", "flush", "mutate"};

#define MAX_FAULTS 8
struct fault {
    int kind;
    uint64_t nth;
    es_fault_action action;
};

static struct {
    uint64_t count[K_COUNT];
    struct fault faults[MAX_FAULTS];
    int nfaults;
    char *trace_path;
} hook;

static int kind_index(const char *name)
{
    for (int i = 0; i < K_COUNT; i++)
        if (strcmp(name, kind_names[i]) == 0)
            return i;
    return -1;
}

int es_fault_install(const char *spec, const char *trace_path)
{
    free(hook.trace_path);
    hook.trace_path = trace_path && *trace_path ? es_xstrdup(trace_path) : NULL;
    if (!spec || !*spec)
        return 0;
    char *copy = es_xstrdup(spec), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char kind[16], act[16];
        unsigned long long n;
        if (sscanf(tok, "%15[a-z]:%llu:%15[a-z]", kind, &n, act) != 3)
            continue;
        es_fault_action a = strcmp(act, "stop") == 0     ? ES_FAULT_STOP
                            : strcmp(act, "enospc") == 0 ? ES_FAULT_ENOSPC
                                                         : ES_FAULT_EIO;
        es_fault_set(kind, n, a);
    }
    free(copy);
    return 0;
}

int es_fault_set(const char *kind, uint64_t nth, es_fault_action action)
{
    int k = kind_index(kind);
    if (k < 0 || hook.nfaults >= MAX_FAULTS)
        return -1;
    hook.faults[hook.nfaults++] = (struct fault){k, nth, action};
    return 0;
}

void es_fault_reset(void)
{
    memset(hook.count, 0, sizeof hook.count);
    hook.nfaults = 0;
}

uint64_t es_fault_count(const char *kind)
{
    int k = kind_index(kind);
    return k < 0 ? 0 : hook.count[k];
}

static void trace(int k, const char *op, const char *path)
{
    if (!hook.trace_path)
        return;
    FILE *fp = fopen(hook.trace_path, "a");
    if (!fp)
        return;
    fprintf(fp, "%s %llu %s %s\n", kind_names[k], (unsigned long long)hook.count[k], op,
            path ? path : "");
    fclose(fp);
}

/* Count one operation of kind k (and of "mutate" when it changes disk).
 * Returns 0 to proceed, or an errno value to fail with. Never returns on stop. */
static int tick(int k, const char *op, const char *path)
{
    int kinds[2] = {k, -1};
    if (k == K_WRITE || k == K_FLUSH)
        kinds[1] = K_MUTATE;
    int result = 0;
    for (int i = 0; i < 2 && kinds[i] >= 0; i++) {
        int kk = kinds[i];
        hook.count[kk]++;
        trace(kk, op, path);
        for (int j = 0; j < hook.nfaults; j++) {
            if (hook.faults[j].kind != kk || hook.faults[j].nth != hook.count[kk])
                continue;
            if (hook.faults[j].action == ES_FAULT_STOP)
                _exit(ES_FAULT_STOP_STATUS);
            result = hook.faults[j].action == ES_FAULT_ENOSPC ? ENOSPC : EIO;
        }
    }
    return result;
}

/* Wrap an existing descriptor (takes ownership). */
static int es_file_adopt(es_file **out, int fd, const char *path, bool writable, es_err *e)
{
    (void)e;
    es_file *f = es_xcalloc(1, sizeof *f);
    char *p = es_xstrdup(path ? path : "");
    f->fd = fd;
    f->path = p;
    f->writable = writable;
    *out = f;
    return 0;
}

int es_file_open(es_file **out, const char *path, int flags, mode_t mode, es_err *e)
{
    *out = NULL;
    if (flags & O_CREAT) {
        int inj = tick(K_MUTATE, "create", path);
        if (inj)
            return es_err_set(e, inj, path, "cannot create file");
    }
    /* O_NONBLOCK: opening a FIFO (a backing file name is data from the
     * image) must fail here, not wait for a writer forever. */
    int fd = es_root_open(path, flags | O_CLOEXEC | O_NONBLOCK, mode);
    if (fd < 0)
        return es_err_set(e, errno, path, "cannot open");
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) {
        close(fd);
        return es_err_set(e, ESPIPE, path, "cannot open a FIFO");
    }
    if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
        int err = errno;
        close(fd);
        return es_err_set(e, err, path, "cannot open");
    }
    int acc = flags & O_ACCMODE;
    return es_file_adopt(out, fd, path, acc == O_RDWR || acc == O_WRONLY, e);
}

void es_file_close(es_file *f)
{
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    free(f->path);
    free(f);
}

/* The loops under the hook: 0 or an errno value. */
static int raw_pread(int fd, void *buf, size_t n, uint64_t off, size_t *got)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            *got = done;
            return errno;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

static int raw_pwrite(int fd, const void *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pwrite(fd, (const char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        done += (size_t)r;
    }
    return 0;
}

int es_file_pread_some(es_file *f, void *buf, size_t n, uint64_t off, size_t *got, es_err *e)
{
    int inj = tick(K_READ, "pread", f->path);
    if (inj)
        return es_err_set(e, inj, f->path, "read of %zu bytes at offset 0x%llx failed", n,
                          (unsigned long long)off);
    int err = raw_pread(f->fd, buf, n, off, got);
    if (err)
        return es_err_set(e, err, f->path, "read of %zu bytes at offset 0x%llx failed", n,
                          (unsigned long long)off);
    return 0;
}

int es_file_pread(es_file *f, void *buf, size_t n, uint64_t off, es_err *e)
{
    size_t got;
    if (es_file_pread_some(f, buf, n, off, &got, e) < 0)
        return -1;
    if (got != n)
        return es_err_set(e, 0, f->path, "unexpected end of file reading %zu bytes at offset 0x%llx",
                          n, (unsigned long long)off);
    return 0;
}

int es_file_pwrite(es_file *f, const void *buf, size_t n, uint64_t off, es_err *e)
{
    int inj = tick(K_WRITE, "pwrite", f->path);
    if (!inj)
        inj = raw_pwrite(f->fd, buf, n, off);
    if (inj)
        return es_err_set(e, inj, f->path, "write of %zu bytes at offset 0x%llx failed", n,
                          (unsigned long long)off);
    return 0;
}

#define COPY_BOUNCE (1u << 20)

/* The fallback of es_file_copy: through a bounded buffer. *werr tells
 * whether a failure was the write's. */
static int copy_bounce(int sfd, uint64_t soff, int dfd, uint64_t doff, uint64_t n, bool *werr)
{
    size_t cap = n < COPY_BOUNCE ? (size_t)n : COPY_BOUNCE;
    uint8_t *buf = es_io_alloc(cap);
    int err = 0;
    while (n && !err) {
        size_t k = n < cap ? (size_t)n : cap, got;
        err = raw_pread(sfd, buf, k, soff, &got);
        if (err)
            break;
        memset(buf + got, 0, k - got); /* past the source's end */
        err = raw_pwrite(dfd, buf, k, doff);
        if (err) { /* the caller reports it against the file written */
            *werr = true;
            break;
        }
        soff += k;
        doff += k;
        n -= k;
    }
    free(buf);
    return err;
}

/* Fill f's sharing probe (es_file.share). */
static void share_probe(es_file *f)
{
    struct stat st;
    struct statfs sf;
    f->share = -1;
    if (fstat(f->fd, &st) < 0 || !S_ISREG(st.st_mode) || fstatfs(f->fd, &sf) < 0 || sf.f_bsize <= 0)
        return;
    f->dev = st.st_dev;
    f->block = (uint64_t)sf.f_bsize;
    f->share = 1;
}

/* The length of the range at the start of [soff, soff+n) -> doff that
 * FICLONERANGE may share: both ends block-aligned, one file system. */
static uint64_t shareable(es_file *src, uint64_t soff, es_file *dst, uint64_t doff, uint64_t n)
{
    if (!src->share)
        share_probe(src);
    if (!dst->share)
        share_probe(dst);
    if (src->share < 0 || dst->share < 0 || src->dev != dst->dev || src->block != dst->block)
        return 0;
    uint64_t b = dst->block;
    if (soff % b || doff % b)
        return 0;
    return n - n % b;
}

/* Share [soff, soff+len) of src at doff of dst: 0, or an errno value. */
static int clone_range(es_file *src, uint64_t soff, es_file *dst, uint64_t doff, uint64_t len)
{
    while (len) {
        uint64_t want = len > (1u << 30) ? (1u << 30) : len;
        struct file_clone_range r = {.src_fd = src->fd, .src_offset = soff, .src_length = want,
                                     .dest_offset = doff};
        if (ioctl(dst->fd, FICLONERANGE, &r) < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        soff += want;
        doff += want;
        len -= want;
    }
    return 0;
}

/* The fault hook's two counts for a copy of n bytes (op: how). */
static int tick_copy(const char *op, es_file *src, uint64_t soff, es_file *dst, uint64_t doff,
                     uint64_t n, es_err *e)
{
    int inj = tick(K_READ, op, src->path);
    if (inj)
        return es_err_set(e, inj, src->path, "read of %llu bytes at offset 0x%llx failed",
                          (unsigned long long)n, (unsigned long long)soff);
    inj = tick(K_WRITE, op, dst->path);
    if (inj)
        return es_err_set(e, inj, dst->path, "write of %llu bytes at offset 0x%llx failed",
                          (unsigned long long)n, (unsigned long long)doff);
    return 0;
}

/* Share the first len bytes (shareable()): len, or 0 when the file system
 * would not. */
static uint64_t try_share(es_file *src, uint64_t soff, es_file *dst, uint64_t doff, uint64_t len)
{
    int cerr = clone_range(src, soff, dst, doff, len);
    if (!cerr)
        return len;
    if (cerr == EOPNOTSUPP || cerr == ENOTTY || cerr == ENOSYS)
        dst->share = -1; /* this file system cannot: do not ask again */
    /* Anything else (EXDEV: another mount; EINVAL: the range runs past
     * src's end; ENOSPC, EIO): the caller copies, which fails on its own
     * if the error was real. A partly done clone is simply redone. */
    return 0;
}

int es_file_share(es_file *src, uint64_t soff, es_file *dst, uint64_t doff, uint64_t n,
                  uint64_t *shared, es_err *e)
{
    *shared = 0;
    uint64_t len = shareable(src, soff, dst, doff, n);
    if (!len)
        return 0;
    if (tick_copy("clone", src, soff, dst, doff, len, e) < 0)
        return -1;
    *shared = try_share(src, soff, dst, doff, len);
    return 0;
}

int es_file_copy(es_file *src, uint64_t soff, es_file *dst, uint64_t doff, uint64_t n, es_err *e)
{
    uint64_t share = shareable(src, soff, dst, doff, n);
    if (tick_copy(share ? "clone" : "copy_file_range", src, soff, dst, doff, n, e) < 0)
        return -1;
    if (share && try_share(src, soff, dst, doff, share)) {
        soff += share;
        doff += share;
        n -= share;
    }
    int err = 0;
    bool werr = false;
    while (n) {
        loff_t so = (loff_t)soff, dof = (loff_t)doff;
        size_t want = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t r = copy_file_range(src->fd, &so, dst->fd, &dof, want, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            /* r == 0: the source ended; else the kernel or file system
             * cannot copy here (or a real error, which the plain path
             * reports with its own errno and side). */
            err = copy_bounce(src->fd, soff, dst->fd, doff, n, &werr);
            break;
        }
        soff += (uint64_t)r;
        doff += (uint64_t)r;
        n -= (uint64_t)r;
    }
    if (err)
        return werr ? es_err_set(e, err, dst->path, "write at offset 0x%llx failed",
                                 (unsigned long long)doff)
                    : es_err_set(e, err, src->path, "read at offset 0x%llx failed",
                                 (unsigned long long)soff);
    return 0;
}

int es_file_flush(es_file *f, es_err *e)
{
    int inj = tick(K_FLUSH, "fdatasync", f->path);
    if (inj)
        return es_err_set(e, inj, f->path, "flush failed");
    if (fdatasync(f->fd) < 0)
        return es_err_set(e, errno, f->path, "flush failed");
    return 0;
}

int es_file_truncate(es_file *f, uint64_t size, es_err *e)
{
    int inj = tick(K_MUTATE, "truncate", f->path);
    if (inj)
        return es_err_set(e, inj, f->path, "cannot resize to %llu bytes", (unsigned long long)size);
    if (ftruncate(f->fd, (off_t)size) < 0)
        return es_err_set(e, errno, f->path, "cannot resize to %llu bytes",
                          (unsigned long long)size);
    return 0;
}

int es_file_size(es_file *f, uint64_t *size, es_err *e)
{
    struct stat st;
    if (fstat(f->fd, &st) < 0)
        return es_err_set(e, errno, f->path, "cannot stat");
    if (S_ISBLK(st.st_mode)) {
        off_t end = lseek(f->fd, 0, SEEK_END);
        if (end < 0)
            return es_err_set(e, errno, f->path, "cannot find size of block device");
        *size = (uint64_t)end;
        return 0;
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

int es_file_allocated(es_file *f, uint64_t *bytes, es_err *e)
{
    struct stat st;
    if (fstat(f->fd, &st) < 0)
        return es_err_set(e, errno, f->path, "cannot stat");
    *bytes = (uint64_t)st.st_blocks * 512;
    return 0;
}

int es_fs_rename(const char *from, const char *to, es_err *e)
{
    int inj = tick(K_MUTATE, "rename", to);
    if (inj)
        return es_err_set(e, inj, to, "cannot rename %s", from);
    if (es_root_rename(from, to) < 0)
        return es_err_set(e, errno, to, "cannot rename %s", from);
    return 0;
}

int es_fs_unlink(const char *path, es_err *e)
{
    int inj = tick(K_MUTATE, "unlink", path);
    if (inj)
        return es_err_set(e, inj, path, "cannot remove");
    if (es_root_unlink(path) < 0)
        return es_err_set(e, errno, path, "cannot remove");
    return 0;
}

int es_fs_fsync_dir(const char *dir, es_err *e)
{
    int inj = tick(K_MUTATE, "fsync-dir", dir);
    if (inj)
        return es_err_set(e, inj, dir, "cannot sync directory");
    int fd = es_root_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0)
        return es_err_set(e, errno, dir, "cannot open directory");
    int r = fsync(fd);
    int saved = errno;
    close(fd);
    if (r < 0)
        return es_err_set(e, saved, dir, "cannot sync directory");
    return 0;
}

int es_fs_mkdir(const char *path, mode_t mode, es_err *e)
{
    int inj = tick(K_MUTATE, "mkdir", path);
    if (inj)
        return es_err_set(e, inj, path, "cannot create directory");
    if (es_root_mkdir(path, mode) < 0)
        return es_err_set(e, errno, path, "cannot create directory");
    return 0;
}

int es_fs_rmdir(const char *path, es_err *e)
{
    int inj = tick(K_MUTATE, "rmdir", path);
    if (inj)
        return es_err_set(e, inj, path, "cannot remove directory");
    if (es_root_rmdir(path) < 0)
        return es_err_set(e, errno, path, "cannot remove directory");
    return 0;
}

int es_fs_link(const char *from, const char *to, es_err *e)
{
    int inj = tick(K_MUTATE, "link", to);
    if (inj)
        return es_err_set(e, inj, to, "cannot link %s", from);
    if (es_root_link(from, to) < 0)
        return es_err_set(e, errno, to, "cannot link %s", from);
    return 0;
}

int es_fs_chown(const char *path, uid_t uid, gid_t gid, es_err *e)
{
    int inj = tick(K_MUTATE, "chown", path);
    if (inj)
        return es_err_set(e, inj, path, "cannot set the owner to %u:%u", (unsigned)uid,
                          (unsigned)gid);
    if (es_root_chown(path, uid, gid) < 0)
        return es_err_set(e, errno, path, "cannot set the owner to %u:%u", (unsigned)uid,
                          (unsigned)gid);
    return 0;
}

int es_fs_chmod(const char *path, mode_t mode, es_err *e)
{
    int inj = tick(K_MUTATE, "chmod", path);
    if (inj)
        return es_err_set(e, inj, path, "cannot set mode %04o", (unsigned)mode);
    if (es_root_chmod(path, mode) < 0)
        return es_err_set(e, errno, path, "cannot set mode %04o", (unsigned)mode);
    return 0;
}

int es_file_chown(es_file *f, uid_t uid, gid_t gid, es_err *e)
{
    int inj = tick(K_MUTATE, "chown", f->path);
    if (inj)
        return es_err_set(e, inj, f->path, "cannot set the owner to %u:%u", (unsigned)uid,
                          (unsigned)gid);
    if (fchown(f->fd, uid, gid) < 0)
        return es_err_set(e, errno, f->path, "cannot set the owner to %u:%u", (unsigned)uid,
                          (unsigned)gid);
    return 0;
}

int es_file_chmod(es_file *f, mode_t mode, es_err *e)
{
    int inj = tick(K_MUTATE, "chmod", f->path);
    if (inj)
        return es_err_set(e, inj, f->path, "cannot set mode %04o", (unsigned)mode);
    if (fchmod(f->fd, mode) < 0)
        return es_err_set(e, errno, f->path, "cannot set mode %04o", (unsigned)mode);
    return 0;
}

void es_file_start_writeback(es_file *f, uint64_t off, uint64_t len)
{
    (void)sync_file_range(f->fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
}

void *es_io_alloc(size_t n)
{
    void *p = NULL;
    return es_xcheck(posix_memalign(&p, 4096, n ? n : 1) == 0 ? p : NULL);
}

void es_file_prefetch(es_file *f, uint64_t off, uint64_t len)
{
    (void)posix_fadvise(f->fd, (off_t)off, (off_t)len, POSIX_FADV_WILLNEED);
}
