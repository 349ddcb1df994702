#include "snap/ops/revert.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/domain_edit.h"
#include "domxml/image_props.h"
#include "domxml/snapshot.h"
#include "domxml/vmstate_edit.h"
#include "snap/graph/discard.h"
#include "snap/graph/image_check.h"
#include "snap/graph/naming.h"
#include "snap/ops/inexact.h"
#include "snap/ops/vmstate.h"
#include "snap/txn/plan_xml.h"
#include "util/fsutil.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

/* How many seconds past `now` to look for free overlay names. */
#define SNAP_EPOCH_TRIES 1000

/* The root snapshot above s (s itself when it has no parent). */
static domxml_snapshot *root_of(const domxml_snapshot_list *l, domxml_snapshot *s)
{
    for (size_t guard = 0; s && s->parent && guard <= l->n; guard++) {
        domxml_snapshot *p = domxml_snapshot_list_find(l, s->parent);
        if (!p)
            break;
        s = p;
    }
    return s;
}

static int find_target(snap_ctx *c, const char *target, domxml_snapshot **t, bool *is_base,
                       es_err *e)
{
    *t = NULL;
    *is_base = strcmp(target, SNAP_BASE_NAME) == 0;
    if (!*is_base) {
        *t = domxml_snapshot_list_find(c->snaps, target);
        if (!*t)
            return es_err_set(e, 0, NULL, "domain %s has no snapshot named '%s'", c->name, target);
        return 0;
    }
    domxml_snapshot *cur = domxml_snapshot_list_current(c->snaps);
    if (cur) {
        *t = root_of(c->snaps, cur);
        return 0;
    }
    domxml_snapshot **roots = NULL;
    size_t n = 0;
    if (domxml_snapshot_list_children(c->snaps, NULL, &roots, &n, e) < 0)
        return -1;
    int r = 0;
    if (n == 0)
        r = es_err_set(e, 0, NULL, "domain %s has no snapshots, so no base to revert to", c->name);
    else if (n > 1)
        r = es_err_set(e, 0, NULL,
                       "domain %s has %zu root snapshots and none is current, so 'base' is "
                       "ambiguous: revert to a root snapshot by name first",
                       c->name, n);
    else
        *t = roots[0];
    free(roots);
    return r;
}

/* Does any metadata or the config name this path? (A name that only
 * dangles in old metadata must not be given to a new file either.) */
static bool mentioned(const snap_ctx *c, const char *path)
{
    for (size_t i = 0; i < c->config->ndisks; i++)
        if (c->config->disks[i].source && strcmp(c->config->disks[i].source, path) == 0)
            return true;
    for (size_t i = 0; i < c->snaps->n; i++) {
        const domxml_snapshot *s = c->snaps->snaps[i];
        for (size_t j = 0; j < s->ndisks; j++)
            if (s->disks[j].source && strcmp(s->disks[j].source, path) == 0)
                return true;
        for (size_t j = 0; j < s->nrevert_disks; j++)
            if (s->revert_disks[j].source && strcmp(s->revert_disks[j].source, path) == 0)
                return true;
        for (size_t j = 0; s->domain && j < s->domain->ndisks; j++)
            if (s->domain->disks[j].source && strcmp(s->domain->disks[j].source, path) == 0)
                return true;
    }
    return false;
}

/* Does this disk of the saved <domain> get a fresh overlay? Refuses disks
 * that would need one but cannot have it. */
static int wants_overlay(const domxml_snapshot *t, const domxml_disk *k, bool *overlay,
                         es_err *e)
{
    *overlay = false;
    if (k->readonly || k->device == DOMXML_DEVICE_CDROM || !k->source ||
        k->type == DOMXML_STORAGE_VHOSTVDPA) /* a device, no image (as create) */
        return 0;
    if (k->type != DOMXML_STORAGE_FILE) {
        const domxml_snap_disk *sd =
            domxml_snap_disk_find(t->disks, t->ndisks, k->target_dev);
        if (sd && sd->snapshot == DOMXML_SNAPSHOT_NO)
            return 0; /* never frozen by this snapshot: used as it is */
        return es_err_set(e, 0, NULL,
                          "disk %s's saved image %s is a %s, not a regular file; extsnap "
                          "(like libvirt) creates overlays only over regular files",
                          k->target_dev, k->source,
                          k->type == DOMXML_STORAGE_BLOCK ? "block device"
                                                          : domxml_storage_type_name(k->type));
    }
    if (!k->driver_type ||
        (strcmp(k->driver_type, "qcow2") != 0 && strcmp(k->driver_type, "raw") != 0))
        return es_err_set(e, 0, NULL, "disk %s's saved image %s has format '%s'; extsnap "
                                      "handles qcow2 and raw images only",
                          k->target_dev, k->source, k->driver_type ? k->driver_type : "(none)");
    if (k->source[0] != '/')
        return es_err_set(e, 0, NULL, "disk %s: saved source '%s' is not an absolute path",
                          k->target_dev, k->source);
    char what[128], why[512];
    if (domxml_disk_image_only(k, what, sizeof what, why, sizeof why)) {
        const domxml_snap_disk *sd =
            domxml_snap_disk_find(t->disks, t->ndisks, k->target_dev);
        if (!sd || sd->snapshot == DOMXML_SNAPSHOT_NO)
            return 0; /* left out by this snapshot (create must): used as it is */
        return es_err_set(e, 0, NULL,
                          "disk %s's saved image %s has %s, which no new overlay can carry: %s",
                          k->target_dev, k->source, what, why);
    }
    *overlay = true;
    return 0;
}

