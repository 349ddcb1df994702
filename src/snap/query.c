#include "snap/query.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/enums.h"
#include "domxml/snapshot_list.h"
#include "util/fileio.h"
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
