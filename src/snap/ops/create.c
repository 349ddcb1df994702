#include "snap/ops/create.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/domain_edit.h"
#include "domxml/image_props.h"
#include "domxml/names.h"
#include "domxml/snapshot.h"
#include "domxml/text.h"
#include "snap/graph/image_check.h"
#include "snap/graph/naming.h"
#include "snap/ops/vmstate.h"
#include "snap/txn/plan_xml.h"
#include "util/xalloc.h"

/* What create does with one disk. */
typedef enum { DISK_SKIP, DISK_MANUAL, DISK_OVERLAY } disk_action;

static bool selected(const snap_create_args *a, const char *target)
{
    return !a->disks || a->disks->n == 0 || es_strv_has(a->disks, target);
}

/* Decide for one disk; refusals explain what to do. */
static int classify(const snap_create_args *a, const domxml_disk *k, disk_action *act, es_err *e)
{
    *act = DISK_SKIP;
    /* A vhost-vdpa disk names a device, not an image (it has no image to
     * snapshot, like the vhost-user disks, whose <source> has no path). */
    if (!selected(a, k->target_dev) || k->snapshot == DOMXML_SNAPSHOT_NO || k->readonly ||
        k->device == DOMXML_DEVICE_CDROM || !k->source || k->type == DOMXML_STORAGE_VHOSTVDPA)
        return 0;
    if (k->snapshot == DOMXML_SNAPSHOT_MANUAL) {
        *act = DISK_MANUAL;
        return 0;
    }
    if (k->snapshot == DOMXML_SNAPSHOT_INTERNAL)
        return es_err_set(e, 0, NULL,
                          "disk %s asks for internal snapshots (snapshot='internal'); extsnap "
                          "makes external ones only: leave it out with --disk",
                          k->target_dev);
    if (k->type == DOMXML_STORAGE_BLOCK)
        return es_err_set(e, 0, NULL,
                          "source for disk '%s' is not a regular file (block device %s); libvirt "
                          "refuses to generate external snapshot names for it, and so does "
                          "extsnap: leave it out with --disk (listing the other disks)",
                          k->target_dev, k->source);
    if (k->type != DOMXML_STORAGE_FILE)
        return es_err_set(e, 0, NULL,
                          "disk %s is of type '%s'; extsnap snapshots local files only: leave it "
                          "out with --disk",
                          k->target_dev, domxml_storage_type_name(k->type));
    if (!k->driver_type)
        return es_err_set(e, 0, NULL,
                          "disk %s has no <driver type=...>; extsnap does not guess image "
                          "formats (a raw image could pass for qcow2): set it in the config",
                          k->target_dev);
    if (strcmp(k->driver_type, "qcow2") != 0 && strcmp(k->driver_type, "raw") != 0)
        return es_err_set(e, 0, NULL,
                          "disk %s is a '%s' image; extsnap handles qcow2 and raw images only",
                          k->target_dev, k->driver_type);
    if (k->source[0] != '/')
        return es_err_set(e, 0, NULL, "disk %s: source '%s' is not an absolute path",
                          k->target_dev, k->source);
    char what[128], why[512];
    if (domxml_disk_image_only(k, what, sizeof what, why, sizeof why))
        return es_err_set(e, 0, NULL,
                          "disk %s has %s, a property of its image %s that no new overlay can "
                          "carry: %s. Leave the disk out with --disk (listing the other disks)",
                          k->target_dev, what, k->source, why);
    *act = DISK_OVERLAY;
    return 0;
}

static int check_name(snap_ctx *c, const char *name, es_err *e)
{
    if (domxml_check_snapshot_name(name, e) < 0)
        return -1;
    if (domxml_snapshot_list_find(c->snaps, name))
        return es_err_set(e, 0, NULL, "domain %s already has a snapshot named '%s'", c->name,
                          name);
    return 0;
}

static int check_disk_args(snap_ctx *c, const snap_create_args *a, es_err *e)
{
    for (size_t i = 0; a->disks && i < a->disks->n; i++)
        if (!domxml_domain_disk(c->config, a->disks->v[i]))
            return es_err_set(e, 0, c->config_host, "domain %s has no disk '%s'", c->name,
                              a->disks->v[i]);
    return 0;
}

