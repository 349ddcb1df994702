#include "snap/ops/delete.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snap/graph/commit_range.h"
#include "snap/graph/imggraph.h"
#include "snap/graph/imgrole.h"
#include "snap/ops/vmstate.h"
#include "util/xalloc.h"

static bool has_children(const snap_ctx *c, const char *name)
{
    for (size_t i = 0; i < c->snaps->n; i++) {
        const char *p = c->snaps->snaps[i]->parent;
        if (p && strcmp(p, name) == 0)
            return true;
    }
    return false;
}

/* Mark node i and its backing chain. */
static void need_chain(const snap_graph *g, bool *need, size_t i)
{
    for (size_t steps = 0; i != SNAP_GNONE && steps <= g->n && !need[i]; steps++) {
        need[i] = true;
        i = g->v[i].backing;
    }
}

static void need_path(const snap_ctx *c, const snap_graph *g, bool *need, const char *path)
{
    need_chain(g, need, snap_graph_find(g, c->env->root, path));
}

static void need_disks(const snap_ctx *c, const snap_graph *g, bool *need,
                       const domxml_snap_disk *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        need_path(c, g, need, v[i].source);
}

/* What is needed once snapshot s is gone (metadata as the plan leaves it):
 * every image that is not a candidate (it may use one as backing file), and
 * the chains of the config, of every other snapshot's saved definition and
 * <revertDisks>, of the current snapshot's live <disks>, of other domains. */
static int needed_after(const snap_ctx *c, const snap_graph *g, const domxml_snapshot *s,
                        const size_t *cand, size_t ncand, bool **out, es_err *e)
{
    (void)e;
    bool *need = es_xcalloc(g->n + 1, sizeof *need);
    bool *is_cand = es_xcalloc(g->n + 1, sizeof *is_cand);
    for (size_t i = 0; i < ncand; i++)
        is_cand[cand[i]] = true;
    for (size_t i = 0; i < g->n; i++)
        if (g->v[i].exists && (!is_cand[i] || g->v[i].foreign))
            need_chain(g, need, i);
    for (size_t i = 0; i < c->config->ndisks; i++)
        need_path(c, g, need, c->config->disks[i].source);
    for (size_t i = 0; i < c->snaps->n; i++) {
        const domxml_snapshot *t = c->snaps->snaps[i];
        if (t == s)
            continue;
        for (size_t k = 0; t->domain && k < t->domain->ndisks; k++)
            need_path(c, g, need, t->domain->disks[k].source);
        need_disks(c, g, need, t->revert_disks, t->nrevert_disks);
        if (t->current && !t->nrevert_disks)
            need_disks(c, g, need, t->disks, t->ndisks);
    }
    free(is_cand);
    *out = need;
    return 0;
}

static int add_candidate(size_t **v, size_t *n, size_t node, es_err *e)
{
    (void)e;
    if (node == SNAP_GNONE)
        return 0;
    for (size_t i = 0; i < *n; i++)
        if ((*v)[i] == node)
            return 0;
    size_t *x = es_xreallocarray(*v, *n + 1, sizeof *x);
    x[(*n)++] = node;
    *v = x;
    return 0;
}

/* S's frozen image f of disk target, and the images between it and the
 * parent's frozen image (a --no-metadata overlay the parent's <disks> no
 * longer names once S is gone): candidates. Only f when the chain does not
 * reach the parent's frozen image. */
static int add_below(const snap_ctx *c, const snap_graph *g, const domxml_snapshot *s,
                     const char *target, size_t f, size_t **cand, size_t *ncand, es_err *e)
{
    if (add_candidate(cand, ncand, f, e) < 0)
        return -1;
    const domxml_snapshot *p = s->parent ? domxml_snapshot_list_find(c->snaps, s->parent) : NULL;
    const domxml_disk *pk = p && p->domain ? domxml_domain_disk(p->domain, target) : NULL;
    size_t pf = pk ? snap_graph_find(g, c->env->root, pk->source) : SNAP_GNONE;
    if (f == SNAP_GNONE || pf == SNAP_GNONE || f == pf || !snap_graph_chain_has(g, f, pf))
        return 0;
    for (size_t n = g->v[f].backing; n != pf && n != SNAP_GNONE; n = g->v[n].backing)
        if (add_candidate(cand, ncand, n, e) < 0)
            return -1;
    return 0;
}

