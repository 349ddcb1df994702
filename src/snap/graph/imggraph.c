#include "snap/graph/imggraph.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "domxml/store.h"
#include "qcow2/check.h"
#include "qcow2/image.h"
#include "util/fileio.h"
#include "util/rootpath.h"
#include "util/str.h"
#include "util/xalloc.h"

/* Where a path came from: propagated down its backing chain. */
typedef struct origin {
    bool named;
    const char *foreign; /* another domain's name, or NULL */
    bool scanned;
} origin;

void snap_graph_free(snap_graph *g)
{
    for (size_t i = 0; i < g->n; i++) {
        snap_gnode *n = &g->v[i];
        free(n->path);
        free(n->format);
        free(n->error);
        free(n->backing_name);
        free(n->backing_format);
        free(n->foreign_domain);
    }
    free(g->v);
    es_strv_free(&g->dirs);
    memset(g, 0, sizeof *g);
}

static void mark(snap_graph *g, size_t i, const origin *o)
{
    for (size_t steps = 0; i != SNAP_GNONE && steps <= g->n; steps++) {
        snap_gnode *n = &g->v[i];
        n->named |= o->named;
        n->scanned |= o->scanned;
        if (o->foreign) {
            n->foreign = true;
            if (!n->foreign_domain)
                n->foreign_domain = es_xstrdup(o->foreign); /* only for messages */
        }
        i = n->backing;
    }
}

static size_t find_id(const snap_graph *g, unsigned long long dev, unsigned long long ino)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->v[i].exists && g->v[i].dev == dev && g->v[i].ino == ino)
            return i;
    return SNAP_GNONE;
}

static size_t find_missing(const snap_graph *g, const char *path)
{
    for (size_t i = 0; i < g->n; i++)
        if (!g->v[i].exists && strcmp(g->v[i].path, path) == 0)
            return i;
    return SNAP_GNONE;
}

