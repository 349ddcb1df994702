#include "domxml/snapshot_list.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/names.h"
#include "util/fileio.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

void domxml_snapshot_list_free(domxml_snapshot_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        domxml_snapshot_free(l->snaps[i]);
        free(l->files[i]);
    }
    for (size_t i = 0; i < l->nbad; i++) {
        free(l->bad_files[i]);
        free(l->bad_errors[i]);
    }
    free(l->dir);
    free(l->snaps);
    free(l->files);
    free(l->bad_files);
    free(l->bad_errors);
    free(l);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entry names of a directory, sorted (readdir order is arbitrary, and
 * libvirt's outcome depends on it: extsnap's should not). */
static int list_entries(const char *dir, char ***out, size_t *n, bool *missing, es_err *e)
{
    *out = NULL;
    *n = 0;
    *missing = false;
    DIR *dp = es_fs_opendir(dir);
    if (!dp) {
        if (errno == ENOENT) {
            *missing = true;
            return 0;
        }
        return es_err_set(e, errno, dir, "cannot open snapshot directory");
    }
    char **v = NULL;
    size_t cap = 0;
    int rc = -1;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(dp))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            v = es_xreallocarray(v, cap, sizeof *v);
        }
        v[(*n)++] = es_xstrdup(de->d_name);
        errno = 0;
    }
    if (errno) {
        es_err_set(e, errno, dir, "cannot read snapshot directory");
        goto out;
    }
    if (*n) /* qsort with a NULL array is undefined, even for 0 entries */
        qsort(v, *n, sizeof *v, by_name);
    *out = v;
    v = NULL;
    rc = 0;
out:
    if (v) {
        for (size_t i = 0; i < *n; i++)
            free(v[i]);
        free(v);
        *n = 0;
    }
    closedir(dp);
    return rc;
}

static int push_bad(domxml_snapshot_list *l, const char *file, const es_err *why, es_err *e)
{
    char msg[ES_ERR_PATH_MAX + ES_ERR_MSG_MAX + 128];
    (void)e;
    l->bad_files = es_xreallocarray(l->bad_files, l->nbad + 1, sizeof *l->bad_files);
    l->bad_errors = es_xreallocarray(l->bad_errors, l->nbad + 1, sizeof *l->bad_errors);
    l->bad_files[l->nbad] = es_xstrdup(file);
    l->bad_errors[l->nbad] = es_xstrdup(es_err_str(why, msg, sizeof msg));
    l->nbad++;
    return 0;
}

static int push_snap(domxml_snapshot_list *l, const char *file, domxml_snapshot *s, es_err *e)
{
    (void)e;
    l->snaps = es_xreallocarray(l->snaps, l->n + 1, sizeof *l->snaps);
    l->files = es_xreallocarray(l->files, l->n + 1, sizeof *l->files);
    l->snaps[l->n] = s;
    l->files[l->n] = es_xstrdup(file);
    l->n++;
    return 0;
}

/* The host path of dir/entry: through the root when there is one, so a
 * symlinked entry cannot lead outside it. */
static int entry_path(const char *root, const char *dir, const char *entry, char **out, es_err *e)
{
    char *joined;
    if (es_path_join(dir, entry, &joined, e) < 0)
        return -1;
    if (!root || !*root) {
        *out = joined;
        return 0;
    }
    int rc = es_root_resolve(root, joined, out, e);
    free(joined);
    return rc;
}

int domxml_snapshot_list_load(const char *root, const char *dir, unsigned flags,
                              domxml_snapshot_list **out, es_err *e)
{
    *out = NULL;
    char *host_dir = NULL, **entries = NULL;
    size_t nentries = 0;
    bool missing;
    domxml_snapshot_list *l = es_xcalloc(1, sizeof *l);
    int rc = -1;
    if (es_root_resolve(root, dir, &host_dir, e) < 0 ||
        list_entries(host_dir, &entries, &nentries, &missing, e) < 0)
        goto out;
    l->dir = host_dir;
    host_dir = NULL;
    for (size_t i = 0; i < nentries; i++) {
        char *path;
        if (entry_path(root, dir, entries[i], &path, e) < 0)
            goto out;
        domxml_snapshot *s = NULL;
        es_err why = {0};
        int r = domxml_snapshot_load(path, &s, &why);
        free(path);
        if (r < 0) {
            if (!(flags & DOMXML_LOAD_SKIP_BAD)) {
                if (e)
                    *e = why;
                es_err_prefix(e, "cannot load snapshot metadata");
                goto out;
            }
            if (push_bad(l, entries[i], &why, e) < 0)
                goto out;
            continue;
        }
        if (push_snap(l, entries[i], s, e) < 0)
            goto out;
    }
    *out = l;
    l = NULL;
    rc = 0;
out:
    for (size_t i = 0; i < nentries; i++)
        free(entries[i]);
    free(entries);
    free(host_dir);
    domxml_snapshot_list_free(l);
    return rc;
}

