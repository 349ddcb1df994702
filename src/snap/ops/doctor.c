/* 'doctor DOMAIN': each chain the domain's files name goes through the
 * image doctor; the image graph (snap/graph/imggraph.h) says which chains
 * there are, which images nothing names and which another domain uses. */
#include "snap/ops/doctor.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/image.h"
#include "snap/graph/imggraph.h"
#include "snap/graph/required.h"
#include "util/str.h"
#include "util/fsutil.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

static int finding(snap_verify_report *r, es_err *e, const char *code, snap_severity sev,
                   const char *file, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int finding(snap_verify_report *r, es_err *e, const char *code, snap_severity sev,
                   const char *file, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = snap_verify_problemv(r, e, code, sev, file, fmt, ap);
    va_end(ap);
    return rc;
}

/* Leftovers of interrupted operations (what the next mutating command, or
 * recover, would take care of). */
static int leftovers(const snap_ctx *c, snap_verify_report *r, es_err *e)
{
    if (es_path_exists(c->journal_path) &&
        finding(r, e, "pending-journal", SNAP_SEV_ERROR, c->journal_path,
                "an interrupted extsnap operation is pending: recover (or doctor --fix, which "
                "recovers first) finishes or undoes it") < 0)
        return -1;
    if (es_path_exists(c->journal_tmp) &&
        finding(r, e, "leftover-journal-tmp", SNAP_SEV_WARNING, c->journal_tmp,
                "a journal that was being written when an operation stopped (it never "
                "started; the next command on the domain removes it)") < 0)
        return -1;
    char *pending = es_xasprintf("%s/%s.extsnap-pending", c->snapshot_dir_host, c->name);
    int rc = 0;
    if (es_path_exists(pending))
        rc = finding(r, e, "pending-libvirt-files", SNAP_SEV_WARNING, pending,
                     "libvirt's files as an operation on the running VM left them to be "
                     "loaded (the printed virsh commands); removed once libvirt's files say "
                     "the same");
    free(pending);
    return rc;
}

/* Which of the domain's files name path (a disk source), or NULL. */
static const char *named_by(const snap_ctx *c, const char *path)
{
    for (size_t i = 0; i < c->config->ndisks; i++)
        if (es_streq(c->config->disks[i].source, path))
            return "the domain config";
    for (size_t i = 0; c->snaps && i < c->snaps->n; i++) {
        const domxml_snapshot *s = c->snaps->snaps[i];
        for (size_t k = 0; s->domain && k < s->domain->ndisks; k++)
            if (es_streq(s->domain->disks[k].source, path))
                return s->name;
        for (size_t k = 0; k < s->nrevert_disks; k++)
            if (es_streq(s->revert_disks[k].source, path))
                return s->name;
        for (size_t k = 0; k < s->ndisks; k++)
            if (es_streq(s->disks[k].source, path))
                return s->name;
    }
    return NULL;
}

/* A missing backing file that libvirt's files name (a snapshot froze it)
 * must come back where they say: rebasing the overlay elsewhere would make
 * the header contradict the metadata. Such steps leave the plan. */
static void veto_named(const snap_ctx *c, qcow2_doctor_report *q)
{
    for (size_t i = 0; i < q->nfindings; i++) {
        qcow2_doctor_finding *f = &q->findings[i];
        if (f->kind != QCOW2_DOCTOR_MISSING_BACKING || f->plan_step < 0)
            continue;
        char *display = NULL, *open_path = NULL;
        es_err ignored;
        if (es_backing_resolve(f->image, f->backing, c->env->root, &display, &open_path,
                               &ignored) < 0)
            continue;
        const char *who = named_by(c, display);
        if (who) {
            const qcow2_doctor_step *s = &q->steps[f->plan_step];
            char *why = es_xasprintf(
                "by hand: move %s back to %s (%s%s names that path; doctor repairs image "
                "headers, not libvirt's files)",
                s->backing, display, strcmp(who, "the domain config") ? "snapshot " : "", who);
            qcow2_doctor_drop_step(q, (size_t)f->plan_step, why);
            free(why);
        }
        free(display);
        free(open_path);
    }
}

/* Does the host name exist under root? */
static bool exists_under(const char *root, const char *host)
{
    char *open_path = NULL;
    es_err ignored;
    bool yes = es_root_resolve(root, host, &open_path, &ignored) == 0 &&
               es_path_exists(open_path);
    free(open_path);
    return yes;
}

/* The nodes a root-prefixed name of the domain's files means: the file
 * without the prefix and its chain (not orphans: the name is what is
 * wrong). meant[i] is set for each. */
static void meant_by_prefixed(const snap_graph *g, const char *root, bool *meant)
{
    for (size_t j = 0; j < g->n; j++) {
        const char *host = g->v[j].named && !g->v[j].exists
                               ? es_root_strip_prefix(root, g->v[j].path) : NULL;
        size_t k = host ? snap_graph_find(g, root, host) : SNAP_GNONE;
        for (size_t steps = 0; k != SNAP_GNONE && steps <= g->n && !meant[k]; steps++) {
            meant[k] = true;
            k = g->v[k].backing;
        }
    }
}

/* Is node i the backing file of a node the domain names? */
static bool used_by_named(const snap_graph *g, size_t i)
{
    for (size_t j = 0; j < g->n; j++)
        if (g->v[j].named && g->v[j].backing == i)
            return true;
    return false;
}

static bool chosen_somewhere(const snap_doctor_report *r, const snap_graph *g, const char *root,
                             size_t node)
{
    for (size_t i = 0; i < r->nchains; i++) {
        const qcow2_doctor_report *q = &r->chains[i].rep;
        for (size_t f = 0; f < q->nfindings; f++)
            for (size_t k = 0; k < q->findings[f].ncandidates; k++)
                if (q->findings[f].candidates[k].chosen &&
                    snap_graph_find(g, root, q->findings[f].candidates[k].filename) == node)
                    return true;
    }
    return false;
}

static int diagnose_each(const snap_ctx *c, const snap_graph *g, const qcow2_doctor_opts *o,
                         snap_doctor_report *r, bool *shared, es_err *e);
static int diagnose_nodes(const snap_ctx *c, const snap_graph *g, const qcow2_doctor_opts *o,
                          snap_doctor_report *r, bool *shared, const bool *required, es_err *e);

/* The disk's image each snapshot recorded beneath the overlay it made: its
 * <domain> (the config from before it) names the image, its <disks> the
 * overlay. Evidence for a missing backing file (when both files exist). */
static qcow2_doctor_record *recorded(const snap_ctx *c, const snap_graph *g, size_t *n)
{
    const char *root = c->env->root;
    qcow2_doctor_record *v = NULL;
    *n = 0;
    for (size_t i = 0; c->snaps && i < c->snaps->n; i++) {
        const domxml_snapshot *s = c->snaps->snaps[i];
        for (size_t k = 0; s->domain && k < s->ndisks; k++) {
            const domxml_snap_disk *d = &s->disks[k];
            const char *below = NULL;
            for (size_t j = 0; d->source && j < s->domain->ndisks; j++)
                if (es_streq(s->domain->disks[j].target_dev, d->name))
                    below = s->domain->disks[j].source;
            if (!below)
                continue;
            size_t child = snap_graph_find(g, root, d->source);
            size_t back = snap_graph_find(g, root, below);
            if (child == SNAP_GNONE || back == SNAP_GNONE || !g->v[child].exists ||
                !g->v[back].exists)
                continue;
            v = es_xreallocarray(v, *n + 1, sizeof *v);
            v[*n] = (qcow2_doctor_record){
                .child_dev = g->v[child].dev, .child_ino = g->v[child].ino,
                .backing_dev = g->v[back].dev, .backing_ino = g->v[back].ino,
                .why = es_xasprintf("snapshot %s recorded it as disk %s's image beneath %s",
                                    s->name, d->name, d->source)};
            (*n)++;
        }
    }
    return v;
}

static int diagnose_chains(const snap_ctx *c, const snap_graph *g, const es_strv *search,
                           snap_doctor_report *r, bool *shared, es_err *e)
{
    const char *root = c->env->root;
    const es_strv *dirs = search->n ? search : &g->dirs;
    /* A disk's current image changes: it is never a backing file. */
    uint64_t *exclude = es_xcalloc(2 * c->config->ndisks + 1, sizeof *exclude);
    size_t nexclude = 0;
    for (size_t k = 0; k < c->config->ndisks; k++) {
        size_t node = snap_graph_find(g, root, c->config->disks[k].source);
        if (node != SNAP_GNONE && g->v[node].exists) {
            exclude[2 * nexclude] = g->v[node].dev;
            exclude[2 * nexclude + 1] = g->v[node].ino;
            nexclude++;
        }
    }
    qcow2_doctor_opts o = {.root = root, .search = (const char *const *)dirs->v,
                           .nsearch = dirs->n, .exclude = exclude, .nexclude = nexclude,
                           .exclude_why = "the current image of one of the domain's disks: it "
                                          "changes, a backing file must not"};
    size_t nrecords = 0;
    qcow2_doctor_record *records = recorded(c, g, &nrecords);
    o.records = records;
    o.nrecords = nrecords;
    int rc = diagnose_each(c, g, &o, r, shared, e);
    for (size_t i = 0; i < nrecords; i++)
        free((char *)records[i].why);
    free(records);
    free(exclude);
    return rc;
}

/* The nodes of the files the snapshot model needs (snap/graph/required.h). */
typedef struct required_marks {
    const snap_graph *g;
    const char *root;
    bool *required;
} required_marks;

static void mark_required(const char *path, const char *who, void *arg)
{
    (void)who;
    required_marks *m = arg;
    size_t k = path ? snap_graph_find(m->g, m->root, path) : SNAP_GNONE;
    if (k != SNAP_GNONE)
        m->required[k] = true;
}

static int diagnose_each(const snap_ctx *c, const snap_graph *g, const qcow2_doctor_opts *o,
                         snap_doctor_report *r, bool *shared, es_err *e)
{
    bool *required = es_xcalloc(g->n + 1, sizeof *required);
    snap_required_files(c, mark_required, &(required_marks){g, c->env->root, required});
    int rc = diagnose_nodes(c, g, o, r, shared, required, e);
    free(required);
    return rc;
}

static int diagnose_nodes(const snap_ctx *c, const snap_graph *g, const qcow2_doctor_opts *o,
                          snap_doctor_report *r, bool *shared, const bool *required, es_err *e)
{
    for (size_t i = 0; i < g->n; i++) {
        const snap_gnode *n = &g->v[i];
        if (!n->named || used_by_named(g, i))
            continue;
        const char *host = n->exists ? NULL : es_root_strip_prefix(c->env->root, n->path);
        if (host && exists_under(c->env->root, host)) {
            const char *who = named_by(c, n->path);
            if (finding(&r->domain, e, "root-prefixed-name", SNAP_SEV_ERROR, n->path,
                        "%s%s names it with the --root directory in it (written from the "
                        "rescue system): on the host it names nothing; the file is %s. By hand: "
                        "name %s there (doctor repairs image headers, not libvirt's files)",
                        who && strcmp(who, "the domain config") ? "snapshot " : "",
                        who ? who : "the domain's files", host, host) < 0)
                return -1;
            continue;
        }
        if (!n->exists && !required[i])
            continue; /* an overlay a revert or a merge rightly removed */
        if (!n->exists) {
            if (finding(&r->domain, e, "missing-image", SNAP_SEV_ERROR, n->path,
                        "does not exist, and the domain's files name it (doctor repairs image "
                        "headers, not libvirt's files)") < 0)
                return -1;
            continue;
        }
        if (!n->regular)
            continue; /* a block device: no backing name of ours to repair */
        r->chains = es_xreallocarray(r->chains, r->nchains + 1, sizeof *r->chains);
        snap_doctor_chain *ch = &r->chains[r->nchains];
        memset(ch, 0, sizeof *ch);
        ch->top = es_xstrdup(n->path);
        if (qcow2_doctor_diagnose(n->path, o, &ch->rep, e) < 0) {
            free(ch->top);
            return -1;
        }
        r->nchains++;
        veto_named(c, &ch->rep);
        for (size_t k = i, steps = 0; k != SNAP_GNONE && steps <= g->n;
             k = g->v[k].backing, steps++) {
            if (!g->v[k].foreign || shared[k])
                continue;
            shared[k] = true;
            if (finding(&r->domain, e, "shared-image", SNAP_SEV_WARNING, g->v[k].path,
                        "in the chain of %s, and also used by domain %s: a merge or repair "
                        "through one domain changes what the other reads",
                        n->path, g->v[k].foreign_domain ? g->v[k].foreign_domain : "?") < 0)
                return -1;
        }
    }
    return 0;
}

static int orphans(const snap_ctx *c, const snap_graph *g, snap_doctor_report *r, es_err *e)
{
    bool *meant = es_xcalloc(g->n + 1, sizeof *meant);
    meant_by_prefixed(g, c->env->root, meant);
    for (size_t i = 0; i < g->n; i++) {
        const snap_gnode *n = &g->v[i];
        if (!n->scanned || n->named || n->foreign || chosen_somewhere(r, g, c->env->root, i) ||
            meant[i])
            continue;
        const char *b = n->backing != SNAP_GNONE ? g->v[n->backing].path : NULL;
        if (finding(&r->domain, e, "unreferenced-image", SNAP_SEV_WARNING, n->path,
                    "an image in the domain's directories that no domain's files name and no "
                    "chain uses%s%s%s (reported, not deleted)",
                    b ? "; it uses " : "", b ? b : "", b ? " as backing file" : "") < 0) {
            free(meant);
            return -1;
        }
    }
    free(meant);
    return 0;
}

int snap_doctor(const snap_ctx *c, const es_strv *search, snap_doctor_report *r, es_err *e)
{
    memset(r, 0, sizeof *r);
    snap_graph g = {0};
    if (leftovers(c, &r->domain, e) < 0 || snap_graph_build(c, &g, e) < 0)
        goto fail;
    bool *shared = es_xcalloc(g.n + 1, sizeof *shared);
    int rc = diagnose_chains(c, &g, search, r, shared, e);
    free(shared);
    if (rc < 0 || orphans(c, &g, r, e) < 0)
        goto fail;
    snap_graph_free(&g);
    for (size_t i = 0; i < r->domain.n; i++) {
        if (r->domain.v[i].severity == SNAP_SEV_ERROR) {
            r->errors++;
            r->unrepaired++;
        } else {
            r->warnings++;
        }
    }
    for (size_t i = 0; i < r->nchains; i++) {
        r->errors += r->chains[i].rep.errors;
        r->warnings += r->chains[i].rep.warnings;
        r->unrepaired += r->chains[i].rep.unrepaired_errors;
    }
    return 0;
fail:
    snap_graph_free(&g);
    snap_doctor_report_free(r);
    return -1;
}

int snap_doctor_plan(const snap_ctx *c, const snap_doctor_report *r, snap_plan **out, es_err *e)
{
    snap_plan *p = NULL;
    if (snap_plan_new("doctor", c->name, &p, e) < 0)
        return -1;
    es_strv seen = {0};
    int rc = 0;
    for (size_t i = 0; i < r->nchains && rc == 0; i++) {
        const qcow2_doctor_report *q = &r->chains[i].rep;
        for (size_t k = 0; k < q->nsteps && rc == 0; k++) {
            const qcow2_doctor_step *s = &q->steps[k];
            if (es_strv_has(&seen, s->image))
                continue;
            snap_rebase rb = {.path = s->image, .backing = s->backing,
                              .backing_format = s->format, .old_backing = s->old_backing,
                              .old_backing_format = s->old_format};
            rc = es_strv_add(&seen, s->image, e);
            if (rc == 0)
                rc = snap_plan_add_rebase(p, &rb, e);
        }
    }
    es_strv_free(&seen);
    if (rc == 0)
        rc = es_asprintf(&p->summary, e, "repair the backing chains of domain %s (%zu image%s)",
                         c->name, p->nrebases, p->nrebases == 1 ? "" : "s");
    if (rc < 0) {
        snap_plan_free(p);
        return -1;
    }
    *out = p;
    return 0;
}

void snap_doctor_report_free(snap_doctor_report *r)
{
    for (size_t i = 0; i < r->nchains; i++) {
        free(r->chains[i].top);
        qcow2_doctor_report_free(&r->chains[i].rep);
    }
    free(r->chains);
    snap_verify_report_free(&r->domain);
    memset(r, 0, sizeof *r);
}
