#include "snap/ops/verify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qcow2/check.h"
#include "snap/graph/imggraph.h"
#include "snap/graph/required.h"
#include "snap/ops/current.h"
#include "snap/ops/inexact.h"
#include "snap/ops/vmstate.h"
#include "snap/ops/verify_props.h"
#include "util/fileio.h"
#include "util/fsutil.h"
#include "util/imglock.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

static int problem(snap_verify_report *r, es_err *e, const char *code, snap_severity sev,
                   const char *file, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int problem(snap_verify_report *r, es_err *e, const char *code, snap_severity sev,
                   const char *file, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = snap_verify_problemv(r, e, code, sev, file, fmt, ap);
    va_end(ap);
    return rc;
}

typedef struct vctx {
    snap_ctx *c;
    snap_graph g;
    snap_verify_report *r;
    bool *need;   /* per node: the domain needs it (and so its chain) */
    char **why;   /* per node: who needs it first (borrowed strings) */
} vctx;

static size_t node_of(vctx *v, const char *path)
{
    return snap_graph_find(&v->g, v->c->env->root, path);
}

static void need(vctx *v, const char *path, const char *why)
{
    size_t i = node_of(v, path);
    for (size_t steps = 0; i != SNAP_GNONE && steps <= v->g.n; steps++) {
        if (!v->need[i]) {
            v->need[i] = true;
            v->why[i] = (char *)why;
        }
        i = v->g.v[i].backing;
    }
}

static bool froze(const domxml_snapshot *s, const char *target)
{
    const domxml_snap_disk *sd =
        domxml_snap_disk_find(((domxml_snapshot *)s)->disks, s->ndisks, target);
    return sd && sd->snapshot != DOMXML_SNAPSHOT_NO && sd->snapshot != DOMXML_SNAPSHOT_MANUAL &&
           sd->source;
}

/* --- metadata ------------------------------------------------------------ */

static int check_pending(vctx *v, es_err *e)
{
    if (es_path_exists(v->c->journal_path))
        return problem(v->r, e, "pending-journal", SNAP_SEV_ERROR, v->c->journal_path,
                       "an interrupted extsnap operation is pending; run '%s'",
                       snap_ctx_recover_cmd(v->c));
    return 0;
}

/* Snapshots a cancelled online delete/commit left inexact (inexact.h). */
static int check_inexact(vctx *v, es_err *e)
{
    snap_inexact m;
    es_err why = {0};
    int rc = 0;
    if (snap_inexact_load(v->c, &m, &why) < 0) {
        char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX];
        rc = problem(v->r, e, "inexact-snapshot", SNAP_SEV_ERROR, m.path,
                     "cannot tell which snapshots' saved states are inexact: %s",
                     es_err_str(&why, buf, sizeof buf));
        snap_inexact_clear(&m);
        return rc;
    }
    for (size_t i = 0; i < m.n && rc == 0; i++) {
        const snap_inexact_entry *x = &m.v[i];
        if (!snap_inexact_valid(v->c, x))
            continue;
        char d[2048];
        snap_inexact_describe(x, d, sizeof d);
        rc = problem(v->r, e, "inexact-snapshot", SNAP_SEV_ERROR, m.path,
                     "snapshot %s's saved state is inexact: %s; run the same %s again to "
                     "finish it (revert and refresh to it are refused without --force)",
                     x->name, d, x->command ? x->command : "delete");
    }
    snap_inexact_clear(&m);
    return rc;
}

/* Metadata files as libvirt names them: <snapshot-dir>/<domain>/<entry>. */
static const char *entry_path(vctx *v, const char *entry, char *buf, size_t len)
{
    const char *base = strrchr(entry, '/');
    snprintf(buf, len, "%s/%s", v->c->domain_snap_dir, base ? base + 1 : entry);
    return buf;
}

