#include "snap/graph/parent_disks.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

bool snap_froze_disk(const domxml_snapshot *s, const char *target)
{
    const domxml_snap_disk *sd =
        domxml_snap_disk_find(((domxml_snapshot *)s)->disks, s->ndisks, target);
    return sd && sd->snapshot != DOMXML_SNAPSHOT_NO && sd->snapshot != DOMXML_SNAPSHOT_MANUAL &&
           sd->source;
}

/* An image as the plan leaves it: its node, and how libvirt's files name it. */
typedef struct img_ref {
    size_t node;       /* SNAP_GNONE: unknown */
    const char *name;
    const char *format;
} img_ref;

static const snap_repl *replaced(const snap_after *a, size_t node)
{
    for (size_t i = 0; a->repl && node != SNAP_GNONE && i < a->repl->n; i++)
        if (a->repl->v[i].node == node)
            return &a->repl->v[i];
    return NULL;
}

/* The image directly above node f in the chain of path. The graph is from
 * before the plan; a merge removes only images above the one it goes into
 * and leaves that one's backing file alone, so the chain below a surviving
 * image is the same afterwards, and a removed image is followed by its
 * replacement. */
static img_ref overlay_over(const snap_ctx *c, const snap_graph *g, const snap_after *a,
                            const char *path, size_t f)
{
    img_ref r = {.node = SNAP_GNONE, .name = path};
    size_t n = snap_graph_find(g, c->env->root, path);
    for (size_t steps = 0; n != SNAP_GNONE && steps <= g->n; steps++) {
        const snap_repl *x = replaced(a, n);
        if (x) {
            n = snap_graph_find(g, c->env->root, x->to);
            r.name = x->to;
            continue;
        }
        if (g->v[n].backing == f && g->v[n].exists) {
            r.node = n;
            r.format = g->v[n].format;
            return r;
        }
        n = g->v[n].backing;
        r.name = n != SNAP_GNONE ? g->v[n].path : NULL;
    }
    r.node = SNAP_GNONE;
    return r;
}

/* Node of a name, through the plan's replacements. */
static size_t node_after(const snap_ctx *c, const snap_graph *g, const snap_after *a,
                         const char *path)
{
    size_t n = snap_graph_find(g, c->env->root, path);
    const snap_repl *x = replaced(a, n);
    return x ? snap_graph_find(g, c->env->root, x->to) : n;
}

static bool gone(const snap_after *a, const domxml_snapshot *s)
{
    return a->gone && snap_range_has(a->gone, s);
}

static int by_age(const void *x, const void *y)
{
    const domxml_snapshot *s = *(const domxml_snapshot *const *)x;
    const domxml_snapshot *t = *(const domxml_snapshot *const *)y;
    if (s->creation_time != t->creation_time)
        return s->creation_time < t->creation_time ? -1 : 1;
    return strcmp(s->name, t->name);
}

/* p's children once the plan is done, oldest first. */
static int children_after(const snap_ctx *c, const snap_after *a, const domxml_snapshot *p,
                          domxml_snapshot ***out, size_t *n, es_err *e)
{
    (void)e;
    *out = NULL;
    *n = 0;
    domxml_snapshot **v = es_xcalloc(c->snaps->n + 1, sizeof *v);
    for (size_t i = 0; i < c->snaps->n; i++) {
        domxml_snapshot *t = c->snaps->snaps[i];
        if (!gone(a, t) && t->parent && strcmp(t->parent, p->name) == 0)
            v[(*n)++] = t;
    }
    qsort(v, *n, sizeof *v, by_age);
    *out = v;
    return 0;
}

/* What the rule wants for one disk. */
typedef struct disk_want {
    bool known;        /* F known: the rule applies to this disk */
    size_t old;        /* node of the <disks> entry now */
    img_ref disks;     /* node SNAP_GNONE: keep the entry */
    const char *by;    /* the child whose overlay disks is; NULL: the live one */
    img_ref live;      /* node SNAP_GNONE: not known (or P not current) */
} disk_want;

