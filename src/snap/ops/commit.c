#include "snap/ops/commit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snap/graph/commit_range.h"
#include "snap/graph/imggraph.h"
#include "snap/graph/range.h"
#include "snap/ops/vmstate.h"
#include "util/str.h"
#include "util/strv.h"
#include "util/xalloc.h"

static bool has_children(const snap_ctx *c, const char *name)
{
    for (size_t i = 0; i < c->snaps->n; i++) {
        const domxml_snapshot *t = c->snaps->snaps[i];
        if (t->parent && strcmp(t->parent, name) == 0)
            return true;
    }
    return false;
}

#define SNAP_BASE_WORD "base"

/* r->v = the snapshots after base up to top, on top's line of descent. */
static int find_range(snap_ctx *c, const char *base, const char *top, snap_range *r, es_err *e)
{
    memset(r, 0, sizeof *r);
    bool to_base = strcmp(base, SNAP_BASE_WORD) == 0;
    domxml_snapshot *t = domxml_snapshot_list_find(c->snaps, top);
    if (!t)
        return es_err_set(e, 0, NULL, "domain %s has no snapshot named '%s'", c->name, top);
    domxml_snapshot *b = NULL;
    if (!to_base && !(b = domxml_snapshot_list_find(c->snaps, base)))
        return es_err_set(e, 0, NULL, "domain %s has no snapshot named '%s'", c->name, base);
    if (b == t)
        return es_err_set(e, 0, NULL, "BASE and TOP are the same snapshot (%s); to delete it, "
                                      "use 'extsnap delete'",
                          top);
    for (domxml_snapshot *s = t; s; ) {
        if (r->n > c->snaps->n)
            return es_err_set(e, 0, NULL, "snapshot parents of domain %s loop", c->name);
        domxml_snapshot **v = es_xreallocarray(r->v, r->n + 1, sizeof *v);
        r->v = v;
        v[r->n++] = s;
        domxml_snapshot *parent = s->parent ? domxml_snapshot_list_find(c->snaps, s->parent) : NULL;
        if (s->parent && !parent)
            return es_err_set(e, 0, NULL, "snapshot %s's parent %s does not exist", s->name,
                              s->parent);
        if (parent && parent == b)
            break;
        if (!parent && !to_base)
            return es_err_set(e, 0, NULL,
                              "snapshot %s is not a descendant of snapshot %s: commit merges "
                              "along one line of descent, BASE above TOP",
                              top, base);
        s = parent;
    }
    r->base = b;
    /* Oldest first. */
    for (size_t i = 0; i < r->n / 2; i++) {
        domxml_snapshot *x = r->v[i];
        r->v[i] = r->v[r->n - 1 - i];
        r->v[r->n - 1 - i] = x;
    }
    return 0;
}

int snap_plan_commit(snap_ctx *c, const char *base, const char *top, snap_plan **out,
                     es_err *e)
{
    *out = NULL;
    snap_range r = {0};
    snap_graph g = {0};
    snap_repls repl = {0};
    snap_plan *p = NULL;
    char *what = NULL;
    int rc = -1;
    if (find_range(c, base, top, &r, e) < 0)
        goto out;
    if (es_asprintf(&what, e, "commit %s into %s", top, base) < 0)
        goto out;
    domxml_snapshot *t = r.v[r.n - 1];
    if (!t->current && !has_children(c, t->name)) {
        es_err_set(e, 0, NULL,
                   "cannot %s: snapshot %s is a leaf that is not current: the changes after it "
                   "were discarded when the domain left it, so nothing after it is in use; use "
                   "'extsnap delete' to remove snapshots",
                   what, top);
        goto out;
    }
    if (snap_graph_build(c, &g, e) < 0 || snap_plan_new("commit", c->name, &p, e) < 0 ||
        snap_range_plan_images(c, &g, &r, what, p, &repl, e) < 0)
        goto out;
    snap_meta_opts mo = {.repl = &repl, .derive_base_disks = true};
    if (snap_range_plan_metadata(c, &g, &r, &mo, p, e) < 0)
        goto out;
    for (size_t i = 0; i < r.n; i++)
        if (snap_vmstate_plan_drop(c, r.v[i], p, e) < 0)
            goto out;
    char *names = NULL;
    for (size_t i = 0; i < r.n; i++) {
        char *n = NULL;
        if (es_asprintf(&n, e, "%s%s%s", names ? names : "", names ? ", " : "",
                          r.v[i]->name) < 0) {
            free(names);
            goto out;
        }
        free(names);
        names = n;
    }
    int x = es_asprintf(&p->summary, e,
                          "commit domain %s: merge the snapshots after %s up to %s (%s) into "
                          "%s's image%s",
                          c->name, base, top, names, r.base ? r.base->name : "the base",
                          r.base ? "" : "s");
    free(names);
    if (x < 0)
        goto out;
    *out = p;
    p = NULL;
    rc = 0;
out:
    snap_plan_free(p);
    snap_repls_free(&repl);
    snap_graph_free(&g);
    free(r.v);
    free(what);
    return rc;
}
