#include "snap/txn/plan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

int snap_plan_new(const char *op, const char *domain, snap_plan **out, es_err *e)
{
    *out = NULL;
    snap_plan *p = es_xcalloc(1, sizeof *p);
    if (es_strdup(op, &p->op, e) < 0 || es_strdup(domain, &p->domain, e) < 0) {
        snap_plan_free(p);
        return -1;
    }
    *out = p;
    return 0;
}

static void overlay_clear(snap_overlay *o)
{
    free(o->disk);
    free(o->path);
    free(o->backing);
    free(o->backing_format);
}

static void xml_clear(snap_xml_write *w)
{
    free(w->path);
    free(w->domain);
    free(w->snapshot);
    free(w->old_text);
    free(w->new_text);
    free(w->summary);
}

void snap_plan_free(snap_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->noverlays; i++)
        overlay_clear(&p->overlays[i]);
    for (size_t i = 0; i < p->nmerges; i++) {
        free(p->merges[i].disk);
        free(p->merges[i].top);
        free(p->merges[i].base);
        es_strv_free(&p->merges[i].images);
    }
    for (size_t i = 0; i < p->nrebases; i++) {
        free(p->rebases[i].path);
        free(p->rebases[i].backing);
        free(p->rebases[i].backing_format);
        free(p->rebases[i].old_backing);
        free(p->rebases[i].old_backing_format);
    }
    for (size_t i = 0; i < p->nxml; i++)
        xml_clear(&p->xml[i]);
    for (size_t i = 0; i < p->nvmcopies; i++) {
        free(p->vmcopies[i].what);
        free(p->vmcopies[i].from);
        free(p->vmcopies[i].to);
    }
    free(p->vmcopies);
    for (size_t i = 0; i < p->ndeletes; i++) {
        free(p->deletes[i].path);
        free(p->deletes[i].reason);
    }
    free(p->overlays);
    free(p->merges);
    free(p->rebases);
    free(p->xml);
    free(p->deletes);
    es_strv_free(&p->notes);
    free(p->op);
    free(p->domain);
    free(p->summary);
    free(p->snapshot_dir_created);
    free(p);
}

/* Grow *arr (of n items of size sz) by one zeroed item; returns it. */
static void *grow(void *arr_ptr, size_t *n, size_t sz)
{
    void **arr = arr_ptr;
    char *v = es_xreallocarray(*arr, *n + 1, sz);
    *arr = v;
    memset(v + *n * sz, 0, sz);
    return v + (*n)++ * sz;
}

static int dup_text(const char *s, size_t len, char **out, es_err *e)
{
    (void)e;
    *out = NULL;
    if (!s)
        return 0;
    *out = es_xmalloc(len + 1);
    memcpy(*out, s, len);
    (*out)[len] = '\0';
    return 0;
}

int snap_plan_add_overlay(snap_plan *p, const snap_overlay *o, es_err *e)
{
    snap_overlay *d = grow(&p->overlays, &p->noverlays, sizeof *d);
    *d = (snap_overlay){.existed_empty = o->existed_empty, .uid = o->uid, .gid = o->gid,
                        .mode = o->mode};
    if (es_strdup(o->disk, &d->disk, e) < 0 || es_strdup(o->path, &d->path, e) < 0 ||
        es_strdup(o->backing, &d->backing, e) < 0 ||
        es_strdup(o->backing_format, &d->backing_format, e) < 0)
        return -1;
    return 0;
}

int snap_plan_add_merge(snap_plan *p, const snap_merge *m, es_err *e)
{
    snap_merge *d = grow(&p->merges, &p->nmerges, sizeof *d);
    if (es_strdup(m->disk, &d->disk, e) < 0 || es_strdup(m->top, &d->top, e) < 0 ||
        es_strdup(m->base, &d->base, e) < 0)
        return -1;
    for (size_t i = 0; i < m->images.n; i++)
        if (es_strv_add(&d->images, m->images.v[i], e) < 0)
            return -1;
    return 0;
}

int snap_plan_add_rebase(snap_plan *p, const snap_rebase *r, es_err *e)
{
    snap_rebase *d = grow(&p->rebases, &p->nrebases, sizeof *d);
    if (es_strdup(r->path, &d->path, e) < 0 || es_strdup(r->backing, &d->backing, e) < 0 ||
        es_strdup(r->backing_format, &d->backing_format, e) < 0 ||
        es_strdup(r->old_backing, &d->old_backing, e) < 0 ||
        es_strdup(r->old_backing_format, &d->old_backing_format, e) < 0)
        return -1;
    return 0;
}

int snap_plan_add_xml(snap_plan *p, const snap_xml_write *w, es_err *e)
{
    snap_xml_write *d = grow(&p->xml, &p->nxml, sizeof *d);
    d->kind = w->kind;
    d->old_len = w->old_len;
    d->new_len = w->new_len;
    if (es_strdup(w->path, &d->path, e) < 0 || es_strdup(w->domain, &d->domain, e) < 0 ||
        es_strdup(w->snapshot, &d->snapshot, e) < 0 ||
        dup_text(w->old_text, w->old_len, &d->old_text, e) < 0 ||
        dup_text(w->new_text, w->new_len, &d->new_text, e) < 0 ||
        es_strdup(w->summary, &d->summary, e) < 0)
        return -1;
    return 0;
}

int snap_plan_add_vmcopy(snap_plan *p, const snap_vmcopy *c, es_err *e)
{
    snap_vmcopy *d = grow(&p->vmcopies, &p->nvmcopies, sizeof *d);
    d->restore = c->restore;
    if (es_strdup(c->what, &d->what, e) < 0 || es_strdup(c->from, &d->from, e) < 0 ||
        es_strdup(c->to, &d->to, e) < 0)
        return -1;
    return 0;
}

int snap_plan_add_delete(snap_plan *p, const char *path, const char *reason, es_err *e)
{
    snap_delete *d = grow(&p->deletes, &p->ndeletes, sizeof *d);
    if (es_strdup(path, &d->path, e) < 0 || es_strdup(reason, &d->reason, e) < 0)
        return -1;
    return 0;
}

bool snap_plan_empty(const snap_plan *p)
{
    return !p->noverlays && !p->nmerges && !p->nrebases && !p->nxml && !p->ndeletes &&
           !p->nvmcopies;
}