/* One epoch for all disks (as libvirt's one temporary snapshot name), the
 * first from now on whose names are all free. */
static int choose_epoch(snap_ctx *c, const domxml_domain *saved, const bool *overlay,
                        long long now, long long *epoch, es_err *e)
{
    for (long long ep = now; ep < now + SNAP_EPOCH_TRIES; ep++) {
        char suffix[32];
        snprintf(suffix, sizeof suffix, "%lld", ep);
        bool free_all = true;
        es_strv names = {0};
        for (size_t i = 0; i < saved->ndisks && free_all; i++) {
            if (!overlay[i])
                continue;
            char *path = NULL, *host = NULL;
            if (snap_overlay_name(saved->disks[i].source, suffix, &path, e) < 0 ||
                es_root_resolve(c->env->root, path, &host, e) < 0) {
                free(path);
                es_strv_free(&names);
                return es_err_prefix(e, "overlay of disk %s", saved->disks[i].target_dev);
            }
            if (es_path_exists(host) || mentioned(c, path) || es_strv_has(&names, path))
                free_all = false;
            else if (es_strv_add(&names, path, e) < 0) {
                free(path);
                free(host);
                es_strv_free(&names);
                return -1;
            }
            free(path);
            free(host);
        }
        es_strv_free(&names);
        if (free_all) {
            *epoch = ep;
            return 0;
        }
    }
    return es_err_set(e, 0, NULL, "found no free overlay names in %d seconds from %lld",
                      SNAP_EPOCH_TRIES, now);
}

/* The overlays, the new <disks> list and the config changes. */
static int plan_overlays(snap_ctx *c, const domxml_snapshot *t, const domxml_domain *saved,
                         const bool *overlay, long long epoch, snap_plan *p,
                         domxml_snap_disk **list, size_t *nlist, domxml_disk_change *changes,
                         size_t *nchanges, es_err *e)
{
    const char *root = c->env->root;
    char suffix[32];
    snprintf(suffix, sizeof suffix, "%lld", epoch);
    for (size_t i = 0; i < saved->ndisks; i++) {
        const domxml_disk *k = &saved->disks[i];
        domxml_snap_disk sd = {.name = k->target_dev, .snapshot = DOMXML_SNAPSHOT_NO};
        if (!overlay[i]) {
            if (domxml_snap_disk_append(list, nlist, &sd, e) < 0)
                return -1;
            continue;
        }
        if (snap_check_image(root, k->source, k->driver_type, e) < 0)
            return es_err_prefix(e, "cannot revert to %s: disk %s's saved image", t->name,
                                 k->target_dev);
        snap_overlay o = {.disk = k->target_dev, .backing = k->source,
                          .backing_format = k->driver_type};
        int r = snap_overlay_name(k->source, suffix, &o.path, e);
        if (r == 0)
            r = snap_check_new_overlay(root, o.path, k->target_dev, &o.existed_empty, e);
        if (r == 0)
            r = snap_owner_from(root, k->source, &o, e);
        if (r == 0)
            r = snap_plan_add_overlay(p, &o, e);
        free(o.path);
        if (r < 0)
            return -1;
        const char *path = p->overlays[p->noverlays - 1].path;
        changes[(*nchanges)++] = (domxml_disk_change){
            .target = k->target_dev, .source_file = path, .driver_type = "qcow2",
            .drop_backing_store = true};
        sd.snapshot = DOMXML_SNAPSHOT_EXTERNAL;
        sd.type = DOMXML_STORAGE_FILE;
        sd.driver_type = "qcow2";
        sd.source = (char *)path;
        if (domxml_snap_disk_append(list, nlist, &sd, e) < 0)
            return -1;
    }
    return 0;
}

