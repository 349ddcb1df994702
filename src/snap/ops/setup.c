#include "snap/ops/setup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "domxml/domain_edit.h"
#include "qcow2/image.h"
#include "snap/graph/imggraph.h"
#include "snap/graph/imgrole.h"
#include "snap/txn/plan_xml.h"
#include "util/fileio.h"
#include "util/fsutil.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

#define COPY_CHUNK (1u << 20)

void snap_setup_free(snap_setup *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].target);
        free(s->v[i].src);
        free(s->v[i].dst);
    }
    free(s->v);
    free(s->disks_dir);
    free(s);
}

/* --- byte comparison and sparse copy ------------------------------------ */

/* Next offset >= off holding data in f, or size when none (SEEK_DATA). */
static int next_data(es_file *f, uint64_t off, uint64_t size, uint64_t *out, es_err *e)
{
    off_t d = lseek(f->fd, (off_t)off, SEEK_DATA);
    if (d < 0) {
        if (errno != ENXIO)
            return es_err_set(e, errno, f->path, "cannot look for data at 0x%llx",
                              (unsigned long long)off);
        d = (off_t)size;
    }
    *out = (uint64_t)d < size ? (uint64_t)d : size;
    return 0;
}

static int next_hole(es_file *f, uint64_t off, uint64_t size, uint64_t *out, es_err *e)
{
    off_t h = lseek(f->fd, (off_t)off, SEEK_HOLE);
    if (h < 0)
        return es_err_set(e, errno, f->path, "cannot look for a hole at 0x%llx",
                          (unsigned long long)off);
    *out = (uint64_t)h < size ? (uint64_t)h : size;
    return 0;
}

/* Same size and the same bytes; ranges that are holes in both are skipped.
 * pr hears of it as phase "compare" of disk, a's file image. */
