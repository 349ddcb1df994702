#include "snap/ops/current.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "domxml/snapshot.h"
#include "snap/graph/chain.h"
#include "snap/graph/parent_disks.h"
#include "snap/txn/plan_xml.h"
#include "util/fileio.h"
#include "util/rootpath.h"

/* A file's identity (device, inode) under the root; false when it cannot
 * be told (missing): names are compared then. */
static bool file_id(const snap_ctx *c, const char *path, unsigned long long *dev,
                    unsigned long long *ino)
{
    char *host = NULL;
    es_err ignore = {0};
    struct stat st;
    bool ok = es_root_resolve(c->env->root, path, &host, &ignore) == 0 &&
              es_fs_stat(host, &st) == 0;
    free(host);
    if (ok) {
        *dev = (unsigned long long)st.st_dev;
        *ino = (unsigned long long)st.st_ino;
    }
    return ok;
}

static bool same_file(const snap_ctx *c, const char *a, const char *b)
{
    if (strcmp(a, b) == 0)
        return true;
    unsigned long long da, ia, db, ib;
    return file_id(c, a, &da, &ia) && file_id(c, b, &db, &ib) && da == db && ia == ib;
}

/* The snapshot that froze path (a disk source of its saved <domain> that it
 * took an external snapshot of), or NULL. */
static const domxml_snapshot *frozen_by(const snap_ctx *c, const char *path)
{
    for (size_t i = 0; i < c->snaps->n; i++) {
        const domxml_snapshot *s = c->snaps->snaps[i];
        for (size_t k = 0; s->domain && k < s->domain->ndisks; k++) {
            const domxml_disk *dk = &s->domain->disks[k];
            if (dk->source && snap_froze_disk(s, dk->target_dev) &&
                same_file(c, dk->source, path))
                return s;
        }
    }
    return NULL;
}

/* t's live overlay of disk target: its <revertDisks> entry, else <disks>. */
static const char *live_overlay(const domxml_snapshot *t, const char *target)
{
    const domxml_snap_disk *d =
        domxml_snap_disk_find(t->revert_disks, t->nrevert_disks, target);
    if (!d || !d->source)
        d = domxml_snap_disk_find(t->disks, t->ndisks, target);
    return d ? d->source : NULL;
}

int snap_current_disk_check(snap_ctx *c, const domxml_snapshot *t, const domxml_disk *k,
                            es_err *e)
{
    const char *live = live_overlay(t, k->target_dev);
    if (!live)
        return es_err_set(e, 0, NULL, "snapshot %s names no overlay of disk %s", t->name,
                          k->target_dev);
    const domxml_snapshot *f = frozen_by(c, live);
    if (f)
        return es_err_set(e, 0, NULL,
                          "disk %s: snapshot %s's overlay %s is the frozen image of snapshot "
                          "%s, so the domain's state descends from %s, not from %s (libvirt >= "
                          "9.7 deletes the current snapshot's overlays when it reverts: that "
                          "would delete %s's image; revert to %s to go back to its state)",
                          k->target_dev, t->name, live, f->name, f->name, t->name, f->name,
                          t->name);
    snap_chain ch = {0};
    if (snap_chain_walk(c->env->root, k->source, k->driver_type, &ch, e) < 0)
        return -1;
    int rc = -1;
    bool said = false;
    for (size_t i = 0; i < ch.n && !said; i++) {
        const char *img = ch.v[i].filename;
        if (same_file(c, img, live)) {
            rc = 0;
            break;
        }
        f = frozen_by(c, img);
        if (f) {
            es_err_set(e, 0, NULL,
                       "disk %s: the config's image chain (%s) reaches snapshot %s's frozen "
                       "image %s before snapshot %s's overlay %s, so the domain's state "
                       "descends from %s (revert to %s to go back to its state)",
                       k->target_dev, k->source, f->name, img, t->name, live, f->name, t->name);
            said = true;
        }
    }
    if (rc < 0 && !said)
        es_err_set(e, 0, NULL,
                   "disk %s: the config's image %s is not snapshot %s's overlay %s nor above "
                   "it%s%s, so the domain is not on %s's state (revert to %s to go back to it)",
                   k->target_dev, k->source, t->name, live, ch.error ? ": " : "",
                   ch.error ? ch.error : "", t->name, t->name);
    snap_chain_free(&ch);
    return rc;
}

