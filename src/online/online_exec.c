/* QEMU's part of a domain plan: mapping plan items to QMP actions, and
 * executing them under the journal (online_exec.h has the design). */
#include "online/online_exec.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "domxml/domain.h"
#include "domxml/snapshot_list.h"
#include "online/online_bitmaps.h"
#include "online/online_exports.h"
#include "online/online_chain.h"
#include "online/online_priv.h"
#include "qcow2/create.h"
#include "qcow2/image.h"
#include "qmp/qmp_fault.h"
#include "qmp/qmp_job.h"
#include "qmp/qmp_nodes.h"
#include "qmp/qmp_snapshot.h"
#include "snap/ops/inexact.h"
#include "snap/txn/exec.h"
#include "snap/txn/journal.h"
#include "util/fileio.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

const char *snap_online_kind_name(snap_online_kind k)
{
    switch (k) {
    case SNAP_ONLINE_ACTIVE_COMMIT:       return "active-commit";
    case SNAP_ONLINE_INTERMEDIATE_COMMIT: return "intermediate-commit";
    case SNAP_ONLINE_OFFLINE_MERGE:       return "offline-merge";
    case SNAP_ONLINE_SNAPSHOT:            return "snapshot";
    }
    return "?";
}

void snap_online_actions_clear(snap_online *ol)
{
    for (size_t i = 0; i < ol->nactions; i++) {
        snap_online_action *a = &ol->actions[i];
        free(a->disk);
        free(a->node);
        free(a->top);
        free(a->base);
        free(a->backing_file);
        free(a->overlay);
        es_strv_free(&a->bitmaps);
    }
    free(ol->actions);
    ol->actions = NULL;
    ol->nactions = 0;
}

static snap_online_action *new_action(snap_online *ol, snap_online_kind kind, const char *disk,
                                      size_t item, es_err *e)
{
    snap_online_action *na = es_xreallocarray(ol->actions, ol->nactions + 1, sizeof *na);
    ol->actions = na;
    snap_online_action *a = &na[ol->nactions];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->item = item;
    a->rebase = (size_t)-1;
    if (es_strdup(disk, &a->disk, e) < 0)
        return NULL;
    ol->nactions++;
    return a;
}

/* ---- helpers shared with recovery (online_priv.h) ---- */

