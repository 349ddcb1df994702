#include "snap/query.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/enums.h"
#include "domxml/files.h"
#include "domxml/snapshot_list.h"
#include "util/fileio.h"
#include "util/readfile.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

static int by_time(const void *a, const void *b)
{
    const domxml_snapshot *x = *(domxml_snapshot *const *)a, *y = *(domxml_snapshot *const *)b;
    if (x->creation_time != y->creation_time)
        return x->creation_time < y->creation_time ? -1 : 1;
    return strcmp(x->name, y->name);
}

void snap_query_snapshots(const snap_ctx *c, domxml_snapshot ***out, size_t *n)
{
    *n = c->snaps->n;
    domxml_snapshot **v = es_xcalloc(*n + 1, sizeof *v);
    memcpy(v, c->snaps->snaps, *n * sizeof *v);
    qsort(v, *n, sizeof *v, by_time);
    *out = v;
}

const domxml_snapshot *snap_query_current(const snap_ctx *c)
{
    return domxml_snapshot_list_current(c->snaps);
}

bool snap_query_is_root(domxml_snapshot *const *v, size_t n, const domxml_snapshot *s)
{
    return !s->parent || !domxml_snapshot_list_find(
                             &(domxml_snapshot_list){.snaps = (domxml_snapshot **)v, .n = n},
                             s->parent);
}

int snap_query_check_tree(const snap_ctx *c, es_err *e)
{
    return domxml_snapshot_list_check(c->snaps, DOMXML_CHECK_ALLOW_NO_CURRENT, e);
}

const char *snap_query_snap_disk_mode(const domxml_snap_disk *d)
{
    if (d->snapshot == DOMXML_SNAPSHOT_DEFAULT)
        return d->source ? "external" : "default";
    return domxml_snapshot_mode_name(d->snapshot);
}

const char *snap_query_disk_type(const domxml_disk *k)
{
    return domxml_storage_type_name(k->type);
}

const char *snap_query_disk_device(const domxml_disk *k)
{
    return domxml_disk_device_name(k->device);
}

bool snap_query_disk_has_chain(const domxml_disk *k)
{
    return k->source && (k->type == DOMXML_STORAGE_FILE || k->type == DOMXML_STORAGE_BLOCK);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

const domxml_snapshot *snap_query_find(const snap_ctx *c, const char *name, es_err *e)
{
    const domxml_snapshot *s = domxml_snapshot_list_find(c->snaps, name);
    if (s)
        return s;
    for (size_t i = 0; i < c->snaps->nbad; i++) {
        const char *f = base_name(c->snaps->bad_files[i]);
        size_t l = strlen(name);
        if (strncmp(f, name, l) == 0 && strcmp(f + l, ".xml") == 0) {
            es_err_set(e, 0, NULL,
                       "domain %s: the metadata file of snapshot '%s' is one libvirt would not "
                       "load: %s",
                       c->name, name, c->snaps->bad_errors[i]);
            return NULL;
        }
    }
    es_err_set(e, 0, NULL, "domain %s has no snapshot named '%s'", c->name, name);
    return NULL;
}

/* Is a a descendant of s (a's parents reach s)? Bounded: a loop ends it. */
static bool descends(const snap_ctx *c, const domxml_snapshot *a, const domxml_snapshot *s)
{
    for (size_t steps = 0; a && a->parent && steps <= c->snaps->n; steps++) {
        if (strcmp(a->parent, s->name) == 0)
            return true;
        a = domxml_snapshot_list_find(c->snaps, a->parent);
    }
    return false;
}

void snap_query_children(const snap_ctx *c, const domxml_snapshot *s, bool all,
                         domxml_snapshot ***out, size_t *n)
{
    domxml_snapshot **v = NULL;
    size_t nv = 0;
    snap_query_snapshots(c, &v, &nv);
    *n = 0;
    for (size_t i = 0; i < nv; i++) {
        const domxml_snapshot *a = v[i];
        if (a == s || !a->parent)
            continue;
        if (all ? descends(c, a, s) : strcmp(a->parent, s->name) == 0)
            v[(*n)++] = v[i];
    }
    *out = v;
}

const char *snap_query_location(const domxml_snapshot *s)
{
    if (s->memory == DOMXML_SNAPSHOT_EXTERNAL)
        return "external";
    for (size_t i = 0; i < s->ndisks; i++)
        if (strcmp(snap_query_snap_disk_mode(&s->disks[i]), "external") == 0)
            return "external";
    return "internal";
}

const domxml_disk *snap_query_saved_disk(const domxml_snapshot *s, const char *target)
{
    return s->domain ? domxml_domain_disk(s->domain, target) : NULL;
}

int snap_query_snapshot_text(const snap_ctx *c, const domxml_snapshot *s, char **text,
                             size_t *len, es_err *e)
{
    *text = NULL;
    for (size_t i = 0; i < c->snaps->n; i++) {
        if (c->snaps->snaps[i] != s)
            continue;
        char *logical = NULL, *host = NULL;
        int r = es_asprintf(&logical, e, "%s/%s", c->domain_snap_dir, c->snaps->files[i]);
        if (r == 0)
            r = snap_ctx_host(c, logical, &host, e);
        if (r == 0)
            r = es_read_file(host, DOMXML_FILE_MAX, text, len, e);
        free(logical);
        free(host);
        return r;
    }
    return es_err_set(e, 0, NULL, "snapshot %s is not one of domain %s's", s->name, c->name);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int snap_query_domains(const snap_env *env, es_strv *names, es_err *e)
{
    const char *dir = env->config_dir ? env->config_dir : DOMXML_DEFAULT_CONFIG_DIR;
    char *host = NULL;
    if (es_root_resolve(env->root, dir, &host, e) < 0)
        return -1;
    DIR *d = es_fs_opendir(host);
    if (!d) {
        es_err_set(e, errno, host, "cannot list the config directory");
        free(host);
        return -1;
    }
    size_t first = names->n;
    int rc = 0;
    for (struct dirent *de; rc == 0 && (de = readdir(d));) {
        const char *nm = de->d_name;
        size_t l = strlen(nm);
        if (nm[0] != '.' && l > 4 && strcmp(nm + l - 4, ".xml") == 0)
            rc = es_strv_addf(names, e, "%.*s", (int)(l - 4), nm);
    }
    closedir(d);
    if (names->n > first)
        qsort(names->v + first, names->n - first, sizeof *names->v, cmp_names);
    free(host);
    return rc;
}