static int check_metadata(vctx *v, es_err *e)
{
    const domxml_snapshot_list *l = v->c->snaps;
    char file[4096];
    for (size_t i = 0; i < l->nbad; i++)
        if (problem(v->r, e, "bad-metadata", SNAP_SEV_ERROR,
                    entry_path(v, l->bad_files[i], file, sizeof file),
                    "libvirt would not load it: %s", l->bad_errors[i]) < 0)
            return -1;
    size_t ncur = 0;
    char curnames[512] = "";
    for (size_t i = 0; i < l->n; i++) {
        const domxml_snapshot *s = l->snaps[i];
        entry_path(v, l->files[i], file, sizeof file);
        char want[1024];
        snprintf(want, sizeof want, "%s.xml", s->name);
        const char *base = strrchr(l->files[i], '/');
        base = base ? base + 1 : l->files[i];
        if (strcmp(base, want) != 0 &&
            problem(v->r, e, "metadata-tree", SNAP_SEV_ERROR, file,
                    "holds snapshot %s, but libvirt writes and deletes %s only", s->name,
                    want) < 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(l->snaps[j]->name, s->name) == 0 &&
                problem(v->r, e, "metadata-tree", SNAP_SEV_ERROR, file,
                        "a second snapshot named %s (libvirt drops one of them)", s->name) < 0)
                return -1;
        if (s->parent && !domxml_snapshot_list_find(l, s->parent) &&
            problem(v->r, e, "metadata-tree", SNAP_SEV_ERROR, file,
                    "snapshot %s's parent %s does not exist (libvirt then has no current "
                    "snapshot)",
                    s->name, s->parent) < 0)
            return -1;
        const domxml_snapshot *p = s;
        for (size_t steps = 0; p && p->parent; steps++) {
            if (steps > l->n) {
                if (problem(v->r, e, "metadata-tree", SNAP_SEV_ERROR, file,
                            "snapshot %s's parents loop", s->name) < 0)
                    return -1;
                break;
            }
            p = domxml_snapshot_list_find(l, p->parent);
        }
        if (s->current) {
            ncur++;
            size_t used = strlen(curnames);
            snprintf(curnames + used, sizeof curnames - used, "%s%s", used ? ", " : "",
                     s->name);
        }
        if (!s->domain &&
            problem(v->r, e, "no-saved-domain", SNAP_SEV_WARNING, file,
                    "snapshot %s has no saved domain definition (<domain>): it cannot be "
                    "reverted to, and its images are unknown",
                    s->name) < 0)
            return -1;
    }
    if (ncur > 1)
        return problem(v->r, e, "multiple-current", SNAP_SEV_ERROR, v->c->domain_snap_dir,
                       "%zu snapshots claim to be current (%s); libvirt picks one by directory "
                       "order",
                       ncur, curnames);
    if (ncur == 0 && l->n > 0)
        return problem(v->r, e, "no-current", SNAP_SEV_WARNING, v->c->domain_snap_dir,
                       "no snapshot is current (libvirt accepts it: after 'revert base' or "
                       "deleting a current root)");
    return 0;
}

/* --- images ------------------------------------------------------------- */

static void need_cb(const char *path, const char *who, void *arg)
{
    need(arg, path, who);
}

static void mark_needed(vctx *v)
{
    snap_required_files(v->c, need_cb, v);
}

static int who(vctx *v, size_t i, char *buf, size_t len)
{
    const char *w = v->why[i];
    if (!w)
        return snprintf(buf, len, "an image of the domain");
    if (strcmp(w, "the domain config") == 0)
        return snprintf(buf, len, "needed by the domain config");
    return snprintf(buf, len, "needed by snapshot %s", w);
}

/* The user of node i that names it as backing file, if any. */
static size_t user_of(const vctx *v, size_t i)
{
    for (size_t j = 0; j < v->g.n; j++)
        if (v->g.v[j].backing == i && v->need[j])
            return j;
    return SNAP_GNONE;
}

