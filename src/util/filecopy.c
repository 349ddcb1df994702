#include "util/filecopy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "util/fileio.h"
#include "util/fsutil.h"
#include "util/xalloc.h"

#define XATTR_LIST_MAX_BYTES 65536
#define XATTR_VALUE_MAX_BYTES 65536

/* The attributes that label a file for the VM's confinement or that tools
 * set on purpose; system.* (ACLs follow the mode) and trusted.* are left. */
static bool copied_xattr(const char *name)
{
    return strncmp(name, "security.", 9) == 0 || strncmp(name, "user.", 5) == 0;
}

int es_copy_xattrs_fd(es_file *in, es_file *out, es_err *e)
{
    char *names = es_xmalloc(XATTR_LIST_MAX_BYTES);
    char *value = es_xmalloc(XATTR_VALUE_MAX_BYTES);
    int rc = 0;
    ssize_t n = flistxattr(in->fd, names, XATTR_LIST_MAX_BYTES);
    if (n < 0) {
        /* A file system without extended attributes has none to copy. */
        if (errno != ENOTSUP)
            rc = es_err_set(e, errno, in->path, "cannot list the extended attributes");
        n = 0;
    }
    for (ssize_t off = 0; rc == 0 && off < n; off += (ssize_t)strlen(names + off) + 1) {
        const char *name = names + off;
        if (!copied_xattr(name))
            continue;
        ssize_t len = fgetxattr(in->fd, name, value, XATTR_VALUE_MAX_BYTES);
        if (len < 0) {
            rc = es_err_set(e, errno, in->path, "cannot read extended attribute %s", name);
            break;
        }
        if (fsetxattr(out->fd, name, value, (size_t)len, 0) < 0) {
            /* An unprivileged user cannot set security.*; the label then
             * comes from the directory, as for any new file. */
            if (errno == EPERM && strncmp(name, "security.", 9) == 0)
                continue;
            rc = es_err_set(e, errno, out->path, "cannot set extended attribute %s", name);
        }
    }
    free(names);
    free(value);
    return rc;
}

int es_copy_owner_mode_fd(es_file *out, const struct stat *st, es_err *e)
{
    es_err oe;
    if (es_file_chown(out, st->st_uid, st->st_gid, &oe) < 0 && oe.errnum != EPERM)
        return es_err_set(e, oe.errnum, out->path, "cannot set the owner of the copy");
    if (es_file_chmod(out, st->st_mode & 07777, &oe) < 0)
        return es_err_set(e, oe.errnum, out->path, "cannot set the mode of the copy");
    return 0;
}

/* src (open, regular, stat st) into the new file dst: bytes, owner, mode,
 * attributes, flushed. dst is removed again on failure. */
static int copy_into(es_file *in, const struct stat *st, const char *dst, es_err *e)
{
    es_file *out = NULL;
    uint64_t size = 0;
    if (es_file_open(&out, dst, O_RDWR | O_CREAT | O_EXCL, 0600, e) < 0)
        return -1;
    int rc = -1;
    if (es_file_size(in, &size, e) == 0 && (!size || es_file_copy(in, 0, out, 0, size, e) == 0) &&
        es_copy_owner_mode_fd(out, st, e) == 0 && es_copy_xattrs_fd(in, out, e) == 0 &&
        es_file_flush(out, e) == 0)
        rc = 0;
    es_file_close(out);
    if (rc < 0)
        (void)es_unlink_if_exists(dst, NULL);
    return rc;
}

static int open_regular(const char *src, es_file **in, struct stat *st, es_err *e)
{
    if (es_file_open(in, src, O_RDONLY, 0, e) < 0)
        return -1;
    int r = 0;
    if (fstat((*in)->fd, st) < 0)
        r = es_err_set(e, errno, src, "cannot stat");
    else if (!S_ISREG(st->st_mode))
        r = es_err_set(e, 0, src, "not a regular file");
    if (r < 0) {
        es_file_close(*in);
        *in = NULL;
    }
    return r;
}

int es_copy_file_new(const char *src, const char *dst, es_err *e)
{
    es_file *in = NULL;
    struct stat st;
    if (open_regular(src, &in, &st, e) < 0)
        return -1;
    int rc = copy_into(in, &st, dst, e);
    es_file_close(in);
    return rc;
}

int es_copy_file_replace(const char *src, const char *dst, const char *tmp, es_err *e)
{
    es_file *in = NULL;
    struct stat st;
    if (open_regular(src, &in, &st, e) < 0)
        return -1;
    int rc = -1;
    if (es_unlink_if_exists(tmp, e) == 0 && /* a stale one from a crash */
        copy_into(in, &st, tmp, e) == 0) {
        if (es_fs_rename(tmp, dst, e) < 0)
            (void)es_unlink_if_exists(tmp, NULL);
        else
            rc = es_fsync_parent(dst, e);
    }
    es_file_close(in);
    return rc;
}
