#include "snap/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/fileio.h"

int snap_read_file(const char *path, size_t max, char **text, size_t *len, bool *exists,
                   es_err *e)
{
    *text = NULL;
    *len = 0;
    *exists = false;
    es_file *f = NULL;
    if (es_file_open(&f, path, O_RDONLY, 0, e) < 0) {
        if (e && e->errnum == ENOENT) {
            es_err_clear(e);
            return 0;
        }
        return -1;
    }
    uint64_t size = 0;
    int rc = -1;
    char *buf = NULL;
    if (es_file_size(f, &size, e) < 0)
        goto out;
    if (size > max) {
        es_err_set(e, EFBIG, path, "file is larger than %zu bytes", max);
        goto out;
    }
    buf = malloc((size_t)size + 1);
    if (!buf) {
        es_err_set(e, ENOMEM, NULL, "out of memory");
        goto out;
    }
    if (size && es_file_pread(f, buf, (size_t)size, 0, e) < 0)
        goto out;
    buf[size] = '\0';
    *text = buf;
    buf = NULL;
    *len = (size_t)size;
    *exists = true;
    rc = 0;
out:
    free(buf);
    es_file_close(f);
    return rc;
}

bool snap_path_exists(const char *path)
{
    struct stat st;
    return es_fs_lstat(path, &st) == 0;
}

int snap_unlink_if_exists(const char *path, es_err *e)
{
    if (!snap_path_exists(path))
        return 0;
    if (es_fs_unlink(path, e) < 0) {
        if (e && e->errnum == ENOENT) {
            es_err_clear(e);
            return 0;
        }
        return -1;
    }
    return 0;
}

int snap_fsync_parent(const char *path, es_err *e)
{
    char *dir = strdup(path);
    if (!dir)
        return es_err_set(e, ENOMEM, NULL, "out of memory");
    char *slash = strrchr(dir, '/');
    if (!slash) {
        free(dir);
        return es_fs_fsync_dir(".", e);
    }
    if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    int r = es_fs_fsync_dir(dir, e);
    free(dir);
    return r;
}
