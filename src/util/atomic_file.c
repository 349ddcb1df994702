#include "util/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/str.h"
#include "util/xalloc.h"

/* Give the temporary file the target's mode and owner before it becomes the
 * target, so there is no moment where the new file is more open than the old. */
static int copy_identity(es_file *f, mode_t mode, const struct stat *old, es_err *e)
{
    if (es_file_chmod(f, mode, e) < 0)
        return -1;
    if (!old)
        return 0;
    struct stat now;
    if (fstat(f->fd, &now) < 0)
        return es_err_set(e, errno, f->path, "cannot stat");
    if (now.st_uid == old->st_uid && now.st_gid == old->st_gid)
        return 0;
    if (es_file_chown(f, old->st_uid, old->st_gid, e) < 0)
        return es_err_prefix(e, "cannot give the new file the owner of the old one");
    /* chown may clear set-id bits: apply the mode again. */
    if (es_file_chmod(f, mode, e) < 0)
        return -1;
    return 0;
}

static int write_temp(const char *tmp_path, const void *data, size_t len, mode_t mode,
                      const struct stat *old, es_err *e)
{
    es_file *f = NULL;
    if (es_file_open(&f, tmp_path, O_WRONLY | O_CREAT | O_EXCL, mode & 0777, e) < 0)
        return -1;
    int rc = -1;
    if (copy_identity(f, mode, old, e) < 0)
        goto out;
    if (len && es_file_pwrite(f, data, len, 0, e) < 0)
        goto out;
    if (es_file_flush(f, e) < 0)
        goto out;
    rc = 0;
out:
    es_file_close(f);
    return rc;
}

static void remove_quietly(const char *path)
{
    es_err ignored;
    struct stat st;
    if (es_fs_lstat(path, &st) == 0)
        es_fs_unlink(path, &ignored);
}

int es_atomic_replace(const char *path, const char *tmp_path, const void *data, size_t len,
                      mode_t new_mode, es_err *e)
{
    struct stat old, st;
    bool exists = false;
    if (es_fs_lstat(path, &old) == 0) {
        if (!S_ISREG(old.st_mode))
            return es_err_set(e, 0, path, "not a regular file; refusing to replace it");
        exists = true;
    } else if (errno != ENOENT) {
        return es_err_set(e, errno, path, "cannot stat");
    }
    mode_t mode = exists ? (old.st_mode & 07777) : (new_mode & 07777);

    if (es_fs_lstat(tmp_path, &st) == 0) {
        if (!S_ISREG(st.st_mode))
            return es_err_set(e, 0, tmp_path, "temporary path exists and is not a regular file");
        if (es_fs_unlink(tmp_path, e) < 0)
            return es_err_prefix(e, "cannot remove a stale temporary file");
    }

    if (write_temp(tmp_path, data, len, mode, exists ? &old : NULL, e) < 0) {
        remove_quietly(tmp_path);
        return -1;
    }
    if (es_fs_rename(tmp_path, path, e) < 0) {
        remove_quietly(tmp_path);
        return -1;
    }

    char *dir = es_path_dir(path), *tmp_dir = es_path_dir(tmp_path);
    int rc = -1;
    if (es_fs_fsync_dir(dir, e) < 0)
        goto out;
    /* A rename across directories changes both. */
    if (strcmp(dir, tmp_dir) != 0 && es_fs_fsync_dir(tmp_dir, e) < 0)
        goto out;
    rc = 0;
out:
    free(dir);
    free(tmp_dir);
    return rc;
}