size_t snap_graph_find(const snap_graph *g, const char *root, const char *path)
{
    if (!path)
        return SNAP_GNONE;
    char *host = NULL;
    struct stat st;
    bool exists = es_root_resolve(root, path, &host, NULL) == 0 && es_fs_stat(host, &st) == 0;
    free(host);
    if (exists)
        return find_id(g, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    return find_missing(g, path);
}

static int new_node(snap_graph *g, const char *path, size_t *idx, es_err *e)
{
    snap_gnode *v = es_xreallocarray(g->v, g->n + 1, sizeof *v);
    g->v = v;
    snap_gnode *n = &v[g->n];
    memset(n, 0, sizeof *n);
    n->backing = SNAP_GNONE;
    if (es_strdup(path, &n->path, e) < 0)
        return -1;
    *idx = g->n++;
    return 0;
}

static int set_error(snap_graph *g, size_t i, const es_err *why, es_err *e)
{
    char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
    free(g->v[i].error);
    g->v[i].error = NULL;
    return es_strdup(es_err_str(why, buf, sizeof buf), &g->v[i].error, e);
}

static int add(snap_graph *g, const char *root, const char *path, const char *fmt,
               const origin *o, int depth, size_t *out, es_err *e);

/* Open node i alone and follow its backing name. */
static int open_node(snap_graph *g, const char *root, size_t i, const char *fmt,
                     const origin *o, int depth, es_err *e)
{
    es_open_opts oo = {.no_backing = true, .format = fmt, .root = root, .force_share = true};
    es_image *img = NULL;
    es_err why = {0};
    if (es_image_open(&img, g->v[i].path, &oo, &why) < 0)
        return set_error(g, i, &why, e);
    bool qcow2 = img->format == ES_FMT_QCOW2;
    char *display = NULL, *open_path = NULL;
    int r = es_strdup(qcow2 ? "qcow2" : "raw", &g->v[i].format, e);
    if (r == 0 && qcow2 && img->hdr.backing_file) {
        r = es_strdup(img->hdr.backing_file, &g->v[i].backing_name, e);
        if (r == 0)
            r = es_strdup(img->hdr.backing_format, &g->v[i].backing_format, e);
        if (r == 0 && es_backing_resolve(img->filename, img->hdr.backing_file, root, &display,
                                         &open_path, &why) < 0)
            r = set_error(g, i, &why, e);
    }
    es_image_close(img);
    free(open_path);
    if (r == 0 && display) {
        if (depth + 1 >= ES_CHAIN_MAX_DEPTH) {
            es_err_set(&why, 0, g->v[i].path, "backing chain is deeper than %d images",
                       ES_CHAIN_MAX_DEPTH);
            r = set_error(g, i, &why, e);
        } else {
            size_t b = SNAP_GNONE;
            r = add(g, root, display, g->v[i].backing_format, o, depth + 1, &b, e);
            if (r == 0)
                g->v[i].backing = b;
        }
    }
    free(display);
    return r;
}

static const char *not_image_kind(mode_t m)
{
    return S_ISFIFO(m)  ? "a fifo"
           : S_ISCHR(m) ? "a character device"
           : S_ISDIR(m) ? "a directory"
           : S_ISSOCK(m) ? "a socket"
                         : "of an unknown kind";
}

static int add(snap_graph *g, const char *root, const char *path, const char *fmt,
               const origin *o, int depth, size_t *out, es_err *e)
{
    *out = SNAP_GNONE;
    char *host = NULL;
    es_err why = {0};
    struct stat st;
    bool resolved = es_root_resolve(root, path, &host, &why) == 0;
    bool exists = resolved && es_fs_stat(host, &st) == 0;
    int err = errno;
    free(host);
    size_t i = exists ? find_id(g, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino)
                      : find_missing(g, path);
    if (i != SNAP_GNONE) {
        mark(g, i, o);
        *out = i;
        return 0;
    }
    if (new_node(g, path, &i, e) < 0)
        return -1;
    *out = i;
    snap_gnode *n = &g->v[i];
    if (!resolved)
        return set_error(g, i, &why, e) < 0 ? -1 : (mark(g, i, o), 0);
    if (!exists) {
        es_err_set(&why, err, path, "cannot find the image");
        return set_error(g, i, &why, e) < 0 ? -1 : (mark(g, i, o), 0);
    }
    n->exists = true;
    n->regular = S_ISREG(st.st_mode);
    n->dev = (unsigned long long)st.st_dev;
    n->ino = (unsigned long long)st.st_ino;
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
        if (open_node(g, root, i, fmt, o, depth, e) < 0)
            return -1;
    } else {
        /* Never opened (a fifo would block, a device could be anything):
         * say what it is instead. */
        es_err_set(&why, 0, NULL, "is %s, not an image file", not_image_kind(st.st_mode));
        if (set_error(g, i, &why, e) < 0)
            return -1;
    }
    mark(g, i, o);
    return 0;
}

static int add_domain(snap_graph *g, const char *root, const domxml_domain *d, const origin *o,
                      es_err *e)
{
    size_t idx;
    for (size_t i = 0; d && i < d->ndisks; i++) {
        const domxml_disk *k = &d->disks[i];
        if (!k->source || (k->type != DOMXML_STORAGE_FILE && k->type != DOMXML_STORAGE_BLOCK))
            continue;
        if (add(g, root, k->source, k->driver_type, o, 0, &idx, e) < 0)
            return -1;
    }
    return 0;
}

static int add_snap_disks(snap_graph *g, const char *root, const domxml_snap_disk *v, size_t n,
                          const origin *o, es_err *e)
{
    size_t idx;
    for (size_t i = 0; i < n; i++)
        if (v[i].source && v[i].type != DOMXML_STORAGE_NETWORK &&
            add(g, root, v[i].source, v[i].driver_type, o, 0, &idx, e) < 0)
            return -1;
    return 0;
}

