#include "snap/graph/commit_range.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "domxml/domain_edit.h"
#include "domxml/enums.h"
#include "domxml/image_props.h"
#include "qcow2/format.h"
#include "qcow2/image.h"
#include "snap/graph/image_check.h"
#include "snap/graph/imgrole.h"
#include "snap/graph/parent_disks.h"
#include "snap/txn/plan_xml.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

static int repl_add(snap_repls *r, size_t node, const domxml_disk *to_disk, const char *fmt,
                    es_err *e)
{
    const char *to = to_disk->source;
    snap_repl *v = es_xreallocarray(r->v, r->n + 1, sizeof *v);
    r->v = v;
    snap_repl *x = &v[r->n];
    memset(x, 0, sizeof *x);
    x->node = node;
    x->to_disk = to_disk;
    r->n++;
    if (es_strdup(to, &x->to, e) < 0 || es_strdup(fmt, &x->to_format, e) < 0)
        return -1;
    return 0;
}

static const snap_repl *repl_find(const snap_repls *r, size_t node)
{
    for (size_t i = 0; r && node != SNAP_GNONE && i < r->n; i++)
        if (r->v[i].node == node)
            return &r->v[i];
    return NULL;
}

/* Disk targets some snapshot of the range froze, in order of appearance. */
static int range_disks(const snap_range *r, es_strv *out, es_err *e)
{
    for (size_t i = 0; i < r->n; i++)
        for (size_t j = 0; j < r->v[i]->ndisks; j++) {
            const char *t = r->v[i]->disks[j].name;
            if (snap_froze_disk(r->v[i], t) && !es_strv_has(out, t) &&
                es_strv_add(out, t, e) < 0)
                return -1;
        }
    return 0;
}

static bool in_list(const size_t *v, size_t n, size_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return true;
    return false;
}

/* One disk of the range, as the header describes it. */
typedef struct disk_job {
    const char *target;
    const domxml_snapshot *first, *last;
    const domxml_disk *kb;  /* first's saved disk: B */
    size_t b, tf, top;      /* nodes; top SNAP_GNONE: nothing to merge */
    size_t *l;              /* L, top first */
    size_t nl;
} disk_job;