static disk_want want_disk(const snap_ctx *c, const snap_graph *g, const snap_after *a,
                           const domxml_snapshot *p, domxml_snapshot *const *kids, size_t nkids,
                           const domxml_snap_disk *sd)
{
    disk_want w = {.disks = {.node = SNAP_GNONE}, .live = {.node = SNAP_GNONE}};
    w.old = node_after(c, g, a, sd->source);
    const domxml_disk *k = p->domain ? domxml_domain_disk(p->domain, sd->name) : NULL;
    size_t f = k && k->source ? snap_graph_find(g, c->env->root, k->source) : SNAP_GNONE;
    if (f == SNAP_GNONE || !g->v[f].exists)
        return w;
    w.known = true;
    if (p->current) {
        const domxml_disk *lk = domxml_domain_disk(a->config, sd->name);
        if (lk && lk->source)
            w.live = overlay_over(c, g, a, lk->source, f);
    }
    bool in_use = false;
    for (size_t i = 0; i < nkids && !in_use; i++) {
        const domxml_disk *ck =
            kids[i]->domain ? domxml_domain_disk(kids[i]->domain, sd->name) : NULL;
        img_ref u = ck && ck->source ? overlay_over(c, g, a, ck->source, f)
                                     : (img_ref){.node = SNAP_GNONE};
        if (u.node == SNAP_GNONE)
            continue;
        in_use = u.node == w.old;
        if (w.disks.node == SNAP_GNONE) {
            w.disks = u;
            w.by = kids[i]->name;
        }
    }
    if (in_use) {
        w.disks.node = SNAP_GNONE; /* it names an overlay a child uses: it stays */
    } else if (w.disks.node == SNAP_GNONE && nkids == 0) {
        w.disks = w.live;
        w.by = NULL;
    }
    if (w.disks.node == w.old)
        w.disks.node = SNAP_GNONE;
    return w;
}

static int set_entry(domxml_snap_disk *sd, const img_ref *r, es_err *e)
{
    if (domxml_set_string(&sd->source, r->name, e) < 0 ||
        domxml_set_string(&sd->driver_type, r->format ? r->format : "qcow2", e) < 0)
        return -1;
    sd->snapshot = DOMXML_SNAPSHOT_EXTERNAL;
    sd->type = DOMXML_STORAGE_FILE;
    return 0;
}

/* A non-current leaf's <revertDisks> were its last live overlays: they
 * become its <disks> (libvirt's delete does the same for the parent). */
static int leaf_revert_disks(domxml_snapshot *p, es_strv *why, es_err *e)
{
    domxml_snap_disks_clear(&p->disks, &p->ndisks);
    p->disks = p->revert_disks;
    p->ndisks = p->nrevert_disks;
    p->revert_disks = NULL;
    p->nrevert_disks = 0;
    return es_strv_add(why, "left without children: its <revertDisks> (its last live "
                              "overlays) become its <disks>",
                         e);
}

/* P current: *out = its live overlays (one entry per <disks> entry, before
 * those change) when one differs from the <disks> the rule wants, else
 * nothing. An entry whose live overlay is not known keeps the old one. */
static int live_list(const snap_ctx *c, const snap_graph *g, const snap_after *a,
                     const domxml_snapshot *p, const disk_want *w, domxml_snap_disk **out,
                     size_t *nout, es_err *e)
{
    bool differs = false;
    for (size_t i = 0; i < p->ndisks; i++) {
        const domxml_snap_disk *sd = &p->disks[i];
        const domxml_snap_disk *old =
            domxml_snap_disk_find(p->revert_disks, p->nrevert_disks, sd->name);
        if (domxml_snap_disk_append(out, nout, old && old->source ? old : sd, e) < 0)
            return -1;
        if (!w[i].known)
            continue;
        domxml_snap_disk *x = &(*out)[*nout - 1];
        size_t want = w[i].disks.node != SNAP_GNONE ? w[i].disks.node : w[i].old;
        size_t live = w[i].live.node;
        if (live != SNAP_GNONE && node_after(c, g, a, x->source) != live &&
            set_entry(x, &w[i].live, e) < 0)
            return -1;
        if (node_after(c, g, a, x->source) != want)
            differs = true;
    }
    if (!differs)
        domxml_snap_disks_clear(out, nout);
    return 0;
}