static int check_node_opens(vctx *v, size_t i, es_err *e)
{
    const snap_gnode *n = &v->g.v[i];
    char w[600];
    who(v, i, w, sizeof w);
    if (!n->exists) {
        size_t u = user_of(v, i);
        if (u != SNAP_GNONE)
            return problem(v->r, e, "missing-image", SNAP_SEV_ERROR, n->path,
                           "does not exist; it is the backing file of %s (%s)",
                           v->g.v[u].path, w);
        return problem(v->r, e, "missing-image", SNAP_SEV_ERROR, n->path, "does not exist (%s)",
                       w);
    }
    if (!n->format)
        return problem(v->r, e, "unreadable-image", SNAP_SEV_ERROR, n->path,
                       "cannot be opened (%s): %s", w, n->error ? n->error : "?");
    if (n->backing_name && n->backing == SNAP_GNONE)
        return problem(v->r, e, "broken-chain", SNAP_SEV_ERROR, n->path,
                       "its backing file '%s' cannot be followed (%s): %s", n->backing_name, w,
                       n->error ? n->error : "?");
    return 0;
}

static int check_qcow2(vctx *v, size_t i, es_err *e)
{
    const snap_gnode *n = &v->g.v[i];
    char *host = NULL;
    if (es_root_resolve(v->c->env->root, n->path, &host, e) < 0)
        return -1;
    /* An image a running VM writes cannot be checked consistently: said,
     * not counted as damage. */
    es_file *f = NULL;
    es_lock_holder h = {0};
    es_err lk = {0};
    bool busy = es_file_open(&f, host, O_RDONLY, 0, NULL) == 0 &&
                es_imglock_probe_read(f->fd, host, &h, &lk) < 0 && h.conflict;
    es_file_close(f);
    if (busy) {
        free(host);
        char who[ES_LOCK_HOLDER_CMDLINE_MAX + 64] = "another process";
        if (h.pid)
            snprintf(who, sizeof who, "process %ld (%s)", (long)h.pid,
                     h.cmdline[0] ? h.cmdline : "?");
        return problem(v->r, e, "image-in-use", SNAP_SEV_WARNING, n->path,
                       "not checked: %s writes it (a running VM?); check it once that has "
                       "stopped",
                       who);
    }
    qcow2_check_result res;
    memset(&res, 0, sizeof res);
    es_err why = {0};
    /* Progress: phase "check" of the domain, per image. */
    int rc = qcow2_check_pass_progress(host, 0, NULL, &v->c->env->progress, v->c->name, n->path,
                                       &res, &why);
    free(host);
    v->r->nimages++;
    if (rc < 0) {
        char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
        return problem(v->r, e, "check-failed", SNAP_SEV_ERROR, n->path,
                       "the image check could not complete: %s",
                       es_err_str(&why, buf, sizeof buf));
    }
    /* The hints' commands reach the image as this run did (its --root). */
    const char *root = v->c->env->root && v->c->env->root[0] ? v->c->env->root : NULL;
    if (res.corruptions > 0 &&
        problem(v->r, e, "corrupt-image", SNAP_SEV_ERROR, n->path,
                "%lld corruption(s) in the image's metadata (see 'extsnap img check%s%s %s')",
                (long long)res.corruptions, root ? " --root " : "", root ? root : "",
                n->path) < 0)
        return -1;
    if (res.check_errors > 0 &&
        problem(v->r, e, "check-failed", SNAP_SEV_ERROR, n->path,
                "%lld internal error(s) while checking the image", (long long)res.check_errors) <
            0)
        return -1;
    if (res.leaks > 0 &&
        problem(v->r, e, "leaked-clusters", SNAP_SEV_WARNING, n->path,
                "%lld leaked cluster(s): space lost, no data harmed ('extsnap img check -r "
                "leaks%s%s %s' frees them)",
                (long long)res.leaks, root ? " --root " : "", root ? root : "", n->path) < 0)
        return -1;
    return 0;
}

