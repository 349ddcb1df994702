#include "util/filetree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/filecopy.h"
#include "util/fileio.h"
#include "util/fsutil.h"
#include "util/str.h"
#include "util/strv.h"

/* Trees deeper than this are refused (swtpm's is two levels). */
#define TREE_DEPTH_MAX 16

bool es_is_dir(const char *path)
{
    struct stat st;
    return es_fs_lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The names in dir, without . and .. */
static int list_dir(const char *dir, es_strv *names, es_err *e)
{
    DIR *d = es_fs_opendir(dir);
    if (!d)
        return es_err_set(e, errno, dir, "cannot read the directory");
    int rc = 0;
    struct dirent *de;
    errno = 0;
    while (rc == 0 && (de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            rc = es_strv_add(names, de->d_name, e);
    if (rc == 0 && errno)
        rc = es_err_set(e, errno, dir, "cannot read the directory");
    closedir(d);
    return rc;
}

static int remove_at(const char *path, int depth, es_err *e)
{
    struct stat st;
    if (es_fs_lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : es_err_set(e, errno, path, "cannot examine");
    if (!S_ISDIR(st.st_mode))
        return es_fs_unlink(path, e);
    if (depth > TREE_DEPTH_MAX)
        return es_err_set(e, ELOOP, path, "directory tree too deep to remove");
    es_strv names = {0};
    int rc = list_dir(path, &names, e);
    for (size_t i = 0; rc == 0 && i < names.n; i++) {
        char *child = NULL;
        rc = es_asprintf(&child, e, "%s/%s", path, names.v[i]);
        if (rc == 0)
            rc = remove_at(child, depth + 1, e);
        free(child);
    }
    es_strv_free(&names);
    if (rc == 0)
        rc = es_fs_rmdir(path, e);
    return rc;
}

int es_remove_tree(const char *path, es_err *e)
{
    if (!es_path_exists(path))
        return 0;
    if (remove_at(path, 0, e) < 0)
        return -1;
    return es_fsync_parent(path, e);
}

/* Owner, mode and attributes of directory src onto dst; dst flushed. */
static int finish_dir(const char *src, const char *dst, const struct stat *st, es_err *e)
{
    es_file *in = NULL, *out = NULL;
    int rc = -1;
    if (es_file_open(&in, src, O_RDONLY | O_DIRECTORY, 0, e) == 0 &&
        es_file_open(&out, dst, O_RDONLY | O_DIRECTORY, 0, e) == 0 &&
        es_copy_owner_mode_fd(out, st, e) == 0 && es_copy_xattrs_fd(in, out, e) == 0)
        rc = es_fs_fsync_dir(dst, e);
    es_file_close(in);
    es_file_close(out);
    return rc;
}

static int copy_at(const char *src, const char *dst, int depth, es_err *e)
{
    struct stat st;
    if (es_fs_lstat(src, &st) < 0)
        return es_err_set(e, errno, src, "cannot examine");
    if (S_ISREG(st.st_mode))
        return es_copy_file_new(src, dst, e);
    if (!S_ISDIR(st.st_mode))
        return es_err_set(e, 0, src, "neither a regular file nor a directory: not copied");
    if (depth > TREE_DEPTH_MAX)
        return es_err_set(e, ELOOP, src, "directory tree too deep to copy");
    if (es_fs_mkdir(dst, 0700, e) < 0)
        return -1;
    es_strv names = {0};
    int rc = list_dir(src, &names, e);
    for (size_t i = 0; rc == 0 && i < names.n; i++) {
        char *s = NULL, *d = NULL;
        rc = es_asprintf(&s, e, "%s/%s", src, names.v[i]);
        if (rc == 0)
            rc = es_asprintf(&d, e, "%s/%s", dst, names.v[i]);
        if (rc == 0)
            rc = copy_at(s, d, depth + 1, e);
        free(s);
        free(d);
    }
    es_strv_free(&names);
    if (rc == 0)
        rc = finish_dir(src, dst, &st, e);
    return rc;
}

int es_copy_tree_replace(const char *src, const char *dst, const char *tmp, const char *old,
                         es_err *e)
{
    if (!es_is_dir(src))
        return es_err_set(e, ENOTDIR, src, "not a directory");
    if (es_remove_tree(tmp, e) < 0 || copy_at(src, tmp, 0, e) < 0 || es_fsync_parent(tmp, e) < 0) {
        (void)es_remove_tree(tmp, NULL);
        return -1;
    }
    if (es_path_exists(dst)) {
        if (es_remove_tree(old, e) < 0 || es_fs_rename(dst, old, e) < 0)
            return -1;
    }
    if (es_fs_rename(tmp, dst, e) < 0 || es_fsync_parent(dst, e) < 0)
        return -1;
    return es_remove_tree(old, e);
}
