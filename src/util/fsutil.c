#include "util/fsutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/fileio.h"
#include "util/xalloc.h"

bool es_path_exists(const char *path)
{
    struct stat st;
    return es_fs_lstat(path, &st) == 0;
}

int es_unlink_if_exists(const char *path, es_err *e)
{
    if (!es_path_exists(path))
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

int es_fsync_parent(const char *path, es_err *e)
{
    char *dir = es_xstrdup(path);
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