/* Overlays of the disks, checked, in config order. */
static int plan_overlays(snap_ctx *c, const snap_create_args *a, const char *name, snap_plan *p,
                         domxml_snapshot *s, domxml_disk_change *changes, size_t *nchanges,
                         es_err *e)
{
    const char *root = c->env->root;
    for (size_t i = 0; i < c->config->ndisks; i++) {
        const domxml_disk *k = &c->config->disks[i];
        disk_action act;
        if (classify(a, k, &act, e) < 0)
            return -1;
        domxml_snap_disk sd = {.name = k->target_dev};
        if (act != DISK_OVERLAY) {
            sd.snapshot = act == DISK_MANUAL ? DOMXML_SNAPSHOT_MANUAL : DOMXML_SNAPSHOT_NO;
            if (s && domxml_snap_disk_append(&s->disks, &s->ndisks, &sd, e) < 0)
                return -1;
            continue;
        }
        if (snap_check_image(root, k->source, k->driver_type, e) < 0)
            return es_err_prefix(e, "disk %s", k->target_dev);
        snap_overlay o = {.disk = k->target_dev, .backing = k->source,
                          .backing_format = k->driver_type};
        int r = snap_overlay_name(k->source, name, &o.path, e);
        for (size_t j = 0; r == 0 && j < p->noverlays; j++)
            if (strcmp(p->overlays[j].path, o.path) == 0)
                r = es_err_set(e, 0, o.path,
                               "disk %s would get the same overlay as disk %s (collision with "
                               "disk %s)",
                               k->target_dev, p->overlays[j].disk, p->overlays[j].disk);
        for (size_t j = 0; r == 0 && j < c->config->ndisks; j++)
            if (c->config->disks[j].source && strcmp(c->config->disks[j].source, o.path) == 0)
                r = es_err_set(e, 0, o.path,
                               "the overlay of disk %s would be disk %s's image (collision "
                               "with disk %s)",
                               k->target_dev, c->config->disks[j].target_dev,
                               c->config->disks[j].target_dev);
        if (r == 0)
            r = snap_check_new_overlay(root, o.path, k->target_dev, &o.existed_empty, e);
        if (r == 0)
            r = snap_owner_from(root, k->source, &o, e);
        if (r == 0)
            r = snap_plan_add_overlay(p, &o, e);
        if (r < 0) {
            free(o.path);
            return -1;
        }
        const char *path = p->overlays[p->noverlays - 1].path;
        free(o.path);
        changes[(*nchanges)++] = (domxml_disk_change){
            .target = k->target_dev, .source_file = path, .driver_type = "qcow2",
            .old_image_below = true};
        sd.snapshot = DOMXML_SNAPSHOT_EXTERNAL;
        sd.type = DOMXML_STORAGE_FILE;
        sd.driver_type = "qcow2";
        sd.source = (char *)path;
        if (s && domxml_snap_disk_append(&s->disks, &s->ndisks, &sd, e) < 0)
            return -1;
    }
    if (p->noverlays == 0)
        return es_err_set(e, 0, NULL,
                          "domain %s has no disk to snapshot (readonly disks, cdroms, empty "
                          "disks and snapshot='no' disks are left out)",
                          c->name);
    return 0;
}

/* "vda -> /x/vda.s2, vdb -> /x/vdb.s2" */
static int changes_summary(const snap_plan *p, char **out, es_err *e)
{
    char *s = NULL;
    for (size_t i = 0; i < p->noverlays; i++) {
        char *n = NULL;
        if (es_asprintf(&n, e, "%s%s%s -> %s", s ? s : "", s ? ", " : "", p->overlays[i].disk,
                          p->overlays[i].path) < 0) {
            free(s);
            return -1;
        }
        free(s);
        s = n;
    }
    *out = s;
    return 0;
}

int snap_plan_create(snap_ctx *c, const snap_create_args *a, snap_plan **out, es_err *e)
{
    *out = NULL;
    char namebuf[32];
    const char *name = a->name;
    if (!name) {
        snprintf(namebuf, sizeof namebuf, "%lld", a->now);
        name = namebuf;
    }
    if (check_name(c, name, e) < 0 || check_disk_args(c, a, e) < 0)
        return -1;
    snap_plan *p = NULL;
    domxml_snapshot *s = NULL;
    domxml_domain *newcfg = NULL;
    char *summary = NULL;
    domxml_disk_change *changes = es_xcalloc(c->config->ndisks + 1, sizeof *changes);
    size_t nchanges = 0;
    int rc = -1;
    if (snap_plan_new("create", c->name, &p, e) < 0)
        goto out;
    if (!a->no_metadata) {
        if (domxml_check_text(a->description, "the description", e) < 0 ||
            domxml_snapshot_new(name, &s, e) < 0 ||
            domxml_set_string(&s->description, a->description, e) < 0)
            goto out;
        s->creation_time = a->now;
        s->current = true;
        domxml_snapshot *cur = domxml_snapshot_list_current(c->snaps);
        if (cur && domxml_set_string(&s->parent, cur->name, e) < 0)
            goto out;
        /* <domain> = the config before the snapshot. */
        if (domxml_snapshot_set_domain(s, c->config, e) < 0)
            goto out;
    }
    if (plan_overlays(c, a, name, p, s, changes, &nchanges, e) < 0 ||
        snap_vmstate_plan_save(c, name, s, a->no_vm_state, a->vm_running, p, e) < 0)
        goto out;
    if (domxml_domain_change_disks(c->config, changes, nchanges, &newcfg, e) < 0)
        goto out;
    if (changes_summary(p, &summary, e) < 0)
        goto out;
    if (s) {
        domxml_snapshot *cur = domxml_snapshot_list_current(c->snaps);
        if (cur) {
            /* The old current stops being current; newer libvirt also drops its
             * <revertDisks>: those files now back the new snapshot. */
            cur->current = false;
            domxml_snap_disks_clear(&cur->revert_disks, &cur->nrevert_disks);
            char *sum = NULL;
            if (es_asprintf(&sum, e, "snapshot %s is no longer current", cur->name) < 0)
                goto out;
            int r = snap_plan_put_snapshot(c, p, cur, sum, e);
            free(sum);
            if (r < 0)
                goto out;
        }
        char *sum = NULL;
        if (es_asprintf(&sum, e, "new snapshot %s (current%s%s)", name, cur ? ", parent " : "",
                          cur ? cur->name : "") < 0)
            goto out;
        int r = snap_plan_put_snapshot(c, p, s, sum, e);
        free(sum);
        if (r < 0)
            goto out;
    }
    if (snap_plan_put_config(c, p, newcfg, summary, e) < 0)
        goto out;
    if (es_asprintf(&p->summary, e, "create %s %s of domain %s",
                      a->no_metadata ? "overlays" : "snapshot", name, c->name) < 0)
        goto out;
    if (a->no_metadata &&
        es_strv_addf(&p->notes, e,
                       "--no-metadata: no snapshot metadata is written; libvirt and extsnap "
                       "will not list '%s'",
                       name) < 0)
        goto out;
    *out = p;
    p = NULL;
    rc = 0;
out:
    snap_plan_free(p);
    domxml_snapshot_free(s);
    domxml_domain_free(newcfg);
    free(summary);
    free(changes);
    return rc;
}
