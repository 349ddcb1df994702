#include "snap/graph/refs.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qcow2/image.h"
#include "snap/graph/chain.h"
#include "util/fileio.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

void snap_fileset_free(snap_fileset *s)
{
    free(s->dev);
    free(s->ino);
    memset(s, 0, sizeof *s);
}

bool snap_fileset_has(const snap_fileset *s, unsigned long long dev, unsigned long long ino)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->dev[i] == dev && s->ino[i] == ino)
            return true;
    return false;
}

static int add_id(snap_fileset *s, unsigned long long dev, unsigned long long ino, es_err *e)
{
    (void)e;
    if (snap_fileset_has(s, dev, ino))
        return 0;
    unsigned long long *d = es_xreallocarray(s->dev, s->n + 1, sizeof *d);
    s->dev = d;
    unsigned long long *i = es_xreallocarray(s->ino, s->n + 1, sizeof *i);
    s->ino = i;
    s->dev[s->n] = dev;
    s->ino[s->n] = ino;
    s->n++;
    return 0;
}

/* Identity of a file seen under root; false when it does not exist. */
static bool file_id(const char *root, const char *path, unsigned long long *dev,
                    unsigned long long *ino)
{
    char *host = NULL;
    if (es_root_resolve(root, path, &host, NULL) < 0)
        return false;
    struct stat st;
    bool ok = es_fs_stat(host, &st) == 0;
    free(host);
    if (ok) {
        *dev = (unsigned long long)st.st_dev;
        *ino = (unsigned long long)st.st_ino;
    }
    return ok;
}

bool snap_fileset_has_path(const snap_fileset *s, const char *root, const char *path)
{
    unsigned long long dev, ino;
    return file_id(root, path, &dev, &ino) && snap_fileset_has(s, dev, ino);
}

int snap_fileset_add_file(snap_fileset *s, const char *root, const char *path, es_err *e)
{
    unsigned long long dev, ino;
    if (!file_id(root, path, &dev, &ino))
        return 0;
    return add_id(s, dev, ino, e);
}

/* Add path and every image of its backing chain (as far as it opens). */
static int snap_fileset_add_chain(snap_fileset *s, const char *root, const char *path,
                                  const char *format, es_err *e)
{
    /* The named file itself even when it is not an image the engine opens. */
    unsigned long long dev, ino;
    if (file_id(root, path, &dev, &ino) && add_id(s, dev, ino, e) < 0)
        return -1;
    snap_chain c;
    if (snap_chain_walk(root, path, format, &c, e) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < c.n && rc == 0; i++)
        rc = add_id(s, c.v[i].dev, c.v[i].ino, e);
    snap_chain_free(&c);
    return rc;
}

int snap_fileset_add_domain(snap_fileset *s, const char *root, const domxml_domain *d,
                            es_err *e)
{
    for (size_t i = 0; i < d->ndisks; i++) {
        const domxml_disk *k = &d->disks[i];
        if (!k->source || (k->type != DOMXML_STORAGE_FILE && k->type != DOMXML_STORAGE_BLOCK))
            continue;
        if (snap_fileset_add_chain(s, root, k->source, k->driver_type, e) < 0)
            return -1;
    }
    return 0;
}

static int add_disks(snap_fileset *s, const char *root, const domxml_snap_disk *v, size_t n,
                     es_err *e)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].source && snap_fileset_add_chain(s, root, v[i].source, v[i].driver_type, e) < 0)
            return -1;
    return 0;
}

int snap_fileset_add_snapshot(snap_fileset *s, const char *root, const domxml_snapshot *snap,
                              bool skip_disks, es_err *e)
{
    if (snap->domain && snap_fileset_add_domain(s, root, snap->domain, e) < 0)
        return -1;
    if (!skip_disks && add_disks(s, root, snap->disks, snap->ndisks, e) < 0)
        return -1;
    return add_disks(s, root, snap->revert_disks, snap->nrevert_disks, e);
}

/* Does the image at dir/name (logical) name target (dev, ino) as its backing? */
static bool uses_as_backing(const char *root, const char *path, unsigned long long dev,
                            unsigned long long ino)
{
    es_open_opts o = {.no_backing = true, .root = root, .force_share = true};
    es_image *img = NULL;
    if (es_image_open(&img, path, &o, NULL) < 0)
        return false; /* not an image */
    bool uses = false;
    if (img->format == ES_FMT_QCOW2 && img->hdr.backing_file) {
        char *display = NULL, *open_path = NULL;
        if (es_backing_resolve(img->filename, img->hdr.backing_file, root, &display, &open_path,
                               NULL) == 0) {
            struct stat st;
            uses = es_fs_stat(open_path, &st) == 0 && (unsigned long long)st.st_dev == dev &&
                   (unsigned long long)st.st_ino == ino;
        }
        free(display);
        free(open_path);
    }
    es_image_close(img);
    return uses;
}

int snap_find_dependents(const char *root, const char *path, const es_strv *ignore,
                         es_strv *users, es_err *e)
{
    unsigned long long dev, ino;
    if (!file_id(root, path, &dev, &ino))
        return 0;
    const char *slash = strrchr(path, '/');
    char *dir = NULL, *host_dir = NULL;
    if (es_asprintf(&dir, e, "%.*s", slash ? (int)(slash - path) : 0, path) < 0)
        return -1;
    int rc = 0;
    if (es_root_resolve(root, dir[0] ? dir : "/", &host_dir, NULL) < 0) {
        free(dir);
        return 0;
    }
    DIR *dp = es_fs_opendir(host_dir);
    if (!dp) {
        free(dir);
        free(host_dir);
        return 0; /* nothing to scan */
    }
    struct dirent *de;
    while ((de = readdir(dp)) && rc == 0) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        char *cand = NULL, *host = NULL;
        if (es_asprintf(&cand, e, "%s/%s", dir, de->d_name) < 0) {
            rc = -1;
            break;
        }
        struct stat st;
        if (es_strv_has(ignore, cand) || es_root_resolve(root, cand, &host, NULL) < 0 ||
            es_fs_lstat(host, &st) < 0 || !S_ISREG(st.st_mode) ||
            ((unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)) {
            free(cand);
            free(host);
            continue;
        }
        if (uses_as_backing(root, cand, dev, ino))
            rc = es_strv_add(users, cand, e);
        free(cand);
        free(host);
    }
    closedir(dp);
    free(dir);
    free(host_dir);
    return rc;
}