/* A non-current leaf: its files go when nothing needs them. */
static int plan_discard(snap_ctx *c, const snap_graph *g, const domxml_snapshot *s, snap_plan *p,
                        es_err *e)
{
    const char *root = c->env->root;
    size_t *cand = NULL, ncand = 0;
    bool *need = NULL;
    int rc = -1;
    /* Overlays first (they sit above the frozen images). */
    for (size_t i = 0; i < s->ndisks; i++)
        if (add_candidate(&cand, &ncand, snap_graph_find(g, root, s->disks[i].source), e) < 0)
            goto out;
    size_t noverlays = ncand;
    for (size_t i = 0; i < s->ndisks; i++) {
        const domxml_snap_disk *sd = &s->disks[i];
        if (!sd->source || sd->snapshot == DOMXML_SNAPSHOT_NO || !s->domain)
            continue;
        const domxml_disk *k = domxml_domain_disk(s->domain, sd->name);
        if (k && add_below(c, g, s, sd->name, snap_graph_find(g, root, k->source), &cand,
                           &ncand, e) < 0)
            goto out;
    }
    if (needed_after(c, g, s, cand, ncand, &need, e) < 0)
        goto out;
    for (size_t i = 0; i < ncand; i++) {
        const snap_gnode *n = &g->v[cand[i]];
        bool overlay = i < noverlays;
        if (!n->exists)
            continue;
        int r = 0;
        if (need[cand[i]]) {
            char *role = NULL;
            r = snap_image_role(c, g, cand[i], &role, e);
            if (r == 0)
                r = es_strv_addf(&p->notes, e, "kept %s: still needed", role);
            free(role);
        } else if (!n->regular) {
            r = es_strv_addf(&p->notes, e, "kept %s: not a regular file", n->path);
        } else if (!n->backing_name) {
            r = es_strv_addf(&p->notes, e,
                               "kept %s: it held only snapshot %s's state, but it is a base "
                               "image (no backing file), which extsnap never deletes; remove "
                               "it by hand if it is not needed",
                               n->path, s->name);
        } else {
            char *reason = NULL;
            r = es_asprintf(&reason, e,
                              overlay ? "the changes made after snapshot %s, discarded when "
                                        "the domain left it"
                                      : "held only snapshot %s's state",
                              s->name);
            if (r == 0)
                r = snap_plan_add_delete(p, n->path, reason, e);
            free(reason);
        }
        if (r < 0)
            goto out;
    }
    if (es_strv_addf(&p->notes, e,
                       "snapshot %s is not current and has no children: the changes made after "
                       "it were discarded when the domain left it, so nothing is merged",
                       s->name) < 0)
        goto out;
    rc = 0;
out:
    free(cand);
    free(need);
    return rc;
}

int snap_plan_delete(snap_ctx *c, const char *name, bool metadata_only, snap_plan **out,
                     es_err *e)
{
    *out = NULL;
    domxml_snapshot *s = domxml_snapshot_list_find(c->snaps, name);
    if (!s)
        return es_err_set(e, 0, NULL, "domain %s has no snapshot named '%s'", c->name, name);
    domxml_snapshot *parent = s->parent ? domxml_snapshot_list_find(c->snaps, s->parent) : NULL;
    snap_range r = {.v = &s, .n = 1, .base = parent};
    snap_graph g = {0};
    snap_repls repl = {0};
    snap_plan *p = NULL;
    char *what = NULL;
    int rc = -1;
    bool discard = !s->current && !has_children(c, name);
    const char *how;
    if (snap_plan_new("delete", c->name, &p, e) < 0 ||
        es_asprintf(&what, e, "delete snapshot %s", name) < 0)
        goto out;
    if (metadata_only) {
        /* The parent's lists still follow the files (the rule changes only
         * metadata), so that its live overlays are what the config uses. */
        snap_meta_opts mo = {.derive_base_disks = true};
        if (snap_graph_build(c, &g, e) < 0 ||
            snap_range_plan_metadata(c, &g, &r, &mo, p, e) < 0 ||
            es_strv_addf(&p->notes, e,
                           "--metadata: images and the domain config are not touched; the "
                           "files snapshot %s named stay",
                           name) < 0)
            goto out;
        how = "only its metadata";
        if (snap_vmstate_note_kept(s, p, e) < 0)
            goto out;
    } else if (discard) {
        snap_meta_opts mo = {.derive_base_disks = true};
        /* Metadata first: what is needed depends on the files as they will be. */
        if (snap_graph_build(c, &g, e) < 0 ||
            snap_range_plan_metadata(c, &g, &r, &mo, p, e) < 0 ||
            plan_discard(c, &g, s, p, e) < 0 || snap_vmstate_plan_drop(c, s, p, e) < 0)
            goto out;
        how = "a leaf that is not current: nothing to merge";
    } else {
        snap_meta_opts mo = {.repl = &repl, .derive_base_disks = true};
        if (snap_graph_build(c, &g, e) < 0 ||
            snap_range_plan_images(c, &g, &r, what, p, &repl, e) < 0 ||
            snap_range_plan_metadata(c, &g, &r, &mo, p, e) < 0 ||
            snap_vmstate_plan_drop(c, s, p, e) < 0)
            goto out;
        how = p->nmerges ? "its overlays merged into the images below" : "nothing to merge";
    }
    if (es_asprintf(&p->summary, e, "delete snapshot %s of domain %s (%s)", name, c->name,
                      how) < 0)
        goto out;
    *out = p;
    p = NULL;
    rc = 0;
out:
    snap_plan_free(p);
    snap_repls_free(&repl);
    snap_graph_free(&g);
    free(what);
    return rc;
}
