#include "snap/graph/image_check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qcow2/check.h"
#include "qcow2/image.h"
#include "util/fileio.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

int snap_check_image(const char *root, const char *path, const char *format, es_err *e)
{
    es_open_opts o = {.format = format, .root = root, .force_share = true};
    es_image *img = NULL;
    if (es_image_open(&img, path, &o, e) < 0)
        return -1;
    es_image_close(img);
    return 0;
}

/* The judge of image damage, shared with 'verify': the engine's check of
 * a qcow2 image (qemu-img check's rules). *corruptions is what it counts
 * as corruption; -1 when the check could not complete (e says why). A raw
 * image has nothing to check (0). Reads without image locks: callers have
 * made sure no VM runs on it. */
static int snap_image_corruptions(const char *root, const char *path, long long *corruptions,
                                  es_err *e)
{
    *corruptions = 0;
    char *host = NULL;
    if (es_root_resolve(root, path, &host, e) < 0)
        return -1;
    bool qcow2 = false;
    int r = qcow2_check_is_qcow2(host, &qcow2, e);
    qcow2_check_result res;
    memset(&res, 0, sizeof res);
    if (r == 0 && qcow2)
        r = qcow2_check_pass(host, QCOW2_CHECK_FORCE_SHARE, NULL, &res, e);
    if (r == 0 && res.check_errors > 0)
        r = es_err_set(e, 0, host, "%lld internal error(s) while checking the image",
                       (long long)res.check_errors);
    free(host);
    *corruptions = (long long)res.corruptions;
    return r;
}

int snap_check_image_sound(const char *root, const char *path, const char *what,
                           const char *disk, es_err *e)
{
    long long n = 0;
    if (snap_image_corruptions(root, path, &n, e) < 0)
        return es_err_prefix(e, "cannot %s: disk %s: the image check of %s could not complete",
                             what, disk, path);
    /* The hint's command reaches the image as this run did (its --root). */
    bool under = root && root[0];
    if (n > 0)
        return es_err_set(e, 0, path,
                          "cannot %s: disk %s: %lld corruption(s) in the image's metadata (see "
                          "'extsnap img check%s%s %s'); nothing was changed",
                          what, disk, n, under ? " --root " : "", under ? root : "", path);
    return 0;
}

int snap_owner_from(const char *root, const char *below, snap_overlay *o, es_err *e)
{
    char *host = NULL;
    if (es_root_resolve(root, below, &host, e) < 0)
        return -1;
    struct stat st;
    int r = es_fs_stat(host, &st);
    if (r < 0)
        r = es_err_set(e, errno, host, "cannot stat");
    free(host);
    if (r < 0)
        return -1;
    o->uid = (long long)st.st_uid;
    o->gid = (long long)st.st_gid;
    o->mode = (long long)((st.st_mode & 0666) | S_IWUSR);
    return 0;
}

int snap_check_new_overlay(const char *root, const char *path, const char *disk,
                           bool *existed_empty, es_err *e)
{
    *existed_empty = false;
    char *host = NULL;
    if (es_root_resolve(root, path, &host, e) < 0)
        return es_err_prefix(e, "overlay of disk %s", disk);
    struct stat st;
    int r = 0;
    if (es_fs_lstat(host, &st) == 0) {
        if (S_ISREG(st.st_mode) && st.st_size == 0)
            *existed_empty = true;
        else
            r = es_err_set(e, 0, host,
                           "external snapshot file for disk %s already exists and is not an "
                           "empty file; extsnap never overwrites it (move it away, or choose "
                           "another snapshot name)",
                           disk);
    } else if (errno != ENOENT) {
        r = es_err_set(e, errno, host, "cannot stat the overlay of disk %s", disk);
    } else {
        /* Its directory must exist: the overlay goes beside the image below. */
        char *dir = es_xstrdup(host);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir)
            *slash = '\0';
        if (es_fs_stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
            r = es_err_set(e, errno ? errno : ENOTDIR, dir,
                           "directory of the overlay of disk %s", disk);
        free(dir);
    }
    free(host);
    return r;
}
