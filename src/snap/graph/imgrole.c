#include "snap/graph/imgrole.h"

#include <stdlib.h>
#include <string.h>

#include "domxml/snapshot.h"

static int append(char **s, const char *sep, const char *part, es_err *e)
{
    char *n = NULL;
    if (es_asprintf(&n, e, "%s%s%s", *s ? *s : "", *s ? sep : "", part) < 0)
        return -1;
    free(*s);
    *s = n;
    return 0;
}

static bool is(const snap_ctx *c, const snap_graph *g, const char *path, size_t node)
{
    return path && snap_graph_find(g, c->env->root, path) == node;
}

/* The roles libvirt's files give the node. */
static int roles(const snap_ctx *c, const snap_graph *g, size_t node, char **s, es_err *e)
{
    char *part = NULL;
    int r = 0;
    for (size_t i = 0; r == 0 && i < c->config->ndisks; i++)
        if (is(c, g, c->config->disks[i].source, node) &&
            (r = es_asprintf(&part, e, "the live image of disk %s",
                               c->config->disks[i].target_dev)) == 0) {
            r = append(s, "; ", part, e);
            free(part);
        }
    for (size_t i = 0; r == 0 && c->snaps && i < c->snaps->n; i++) {
        domxml_snapshot *t = c->snaps->snaps[i];
        for (size_t j = 0; r == 0 && t->domain && j < t->domain->ndisks; j++) {
            const domxml_disk *k = &t->domain->disks[j];
            const domxml_snap_disk *sd =
                domxml_snap_disk_find(t->disks, t->ndisks, k->target_dev);
            if (!sd || sd->snapshot == DOMXML_SNAPSHOT_NO || !sd->source ||
                !is(c, g, k->source, node))
                continue;
            if ((r = es_asprintf(&part, e, "snapshot %s's frozen image of disk %s", t->name,
                                   k->target_dev)) == 0) {
                r = append(s, "; ", part, e);
                free(part);
            }
        }
        for (size_t j = 0; r == 0 && j < t->ndisks; j++)
            if (is(c, g, t->disks[j].source, node) &&
                (r = es_asprintf(&part, e, "snapshot %s's overlay of disk %s", t->name,
                                   t->disks[j].name)) == 0) {
                r = append(s, "; ", part, e);
                free(part);
            }
        for (size_t j = 0; r == 0 && j < t->nrevert_disks; j++)
            if (is(c, g, t->revert_disks[j].source, node) &&
                (r = es_asprintf(&part, e,
                                   "the overlay made by reverting to snapshot %s (disk %s)",
                                   t->name, t->revert_disks[j].name)) == 0) {
                r = append(s, "; ", part, e);
                free(part);
            }
    }
    return r;
}

int snap_image_role(const snap_ctx *c, const snap_graph *g, size_t node, char **out, es_err *e)
{
    *out = NULL;
    const snap_gnode *n = &g->v[node];
    char *s = NULL;
    if (roles(c, g, node, &s, e) < 0)
        goto fail;
    if (n->foreign) {
        char *part = NULL;
        if (es_asprintf(&part, e, "used by domain %s",
                          n->foreign_domain ? n->foreign_domain : "(another domain)") < 0)
            goto fail;
        int r = append(&s, "; ", part, e);
        free(part);
        if (r < 0)
            goto fail;
    }
    if (!s && append(&s, "", n->named ? "in a backing chain the domain uses"
                                      : "not named by any libvirt file",
                     e) < 0)
        goto fail;
    int r = es_asprintf(out, e, "%s (%s)", n->path, s);
    free(s);
    return r;
fail:
    free(s);
    return -1;
}

int snap_image_roles(const snap_ctx *c, const snap_graph *g, const size_t *v, size_t n,
                     char **out, es_err *e)
{
    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        char *one = NULL;
        if (snap_image_role(c, g, v[i], &one, e) < 0 || append(out, ", ", one, e) < 0) {
            free(one);
            free(*out);
            *out = NULL;
            return -1;
        }
        free(one);
    }
    return 0;
}