static int check_images(vctx *v, es_err *e)
{
    mark_needed(v);
    for (size_t i = 0; i < v->g.n; i++) {
        const snap_gnode *n = &v->g.v[i];
        if (v->need[i] && check_node_opens(v, i, e) < 0)
            return -1;
        if (n->named && n->exists && n->regular && n->format && strcmp(n->format, "qcow2") == 0 &&
            check_qcow2(v, i, e) < 0)
            return -1;
        if (n->scanned && !n->named && !n->foreign) {
            const char *b = n->backing != SNAP_GNONE ? v->g.v[n->backing].path : NULL;
            if (problem(v->r, e, "unreferenced-image", SNAP_SEV_WARNING, n->path,
                        "a qcow2 image in the domain's directory that neither the domain's "
                        "files nor another domain name%s%s%s (reported, not deleted)",
                        b ? "; it uses " : "", b ? b : "", b ? " as backing file" : "") < 0)
                return -1;
        }
    }
    return 0;
}

/* --- the tree ------------------------------------------------------------ */

static int check_overlay(vctx *v, const domxml_snapshot *s, const domxml_snap_disk *sd,
                         size_t frozen, const char *fsrc, const char *list, es_err *e)
{
    size_t o = node_of(v, sd->source);
    if (o == SNAP_GNONE || !v->g.v[o].exists || !v->g.v[o].format)
        return 0; /* a discarded overlay, or reported as missing */
    if (v->g.v[o].backing == frozen && frozen != SNAP_GNONE)
        return 0;
    const char *bn = v->g.v[o].backing_name;
    return problem(v->r, e, "wrong-backing", SNAP_SEV_ERROR, sd->source,
                   "snapshot %s's overlay of disk %s (%s) has %s%s%s as backing file, but the "
                   "snapshot froze %s",
                   s->name, sd->name, list, bn ? "'" : "", bn ? bn : "none", bn ? "'" : "",
                   fsrc);
}

static int check_snapshot(vctx *v, const domxml_snapshot *s, es_err *e)
{
    const domxml_snapshot_list *l = v->c->snaps;
    const domxml_snapshot *p = s->parent ? domxml_snapshot_list_find(l, s->parent) : NULL;
    for (size_t i = 0; i < s->ndisks; i++) {
        const domxml_snap_disk *sd = &s->disks[i];
        if (sd->delete_in_progress &&
            problem(v->r, e, "delete-in-progress", SNAP_SEV_ERROR, sd->source,
                    "snapshot %s's disk %s is marked <snapshotDeleteInProgress/>: a libvirt "
                    "delete did not complete",
                    s->name, sd->name) < 0)
            return -1;
        if (!froze(s, sd->name) || !s->domain)
            continue;
        const domxml_disk *k = domxml_domain_disk(s->domain, sd->name);
        if (!k || !k->source) {
            if (problem(v->r, e, "metadata-tree", SNAP_SEV_ERROR, sd->source,
                        "snapshot %s has an overlay for disk %s but its saved definition has no "
                        "image for that disk",
                        s->name, sd->name) < 0)
                return -1;
            continue;
        }
        size_t f = node_of(v, k->source);
        if (check_overlay(v, s, sd, f, k->source, "<disks>", e) < 0)
            return -1;
        const domxml_snap_disk *rd =
            domxml_snap_disk_find(((domxml_snapshot *)s)->revert_disks, s->nrevert_disks,
                                  sd->name);
        if (rd && rd->source && check_overlay(v, s, rd, f, k->source, "<revertDisks>", e) < 0)
            return -1;
        if (!p || !p->domain || !froze(p, sd->name))
            continue;
        const domxml_disk *pk = domxml_domain_disk(p->domain, sd->name);
        size_t pf = pk ? node_of(v, pk->source) : SNAP_GNONE;
        if (f == SNAP_GNONE || pf == SNAP_GNONE || !v->g.v[f].exists)
            continue;
        if (f == pf || !snap_graph_chain_has(&v->g, f, pf))
            if (problem(v->r, e, "tree-mismatch", SNAP_SEV_ERROR, k->source,
                        "snapshot %s's image of disk %s does not lie above its parent %s's "
                        "(%s)",
                        s->name, sd->name, p->name, pk->source) < 0)
                return -1;
    }
    return 0;
}