static int check_consistent(snap_ctx *c, const domxml_snapshot *t, es_err *e)
{
    if (!t->domain)
        return es_err_set(e, 0, NULL,
                          "snapshot %s has no saved domain definition (<domain>): its frozen "
                          "images are unknown, so whether the disks are on its state cannot be "
                          "told",
                          t->name);
    size_t checked = 0;
    for (size_t i = 0; i < c->config->ndisks; i++) {
        const domxml_disk *k = &c->config->disks[i];
        if (!k->source || !snap_froze_disk(t, k->target_dev))
            continue;
        if (snap_current_disk_check(c, t, k, e) < 0)
            return es_err_prefix(e, "cannot make %s current", t->name);
        checked++;
    }
    if (!checked)
        return es_err_set(e, 0, NULL,
                          "cannot make %s current: it froze none of the disks the domain has "
                          "now",
                          t->name);
    return 0;
}

/* Plan the marker off for every other snapshot that has it (one, or
 * several in the state libvirt loads by directory order). */
static int put_others_off(snap_ctx *c, snap_plan *p, const domxml_snapshot *t, es_err *e)
{
    for (size_t i = 0; i < c->snaps->n; i++) {
        domxml_snapshot *s = c->snaps->snaps[i];
        if (s == t || !s->current)
            continue;
        s->current = false;
        char *sum = NULL;
        int r = es_asprintf(&sum, e, "snapshot %s is no longer current", s->name);
        if (r == 0)
            r = snap_plan_put_snapshot(c, p, s, sum, e);
        free(sum);
        if (r < 0)
            return -1;
    }
    return 0;
}

int snap_plan_set_current(snap_ctx *c, const char *name, snap_plan **out, es_err *e)
{
    *out = NULL;
    domxml_snapshot *t = domxml_snapshot_list_find(c->snaps, name);
    if (!t)
        return es_err_set(e, 0, NULL, "domain %s has no snapshot named '%s'", c->name, name);
    size_t others = 0;
    for (size_t i = 0; i < c->snaps->n; i++) {
        const domxml_snapshot *s = c->snaps->snaps[i];
        if (s == t || !s->current)
            continue;
        others++;
        if (s->nrevert_disks)
            return es_err_set(e, 0, NULL,
                              "cannot make %s current: snapshot %s, marked current, has "
                              "<revertDisks> (the overlays a revert to it made), which would be "
                              "left on a snapshot that is not current",
                              name, s->name);
    }
    snap_plan *p = NULL;
    if (snap_plan_new("current", c->name, &p, e) < 0)
        return -1;
    int r;
    if (t->current && !others) {
        r = es_asprintf(&p->summary, e, "snapshot %s is already the current snapshot of domain %s",
                        name, c->name);
    } else {
        r = check_consistent(c, t, e);
        if (r == 0)
            r = es_asprintf(&p->summary, e, "make %s the current snapshot of domain %s", name,
                            c->name);
        if (r == 0)
            r = put_others_off(c, p, t, e);
        if (r == 0 && !t->current) {
            t->current = true;
            char *sum = NULL;
            r = es_asprintf(&sum, e, "snapshot %s becomes current", name);
            if (r == 0)
                r = snap_plan_put_snapshot(c, p, t, sum, e);
            free(sum);
        }
    }
    if (r < 0) {
        snap_plan_free(p);
        return -1;
    }
    *out = p;
    return 0;
}