static bool same_list(const domxml_snap_disk *a, size_t na, domxml_snap_disk *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        const domxml_snap_disk *x = domxml_snap_disk_find(b, nb, a[i].name);
        if (!x || !es_streq(x->source, a[i].source))
            return false;
    }
    return true;
}

/* *list += ", " + "TARGET -> PATH (why)". */
static int add_item(char **list, const char *target, const char *path, const char *how,
                    const char *who, es_err *e)
{
    char *n = NULL;
    if (es_asprintf(&n, e, "%s%s%s -> %s (%s%s)", *list ? *list : "", *list ? ", " : "",
                      target, path, how, who ? who : "") < 0)
        return -1;
    free(*list);
    *list = n;
    return 0;
}

int snap_parent_disks_derive(const snap_ctx *c, const snap_graph *g, const snap_after *a,
                             domxml_snapshot *p, es_strv *why, es_err *e)
{
    domxml_snapshot **kids = NULL;
    size_t nkids = 0;
    domxml_snap_disk *live = NULL;
    size_t nlive = 0;
    char *list = NULL;
    if (children_after(c, a, p, &kids, &nkids, e) < 0)
        return -1;
    int rc = -1;
    disk_want *w = es_xcalloc(p->ndisks + 1, sizeof *w);
    if (!p->current && nkids == 0) {
        rc = p->nrevert_disks ? leaf_revert_disks(p, why, e) : 0;
        goto out;
    }
    for (size_t i = 0; i < p->ndisks; i++)
        if (snap_froze_disk(p, p->disks[i].name))
            w[i] = want_disk(c, g, a, p, kids, nkids, &p->disks[i]);
    if (p->current && live_list(c, g, a, p, w, &live, &nlive, e) < 0)
        goto out;
    for (size_t i = 0; i < p->ndisks; i++) {
        if (!w[i].known || w[i].disks.node == SNAP_GNONE)
            continue;
        if (set_entry(&p->disks[i], &w[i].disks, e) < 0 ||
            add_item(&list, p->disks[i].name, w[i].disks.name,
                     w[i].by ? "used by child " : "its live overlay", w[i].by, e) < 0)
            goto out;
    }
    if (list && es_strv_addf(why, e, "<disks>: %s", list) < 0)
        goto out;
    free(list);
    list = NULL;
    if (p->current && !same_list(live, nlive, p->revert_disks, p->nrevert_disks)) {
        domxml_snap_disks_clear(&p->revert_disks, &p->nrevert_disks);
        p->revert_disks = live;
        p->nrevert_disks = nlive;
        live = NULL;
        nlive = 0;
        for (size_t i = 0; i < p->nrevert_disks; i++)
            if (snap_froze_disk(p, p->revert_disks[i].name) &&
                add_item(&list, p->revert_disks[i].name, p->revert_disks[i].source,
                         "live", NULL, e) < 0)
                goto out;
        if (list ? es_strv_addf(why, e, "<revertDisks> (its <disks> back its children): %s",
                                  list) < 0
                 : es_strv_add(why, "no <revertDisks>: its <disks> are its live overlays",
                                 e) < 0)
            goto out;
    }
    rc = 0;
out:
    free(list);
    domxml_snap_disks_clear(&live, &nlive);
    free(w);
    free(kids);
    return rc;
}
