#include "domxml/snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "domxml/header.h"
#include "domxml/snapshot_priv.h"
#include "domxml/strbuf.h"
#include "util/xalloc.h"

static void snap_disk_clear(domxml_snap_disk *k)
{
    free(k->name);
    free(k->driver_type);
    free(k->source);
    free(k->orig_text);
    free(k->orig_format);
    memset(k, 0, sizeof *k);
}

void domxml_snap_disks_clear(domxml_snap_disk **disks, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        snap_disk_clear(&(*disks)[i]);
    free(*disks);
    *disks = NULL;
    *n = 0;
}

int domxml_snap_disk_append(domxml_snap_disk **disks, size_t *n, const domxml_snap_disk *disk,
                            es_err *e)
{
    domxml_snap_disk copy = {
        .snapshot = disk->snapshot,
        .type = disk->type ? disk->type : DOMXML_STORAGE_FILE,
        .delete_in_progress = disk->delete_in_progress,
    };
    if (!disk->name)
        return es_err_set(e, EINVAL, NULL, "snapshot disk without a name");
    if (dx_strset(&copy.name, disk->name, e) < 0 ||
        dx_strset(&copy.driver_type, disk->driver_type, e) < 0 ||
        dx_strset(&copy.source, disk->source, e) < 0) {
        snap_disk_clear(&copy);
        return -1;
    }
    *disks = es_xreallocarray(*disks, *n + 1, sizeof **disks);
    (*disks)[*n] = copy;
    (*n)++;
    return 0;
}

int domxml_set_string(char **field, const char *value, es_err *e)
{
    return dx_strset(field, value, e);
}

domxml_snap_disk *domxml_snap_disk_find(domxml_snap_disk *disks, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (disks[i].name && strcmp(disks[i].name, name) == 0)
            return &disks[i];
    return NULL;
}

void domxml_snapshot_free(domxml_snapshot *s)
{
    if (!s)
        return;
    free(s->name);
    free(s->description);
    free(s->state);
    free(s->parent);
    free(s->memory_file);
    domxml_snap_disks_clear(&s->disks, &s->ndisks);
    domxml_snap_disks_clear(&s->revert_disks, &s->nrevert_disks);
    domxml_domain_free(s->domain);
    if (s->priv) {
        free(s->priv->prolog);
        free(s->priv->epilog);
        for (size_t i = 0; i < s->priv->nitems; i++)
            free(s->priv->items[i].text);
        free(s->priv->items);
        free(s->priv->legacy_domain);
        free(s->priv);
    }
    free(s);
}

int domxml_snapshot_new(const char *name, domxml_snapshot **out, es_err *e)
{
    *out = NULL;
    domxml_snapshot *s = es_xcalloc(1, sizeof *s);
    s->priv = es_xcalloc(1, sizeof *s->priv);
    s->memory = DOMXML_SNAPSHOT_NO;
    s->creation_time = (long long)time(NULL);
    if (dx_strset(&s->name, name, e) < 0 || dx_strset(&s->state, "shutoff", e) < 0 ||
        domxml_libvirt_header("snapshot-edit", NULL, &s->priv->prolog, e) < 0 ||
        dx_strset(&s->priv->epilog, "\n", e) < 0) {
        domxml_snapshot_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

int domxml_snapshot_set_domain(domxml_snapshot *s, const domxml_domain *config, es_err *e)
{
    domxml_domain *copy;
    if (domxml_domain_root_only(config, &copy, e) < 0)
        return -1;
    domxml_domain_free(s->domain);
    s->domain = copy;
    free(s->priv->legacy_domain);
    s->priv->legacy_domain = NULL;
    return 0;
}