domxml_snapshot *domxml_snapshot_list_find(const domxml_snapshot_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->snaps[i]->name, name) == 0)
            return l->snaps[i];
    return NULL;
}

domxml_snapshot *domxml_snapshot_list_current(const domxml_snapshot_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->snaps[i]->current)
            return l->snaps[i];
    return NULL;
}

int domxml_snapshot_list_children(const domxml_snapshot_list *l, const char *name,
                                  domxml_snapshot ***out, size_t *n, es_err *e)
{
    (void)e;
    *out = NULL;
    *n = 0;
    for (size_t i = 0; i < l->n; i++) {
        const char *p = l->snaps[i]->parent;
        if (!(name ? p && strcmp(p, name) == 0 : !p))
            continue;
        *out = es_xreallocarray(*out, *n + 1, sizeof **out);
        (*out)[(*n)++] = l->snaps[i];
    }
    return 0;
}

/* "dir/file" of entry i, for messages. */
static const char *file_path(const domxml_snapshot_list *l, size_t i, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", l->dir ? l->dir : ".", l->files[i]);
    return buf;
}

static int check_names(const domxml_snapshot_list *l, es_err *e)
{
    char path[ES_ERR_PATH_MAX];
    for (size_t i = 0; i < l->n; i++) {
        const char *name = l->snaps[i]->name, *file = l->files[i];
        file_path(l, i, path, sizeof path);
        if (domxml_check_snapshot_name(name, e) < 0) {
            if (e)
                snprintf(e->path, sizeof e->path, "%s", path);
            return -1;
        }
        size_t nl = strlen(name);
        if (strncmp(file, name, nl) != 0 || strcmp(file + nl, ".xml") != 0)
            return es_err_set(e, 0, path,
                              "holds snapshot '%s', but libvirt reads and writes it only as %s.xml",
                              name, name);
    }
    return 0;
}

/* Checked before file names: two files for one name is the clearer message. */
static int check_unique(const domxml_snapshot_list *l, es_err *e)
{
    for (size_t i = 0; i < l->n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(l->snaps[j]->name, l->snaps[i]->name) == 0)
                return es_err_set(e, 0, l->dir, "snapshot '%s' is defined twice, in %s and %s",
                                  l->snaps[i]->name, l->files[j], l->files[i]);
    return 0;
}

static int check_current(const domxml_snapshot_list *l, unsigned flags, es_err *e)
{
    size_t first = l->n;
    for (size_t i = 0; i < l->n; i++) {
        if (!l->snaps[i]->current)
            continue;
        if (first != l->n && !(flags & DOMXML_CHECK_ALLOW_MANY_CURRENT))
            return es_err_set(e, 0, l->dir,
                              "snapshots '%s' and '%s' both claim to be current (<active>1</active>)",
                              l->snaps[first]->name, l->snaps[i]->name);
        first = i;
    }
    if (l->n && first == l->n && !(flags & DOMXML_CHECK_ALLOW_NO_CURRENT))
        return es_err_set(e, 0, l->dir, "no snapshot is current (none has <active>1</active>)");
    return 0;
}

static size_t index_of(const domxml_snapshot_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->snaps[i]->name, name) == 0)
            return i;
    return l->n;
}

/* Each parent exists, and following parents from any snapshot reaches a root
 * within n steps; a longer walk can only be a loop. */
static int check_parents(const domxml_snapshot_list *l, es_err *e)
{
    char path[ES_ERR_PATH_MAX];
    size_t *parent = es_xcalloc(l->n, sizeof *parent);
    int rc = -1;
    for (size_t i = 0; i < l->n; i++) {
        const domxml_snapshot *s = l->snaps[i];
        parent[i] = s->parent ? index_of(l, s->parent) : l->n;
        if (s->parent && parent[i] == l->n) {
            es_err_set(e, 0, file_path(l, i, path, sizeof path),
                       "snapshot '%s' has parent '%s', which does not exist", s->name, s->parent);
            goto out;
        }
    }
    for (size_t i = 0; i < l->n; i++) {
        size_t at = i, steps = 0;
        while (at != l->n && steps <= l->n) {
            at = parent[at];
            steps++;
        }
        if (at != l->n) {
            es_err_set(e, 0, file_path(l, i, path, sizeof path),
                       "snapshot '%s' is in a parent cycle", l->snaps[i]->name);
            goto out;
        }
    }
    rc = 0;
out:
    free(parent);
    return rc;
}

int domxml_snapshot_list_check(const domxml_snapshot_list *l, unsigned flags, es_err *e)
{
    if (check_unique(l, e) < 0 || check_names(l, e) < 0 || check_current(l, flags, e) < 0 ||
        check_parents(l, e) < 0)
        return -1;
    return 0;
}
