#include "snap/txn/plan_check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "qcow2/commit.h"
#include "qcow2/commit_space.h"
#include "qcow2/format.h"
#include "qcow2/header.h"
#include "qcow2/image.h"
#include "snap/txn/precond.h"
#include "util/fileio.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

#define DISKS_MAX 256

/* The merges' space needs on one file system. */
typedef struct fs_need {
    uint64_t dev;
    uint64_t need;
    char *host;             /* a BASE there, to ask the file system */
    char disks[DISKS_MAX];  /* "vda, vdb" */
    size_t ndisks;
} fs_need;

static const char *what_of(const snap_plan *p)
{
    return p->summary ? p->summary : p->op;
}

static int unused(const snap_ctx *c, const snap_plan *p, const char *path, const char *role,
                  es_err *e)
{
    char *host = NULL;
    if (es_root_resolve(c->env->root, path, &host, e) < 0)
        return -1;
    int r = snap_check_image_unused(host, what_of(p), role, e);
    free(host);
    return r;
}

static int all_unused(const snap_ctx *c, const snap_plan *p, es_err *e)
{
    char role[300];
    for (size_t i = 0; i < p->nmerges; i++) {
        snprintf(role, sizeof role, "the image disk %s is merged into", p->merges[i].disk);
        if (unused(c, p, p->merges[i].base, role, e) < 0)
            return -1;
        snprintf(role, sizeof role, "the overlay of disk %s merged down", p->merges[i].disk);
        if (unused(c, p, p->merges[i].top, role, e) < 0)
            return -1;
    }
    for (size_t i = 0; i < p->nrebases; i++)
        if (unused(c, p, p->rebases[i].path, "an image the operation repoints", e) < 0)
            return -1;
    for (size_t i = 0; i < p->ndeletes; i++)
        if (unused(c, p, p->deletes[i].path, "an image the operation deletes", e) < 0)
            return -1;
    return 0;
}

static int writable(const snap_ctx *c, const snap_plan *p, const char *path, const char *role,
                    es_err *e)
{
    char *host = NULL;
    if (es_root_resolve(c->env->root, path, &host, e) < 0)
        return -1;
    es_file *f = NULL;
    es_err oe = {0};
    int r = 0;
    if (es_file_open(&f, host, O_RDWR, 0, &oe) < 0)
        r = es_err_set(e, oe.errnum, host,
                       "cannot %s: %s cannot be opened for writing; nothing was changed",
                       what_of(p), role);
    es_file_close(f);
    free(host);
    return r;
}

/* The new backing name must fit in cluster 0 as qcow2_rebase_header
 * writes it (header, extensions, name): its refusals, without the write. */
static int rebase_fits(const snap_ctx *c, const snap_plan *p, const snap_rebase *rb, es_err *e)
{
    es_open_opts oo = {.no_backing = true, .format = "qcow2", .root = c->env->root,
                       .force_share = true};
    es_image *img = NULL;
    if (es_image_open(&img, rb->path, &oo, e) < 0)
        return es_err_prefix(e, "cannot %s; nothing was changed: an image it repoints",
                             what_of(p));
    qcow2_header h = {0};
    uint8_t *buf = NULL;
    int r = qcow2_header_copy(&h, &img->hdr, e);
    if (r == 0 && (h.incompatible_features & QCOW2_INCOMPAT_CORRUPT))
        r = es_err_set(e, 0, rb->path, "image is marked corrupt; repair it before changing its header");
    if (r == 0 && rb->backing && strlen(rb->backing) > QCOW2_MAX_BACKING_NAME)
        r = es_err_set(e, 0, rb->path, "backing file name too long (%zu bytes, max %d)",
                       strlen(rb->backing), QCOW2_MAX_BACKING_NAME);
    if (r == 0)
        r = qcow2_header_set_backing(&h, rb->backing, rb->backing_format, e);
    if (r == 0)
        buf = es_xmalloc(img->cluster_size);
    if (r == 0 && qcow2_header_serialize(&h, buf, img->cluster_size, rb->path, e) < 0)
        r = es_err_prefix(e, "new backing file name %s does not fit", rb->backing);
    if (r < 0)
        es_err_prefix(e, "cannot %s; nothing was changed: repointing an image", what_of(p));
    free(buf);
    qcow2_header_free(&h);
    es_image_close(img);
    return r;
}

static int all_writable(const snap_ctx *c, const snap_plan *p, es_err *e)
{
    char role[300];
    for (size_t i = 0; i < p->nmerges; i++) {
        snprintf(role, sizeof role, "the image disk %s is merged into", p->merges[i].disk);
        if (writable(c, p, p->merges[i].base, role, e) < 0)
            return -1;
    }
    for (size_t i = 0; i < p->nrebases; i++)
        if (writable(c, p, p->rebases[i].path, "an image the operation repoints", e) < 0 ||
            rebase_fits(c, p, &p->rebases[i], e) < 0)
            return -1;
    return 0;
}