static int refuse(const char *what, es_err *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(const char *what, es_err *e, const char *fmt, ...)
{
    char msg[ES_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return es_err_set(e, 0, NULL, "cannot %s: %s", what, msg);
}

/* The saved disk of s for target, which must be a local file that exists. */
static int frozen_image(snap_ctx *c, const snap_graph *g, const domxml_snapshot *s,
                        const char *target, const char *what, const domxml_disk **k, size_t *node,
                        es_err *e)
{
    if (!s->domain)
        return refuse(what, e,
                      "snapshot %s lacks its saved domain definition (<domain>), so the image "
                      "holding its state of disk %s is unknown",
                      s->name, target);
    *k = domxml_domain_disk(s->domain, target);
    if (!*k || !(*k)->source)
        return refuse(what, e, "snapshot %s's saved definition has no image for disk %s",
                      s->name, target);
    if ((*k)->type != DOMXML_STORAGE_FILE)
        return refuse(what, e,
                      "disk %s's image below snapshot %s is %s %s; extsnap merges only into "
                      "regular files (the saved definitions would have to name a %s again)",
                      target, s->name,
                      (*k)->type == DOMXML_STORAGE_BLOCK ? "the block device" : "the non-file",
                      (*k)->source, domxml_storage_type_name((*k)->type));
    *node = snap_graph_find(g, c->env->root, (*k)->source);
    if (*node == SNAP_GNONE || !g->v[*node].exists)
        return refuse(what, e, "disk %s: %s, which holds snapshot %s's state, does not exist",
                      target, (*k)->source, s->name);
    if (!g->v[*node].format)
        return refuse(what, e, "disk %s: %s (snapshot %s's state) cannot be opened: %s", target,
                      (*k)->source, s->name, g->v[*node].error ? g->v[*node].error : "?");
    return 0;
}

static int refuse_users(snap_ctx *c, const snap_graph *g, const char *what, const char *target,
                        size_t img, const size_t *users, size_t nusers, const char *why,
                        es_err *e)
{
    char *list = NULL, *self = NULL;
    if (snap_image_roles(c, g, users, nusers, &list, e) < 0 ||
        snap_image_role(c, g, img, &self, e) < 0) {
        free(list);
        return -1;
    }
    refuse(what, e,
           "disk %s: %s is the backing file of %zu images: %s; %s (another branch reads it). "
           "Delete that branch first, or use 'delete --metadata' to drop only metadata",
           target, self, nusers, list, why);
    free(list);
    free(self);
    return -1;
}

/* L: from top down to B (excluded). */
static int walk_down(const snap_graph *g, disk_job *j, const char *what, es_err *e)
{
    size_t cur = j->top;
    for (size_t steps = 0; cur != j->b; steps++) {
        if (cur == SNAP_GNONE || steps > g->n)
            return refuse(what, e,
                          "disk %s: the backing chain of %s does not go down to %s (the image "
                          "holding snapshot %s's state)%s%s",
                          j->target, g->v[j->top].path, j->kb->source, j->first->name,
                          cur != SNAP_GNONE && g->v[cur].error ? ": " : "",
                          cur != SNAP_GNONE && g->v[cur].error ? g->v[cur].error : "");
        const snap_gnode *n = &g->v[cur];
        if (!n->regular || !n->format || strcmp(n->format, "qcow2") != 0)
            return refuse(what, e, "disk %s: %s is not a qcow2 overlay (merging needs one)",
                          j->target, n->path);
        size_t *v = es_xreallocarray(j->l, j->nl + 1, sizeof *v);
        j->l = v;
        v[j->nl++] = cur;
        cur = n->backing;
    }
    return 0;
}

/* Each image of L and B may be used only by the next image up. */
static int check_users(snap_ctx *c, const snap_graph *g, disk_job *j, const char *what,
                       es_err *e)
{
    for (size_t i = 0; i <= j->nl; i++) {
        size_t img = i < j->nl ? j->l[i] : j->b;
        if (g->v[img].foreign)
            return refuse(what, e, "disk %s: %s is used by domain %s too; merging would change "
                                   "that domain's disk",
                          j->target, g->v[img].path,
                          g->v[img].foreign_domain ? g->v[img].foreign_domain : "(another)");
        if (img == j->top)
            continue;
        size_t up = j->l[i - 1];
        size_t *users = NULL, n = 0;
        if (snap_graph_users(g, img, &users, &n, e) < 0)
            return -1;
        int r = 0;
        if (n != 1 || users[0] != up) {
            char why[512];
            snprintf(why, sizeof why, "merging %s into %s would change what the others read",
                     g->v[j->top].path, j->kb->source);
            r = refuse_users(c, g, what, j->target, img, users, n, why, e);
        }
        free(users);
        if (r < 0)
            return -1;
    }
    return 0;
}

/* No libvirt file outside the range may lose an image it needs. */
static int check_references(snap_ctx *c, const snap_graph *g, const snap_range *r, disk_job *j,
                            const char *what, es_err *e)
{
    const char *root = c->env->root;
    for (size_t i = 0; i < c->snaps->n; i++) {
        const domxml_snapshot *t = c->snaps->snaps[i];
        if (snap_range_has(r, t))
            continue;
        for (size_t k = 0; t->domain && k < t->domain->ndisks; k++) {
            const domxml_disk *dk = &t->domain->disks[k];
            size_t n = snap_graph_find(g, root, dk->source);
            if (n == SNAP_GNONE || n == j->top || !snap_froze_disk(t, dk->target_dev))
                continue;
            if (n == j->b || in_list(j->l, j->nl, n))
                return refuse(what, e,
                              "snapshot %s's state of disk %s is %s, which the merge %s; "
                              "delete snapshot %s first",
                              t->name, dk->target_dev, dk->source,
                              n == j->b ? "changes" : "removes", t->name);
        }
        const domxml_snap_disk *lists[2] = {t->disks, t->revert_disks};
        size_t counts[2] = {t->ndisks, t->nrevert_disks};
        for (int w = 0; w < 2; w++)
            for (size_t k = 0; k < counts[w]; k++) {
                size_t n = snap_graph_find(g, root, lists[w][k].source);
                if (n != SNAP_GNONE && in_list(j->l, j->nl, n))
                    return refuse(what, e,
                                  "snapshot %s's %s names %s (disk %s), which the merge "
                                  "removes",
                                  t->name, w ? "<revertDisks>" : "<disks>", lists[w][k].source,
                                  lists[w][k].name);
            }
    }
    for (size_t k = 0; k < c->config->ndisks; k++) {
        const domxml_disk *dk = &c->config->disks[k];
        size_t n = snap_graph_find(g, root, dk->source);
        if (n != SNAP_GNONE && n != j->top && (n == j->b || in_list(j->l, j->nl, n)))
            return refuse(what, e,
                          "the domain config's disk %s uses %s directly, an image the merge "
                          "%s",
                          dk->target_dev, dk->source, n == j->b ? "writes" : "removes");
    }
    return 0;
}

/* Does the image (alone, not its chain) hold any guest data or zeroes? */
static int holds_data(snap_ctx *c, const snap_graph *g, size_t node, bool *yes, es_err *e)
{
    es_open_opts oo = {.no_backing = true, .format = g->v[node].format, .root = c->env->root,
                       .force_share = true};
    es_image *img = NULL;
    *yes = false;
    if (es_image_open(&img, g->v[node].path, &oo, e) < 0)
        return -1;
    int rc = 0;
    for (uint64_t off = 0; rc == 0 && !*yes && off < img->virtual_size;) {
        es_block_status bs;
        rc = es_image_block_status(img, off, img->virtual_size - off, &bs, e);
        if (rc == 0 && (bs.kind != ES_BS_UNALLOC || bs.len == 0))
            *yes = bs.kind != ES_BS_UNALLOC;
        off += rc == 0 && bs.len ? bs.len : img->virtual_size;
    }
    es_image_close(img);
    return rc;
}

/* B with image-only properties (an encrypted image, a slice ...) cannot
 * take a merge: extsnap writes files as they are, not through encryption or
 * into a part of a file. Only overlays holding nothing merge into it (a
 * no-op: the overlays the old create made over such images, which QEMU
 * could not use). */
static int check_image_props(snap_ctx *c, const snap_graph *g, disk_job *j, const char *what,
                             es_err *e)
{
    char prop[128], why[512];
    if (!domxml_disk_image_only(j->kb, prop, sizeof prop, why, sizeof why))
        return 0;
    for (size_t i = 0; i < j->nl; i++) {
        bool data;
        if (holds_data(c, g, j->l[i], &data, e) < 0)
            return -1;
        if (data)
            return refuse(what, e,
                          "disk %s: the merge would write %s's data into %s, which has %s; "
                          "extsnap writes image files as they are and cannot write through "
                          "that (it would corrupt the image). 'delete --metadata' drops only "
                          "the metadata",
                          j->target, g->v[j->l[i]].path, j->kb->source, prop);
    }
    return 0;
}

/* B must take writes: a regular qcow2 or raw file, not corrupt or dirty. */
static int check_base(snap_ctx *c, const snap_graph *g, disk_job *j, const char *what,
                      es_err *e)
{
    const snap_gnode *b = &g->v[j->b];
    if (!b->regular)
        return refuse(what, e, "disk %s: %s is not a regular file", j->target, b->path);
    es_open_opts oo = {.no_backing = true, .format = b->format, .root = c->env->root,
                       .force_share = true};
    es_image *img = NULL;
    if (es_image_open(&img, b->path, &oo, e) < 0)
        return -1;
    uint64_t inc = img->format == ES_FMT_QCOW2 ? img->hdr.incompatible_features : 0;
    es_image_close(img);
    /* The hint's command reaches the image as this run did (its --root). */
    bool root = c->env->root && c->env->root[0];
    if (inc & (QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DIRTY))
        return refuse(what, e, "disk %s: %s is marked %s; run 'extsnap img check -r all%s%s %s' "
                               "first",
                      j->target, b->path, inc & QCOW2_INCOMPAT_CORRUPT ? "corrupt" : "dirty",
                      root ? " --root " : "", root ? c->env->root : "", b->path);
    /* Locks, engine refusals and free space: snap_plan_check, once the
     * whole plan is known (space is summed per file system). */
    return 0;
}

/* Every image the merge reads (L) or writes (B) must pass the check
 * 'verify' applies: merging through corrupt metadata destroys the disk. */
static int check_sound(snap_ctx *c, const snap_graph *g, const disk_job *j, const char *what,
                       es_err *e)
{
    for (size_t i = 0; i <= j->nl; i++)
        if (snap_check_image_sound(c->env->root, g->v[i < j->nl ? j->l[i] : j->b].path, what,
                                   j->target, e) < 0)
            return -1;
    return 0;
}

static int plan_disk(snap_ctx *c, const snap_graph *g, disk_job *j, const char *what,
                     snap_plan *p, snap_repls *repl, es_err *e)
{
    const char *bfmt = j->kb->driver_type ? j->kb->driver_type : g->v[j->b].format;
    snap_merge m = {.disk = (char *)j->target, .top = g->v[j->top].path,
                    .base = j->kb->source};
    int added = check_base(c, g, j, what, e);
    for (size_t i = 0; added == 0 && i < j->nl; i++)
        added = es_strv_add(&m.images, g->v[j->l[i]].path, e);
    if (added == 0)
        added = snap_plan_add_merge(p, &m, e);
    es_strv_free(&m.images);
    if (added < 0)
        return -1;
    size_t *users = NULL, n = 0;
    if (snap_graph_users(g, j->top, &users, &n, e) < 0)
        return -1;
    int r = 0;
    for (size_t i = 0; r == 0 && i < n; i++) {
        const snap_gnode *u = &g->v[users[i]];
        snap_rebase rb = {.path = u->path, .backing = j->kb->source,
                          .backing_format = (char *)bfmt, .old_backing = u->backing_name,
                          .old_backing_format = u->backing_format};
        r = snap_plan_add_rebase(p, &rb, e);
        if (r == 0 && !u->named)
            r = es_strv_addf(&p->notes, e,
                               "%s (not named by any libvirt file) used %s as backing file: it "
                               "is repointed to %s",
                               u->path, g->v[j->top].path, j->kb->source);
    }
    free(users);
    for (size_t i = 0; r == 0 && i < j->nl; i++) {
        char *reason = NULL;
        r = es_asprintf(&reason, e, "merged into %s (disk %s)", j->kb->source, j->target);
        if (r == 0)
            r = snap_plan_add_delete(p, g->v[j->l[i]].path, reason, e);
        free(reason);
        if (r == 0)
            r = repl_add(repl, j->l[i], j->kb, bfmt, e);
    }
    return r;
}

static int one_disk(snap_ctx *c, const snap_graph *g, const snap_range *r, const char *target,
                    const char *what, snap_plan *p, snap_repls *repl, es_err *e)
{
    disk_job j = {.target = target, .top = SNAP_GNONE};
    for (size_t i = 0; i < r->n; i++) {
        if (!snap_froze_disk(r->v[i], target))
            continue;
        if (!j.first)
            j.first = r->v[i];
        j.last = r->v[i];
        const domxml_snap_disk *sd =
            domxml_snap_disk_find(r->v[i]->disks, r->v[i]->ndisks, target);
        if (sd->delete_in_progress)
            return refuse(what, e,
                          "snapshot %s's disk %s is marked <snapshotDeleteInProgress/> (a "
                          "libvirt delete did not complete); check its images by hand first",
                          r->v[i]->name, target);
    }
    const domxml_disk *kt = NULL;
    if (frozen_image(c, g, j.first, target, what, &j.kb, &j.b, e) < 0 ||
        frozen_image(c, g, j.last, target, what, &kt, &j.tf, e) < 0)
        return -1;
    size_t *users = NULL, n = 0;
    if (snap_graph_users(g, j.tf, &users, &n, e) < 0)
        return -1;
    int rc = -1;
    if (n > 1) {
        char why[512];
        snprintf(why, sizeof why,
                 "it holds snapshot %s's state, and merging one of them into it would change "
                 "what the others read",
                 j.last->name);
        refuse_users(c, g, what, target, j.tf, users, n, why, e);
        goto out;
    }
    if (n == 1 && !g->v[users[0]].named && !g->v[users[0]].foreign) {
        char *role = NULL;
        if (snap_image_role(c, g, users[0], &role, e) == 0)
            refuse(what, e,
                   "disk %s: %s uses %s as backing file; extsnap merges only images libvirt's "
                   "files name (move it away, or delete it if it is not needed)",
                   target, role, kt->source);
        free(role);
        goto out;
    }
    if (n == 0 && j.last->current) {
        refuse(what, e,
               "disk %s: snapshot %s is current, yet no image uses %s (its state) as backing "
               "file: the live image is missing or broken (see 'extsnap verify')",
               target, j.last->name, kt->source);
        goto out;
    }
    j.top = n == 1 ? users[0] : (j.tf != j.b ? j.tf : SNAP_GNONE);
    if (j.top == SNAP_GNONE) {
        rc = 0; /* the range froze nothing above B: nothing to merge */
        goto out;
    }
    if (walk_down(g, &j, what, e) < 0 || check_image_props(c, g, &j, what, e) < 0 ||
        check_users(c, g, &j, what, e) < 0 || check_references(c, g, r, &j, what, e) < 0 ||
        check_sound(c, g, &j, what, e) < 0 ||
        plan_disk(c, g, &j, what, p, repl, e) < 0)
        goto out;
    rc = 0;
out:
    free(users);
    free(j.l);
    return rc;
}

int snap_range_plan_images(snap_ctx *c, const snap_graph *g, const snap_range *r,
                           const char *what, snap_plan *p, snap_repls *repl, es_err *e)
{
    es_strv disks = {0};
    int rc = range_disks(r, &disks, e);
    for (size_t i = 0; rc == 0 && i < disks.n; i++)
        rc = one_disk(c, g, r, disks.v[i], what, p, repl, e);
    es_strv_free(&disks);
    return rc;
}

/* --- metadata ------------------------------------------------------------- */

/* Sources of d that name replaced images, as disk changes. */
static int domain_changes(snap_ctx *c, const snap_graph *g, const domxml_domain *d,
                          const snap_repls *repl, domxml_disk_change **out, size_t *n,
                          es_err *e)
{
    *out = NULL;
    *n = 0;
    if (!d || !repl || !repl->n)
        return 0;
    *out = es_xcalloc(d->ndisks + 1, sizeof **out);
    for (size_t i = 0; i < d->ndisks; i++) {
        const domxml_disk *k = &d->disks[i];
        if (k->type != DOMXML_STORAGE_FILE && k->type != DOMXML_STORAGE_BLOCK)
            continue;
        const snap_repl *x = repl_find(repl, snap_graph_find(g, c->env->root, k->source));
        if (x && x->to_disk && !domxml_disk_image_props_equal(k, x->to_disk))
            return es_err_set(e, 0, d->origin,
                              "disk %s names %s, which would be replaced by %s, but the two "
                              "descriptions differ in what they say about the image itself "
                              "(<encryption>, <slices> ...); extsnap does not guess which is "
                              "right: fix the description by hand first",
                              k->target_dev, k->source, x->to);
        if (x)
            (*out)[(*n)++] = (domxml_disk_change){.target = k->target_dev, .source_file = x->to,
                                                  .driver_type = x->to_format,
                                                  .drop_backing_store = true};
    }
    return 0;
}

static int rewrite_domain(snap_ctx *c, const snap_graph *g, const domxml_domain *d,
                          const snap_repls *repl, domxml_domain **out, es_err *e)
{
    *out = NULL;
    domxml_disk_change *ch = NULL;
    size_t n = 0;
    int r = domain_changes(c, g, d, repl, &ch, &n, e);
    if (r == 0 && n)
        r = domxml_domain_change_disks(d, ch, n, out, e);
    free(ch);
    return r;
}

static int put(snap_ctx *c, snap_plan *p, domxml_snapshot *t, const es_strv *why, es_err *e)
{
    char *sum = NULL;
    for (size_t i = 0; i < why->n; i++) {
        char *n = NULL;
        if (es_asprintf(&n, e, "%s%s%s", sum ? sum : "", sum ? "; " : "", why->v[i]) < 0) {
            free(sum);
            return -1;
        }
        free(sum);
        sum = n;
    }
    int r = snap_plan_put_snapshot(c, p, t, sum, e);
    free(sum);
    return r;
}

/* Changes to one snapshot that stays; *changed when there are any. */
static int update_kept(snap_ctx *c, const snap_graph *g, const snap_range *r,
                       const snap_meta_opts *o, bool cur_in_range, domxml_snapshot *t,
                       es_strv *why, es_err *e)
{
    const char *new_parent = r->base ? r->base->name : NULL;
    if (t->parent && snap_range_has(r, domxml_snapshot_list_find(c->snaps, t->parent))) {
        if (domxml_set_string(&t->parent, new_parent, e) < 0 ||
            es_strv_addf(why, e, "parent becomes %s", new_parent ? new_parent : "none (a root)") <
                0)
            return -1;
    }
    domxml_domain *nd = NULL;
    if (rewrite_domain(c, g, t->domain, o->repl, &nd, e) < 0)
        return es_err_prefix(e, "snapshot %s's saved definition", t->name);
    if (nd) {
        domxml_domain_free(t->domain);
        t->domain = nd;
        if (es_strv_add(why, "its saved definition names the merged images' base", e) < 0)
            return -1;
    }
    if (t != r->base)
        return 0;
    if (cur_in_range && !t->current) {
        t->current = true;
        if (es_strv_add(why, "becomes current", e) < 0)
            return -1;
    }
    return 0;
}

int snap_range_plan_metadata(snap_ctx *c, const snap_graph *g, const snap_range *r,
                             const snap_meta_opts *o, snap_plan *p, es_err *e)
{
    domxml_snapshot *cur = domxml_snapshot_list_current(c->snaps);
    bool cur_in_range = cur && snap_range_has(r, cur);
    domxml_domain *nd = NULL;
    es_strv *why = es_xcalloc(c->snaps->n + 1, sizeof *why);
    int rc = -1;
    if (rewrite_domain(c, g, c->config, o->repl, &nd, e) < 0) {
        es_err_prefix(e, "the domain config");
        goto out;
    }
    /* Every kept snapshot first, so that the base's disks are derived from
     * the tree as the plan leaves it. */
    for (size_t i = 0; i < c->snaps->n; i++) {
        domxml_snapshot *t = c->snaps->snaps[i];
        if (!snap_range_has(r, t) && update_kept(c, g, r, o, cur_in_range, t, &why[i], e) < 0)
            goto out;
    }
    for (size_t i = 0; r->base && o->derive_base_disks && i < c->snaps->n; i++) {
        if (c->snaps->snaps[i] != r->base)
            continue;
        snap_after after = {.gone = r, .config = nd ? nd : c->config, .repl = o->repl};
        if (snap_parent_disks_derive(c, g, &after, r->base, &why[i], e) < 0)
            goto out;
    }
    for (size_t i = 0; i < c->snaps->n; i++)
        if (why[i].n && put(c, p, c->snaps->snaps[i], &why[i], e) < 0)
            goto out;
    for (size_t i = 0; i < r->n; i++) {
        char *sum = NULL;
        if (es_asprintf(&sum, e, "snapshot %s is deleted%s", r->v[i]->name,
                          r->v[i]->current ? (r->base ? "; its parent becomes current"
                                                      : "; no snapshot is current now")
                                           : "") < 0)
            goto out;
        int x = snap_plan_remove_snapshot(c, p, r->v[i]->name, sum, e);
        free(sum);
        if (x < 0)
            goto out;
    }
    if (nd && snap_plan_put_config(c, p, nd, "disks on the merged images' base", e) < 0)
        goto out;
    rc = 0;
out:
    for (size_t i = 0; i < c->snaps->n; i++)
        es_strv_free(&why[i]);
    free(why);
    domxml_domain_free(nd);
    return rc;
}