/* A copy of VM state s records (snap/ops/vmstate.h) is there. */
static int check_vmstate_copy(vctx *v, const domxml_snapshot *s, const char *copy, bool dir,
                              es_err *e)
{
    if (!copy)
        return 0;
    char *host = NULL;
    if (es_root_resolve(v->c->env->root, copy, &host, e) < 0)
        return -1;
    struct stat st;
    bool ok = es_fs_stat(host, &st) == 0 && (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
    free(host);
    if (ok)
        return 0;
    return problem(v->r, e, "missing-vm-state", SNAP_SEV_ERROR, copy,
                   "snapshot %s's saved %s is missing or not a %s: a revert to it would be "
                   "refused",
                   s->name, dir ? "vTPM state" : "NVRAM", dir ? "directory" : "regular file");
}

static int check_vmstate(vctx *v, const domxml_snapshot *s, es_err *e)
{
    const char *nvram, *tpm;
    snap_vmstate_copies(s, &nvram, &tpm);
    if (check_vmstate_copy(v, s, nvram, false, e) < 0)
        return -1;
    return check_vmstate_copy(v, s, tpm, true, e);
}

static int check_config(vctx *v, es_err *e)
{
    const domxml_snapshot *cur = domxml_snapshot_list_current(v->c->snaps);
    if (!cur)
        return 0;
    for (size_t i = 0; i < v->c->config->ndisks; i++) {
        const domxml_disk *k = &v->c->config->disks[i];
        if (!k->source || !froze(cur, k->target_dev))
            continue;
        const domxml_snap_disk *live = domxml_snap_disk_find(
            ((domxml_snapshot *)cur)->revert_disks, cur->nrevert_disks, k->target_dev);
        if (!live || !live->source)
            live = domxml_snap_disk_find(((domxml_snapshot *)cur)->disks, cur->ndisks,
                                         k->target_dev);
        size_t top = node_of(v, k->source), want = node_of(v, live->source);
        if (top == SNAP_GNONE || !v->g.v[top].exists || want == SNAP_GNONE)
            continue; /* reported as missing */
        if (!snap_graph_chain_has(&v->g, top, want)) {
            if (problem(v->r, e, "config-off-current", SNAP_SEV_ERROR, k->source,
                        "the config's disk %s is %s, which is neither the current snapshot "
                        "%s's live overlay %s nor above it",
                        k->target_dev, k->source, cur->name, live->source) < 0)
                return -1;
            continue;
        }
        /* Above the live overlay, but through (or on) another snapshot's
         * frozen image: the marker sits on an ancestor of the real state,
         * and a revert by libvirt >= 9.7 would delete that frozen image. */
        es_err why = {0};
        if (snap_current_disk_check(v->c, cur, k, &why) < 0 &&
            problem(v->r, e, "current-misplaced", SNAP_SEV_ERROR, k->source, "%s", why.msg) < 0)
            return -1;
    }
    return 0;
}

int snap_verify(snap_ctx *c, snap_verify_report *r, es_err *e)
{
    memset(r, 0, sizeof *r);
    vctx v = {.c = c, .r = r};
    r->nsnapshots = c->snaps->n;
    int rc = -1;
    if (check_pending(&v, e) < 0 || check_metadata(&v, e) < 0 || check_inexact(&v, e) < 0 ||
        snap_graph_build(c, &v.g, e) < 0)
        goto out;
    v.need = es_xcalloc(v.g.n + 1, sizeof *v.need);
    v.why = es_xcalloc(v.g.n + 1, sizeof *v.why);
    if (check_images(&v, e) < 0)
        goto out;
    for (size_t i = 0; i < c->snaps->n; i++)
        if (check_snapshot(&v, c->snaps->snaps[i], e) < 0 ||
            check_vmstate(&v, c->snaps->snaps[i], e) < 0)
            goto out;
    if (check_config(&v, e) < 0 || snap_verify_image_props(c, &v.g, r, e) < 0)
        goto out;
    rc = 0;
out:
    free(v.need);
    free(v.why);
    snap_graph_free(&v.g);
    return rc;
}