/* Notes about disks that do not simply go back. */
static int add_disk_notes(snap_ctx *c, const domxml_domain *saved, const bool *overlay,
                          const char *tname, snap_plan *p, es_err *e)
{
    for (size_t i = 0; i < saved->ndisks; i++) {
        const domxml_disk *k = &saved->disks[i];
        if (!overlay[i] && k->source && !k->readonly && k->device != DOMXML_DEVICE_CDROM &&
            es_strv_addf(&p->notes, e,
                           "disk %s was not part of snapshot %s: it keeps using %s as it is",
                           k->target_dev, tname, k->source) < 0)
            return -1;
    }
    for (size_t i = 0; i < c->config->ndisks; i++) {
        const domxml_disk *k = &c->config->disks[i];
        if (!domxml_domain_disk(saved, k->target_dev) &&
            es_strv_addf(&p->notes, e,
                           "disk %s was added after snapshot %s: it leaves the config; its "
                           "image %s is kept",
                           k->target_dev, tname, k->source ? k->source : "(none)") < 0)
            return -1;
    }
    return 0;
}

/* The old current's live overlays: its <revertDisks> when it has them,
 * else its <disks> (read before the metadata is changed). */
static int live_overlays(const domxml_snapshot *cur, es_strv *live, es_err *e)
{
    if (!cur)
        return 0;
    bool rd = cur->nrevert_disks > 0;
    const domxml_snap_disk *v = rd ? cur->revert_disks : cur->disks;
    size_t n = rd ? cur->nrevert_disks : cur->ndisks;
    for (size_t i = 0; i < n; i++)
        if (v[i].source && es_strv_add(live, v[i].source, e) < 0)
            return -1;
    return 0;
}

/* The old current is current no more (and loses its <revertDisks>). */
static int put_old_current(snap_ctx *c, snap_plan *p, domxml_snapshot *cur, es_err *e)
{
    cur->current = false;
    domxml_snap_disks_clear(&cur->revert_disks, &cur->nrevert_disks);
    char *sum = NULL;
    if (es_asprintf(&sum, e, "snapshot %s is no longer current", cur->name) < 0)
        return -1;
    int r = snap_plan_put_snapshot(c, p, cur, sum, e);
    free(sum);
    return r;
}

/* The target becomes current with the new overlays (*list, taken): in its
 * <revertDisks> when it has children (its <disks> back them), else as its
 * <disks>. */
static int put_new_current(snap_ctx *c, snap_plan *p, domxml_snapshot *t, bool has_children,
                           domxml_snap_disk **list, size_t *nlist, es_err *e)
{
    t->current = true;
    const char *how;
    if (has_children) {
        domxml_snap_disks_clear(&t->revert_disks, &t->nrevert_disks);
        t->revert_disks = *list;
        t->nrevert_disks = *nlist;
        how = "the new overlays go into its <revertDisks> (its <disks> back its children)";
    } else {
        domxml_snap_disks_clear(&t->disks, &t->ndisks);
        domxml_snap_disks_clear(&t->revert_disks, &t->nrevert_disks);
        t->disks = *list;
        t->ndisks = *nlist;
        how = "the new overlays become its <disks>";
    }
    *list = NULL;
    *nlist = 0;
    char *sum = NULL;
    if (es_asprintf(&sum, e, "snapshot %s becomes current; %s", t->name, how) < 0)
        return -1;
    int r = snap_plan_put_snapshot(c, p, t, sum, e);
    free(sum);
    return r;
}

/* The state being left: images nothing else needs are deleted (discard.h). */
static int discard_left_state(snap_ctx *c, snap_plan *p, const domxml_domain *newcfg,
                              const domxml_snapshot *old_current, bool old_live_in_disks,
                              const es_strv *live, const char *target, es_err *e)
{
    snap_discard_input d = {
        .old_config = c->config,
        .new_config = newcfg,
        .snaps = c->snaps,
        .old_current = old_current,
        .old_current_live_in_disks = old_live_in_disks,
        .live = live,
    };
    char *reason = NULL;
    if (es_asprintf(&reason, e, "discarded: the state being left (revert to %s)", target) < 0)
        return -1;
    int r = snap_plan_discards(c, &d, reason, p, e);
    free(reason);
    return r;
}