static int same_bytes(es_file *a, es_file *b, bool *same, const es_progress_sink *pr,
                      const char *disk, const char *image, es_err *e)
{
    *same = false;
    uint64_t sa, sb;
    if (es_file_size(a, &sa, e) < 0 || es_file_size(b, &sb, e) < 0)
        return -1;
    if (sa != sb)
        return 0;
    uint8_t *x = es_io_alloc(COPY_CHUNK), *y = es_io_alloc(COPY_CHUNK);
    int rc = -1;
    uint64_t off = 0;
    es_progress_report(pr, "compare", disk, image, 0, sa);
    while (off < sa) {
        uint64_t da, db;
        if (next_data(a, off, sa, &da, e) < 0 || next_data(b, off, sa, &db, e) < 0)
            goto out;
        off = da < db ? da : db;
        if (off >= sa)
            break;
        size_t n = sa - off < COPY_CHUNK ? (size_t)(sa - off) : COPY_CHUNK;
        if (es_file_pread(a, x, n, off, e) < 0 || es_file_pread(b, y, n, off, e) < 0)
            goto out;
        if (memcmp(x, y, n) != 0) {
            rc = 0;
            goto out;
        }
        off += n;
        es_progress_report(pr, "compare", disk, image, off, sa);
    }
    es_progress_report(pr, "compare", disk, image, sa, sa);
    *same = true;
    rc = 0;
out:
    free(x);
    free(y);
    return rc;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Copy src's data ranges into dst (empty), keeping holes, sharing extents
 * where the file system can; dst gets src's size. pr hears of it as phase "copy" of disk, src's file image (holes
 * count as done). */
static int sparse_copy(es_file *src, es_file *dst, const es_progress_sink *pr, const char *disk,
                       const char *image, es_err *e)
{
    uint64_t size;
    if (es_file_size(src, &size, e) < 0)
        return -1;
    uint8_t *buf = es_io_alloc(COPY_CHUNK);
    int rc = -1;
    uint64_t off = 0;
    es_progress_report(pr, "copy", disk, image, 0, size);
    while (off < size) {
        uint64_t d = size, h = size;
        if (next_data(src, off, size, &d, e) < 0)
            goto out;
        if (d >= size)
            break;
        if (next_hole(src, d, size, &h, e) < 0)
            goto out;
        if (h <= d)
            h = size;
        for (uint64_t p = d; p < h;) {
            size_t n = h - p < COPY_CHUNK ? (size_t)(h - p) : COPY_CHUNK;
            /* Within one file system that can (XFS reflink=1, btrfs: a
             * hard link was refused, e.g. another mount of it), share the
             * extents: no data written, no space taken. */
            uint64_t sh;
            if (es_file_share(src, p, dst, p, n, &sh, e) < 0)
                goto out;
            if (sh < n && es_file_pread(src, buf, n - sh, p + sh, e) < 0)
                goto out;
            /* Zeroes stay holes: the copy reads the same and takes less space. */
            if (sh < n && !all_zero(buf, n - sh) && es_file_pwrite(dst, buf, n - sh, p + sh, e) < 0)
                goto out;
            p += n;
            es_progress_report(pr, "copy", disk, image, p, size);
        }
        off = h;
    }
    if (es_file_truncate(dst, size, e) < 0 || es_file_flush(dst, e) < 0)
        goto out;
    es_progress_report(pr, "copy", disk, image, size, size);
    rc = 0;
out:
    free(buf);
    return rc;
}

static int files_identical(const char *a, const char *b, bool *same, es_err *e)
{
    es_file *fa = NULL, *fb = NULL;
    int r = es_file_open(&fa, a, O_RDONLY, 0, e);
    if (r == 0)
        r = es_file_open(&fb, b, O_RDONLY, 0, e);
    if (r == 0)
        r = same_bytes(fa, fb, same, NULL, NULL, NULL, e);
    es_file_close(fa);
    es_file_close(fb);
    return r;
}

/* --- planning ------------------------------------------------------------ */

static bool same_id(const char *a, const char *b)
{
    struct stat sa, sb;
    return es_fs_stat(a, &sa) == 0 && es_fs_stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static int add_move(snap_setup *s, const char *target, const char *src, const char *dst,
                    es_err *e)
{
    snap_setup_move *v = es_xreallocarray(s->v, s->n + 1, sizeof *v);
    s->v = v;
    snap_setup_move *m = &v[s->n++];
    memset(m, 0, sizeof *m);
    if (es_strdup(target, &m->target, e) < 0 || es_strdup(src, &m->src, e) < 0 ||
        es_strdup(dst, &m->dst, e) < 0)
        return -1;
    return 0;
}

/* A standalone image nothing else uses. */
static int check_source(snap_ctx *c, const snap_graph *g, const domxml_disk *k, es_err *e)
{
    if (!k->driver_type || (strcmp(k->driver_type, "qcow2") && strcmp(k->driver_type, "raw")))
        return es_err_set(e, 0, k->source, "disk %s has format '%s'; setup moves qcow2 and raw "
                                           "images only",
                          k->target_dev, k->driver_type ? k->driver_type : "(none)");
    es_open_opts oo = {.no_backing = true, .format = k->driver_type, .root = c->env->root,
                       .force_share = true};
    es_image *img = NULL;
    if (es_image_open(&img, k->source, &oo, e) < 0)
        return es_err_prefix(e, "disk %s", k->target_dev);
    char *backing = NULL;
    int r = 0;
    if (img->format == ES_FMT_QCOW2 && img->hdr.backing_file)
        r = es_strdup(img->hdr.backing_file, &backing, e);
    es_image_close(img);
    if (r < 0)
        return -1;
    if (backing) {
        es_err_set(e, 0, k->source,
                   "disk %s's image has a backing file (%s); setup moves standalone images "
                   "only (a chain cannot be moved piece by piece): flatten it first",
                   k->target_dev, backing);
        free(backing);
        return -1;
    }
    size_t n = snap_graph_find(g, c->env->root, k->source);
    if (n == SNAP_GNONE)
        return 0;
    if (g->v[n].foreign)
        return es_err_set(e, 0, k->source, "disk %s's image is used by domain %s too; moving it "
                                           "would break that domain",
                          k->target_dev,
                          g->v[n].foreign_domain ? g->v[n].foreign_domain : "(another)");
    size_t *users = NULL, nu = 0;
    if (snap_graph_users(g, n, &users, &nu, e) < 0)
        return -1;
    if (nu) {
        char *list = NULL;
        if (snap_image_roles(c, g, users, nu, &list, e) == 0)
            es_err_set(e, 0, k->source,
                       "disk %s's image is the backing file of %s; moving it would break that "
                       "link",
                       k->target_dev, list);
        free(list);
        free(users);
        return -1;
    }
    return 0;
}

/* Where the image goes, and whether a file is already there. */
static int plan_move(snap_ctx *c, snap_setup *s, const domxml_disk *k, snap_plan *p, es_err *e)
{
    char *dst = NULL, *dst_host = NULL, *src_host = NULL;
    int rc = -1;
    if (es_asprintf(&dst, e, "%s/%s-%s.base", s->disks_dir, c->name, k->target_dev) < 0 ||
        es_root_resolve(c->env->root, dst, &dst_host, e) < 0 ||
        es_root_resolve(c->env->root, k->source, &src_host, e) < 0)
        goto out;
    if (strcmp(dst, k->source) == 0) {
        s->in_place++;
        rc = es_strv_addf(&p->notes, e, "disk %s is already at %s", k->target_dev, dst);
        goto out;
    }
    if (add_move(s, k->target_dev, k->source, dst, e) < 0)
        goto out;
    snap_setup_move *m = &s->v[s->n - 1];
    struct stat st;
    if (es_fs_lstat(dst_host, &st) == 0) {
        bool same = same_id(src_host, dst_host);
        if (!same && S_ISREG(st.st_mode) && files_identical(src_host, dst_host, &same, e) < 0)
            goto out;
        if (!same) {
            es_err_set(e, EEXIST, dst, "disk %s's new name is taken by another file; move it "
                                       "away first",
                       k->target_dev);
            goto out;
        }
        m->ready = true;
        if (es_strv_addf(&p->notes, e,
                           "%s already holds disk %s's image (from an interrupted setup): used "
                           "as it is",
                           dst, k->target_dev) < 0)
            goto out;
    } else if (errno != ENOENT) {
        es_err_set(e, errno, dst, "cannot look at disk %s's new name", k->target_dev);
        goto out;
    } else if (es_strv_addf(&p->notes, e,
                              "disk %s: %s is moved to %s (a hard link on the same file "
                              "system; otherwise a sparse copy, compared byte for byte before "
                              "the original is removed)",
                              k->target_dev, k->source, dst) < 0) {
        goto out;
    }
    char *reason = NULL;
    if (es_asprintf(&reason, e, "moved to %s", dst) < 0)
        goto out;
    rc = snap_plan_add_delete(p, k->source, reason, e);
    free(reason);
out:
    free(dst);
    free(dst_host);
    free(src_host);
    return rc;
}

static bool moves_disk(const domxml_disk *k)
{
    return k->source && !k->readonly && k->device != DOMXML_DEVICE_CDROM &&
           k->device != DOMXML_DEVICE_FLOPPY && k->type == DOMXML_STORAGE_FILE;
}

int snap_plan_setup(snap_ctx *c, const char *path, snap_setup **sout, snap_plan **out,
                    es_err *e)
{
    *out = NULL;
    *sout = NULL;
    if (c->snaps->n || c->snaps->nbad)
        return es_err_set(e, 0, NULL,
                          "domain %s already has snapshots; setup only prepares a domain "
                          "before its first snapshot (its overlays name the images' paths)",
                          c->name);
    if (path[0] != '/')
        return es_err_set(e, 0, path, "PATH must be absolute (as seen under --root)");
    snap_setup *s = es_xcalloc(1, sizeof *s);
    snap_plan *p = NULL;
    snap_graph g = {0};
    domxml_domain *nd = NULL;
    domxml_disk_change *ch = es_xcalloc(c->config->ndisks + 1, sizeof *ch);
    size_t nch = 0;
    int rc = -1;
    size_t l = strlen(path);
    while (l > 1 && path[l - 1] == '/')
        l--;
    char *host = NULL;
    struct stat st;
    if (es_asprintf(&s->disks_dir, e, "%.*s/disks", (int)l, l == 1 ? "" : path) < 0 ||
        es_root_resolve(c->env->root, path, &host, e) < 0)
        goto out;
    int sr = es_fs_stat(host, &st);
    free(host);
    if (sr < 0 || !S_ISDIR(st.st_mode)) {
        es_err_set(e, sr < 0 ? errno : ENOTDIR, path, "PATH must be an existing directory");
        goto out;
    }
    if (es_root_resolve(c->env->root, s->disks_dir, &host, e) < 0)
        goto out;
    s->make_dir = !es_path_exists(host);
    free(host);
    if (snap_plan_new("setup", c->name, &p, e) < 0 || snap_graph_build(c, &g, e) < 0)
        goto out;
    for (size_t i = 0; i < c->config->ndisks; i++) {
        const domxml_disk *k = &c->config->disks[i];
        if (!moves_disk(k)) {
            if (k->source && es_strv_addf(&p->notes, e, "disk %s (%s) stays where it is", 
                                            k->target_dev, k->source) < 0)
                goto out;
            continue;
        }
        size_t before = s->n;
        if (check_source(c, &g, k, e) < 0 || plan_move(c, s, k, p, e) < 0)
            goto out;
        if (s->n > before)
            ch[nch++] = (domxml_disk_change){.target = k->target_dev,
                                             .source_file = s->v[s->n - 1].dst,
                                             .drop_backing_store = true};
    }
    if (nch == 0 && !s->in_place) {
        es_err_set(e, 0, NULL, "domain %s has no disk image to move to %s", c->name,
                   s->disks_dir);
        goto out;
    }
    if (nch == 0) {
        /* Everything is in place already (a finished earlier run). */
        s->make_dir = false;
        rc = es_asprintf(&p->summary, e, "domain %s is set up already: its images are in %s",
                           c->name, s->disks_dir);
        if (rc == 0) {
            *out = p;
            *sout = s;
            p = NULL;
            s = NULL;
        }
        goto out;
    }
    if (domxml_domain_change_disks(c->config, ch, nch, &nd, e) < 0 ||
        snap_plan_put_config(c, p, nd, "disks on the images in PATH/disks", e) < 0)
        goto out;
    if (s->make_dir &&
        es_strv_addf(&p->notes, e, "%s is created first", s->disks_dir) < 0)
        goto out;
    if (es_asprintf(&p->summary, e, "set up domain %s: move its images to %s", c->name,
                      s->disks_dir) < 0)
        goto out;
    *out = p;
    *sout = s;
    p = NULL;
    s = NULL;
    rc = 0;
out:
    snap_plan_free(p);
    snap_setup_free(s);
    snap_graph_free(&g);
    domxml_domain_free(nd);
    free(ch);
    return rc;
}

/* --- staging ------------------------------------------------------------- */

static int copy_owner(es_file *f, const struct stat *st, es_err *e)
{
    es_err oe;
    if (es_file_chown(f, st->st_uid, st->st_gid, &oe) < 0 && oe.errnum != EPERM)
        return es_err_set(e, oe.errnum, f->path, "cannot set the owner of the copy");
    if (es_file_chmod(f, st->st_mode & 07777, &oe) < 0)
        return es_err_set(e, oe.errnum, f->path, "cannot set the mode of the copy");
    return 0;
}

/* Across file systems: copy to a temporary name, compare, rename. */
static int copy_in(const char *src, const char *dst, const char *tmp, const es_progress_sink *pr,
                   const char *disk, es_err *e)
{
    es_file *in = NULL, *out = NULL;
    struct stat st;
    int rc = -1;
    bool made = false;
    if (es_file_open(&in, src, O_RDONLY, 0, e) < 0)
        return -1;
    if (fstat(in->fd, &st) < 0) {
        es_err_set(e, errno, src, "cannot stat");
        goto out;
    }
    (void)es_unlink_if_exists(tmp, NULL); /* a stale one from a crash */
    if (es_file_open(&out, tmp, O_RDWR | O_CREAT | O_EXCL, 0600, e) < 0)
        goto out;
    made = true;
    bool same = false;
    if (sparse_copy(in, out, pr, disk, src, e) < 0 || copy_owner(out, &st, e) < 0 ||
        same_bytes(in, out, &same, pr, disk, src, e) < 0)
        goto out;
    if (!same) {
        es_err_set(e, EIO, tmp, "the copy of %s does not read back the same", src);
        goto out;
    }
    if (es_fs_rename(tmp, dst, e) < 0)
        goto out;
    made = false;
    rc = es_fsync_parent(dst, e);
out:
    es_file_close(in);
    es_file_close(out);
    if (made)
        (void)es_unlink_if_exists(tmp, NULL);
    return rc;
}

static int stage_one(snap_ctx *c, const snap_setup_move *m, es_err *e)
{
    char *src = NULL, *dst = NULL, *tmp = NULL;
    int rc = -1;
    if (es_root_resolve(c->env->root, m->src, &src, e) < 0 ||
        es_root_resolve(c->env->root, m->dst, &dst, e) < 0)
        goto out;
    const char *slash = strrchr(dst, '/');
    if (es_asprintf(&tmp, e, "%.*s/.%s.extsnap-copy", (int)(slash - dst), dst, slash + 1) < 0)
        goto out;
    es_err le;
    if (es_fs_link(src, dst, &le) == 0) {
        rc = es_fsync_parent(dst, e);
        goto out;
    }
    if (le.errnum != EXDEV && le.errnum != EPERM && le.errnum != EMLINK &&
        le.errnum != ENOTSUP) {
        es_err_set(e, le.errnum, dst, "cannot give %s its new name", m->src);
        goto out;
    }
    rc = copy_in(src, dst, tmp, &c->env->progress, m->target, e);
out:
    if (rc < 0)
        es_err_prefix(e, "disk %s", m->target);
    free(src);
    free(dst);
    free(tmp);
    return rc;
}

int snap_setup_stage(snap_ctx *c, snap_setup *s, es_err *e)
{
    if (s->make_dir) {
        char *host = NULL;
        if (es_root_resolve(c->env->root, s->disks_dir, &host, e) < 0)
            return -1;
        int r = es_fs_mkdir(host, 0755, e);
        if (r == 0)
            r = es_fsync_parent(host, e);
        free(host);
        if (r < 0)
            return -1;
    }
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].ready)
            continue;
        if (stage_one(c, &s->v[i], e) < 0) {
            snap_setup_unstage(c, s);
            return -1;
        }
        s->v[i].staged = true;
    }
    return 0;
}

void snap_setup_unstage(snap_ctx *c, snap_setup *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (!s->v[i].staged)
            continue;
        char *dst = NULL;
        if (es_root_resolve(c->env->root, s->v[i].dst, &dst, NULL) == 0 &&
            es_unlink_if_exists(dst, NULL) == 0)
            s->v[i].staged = false;
        free(dst);
    }
    if (s->make_dir) {
        char *host = NULL;
        if (es_root_resolve(c->env->root, s->disks_dir, &host, NULL) == 0)
            (void)es_fs_rmdir(host, NULL); /* only when empty */
        free(host);
    }
}