static int add_snapshots(snap_graph *g, const char *root, const domxml_snapshot_list *l,
                         const origin *o, es_err *e)
{
    for (size_t i = 0; l && i < l->n; i++) {
        const domxml_snapshot *s = l->snaps[i];
        if (add_domain(g, root, s->domain, o, e) < 0 ||
            add_snap_disks(g, root, s->disks, s->ndisks, o, e) < 0 ||
            add_snap_disks(g, root, s->revert_disks, s->nrevert_disks, o, e) < 0)
            return -1;
    }
    return 0;
}

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return es_fs_stat(a, &sa) == 0 && es_fs_stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* Every other domain defined in the config directory. */
static int add_foreign(snap_graph *g, const snap_ctx *c, es_err *e)
{
    const char *root = c->env->root;
    const char *dir = c->paths.config_dir ? c->paths.config_dir : DOMXML_DEFAULT_CONFIG_DIR;
    char *host_dir = NULL;
    if (es_root_resolve(root, dir, &host_dir, NULL) < 0)
        return 0;
    DIR *dp = es_fs_opendir(host_dir);
    if (!dp) {
        free(host_dir);
        return 0;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(dp))) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l < 5 || strcmp(de->d_name + l - 4, ".xml") != 0)
            continue;
        char *path = NULL;
        if (es_path_join(host_dir, de->d_name, &path, e) < 0) {
            rc = -1;
            break;
        }
        domxml_domain *d = NULL;
        if (!same_file(path, c->config_host) && domxml_domain_load(path, &d, NULL) == 0 &&
            strcmp(d->name, c->name) != 0) {
            origin o = {.foreign = d->name};
            domxml_snapshot_list *sl = NULL;
            rc = add_domain(g, root, d, &o, e);
            if (rc == 0 && domxml_snapshots_load(&c->paths, d->name, DOMXML_LOAD_SKIP_BAD, &sl,
                                                 NULL) == 0)
                rc = add_snapshots(g, root, sl, &o, e);
            domxml_snapshot_list_free(sl);
        }
        domxml_domain_free(d);
        free(path);
    }
    closedir(dp);
    free(host_dir);
    return rc;
}

/* qcow2 files in one directory that the graph does not hold yet. */
static int scan_dir(snap_graph *g, const char *root, const char *dir, es_err *e)
{
    char *host_dir = NULL;
    if (es_root_resolve(root, dir, &host_dir, NULL) < 0)
        return 0;
    DIR *dp = es_fs_opendir(host_dir);
    if (!dp) {
        free(host_dir);
        return 0;
    }
    int rc = 0;
    struct dirent *de;
    origin o = {.scanned = true};
    while (rc == 0 && (de = readdir(dp))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char *logical = NULL, *host = NULL;
        struct stat st;
        bool is_qcow2 = false;
        if (es_asprintf(&logical, e, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", de->d_name) <
                0 ||
            es_path_join(host_dir, de->d_name, &host, e) < 0) {
            free(logical);
            rc = -1;
            break;
        }
        if (es_fs_lstat(host, &st) == 0 && S_ISREG(st.st_mode) &&
            find_id(g, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino) ==
                SNAP_GNONE &&
            qcow2_check_is_qcow2(host, &is_qcow2, NULL) == 0 && is_qcow2) {
            size_t idx;
            rc = add(g, root, logical, "qcow2", &o, 0, &idx, e);
        }
        free(logical);
        free(host);
    }
    closedir(dp);
    free(host_dir);
    return rc;
}

int snap_graph_build(const snap_ctx *c, snap_graph *g, es_err *e)
{
    memset(g, 0, sizeof *g);
    const char *root = c->env->root;
    origin named = {.named = true};
    if (add_domain(g, root, c->config, &named, e) < 0 ||
        add_snapshots(g, root, c->snaps, &named, e) < 0 || add_foreign(g, c, e) < 0)
        goto fail;
    for (size_t i = 0; i < g->n; i++) {
        if (!g->v[i].named || !g->v[i].exists || !g->v[i].regular)
            continue;
        char *dir = es_path_dir(g->v[i].path);
        int r = es_strv_has(&g->dirs, dir) ? 0 : es_strv_add(&g->dirs, dir, e);
        free(dir);
        if (r < 0)
            goto fail;
    }
    for (size_t i = 0; i < g->dirs.n; i++)
        if (scan_dir(g, root, g->dirs.v[i], e) < 0)
            goto fail;
    return 0;
fail:
    snap_graph_free(g);
    return -1;
}

int snap_graph_users(const snap_graph *g, size_t i, size_t **out, size_t *n, es_err *e)
{
    (void)e;
    *out = NULL;
    *n = 0;
    for (size_t j = 0; j < g->n; j++) {
        if (g->v[j].backing != i || j == i)
            continue;
        *out = es_xreallocarray(*out, *n + 1, sizeof **out);
        (*out)[(*n)++] = j;
    }
    return 0;
}

bool snap_graph_chain_has(const snap_graph *g, size_t top, size_t below)
{
    for (size_t steps = 0; top != SNAP_GNONE && steps <= g->n; steps++) {
        if (top == below)
            return true;
        top = g->v[top].backing;
    }
    return false;
}