static int snap_online_job_id(const char *disk, char **out, es_err *e)
{
    /* The pid keeps events of an earlier run's job from being taken for ours. */
    if (es_asprintf(out, e, "%s%s-%ld", SNAP_ONLINE_JOB_PREFIX, disk, (long)getpid()) < 0)
        return -1;
    for (char *p = *out; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.' || *p == '_'))
            *p = '_';
    return 0;
}

/* Host path of a file libvirt names (logical), and where QEMU has it open. */
static int snap_online_where(const snap_ctx *c, snap_online *ol, const char *logical, char **host,
                             qmp_file_location **locs, size_t *n, es_err *e)
{
    *locs = NULL;
    *n = 0;
    if (snap_ctx_host(c, logical, host, e) < 0)
        return -1;
    if (qmp_locate_file(ol->qmp, *host, c->env->root, locs, n, e) < 0) {
        free(*host);
        *host = NULL;
        return -1;
    }
    return 0;
}

/* Does the image of r already name r's new backing file (QEMU wrote it)? */
static int snap_online_rebase_done(const snap_ctx *c, const snap_rebase *r, bool *done, es_err *e)
{
    *done = false;
    char *host;
    if (snap_ctx_host(c, r->path, &host, e) < 0)
        return -1;
    es_open_opts oo = {.no_backing = true, .force_share = true};
    es_image *img;
    int rc = es_image_open(&img, host, &oo, e);
    free(host);
    if (rc < 0)
        return -1;
    *done = img->format == ES_FMT_QCOW2 && es_streq(img->hdr.backing_file, r->backing) &&
            (!r->backing_format || es_streq(img->hdr.backing_format, r->backing_format));
    es_image_close(img);
    return 0;
}

/* ---- mapping ---- */

static int map_merge(snap_ctx *c, snap_online *ol, const snap_plan *p, size_t i, bool *claimed,
                     es_err *e)
{
    const snap_merge *m = &p->merges[i];
    char *top = NULL, *base = NULL;
    qmp_file_location *lt = NULL, *lb = NULL;
    size_t nt = 0, nb = 0;
    int rc = -1;
    snap_online_commit oc;
    memset(&oc, 0, sizeof oc);
    char *job = NULL;
    if (snap_online_where(c, ol, m->top, &top, &lt, &nt, e) < 0 ||
        snap_online_where(c, ol, m->base, &base, &lb, &nb, e) < 0)
        goto out;
    if (nt == 0) {
        /* Not in QEMU: another branch, merged offline (its locks guard it). */
        if (nb) {
            es_err_set(e, 0, base,
                       "disk %s: QEMU has this image open but not %s above it: the merge "
                       "would change what the running VM reads; shut it down first",
                       m->disk, top);
            goto out;
        }
        /* ... but only when QEMU runs this disk from the image the config
         * names: otherwise the VM's disks are other files, and the merge
         * could be of the very chain the VM uses under other names. */
        const domxml_disk *k = domxml_domain_disk(c->config, m->disk);
        if (k && k->source) {
            char *live = NULL;
            qmp_file_location *ll = NULL;
            size_t nl = 0;
            if (snap_online_where(c, ol, k->source, &live, &ll, &nl, e) < 0)
                goto out;
            qmp_file_locations_free(ll, nl);
            if (nl == 0)
                es_err_set(e, 0, live,
                           "disk %s: QEMU does not have this image open; the running VM's "
                           "disks differ from its configuration",
                           m->disk);
            free(live);
            if (nl == 0)
                goto out;
        }
        snap_online_action *a = new_action(ol, SNAP_ONLINE_OFFLINE_MERGE, m->disk, i, e);
        if (!a || es_strdup(top, &a->top, e) < 0 || es_strdup(base, &a->base, e) < 0)
            goto out;
        rc = 0;
        goto out;
    }
    if (nt > 1) {
        es_err_set(e, 0, top, "disk %s: QEMU has this image open in %zu chains; refusing to "
                              "merge it",
                   m->disk, nt);
        goto out;
    }
    if (snap_online_job_id(m->disk, &job, e) < 0)
        goto out;
    snap_online_commit_args ca = {
        .device = lt[0].root_node, .top = top, .base = base, .root = c->env->root, .job_id = job,
    };
    if (snap_online_commit_plan(ol->qmp, &ca, &oc, e) < 0) {
        es_err_prefix(e, "disk %s", m->disk);
        goto out;
    }
    if (snap_online_bitmaps_refuse(&oc.chain, oc.top, oc.base, m->disk, e) < 0 ||
        snap_online_exports_refuse(ol->qmp, &oc.chain, oc.base, m->disk, e) < 0)
        goto out;
    snap_online_action *a =
        new_action(ol, oc.active ? SNAP_ONLINE_ACTIVE_COMMIT : SNAP_ONLINE_INTERMEDIATE_COMMIT,
                   m->disk, i, e);
    if (!a || es_strdup(lt[0].root_node, &a->node, e) < 0 || es_strdup(top, &a->top, e) < 0 ||
        es_strdup(base, &a->base, e) < 0)
        goto out;
    snap_online_bitmaps_commit_actions(&oc.chain, oc.top, oc.base, NULL, &a->bitmaps);
    if (!oc.active) {
        /* QEMU rewrites the backing name of the image above top: give it the
         * name the plan's rebase of that image writes offline. */
        const char *above = oc.chain.nodes[oc.top - 1].filename;
        for (size_t r = 0; r < p->nrebases && a->rebase == (size_t)-1; r++) {
            char *rh = NULL;
            if (snap_ctx_host(c, p->rebases[r].path, &rh, e) < 0)
                goto out;
            if (snap_online_same_file(above, rh, c->env->root))
                a->rebase = r;
            free(rh);
        }
        if (a->rebase == (size_t)-1) {
            es_err_set(e, 0, above,
                       "disk %s: QEMU's chain has this image above %s, but the plan does not "
                       "repoint it; the VM's chain differs from its configuration",
                       m->disk, top);
            goto out;
        }
        claimed[a->rebase] = true;
        if (es_strdup(p->rebases[a->rebase].backing, &a->backing_file, e) < 0)
            goto out;
    }
    rc = 0;
out:
    free(job);
    snap_online_commit_clear(&oc);
    qmp_file_locations_free(lt, nt);
    qmp_file_locations_free(lb, nb);
    free(top);
    free(base);
    return rc;
}

static int map_overlay(snap_ctx *c, snap_online *ol, const snap_plan *p, size_t i, es_err *e)
{
    const snap_overlay *o = &p->overlays[i];
    es_strv bitmaps = {0}; /* what goes with the snapshot, for the plan */
    char *cur = NULL;
    qmp_file_location *l = NULL;
    size_t n = 0;
    int rc = -1;
    if (snap_online_where(c, ol, o->backing, &cur, &l, &n, e) < 0)
        return -1;
    if (n != 1 || l[0].depth != 0) {
        es_err_set(e, 0, cur,
                   n == 0 ? "disk %s: QEMU does not have this image open; the running VM's "
                            "disks differ from its configuration"
                          : "disk %s: this image is not the active layer of exactly one of "
                            "QEMU's block devices",
                   o->disk);
        goto out;
    }
    bool used = false;
    if (snap_online_node_used(ol->qmp, l[0].root_node, &used, e) < 0)
        goto out;
    qmp_chain live;
    if (qmp_chain_query(ol->qmp, l[0].root_node, &live, e) < 0)
        goto out;
    int refused = snap_online_bitmaps_refuse(&live, 0, 0, o->disk, e);
    if (refused == 0 && live.n)
        snap_online_bitmaps_propagate(&live.nodes[0], "", NULL, &bitmaps);
    qmp_chain_free(&live);
    if (refused < 0)
        goto out;
    if (!used) {
        es_err_set(e, 0, cur,
                   "disk %s: QEMU's node %s for this image has no user (no device or export): "
                   "a snapshot of it would not change what the VM writes",
                   o->disk, l[0].root_node);
        goto out;
    }
    /* QEMU opens the new overlay by name: the name as QEMU sees files. With
     * --root, a QEMU whose names reach the files only under the root (a VM
     * in a chroot or container, seeing libvirt's paths) gets libvirt's. */
    bool local = true;
    if (c->env->root && c->env->root[0]) {
        qmp_chain ch;
        if (qmp_chain_query(ol->qmp, l[0].root_node, &ch, e) < 0)
            goto out;
        local = ch.n && snap_online_same_file(ch.nodes[0].filename, cur, NULL);
        qmp_chain_free(&ch);
    }
    snap_online_action *a = new_action(ol, SNAP_ONLINE_SNAPSHOT, o->disk, i, e);
    if (a) {
        a->bitmaps = bitmaps;
        bitmaps = (es_strv){0};
    }
    if (!a || es_strdup(l[0].root_node, &a->node, e) < 0 ||
        (local ? snap_ctx_host(c, o->path, &a->overlay, e)
               : es_strdup(o->path, &a->overlay, e)) < 0 ||
        es_strdup(cur, &a->base, e) < 0)
        goto out;
    rc = 0;
out:
    es_strv_free(&bitmaps);
    qmp_file_locations_free(l, n);
    free(cur);
    return rc;
}

/* A rebase extsnap itself must do: its image must not be one QEMU has open. */
static int check_rebase(snap_ctx *c, snap_online *ol, const snap_rebase *r, es_err *e)
{
    char *host = NULL;
    qmp_file_location *l = NULL;
    size_t n = 0;
    if (snap_online_where(c, ol, r->path, &host, &l, &n, e) < 0)
        return -1;
    qmp_file_locations_free(l, n);
    int rc = 0;
    if (n) {
        bool done = false;
        if (snap_online_rebase_done(c, r, &done, e) < 0)
            rc = -1;
        else if (!done)
            rc = es_err_set(e, 0, host,
                            "QEMU has this image open: its backing file cannot be changed "
                            "to %s while the VM runs",
                            r->backing);
    }
    free(host);
    return rc;
}

int snap_online_map(snap_ctx *c, snap_online *ol, const snap_plan *p, es_err *e)
{
    snap_online_actions_clear(ol);
    if (p->noverlays && p->nmerges)
        return es_err_set(e, EINVAL, NULL, "internal error: a plan with overlays and merges");
    bool *claimed = es_xcalloc(p->nrebases + 1, sizeof *claimed);
    int rc = 0;
    for (size_t i = 0; i < p->nmerges && rc == 0; i++)
        rc = map_merge(c, ol, p, i, claimed, e);
    for (size_t i = 0; i < p->nrebases && rc == 0; i++)
        if (!claimed[i])
            rc = check_rebase(c, ol, &p->rebases[i], e);
    for (size_t i = 0; i < p->noverlays && rc == 0; i++)
        rc = map_overlay(c, ol, p, i, e);
    free(claimed);
    if (rc < 0)
        snap_online_actions_clear(ol);
    return rc;
}

/* ---- derived plans ---- */

int snap_online_derive(const snap_plan *p, const snap_derive *d, snap_plan **out, es_err *e)
{
    snap_plan *q;
    if (snap_plan_new(p->op, p->domain, &q, e) < 0)
        return -1;
    int rc = es_strdup(p->summary, &q->summary, e);
    for (size_t i = 0; rc == 0 && d->overlays && i < p->noverlays; i++)
        rc = snap_plan_add_overlay(q, &p->overlays[i], e);
    for (size_t i = 0; rc == 0 && i < p->nmerges; i++)
        if (d->merges && (!d->merge_keep || d->merge_keep[i]))
            rc = snap_plan_add_merge(q, &p->merges[i], e);
    for (size_t i = 0; rc == 0 && i < p->nrebases; i++)
        if (d->rebases && (!d->rebase_keep || d->rebase_keep[i]))
            rc = snap_plan_add_rebase(q, &p->rebases[i], e);
    for (size_t i = 0; rc == 0 && d->xml && i < p->nxml; i++)
        rc = snap_plan_add_xml(q, &p->xml[i], e);
    for (size_t i = 0; rc == 0 && i < p->ndeletes; i++)
        if (d->deletes && (!d->delete_keep || d->delete_keep[i]))
            rc = snap_plan_add_delete(q, p->deletes[i].path, p->deletes[i].reason, e);
    for (size_t i = 0; rc == 0 && i < p->notes.n; i++)
        rc = es_strv_add(&q->notes, p->notes.v[i], e);
    if (rc == 0 && d->xml && p->snapshot_dir_created)
        rc = es_strdup(p->snapshot_dir_created, &q->snapshot_dir_created, e);
    if (rc < 0) {
        snap_plan_free(q);
        return -1;
    }
    *out = q;
    return 0;
}

/* ---- finishing: what extsnap writes once QEMU is done ---- */

/* Files the plan removes that QEMU still has open: release what nobody
 * uses; what stays open is kept (not deleted) and listed. keep[i] tells
 * which deletes go ahead. */
static int filter_deletes(const snap_ctx *c, snap_online *ol, const snap_plan *p, bool *keep,
                          es_err *e)
{
    for (size_t i = 0; i < p->ndeletes; i++) {
        keep[i] = true;
        char *host;
        if (snap_ctx_host(c, p->deletes[i].path, &host, e) < 0)
            return -1;
        snap_file_use use = SNAP_FILE_CLOSED;
        int rc = snap_online_release_file(ol->qmp, host, c->env->root, &use, e);
        if (rc == 0 && use != SNAP_FILE_CLOSED) {
            keep[i] = false;
            rc = es_strv_addf(&ol->kept, e, "%s: QEMU still has it open (%s)", host,
                                use == SNAP_FILE_IDLE ? "a node nothing uses" : "in use");
        }
        free(host);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int snap_online_finish(snap_ctx *c, snap_online *ol, const snap_plan *p, snap_phase phase,
                       es_err *e)
{
    bool *rkeep = es_xcalloc(p->nrebases + 1, sizeof *rkeep);
    bool *dkeep = es_xcalloc(p->ndeletes + 1, sizeof *dkeep);
    snap_plan *run = NULL;
    int rc = -1;
    /* Backing names QEMU wrote itself (intermediate commits) are not
     * rewritten: QEMU holds those images. */
    for (size_t i = 0; i < p->nrebases; i++) {
        bool done = false;
        if (snap_online_rebase_done(c, &p->rebases[i], &done, e) < 0)
            goto out;
        rkeep[i] = !done;
    }
    if (filter_deletes(c, ol, p, dkeep, e) < 0)
        goto out;
    snap_derive d = {.merges = true, .rebases = true, .rebase_keep = rkeep, .xml = true,
                     .deletes = true, .delete_keep = dkeep};
    if (snap_online_derive(p, &d, &run, e) < 0)
        goto out;
    snap_journal j = {c->journal_path, c->journal_tmp};
    rc = snap_rollforward(c->env, &j, run, phase, e);
out:
    snap_plan_free(run);
    free(rkeep);
    free(dkeep);
    return rc;
}

/* ---- commits ---- */

typedef struct commit_run {
    snap_ctx *c;
    snap_online *ol;
    const snap_online_commit *ocs; /* the QEMU commits, for their bitmaps */
    size_t n;
    const snap_plan *fwd; /* journal content from the point of no return */
    bool reached;         /* every job pending: the journal says "merge" */
} commit_run;

static int before_finalize(void *opaque, es_err *e)
{
    commit_run *r = opaque;
    /* Dirty bitmaps first (online_bitmaps.h): once the journal says
     * "merge", recovery only finalizes the jobs, so the merge must be done.
     * Before them, an export added while QEMU copied (online_exports.h). */
    if (snap_online_exports_refuse_pending(r->ol->qmp, r->ocs, r->n, e) < 0 ||
        snap_online_bitmaps_merge(r->ol->qmp, r->ocs, r->n, e) < 0)
        return -1;
    snap_journal j = {r->c->journal_path, r->c->journal_tmp};
    if (snap_journal_write(&j, r->fwd, SNAP_PHASE_MERGE, e) < 0)
        return es_err_prefix(e, "recording that the commit goes ahead");
    r->reached = true;
    return 0;
}

static int pivoted(snap_online *ol, const snap_online_action *a, const char *root);

static void commit_notice(void *opaque, const char *msg)
{
    commit_run *r = opaque;
    es_err u = {0};
    es_strv_add(&r->ol->notes, msg, &u);
    if (r->ol->notice)
        r->ol->notice(r->ol->progress_opaque, msg);
}

static void commit_progress(void *opaque, const qmp_job_progress *pr)
{
    commit_run *r = opaque;
    r->ol->progress(r->ol->progress_opaque, pr);
}

/* After QEMU reported every commit job complete: is every merged top out
 * of the chains the VM uses? 0 when so; else -1 with e saying which. */
static int verify_switched(snap_ctx *c, snap_online *ol, es_err *e)
{
    for (size_t i = 0; i < ol->nactions; i++) {
        const snap_online_action *a = &ol->actions[i];
        if (a->kind != SNAP_ONLINE_ACTIVE_COMMIT && a->kind != SNAP_ONLINE_INTERMEDIATE_COMMIT)
            continue;
        int pv = pivoted(ol, a, c->env->root);
        if (pv == 1)
            continue;
        return es_err_set(e, 0, a->top,
                          pv < 0 ? "disk %s: QEMU could not be asked whether its commit took "
                                   "effect"
                                 : "disk %s: QEMU reported its commit complete, but the VM "
                                   "still uses this image",
                          a->disk);
    }
    return 0;
}

/* Commit specs for the QEMU actions of ol (and which action each is). */
int snap_online_commit_specs(snap_ctx *c, snap_online *ol, snap_online_commit **ocs,
                             qmp_commit_spec **specs, size_t *n, es_err *e)
{
    *ocs = es_xcalloc(ol->nactions + 1, sizeof **ocs);
    *specs = es_xcalloc(ol->nactions + 1, sizeof **specs);
    *n = 0;
    for (size_t i = 0; i < ol->nactions; i++) {
        snap_online_action *a = &ol->actions[i];
        if (a->kind != SNAP_ONLINE_ACTIVE_COMMIT && a->kind != SNAP_ONLINE_INTERMEDIATE_COMMIT)
            continue;
        char *job;
        if (snap_online_job_id(a->disk, &job, e) < 0)
            return -1;
        snap_online_commit_args ca = {
            .device = a->node, .top = a->top, .base = a->base, .root = c->env->root,
            .job_id = job, .backing_file = a->backing_file, .speed = c->env->qmp_speed,
        };
        int rc = snap_online_commit_plan(ol->qmp, &ca, &(*ocs)[*n], e);
        free(job);
        if (rc < 0)
            return es_err_prefix(e, "disk %s", a->disk);
        (*ocs)[*n].disk = a->disk;
        (*specs)[*n] = (*ocs)[*n].spec;
        (*n)++;
    }
    return 0;
}

void snap_online_commit_specs_free(snap_online_commit *ocs, qmp_commit_spec *specs, size_t n)
{
    for (size_t i = 0; ocs && i < n; i++)
        snap_online_commit_clear(&ocs[i]);
    free(ocs);
    free(specs);
}

/* Is the merge of action a done in QEMU (top out of every used chain)?
 * -1 when QEMU cannot say (gone). */
static int pivoted(snap_online *ol, const snap_online_action *a, const char *root)
{
    snap_file_use use;
    es_err ignore;
    if (snap_online_file_use(ol->qmp, a->top, root, &use, NULL, &ignore) < 0)
        return -1;
    return use != SNAP_FILE_IN_USE;
}

/* ---- snapshots left inexact by a cancelled commit (inexact.h) ---- */

typedef struct inexact_run {
    snap_inexact before; /* the record as it was before this run */
    snap_inexact now;    /* with this run's snapshots */
    es_strv names;     /* the snapshots the plan removes */
    char what[1024];     /* "snapshot s4", "snapshots s2, s3" */
    char images[1024];   /* the merge targets QEMU writes, "/a, /b" */
    size_t nimages;
    es_strv targets;   /* every merge target of a QEMU job */
    es_strv written;   /* those a started job may have written (after the run) */
    bool recorded;       /* `now` is on disk */
} inexact_run;

static void inexact_run_clear(inexact_run *r)
{
    snap_inexact_clear(&r->before);
    snap_inexact_clear(&r->now);
    es_strv_free(&r->names);
    es_strv_free(&r->targets);
    es_strv_free(&r->written);
}

static void join(char *buf, size_t len, const es_strv *v)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < v->n && at < len; i++) {
        int k = snprintf(buf + at, len - at, "%s%s", i ? ", " : "", v->v[i]);
        at += k > 0 ? (size_t)k : 0;
    }
}

/* Before QEMU starts copying into the merge targets: the snapshots p
 * removes (their saved images are those targets) are recorded as
 * "copying", so that a run killed from here on leaves the record behind. */
static int inexact_record(snap_ctx *c, snap_online *ol, const snap_plan *p, inexact_run *r,
                          es_err *e)
{
    if (snap_plan_removed_snapshots(p, &r->names, e) < 0)
        return -1;
    if (!r->names.n)
        return 0;
    if (snap_inexact_load(c, &r->before, e) < 0 || snap_inexact_load(c, &r->now, e) < 0)
        return -1;
    snap_inexact_entry x;
    memset(&x, 0, sizeof x);
    x.state = SNAP_INEXACT_COPYING;
    x.since = (long long)time(NULL);
    char names[900];
    join(names, sizeof names, &r->names);
    snprintf(r->what, sizeof r->what, "snapshot%s %s", r->names.n == 1 ? "" : "s", names);
    int rc = -1;
    if (es_asprintf(&x.operation, e, "the online %s of %s", p->op, r->what) < 0 ||
        es_strdup(p->op, &x.command, e) < 0)
        goto out;
    for (size_t i = 0; i < ol->nactions; i++) {
        const snap_online_action *a = &ol->actions[i];
        if ((a->kind == SNAP_ONLINE_ACTIVE_COMMIT || a->kind == SNAP_ONLINE_INTERMEDIATE_COMMIT) &&
            !es_strv_has(&x.images, p->merges[a->item].base) &&
            es_strv_add(&x.images, p->merges[a->item].base, e) < 0)
            goto out;
    }
    join(r->images, sizeof r->images, &x.images);
    r->nimages = x.images.n;
    for (size_t i = 0; i < x.images.n; i++)
        if (es_strv_add(&r->targets, x.images.v[i], e) < 0)
            goto out;
    for (size_t i = 0; i < r->names.n; i++) {
        const domxml_snapshot *s = domxml_snapshot_list_find(c->snaps, r->names.v[i]);
        x.name = r->names.v[i];
        x.creation_time = s ? s->creation_time : 0;
        if (snap_inexact_put(&r->now, &x, e) < 0)
            goto out;
    }
    if (snap_inexact_save(c, &r->now, e) < 0)
        goto out;
    r->recorded = true;
    rc = 0;
out:
    x.name = NULL; /* borrowed */
    free(x.operation);
    free(x.command);
    es_strv_free(&x.images);
    return rc;
}

/* Is snapshot name's saved state hit by the run? Its saved images (its
 * <domain>'s disks) that are merge targets must be among those written;
 * a snapshot none of whose images is a target (or unknown) counts as hit,
 * as the record always had it. */
static bool snapshot_hit(const snap_ctx *c, const char *name, const inexact_run *r)
{
    const domxml_snapshot *s = domxml_snapshot_list_find(c->snaps, name);
    if (!s || !s->domain || !r->written.n)
        return true;
    bool target = false;
    for (size_t i = 0; i < s->domain->ndisks; i++) {
        const char *src = s->domain->disks[i].source;
        if (!src || !es_strv_has(&r->targets, src))
            continue;
        target = true;
        if (es_strv_has(&r->written, src))
            return true;
    }
    return !target;
}

/* The commit did not go ahead and its journal was rolled back. written:
 * QEMU may have copied into the targets (qmp_job_opts.base_written).
 * Nothing copied: the record is put back as it was and the message says
 * nothing was changed. Else the snapshots stay recorded ("cancelled", with
 * the reason) and the message says so, and what to do. */
static void inexact_settle(snap_ctx *c, const snap_plan *p, inexact_run *r, bool written,
                           es_err *e)
{
    es_err u = {0};
    if (!written) {
        if (r->recorded && snap_inexact_save(c, &r->before, &u) == 0)
            r->recorded = false;
        es_err_prefix(e, "nothing was changed");
        return;
    }
    if (!r->recorded) { /* the plan removes no snapshot: nothing to record */
        es_err_prefix(e, "the chains and libvirt's files are as before");
        size_t len = strlen(e->msg);
        snprintf(e->msg + len, sizeof e->msg - len,
                 "; but QEMU does not undo a cancelled commit: the merge targets already hold "
                 "part of the data being merged (the images above hide it from the VM)");
        return;
    }
    /* Why, without what the job driver adds about the jobs ("; no disk ..."). */
    char reason[ES_ERR_MSG_MAX];
    snprintf(reason, sizeof reason, "%s", e->msg);
    reason[strcspn(reason, ";")] = '\0';
    /* Only the targets a started job may have written are inexact, and
     * only the snapshots whose saved state is one of them. */
    const es_strv *wrote = r->written.n ? &r->written : &r->targets;
    join(r->images, sizeof r->images, wrote);
    r->nimages = wrote->n;
    snap_inexact hit;
    memset(&hit, 0, sizeof hit);
    es_strv names = {0};
    bool ok = true;
    for (size_t i = 0; i < r->now.n && ok; i++) {
        snap_inexact_entry *x = &r->now.v[i];
        if (!es_strv_has(&r->names, x->name) || !snapshot_hit(c, x->name, r))
            continue;
        x->state = SNAP_INEXACT_CANCELLED;
        free(x->reason);
        x->reason = es_xstrdup(reason);
        es_strv_free(&x->images);
        for (size_t k = 0; k < wrote->n && ok; k++)
            ok = es_strv_add(&x->images, wrote->v[k], &u) == 0;
        ok = ok && snap_inexact_put(&hit, x, &u) == 0 && es_strv_add(&names, x->name, &u) == 0;
    }
    /* The record as it was, plus the snapshots hit. */
    ok = ok && snap_inexact_copy(&r->now, &r->before, &u) == 0;
    for (size_t i = 0; i < hit.n && ok; i++)
        ok = snap_inexact_put(&r->now, &hit.v[i], &u) == 0;
    snap_inexact_clear(&hit);
    bool saved = ok && snap_inexact_save(c, &r->now, &u) == 0; /* else "copying" stays */
    if (ok && names.n) {
        char list[900];
        join(list, sizeof list, &names);
        snprintf(r->what, sizeof r->what, "snapshot%s %s", names.n == 1 ? "" : "s", list);
    }
    es_err_prefix(e, "the chains and libvirt's files are as before");
    size_t len = strlen(e->msg);
    if (ok && !names.n) /* saved states untouched: no snapshot to name */
        snprintf(e->msg + len, sizeof e->msg - len,
                 "; but QEMU does not undo a cancelled commit: %s already hold%s part of the "
                 "data being merged (the images above hide it from the VM); no snapshot's "
                 "saved state is among them",
                 r->images, r->nimages == 1 ? "s" : "");
    else
        snprintf(e->msg + len, sizeof e->msg - len,
                 "; but QEMU does not undo a cancelled commit: %s already hold%s part of the "
                 "data being merged (the images above hide it from the VM), so the saved state "
                 "of %s is no longer exact (recorded in %s%s); revert and refresh to %s are "
                 "refused until the same %s runs again and finishes (or give them --force to "
                 "accept the inexact state)",
                 r->images, r->nimages == 1 ? "s" : "", r->what, r->now.path,
                 saved ? "" : ", as still copying", names.n == 1 ? "it" : "them", p->op);
    es_strv_free(&names);
}

/* The commit failed once every job was pending: which disks did QEMU switch? */
static int after_failed_finalize(snap_ctx *c, snap_online *ol, const snap_plan *p,
                                 const snap_plan *prep, const snap_plan *fwd, inexact_run *ir,
                                 es_err *e)
{
    snap_journal j = {c->journal_path, c->journal_tmp};
    size_t done = 0, total = 0;
    bool unknown = false;
    bool *redo = es_xcalloc(p->nmerges + 1, sizeof *redo);
    for (size_t i = 0; i < ol->nactions; i++) {
        const snap_online_action *a = &ol->actions[i];
        if (a->kind != SNAP_ONLINE_ACTIVE_COMMIT && a->kind != SNAP_ONLINE_INTERMEDIATE_COMMIT)
            continue;
        total++;
        int pv = pivoted(ol, a, c->env->root);
        if (pv < 0)
            unknown = true;
        else if (pv)
            done++;
        else
            redo[a->item] = true;
    }
    int rc = -1;
    if (unknown) {
        /* QEMU went away after every copy was complete: the journal finishes it. */
        es_err_prefix(e, "QEMU went away while switching the disks; every copy was complete, "
                         "so '%s' (or the next command) finishes the operation",
                      snap_ctx_recover_cmd(c));
    } else if (done == 0) {
        es_err u = {0};
        if (snap_journal_write(&j, prep, SNAP_PHASE_PREPARE, &u) == 0 &&
            snap_rollback(c->env->root, &j, prep, &u) == 0)
            inexact_settle(c, p, ir, true, e); /* every copy was complete */
        else
            es_err_prefix(e, "undoing failed; run '%s'", snap_ctx_recover_cmd(c));
    } else if (done == total) {
        rc = 1; /* every disk switched: go on */
    } else {
        /* Some disks switched, others not: the journal redoes the others. */
        snap_plan *mixed = NULL;
        bool *keep = es_xcalloc(p->nmerges + 1, sizeof *keep);
        snap_derive d = {.merges = true, .merge_keep = keep, .rebases = true,
                         .xml = fwd->nxml > 0, .deletes = fwd->ndeletes > 0};
        for (size_t i = 0; keep && i < p->nmerges; i++)
            keep[i] = redo[i];
        for (size_t i = 0; keep && i < ol->nactions; i++)
            if (ol->actions[i].kind == SNAP_ONLINE_OFFLINE_MERGE)
                keep[ol->actions[i].item] = true;
        es_err u = {0};
        if (keep && snap_online_derive(p, &d, &mixed, &u) == 0)
            snap_journal_write(&j, mixed, SNAP_PHASE_MERGE, &u);
        snap_plan_free(mixed);
        free(keep);
        es_err_prefix(e, "%zu of %zu disks were switched; the operation is half done: run "
                         "'%s' to finish it",
                      done, total, snap_ctx_recover_cmd(c));
    }
    free(redo);
    return rc;
}

static int execute_commits(snap_ctx *c, snap_online *ol, const snap_plan *p, es_err *e)
{
    snap_journal j = {c->journal_path, c->journal_tmp};
    bool libvirt = ol->libvirt_mode;
    bool *offline = es_xcalloc(p->nmerges + 1, sizeof *offline);
    snap_plan *prep = NULL, *fwd = NULL;
    snap_online_commit *ocs = NULL;
    qmp_commit_spec *specs = NULL;
    size_t n = 0;
    inexact_run ir;
    memset(&ir, 0, sizeof ir);
    int rc = -1;
    for (size_t i = 0; i < ol->nactions; i++)
        if (ol->actions[i].kind == SNAP_ONLINE_OFFLINE_MERGE)
            offline[ol->actions[i].item] = true;
    snap_derive dp = {.xml = !libvirt};
    snap_derive df = {.merges = true, .merge_keep = offline, .rebases = true, .xml = !libvirt,
                      .deletes = !libvirt};
    if (snap_online_derive(p, &dp, &prep, e) < 0 || snap_online_derive(p, &df, &fwd, e) < 0)
        goto out;
    if (snap_online_commit_specs(c, ol, &ocs, &specs, &n, e) < 0)
        goto out;
    if (snap_journal_write(&j, prep, SNAP_PHASE_PREPARE, e) < 0) {
        es_err_prefix(e, "nothing was changed");
        goto out;
    }
    if (n) {
        if (inexact_record(c, ol, p, &ir, e) < 0) {
            es_err u = {0};
            snap_rollback(c->env->root, &j, prep, &u);
            es_err_prefix(e, "nothing was changed");
            goto out;
        }
        bool written = true;
        bool *jw = es_xcalloc(n, sizeof *jw);
        commit_run r = {.c = c, .ol = ol, .ocs = ocs, .n = n, .fwd = fwd};
        qmp_job_opts jo = {.poll_interval_ms = 250, .before_finalize = before_finalize,
                           .opaque = &r, .base_written = &written, .job_written = jw,
                           .stall_ms = c->env->qmp_stall_ms, .notice = commit_notice,
                           .progress = ol->progress ? commit_progress : NULL};
        int jrc = qmp_commit_run(ol->qmp, specs, n, &jo, e);
        es_err u = {0};
        for (size_t i = 0, k = 0; jrc < 0 && i < ol->nactions && k < n; i++) {
            const snap_online_action *a = &ol->actions[i];
            if (a->kind != SNAP_ONLINE_ACTIVE_COMMIT && a->kind != SNAP_ONLINE_INTERMEDIATE_COMMIT)
                continue;
            if (jw[k++] && !es_strv_has(&ir.written, p->merges[a->item].base))
                es_strv_add(&ir.written, p->merges[a->item].base, &u);
        }
        free(jw);
        if (jrc == 0 && r.reached) {
            /* QEMU said every job completed: its graph must say so too. */
            jrc = verify_switched(c, ol, e);
        }
        if (jrc < 0) {
            if (!r.reached) {
                es_err u = {0};
                if (snap_rollback(c->env->root, &j, prep, &u) == 0)
                    inexact_settle(c, p, &ir, written, e);
                else
                    es_err_prefix(e, "undoing failed; run '%s'", snap_ctx_recover_cmd(c));
                goto out;
            }
            if (after_failed_finalize(c, ol, p, prep, fwd, &ir, e) <= 0)
                goto out;
            es_err_clear(e);
        }
    } else if (snap_journal_write(&j, fwd, SNAP_PHASE_MERGE, e) < 0) {
        es_err u = {0};
        snap_rollback(c->env->root, &j, prep, &u);
        es_err_prefix(e, "nothing was changed");
        goto out;
    }
    /* Past the point of no return: the metadata follows what QEMU did. */
    if (snap_online_finish(c, ol, fwd, SNAP_PHASE_MERGE, e) < 0) {
        es_err_prefix(e, "the disks were switched but the rest is not done; run '%s' to "
                         "finish it",
                      snap_ctx_recover_cmd(c));
        goto out;
    }
    rc = 0;
out:
    inexact_run_clear(&ir);
    snap_online_commit_specs_free(ocs, specs, n);
    snap_plan_free(prep);
    snap_plan_free(fwd);
    free(offline);
    return rc;
}

/* ---- create ---- */

/* The overlay, made by extsnap (QEMU 7.2 leaves a failed transaction's
 * files behind, and this way the header is exactly the offline one). */
static int make_overlay(const char *root, const snap_overlay *o, es_err *e)
{
    char *host = NULL;
    if (es_root_resolve(root, o->path, &host, e) < 0)
        return -1;
    qcow2_create_opts opts;
    qcow2_create_opts_init(&opts);
    opts.backing_file = o->backing;
    opts.backing_format = o->backing_format;
    opts.root = root;
    int rc = qcow2_create(host, &opts, e);
    es_err oe;
    if (rc == 0 && o->uid >= 0 && es_fs_chown(host, (uid_t)o->uid, (gid_t)o->gid, &oe) < 0 &&
        oe.errnum != EPERM)
        rc = es_err_set(e, oe.errnum, host, "cannot set the owner of the new overlay");
    if (rc == 0 && o->mode >= 0 && es_fs_chmod(host, (mode_t)o->mode, &oe) < 0)
        rc = es_err_set(e, oe.errnum, host, "cannot set the mode of the new overlay");
    free(host);
    if (rc < 0)
        return es_err_prefix(e, "creating the overlay of disk %s", o->disk);
    return 0;
}

/* After the transaction: is each disk's active node in QEMU the new overlay,
 * over the image it had before? *switched counts the disks that are; -1
 * (e naming the first that is not) unless all are. */
static int snapshots_switched(snap_ctx *c, snap_online *ol, const snap_plan *q, size_t *switched,
                              es_err *e)
{
    *switched = 0;
    es_err first = {0};
    bool bad = false;
    for (size_t i = 0; i < ol->nactions; i++) {
        const snap_online_action *a = &ol->actions[i];
        if (a->kind != SNAP_ONLINE_SNAPSHOT)
            continue;
        char *host = NULL;
        qmp_file_location *l = NULL;
        size_t n = 0;
        if (snap_online_where(c, ol, q->overlays[a->item].path, &host, &l, &n, e) < 0)
            return -1;
        bool ok = n == 1 && l[0].depth == 0;
        if (ok) {
            qmp_chain ch;
            memset(&ch, 0, sizeof ch);
            ok = qmp_chain_query(ol->qmp, l[0].root_node, &ch, e) == 0 && ch.n >= 2 &&
                 ch.nodes[1].filename &&
                 snap_online_same_file(ch.nodes[1].filename, a->base, c->env->root);
            qmp_chain_free(&ch);
        }
        if (ok) {
            (*switched)++;
        } else if (!bad) {
            bad = true;
            es_err_set(&first, 0, host,
                       n == 0 ? "disk %s: QEMU does not have the new overlay open (the VM "
                                "still writes into %s)"
                              : "disk %s: QEMU has the new overlay open, but not as the active "
                                "layer over %s",
                       a->disk, a->base);
        }
        qmp_file_locations_free(l, n);
        free(host);
    }
    if (!bad)
        return 0;
    *e = first;
    return -1;
}

static int execute_snapshots(snap_ctx *c, snap_online *ol, const snap_plan *p, es_err *e)
{
    snap_journal j = {c->journal_path, c->journal_tmp};
    snap_plan *q = NULL;
    qmp_snapshot_spec *specs = es_xcalloc(ol->nactions + 1, sizeof *specs);
    char (*names)[32] = es_xcalloc(ol->nactions + 1, sizeof *names);
    size_t n = 0;
    int rc = -1;
    snap_derive d = {.overlays = true, .xml = !ol->libvirt_mode};
    if (snap_online_derive(p, &d, &q, e) < 0)
        goto out;
    if (snap_journal_write(&j, q, SNAP_PHASE_PREPARE, e) < 0) {
        es_err_prefix(e, "nothing was changed");
        goto out;
    }
    es_err u = {0};
    for (size_t i = 0; i < q->noverlays; i++) {
        if (make_overlay(c->env->root, &q->overlays[i], e) < 0) {
            if (snap_rollback(c->env->root, &j, q, &u) == 0)
                es_err_prefix(e, "nothing was changed");
            goto out;
        }
    }
    for (size_t i = 0; i < ol->nactions; i++) {
        const snap_online_action *a = &ol->actions[i];
        if (a->kind != SNAP_ONLINE_SNAPSHOT)
            continue;
        /* QEMU wants a name for the new node when the old one is given by
         * node name; node names are short (31 bytes): disk + file hash. */
        uint32_t h = 2166136261u;
        for (const char *q = a->overlay; *q; q++)
            h = (h ^ (uint8_t)*q) * 16777619u;
        snprintf(names[n], sizeof names[n], "es-%.16s-%08x", a->disk, (unsigned)h);
        for (char *q = names[n]; *q; q++)
            if (!isalnum((unsigned char)*q))
                *q = '-';
        specs[n] = (qmp_snapshot_spec){
            .node_name = a->node, .overlay_file = a->overlay, .format = "qcow2",
            .overlay_node_name = names[n], .reuse_existing = true,
        };
        n++;
    }
    /* Each overlay's bitmaps, added in the same transaction (libvirt's
     * propagation): from QEMU's state now, refused as when mapped. */
    json_object *bitmaps = json_object_new_array();
    for (size_t i = 0, k = 0; i < ol->nactions && k < n; i++) {
        const snap_online_action *a = &ol->actions[i];
        if (a->kind != SNAP_ONLINE_SNAPSHOT)
            continue;
        qmp_chain live;
        int lrc = qmp_chain_query(ol->qmp, a->node, &live, e);
        if (lrc == 0) {
            lrc = snap_online_bitmaps_refuse(&live, 0, 0, a->disk, e);
            if (lrc == 0 && live.n)
                snap_online_bitmaps_propagate(&live.nodes[0], names[k], bitmaps, NULL);
            qmp_chain_free(&live);
        }
        k++;
        if (lrc < 0) {
            json_object_put(bitmaps);
            if (snap_rollback(c->env->root, &j, q, &u) == 0)
                es_err_prefix(e, "nothing was changed");
            goto out;
        }
    }
    int trc = n ? qmp_snapshot_transaction(ol->qmp, specs, n, bitmaps, e) : 0;
    json_object_put(bitmaps);
    if (trc < 0) {
        if (snap_rollback(c->env->root, &j, q, &u) == 0)
            es_err_prefix(e, "nothing was changed");
        else
            es_err_prefix(e, "undoing failed; run '%s'", snap_ctx_recover_cmd(c));
        goto out;
    }
    /* QEMU's reply is not the proof: its graph must show every disk on its
     * new overlay, over the old image. None switched: undone as a failed
     * transaction. Only some: those are QEMU's now, the journal finishes. */
    size_t switched = 0;
    if (n && snapshots_switched(c, ol, q, &switched, e) < 0) {
        if (switched == 0 && snap_rollback(c->env->root, &j, q, &u) == 0)
            es_err_prefix(e, "QEMU's transaction reported success, but nothing changed in "
                             "QEMU; nothing was changed");
        else
            es_err_prefix(e, "QEMU's transaction reported success, but switched only %zu of "
                             "%zu disks; run '%s'",
                          switched, n, snap_ctx_recover_cmd(c));
        goto out;
    }
    /* QEMU writes into the overlays now: from here on only forward. */
    if (qmp_fault_point("transaction-done", e) < 0 ||
        snap_journal_write(&j, q, SNAP_PHASE_MERGE, e) < 0 ||
        snap_rollforward(c->env, &j, q, SNAP_PHASE_MERGE, e) < 0) {
        es_err_prefix(e, "the VM writes into the new overlays but the rest is not done; run "
                         "'%s' to finish it",
                      snap_ctx_recover_cmd(c));
        goto out;
    }
    rc = 0;
out:
    free(specs);
    free(names);
    snap_plan_free(q);
    return rc;
}

int snap_online_execute(snap_ctx *c, snap_online *ol, const snap_plan *p, es_err *e)
{
    bool snapshots = false;
    for (size_t i = 0; i < ol->nactions; i++)
        snapshots |= ol->actions[i].kind == SNAP_ONLINE_SNAPSHOT;
    int rc = snapshots ? execute_snapshots(c, ol, p, e) : execute_commits(c, ol, p, e);
    if (rc == 0 && ol->libvirt_mode)
        rc = snap_online_libvirt_pending(c, ol, p, e);
    return rc;
}