static int set_summary(snap_ctx *c, snap_plan *p, const domxml_snapshot *t, bool is_base,
                       bool refresh, es_err *e)
{
    if (is_base)
        return es_asprintf(&p->summary, e,
                             "revert domain %s to base (the images below snapshot %s)", c->name,
                             t->name);
    if (refresh)
        return es_asprintf(&p->summary, e,
                             "refresh domain %s: discard the changes since snapshot %s", c->name,
                             t->name);
    return es_asprintf(&p->summary, e, "revert domain %s to snapshot %s", c->name, t->name);
}

int snap_plan_revert_to(snap_ctx *c, const snap_revert_args *a, snap_plan **out, es_err *e)
{
    *out = NULL;
    const char *op = a->refresh ? "refresh" : "revert";
    domxml_snapshot *t = NULL;
    bool is_base = false;
    if (find_target(c, a->target, &t, &is_base, e) < 0)
        return -1;
    /* A cancelled online delete/commit left its saved images inexact. */
    if (snap_inexact_check_revert(c, op, a->target, t, a->force, e) < 0)
        return -1;
    if (!t->domain)
        return es_err_set(e, 0, NULL,
                          "snapshot %s lacks the saved domain definition (<domain>) a revert "
                          "needs (libvirt refuses too: it lacks domain rollback info)",
                          t->name);
    const domxml_domain *saved = t->domain;
    domxml_snapshot *cur = domxml_snapshot_list_current(c->snaps);
    bool cur_had_revert_disks = cur && cur->nrevert_disks > 0;
    bool leaves_cur = cur && (cur != t || is_base);
    es_strv live = {0};
    snap_plan *p = NULL;
    domxml_domain *changed = NULL, *newcfg = NULL, *unrecorded = NULL;
    domxml_snap_disk *list = NULL;
    size_t nlist = 0, nchanges = 0;
    bool *overlay = es_xcalloc(saved->ndisks + 1, sizeof *overlay);
    domxml_disk_change *changes = es_xcalloc(saved->ndisks + 1, sizeof *changes);
    domxml_snapshot **children = NULL;
    size_t nchildren = 0;
    long long epoch = 0;
    int rc = -1;
    if (live_overlays(cur, &live, e) < 0)
        goto out;
    for (size_t i = 0; i < saved->ndisks; i++)
        if (wants_overlay(t, &saved->disks[i], &overlay[i], e) < 0) {
            es_err_prefix(e, "cannot revert to %s", is_base ? "base" : t->name);
            goto out;
        }
    if (snap_plan_new(op, c->name, &p, e) < 0 ||
        choose_epoch(c, saved, overlay, a->now, &epoch, e) < 0 ||
        plan_overlays(c, t, saved, overlay, epoch, p, &list, &nlist, changes, &nchanges, e) < 0)
        goto out;
    /* The config gets the saved definition without extsnap's record of the
     * snapshot's VM state (it belongs to the snapshot, not to the domain). */
    if (domxml_domain_set_vmstate(saved, NULL, &unrecorded, e) < 0 ||
        domxml_domain_change_disks(unrecorded, changes, nchanges, &changed, e) < 0 ||
        domxml_domain_replace_root(c->config, changed, &newcfg, e) < 0)
        goto out;
    if (domxml_snapshot_list_children(c->snaps, t->name, &children, &nchildren, e) < 0)
        goto out;

    /* Metadata: old current first, then the target, the config last. */
    if (leaves_cur && put_old_current(c, p, cur, e) < 0)
        goto out;
    if (!is_base && put_new_current(c, p, t, nchildren > 0, &list, &nlist, e) < 0)
        goto out;
    char *sum = NULL;
    if (es_asprintf(&sum, e, "the domain definition saved in snapshot %s, disks on the new overlays",
                      t->name) < 0)
        goto out;
    int r = snap_plan_put_config(c, p, newcfg, sum, e);
    free(sum);
    if (r < 0 ||
        discard_left_state(c, p, newcfg, leaves_cur ? cur : NULL, !cur_had_revert_disks, &live,
                           is_base ? "base" : t->name, e) < 0 ||
        add_disk_notes(c, saved, overlay, t->name, p, e) < 0 ||
        snap_vmstate_plan_restore(c, t, a->no_vm_state, p, e) < 0 ||
        set_summary(c, p, t, is_base, a->refresh, e) < 0)
        goto out;
    *out = p;
    p = NULL;
    rc = 0;
out:
    snap_plan_free(p);
    domxml_domain_free(changed);
    domxml_domain_free(newcfg);
    domxml_domain_free(unrecorded);
    domxml_snap_disks_clear(&list, &nlist);
    free(overlay);
    free(changes);
    free(children);
    es_strv_free(&live);
    return rc;
}