/* Every libvirt file the plan writes or removes is replaced through a
 * temporary file in its directory: a read-only or unwritable directory
 * (/etc on a read-only mount) would stop the operation after its merges. A
 * directory that does not exist yet is made by the write itself. */
static int xml_dirs_writable(const snap_ctx *c, const snap_plan *p, es_err *e)
{
    for (size_t i = 0; i < p->nxml; i++) {
        char *host = NULL;
        if (es_root_resolve(c->env->root, p->xml[i].path, &host, e) < 0)
            return -1;
        char *slash = strrchr(host, '/');
        if (slash && slash != host)
            *slash = '\0';
        int r = 0, err = 0;
        struct statvfs vfs;
        if (es_fs_statvfs(host, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
            err = EROFS;
        else if (access(host, F_OK) == 0 && access(host, W_OK | X_OK) < 0)
            err = errno;
        if (err)
            r = es_err_set(e, err, host,
                           "cannot %s: the directory of %s cannot be written; nothing was "
                           "changed",
                           what_of(p), p->xml[i].path);
        free(host);
        if (r < 0)
            return -1;
    }
    return 0;
}

/* The engine's checks and estimate of one merge, as snap_merge_qcow2 will
 * run it; *dev is the file system of its BASE. */
static int merge_estimate(const snap_ctx *c, const snap_merge *m, uint64_t *need, uint64_t *dev,
                          char **base_host, es_err *e)
{
    const char *root = c->env->root;
    if (es_root_resolve(root, m->base, base_host, e) < 0)
        return -1;
    es_open_opts oo = {.format = "qcow2", .root = root, .force_share = true};
    es_image *top = NULL;
    if (es_image_open(&top, m->top, &oo, e) < 0)
        return -1;
    int r = -1;
    es_image *base = es_commit_find_base(top, *base_host, e);
    if (base) {
        es_commit_opts co = {.keep_top = true};
        r = es_commit_estimate(top, base, &co, need, e);
        *dev = base->st_dev;
    }
    es_image_close(top);
    return r;
}

static int add_need(fs_need **v, size_t *n, uint64_t dev, uint64_t need, char **host,
                    const char *disk, es_err *e)
{
    (void)e;
    fs_need *f = NULL;
    for (size_t i = 0; i < *n && !f; i++)
        if ((*v)[i].dev == dev)
            f = &(*v)[i];
    if (!f) {
        fs_need *nv = es_xreallocarray(*v, *n + 1, sizeof *nv);
        *v = nv;
        f = &nv[(*n)++];
        memset(f, 0, sizeof *f);
        f->dev = dev;
        f->host = *host;
        *host = NULL;
    }
    f->need += need;
    size_t len = strlen(f->disks);
    snprintf(f->disks + len, sizeof f->disks - len, "%s%s", f->ndisks ? ", " : "", disk);
    f->ndisks++;
    return 0;
}

static int fits(const snap_plan *p, const fs_need *f, es_err *e)
{
    uint64_t avail;
    if (es_space_free(f->host, &avail, e) < 0)
        return -1;
    if (f->need <= avail)
        return 0;
    char hn[32], ha[32];
    return es_err_set(e, ENOSPC, f->host,
                      "cannot %s: not enough free space: merging disk%s %s may need up to %s "
                      "(%llu bytes) on this file system, which has %s (%llu bytes) free; "
                      "nothing was changed",
                      what_of(p), f->ndisks > 1 ? "s" : "", f->disks,
                      es_space_human(f->need, hn, sizeof hn), (unsigned long long)f->need,
                      es_space_human(avail, ha, sizeof ha), (unsigned long long)avail);
}

static int all_merges(const snap_ctx *c, const snap_plan *p, es_err *e)
{
    fs_need *v = NULL;
    size_t n = 0;
    int r = 0;
    for (size_t i = 0; r == 0 && i < p->nmerges; i++) {
        const snap_merge *m = &p->merges[i];
        uint64_t need = 0, dev = 0;
        char *host = NULL;
        r = merge_estimate(c, m, &need, &dev, &host, e);
        if (r < 0)
            es_err_prefix(e, "cannot %s; nothing was changed: disk %s", what_of(p), m->disk);
        else
            r = add_need(&v, &n, dev, need, &host, m->disk, e);
        free(host);
    }
    for (size_t i = 0; r == 0 && i < n; i++)
        r = fits(p, &v[i], e);
    for (size_t i = 0; i < n; i++)
        free(v[i].host);
    free(v);
    return r;
}

int snap_plan_check(const snap_ctx *c, const snap_plan *p, es_err *e)
{
    if (all_unused(c, p, e) < 0 || all_writable(c, p, e) < 0 || xml_dirs_writable(c, p, e) < 0 ||
        all_merges(c, p, e) < 0)
        return -1;
    return 0;
}
