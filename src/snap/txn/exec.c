#include "snap/txn/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow2/bitmap_inherit.h"
#include "qcow2/create.h"
#include "qcow2/rebase.h"
#include "snap/txn/merge.h"
#include "snap/txn/plan_check.h"
#include "snap/txn/xmlfile.h"
#include "util/filecopy.h"
#include "util/filetree.h"
#include "util/fileio.h"
#include "util/fsutil.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

/* One merge through env's engine (snap_env.merge); pr (may be NULL) is told
 * how far it got. */
static int merge_one(const snap_env *env, const snap_merge *m, const es_progress_sink *pr,
                     es_err *e)
{
    if (!env->merge)
        return es_err_set(e, ENOTSUP, m->top, "no merge engine is available in this extsnap");
    if (env->merge(env->root, m, pr, e) < 0)
        return es_err_prefix(e, "merging disk %s into %s", m->disk, m->base);
    return 0;
}

/* Owner and mode of the image below, so the VM can use the new file as it
 * used the old one. chown is best effort for an unprivileged user. */
static int apply_owner(const snap_overlay *o, const char *host, es_err *e)
{
    es_err oe;
    if (o->uid >= 0 && es_fs_chown(host, (uid_t)o->uid, (gid_t)o->gid, &oe) < 0 &&
        oe.errnum != EPERM)
        return es_err_set(e, oe.errnum, host, "cannot set the owner of the new overlay");
    if (o->mode >= 0 && es_fs_chmod(host, (mode_t)o->mode, &oe) < 0)
        return es_err_set(e, oe.errnum, host, "cannot set the mode of the new overlay");
    return 0;
}

/* The new overlay carries on the incremental-backup bitmaps of the image
 * it covers (qcow2/bitmap_inherit.h). */
static int inherit_bitmaps(const char *root, const char *path, es_err *e)
{
    es_open_opts oo = {.writable = true, .format = "qcow2", .root = root};
    es_image *img = NULL;
    if (es_image_open(&img, path, &oo, e) < 0)
        return -1;
    int r = qcow2_bitmaps_inherit(img, e);
    es_image_close(img);
    return r;
}

static int create_overlay(const char *root, const snap_overlay *o, bool *made, es_err *e)
{
    *made = false;
    char *host = NULL;
    if (es_root_resolve(root, o->path, &host, e) < 0)
        return -1;
    qcow2_create_opts opts;
    qcow2_create_opts_init(&opts);
    opts.backing_file = o->backing;
    opts.backing_format = o->backing_format;
    opts.root = root;
    int r = qcow2_create(host, &opts, e);
    if (r < 0) {
        /* An existing non-empty file is someone else's: never undo it. qcow2_create
         * removed whatever it made itself. */
        free(host);
        return es_err_prefix(e, "creating the overlay of disk %s", o->disk);
    }
    *made = true;
    r = inherit_bitmaps(root, o->path, e);
    if (r < 0)
        es_err_prefix(e, "creating the overlay of disk %s", o->disk);
    if (r == 0)
        r = apply_owner(o, host, e);
    free(host);
    return r;
}

/* Undo one overlay: remove it, or empty it again when an empty file was
 * there before (libvirt's pre-created files). */
static int remove_overlay(const char *root, const snap_overlay *o, es_err *e)
{
    char *host = NULL;
    if (es_root_resolve(root, o->path, &host, e) < 0)
        return -1;
    int r = 0;
    if (es_path_exists(host)) {
        if (o->existed_empty) {
            es_file *f = NULL;
            r = es_file_open(&f, host, O_RDWR, 0, e);
            if (r == 0) {
                r = es_file_truncate(f, 0, e);
                if (r == 0)
                    r = es_file_flush(f, e);
                es_file_close(f);
            }
        } else {
            r = es_fs_unlink(host, e);
            if (r == 0)
                r = es_fsync_parent(host, e);
        }
    }
    free(host);
    return r;
}

static int rebase_one(const char *root, const snap_rebase *b, bool forward, es_err *e)
{
    char *host = NULL;
    if (es_root_resolve(root, b->path, &host, e) < 0)
        return -1;
    int r = forward ? qcow2_rebase_unsafe(host, b->backing, b->backing_format, e)
                    : qcow2_rebase_restore(host, b->old_backing, b->old_backing_format, e);
    free(host);
    return r;
}

/* The temporary names of a vm-state copy: beside it, hidden (kind: "tmp",
 * the copy being made; "old", a directory being replaced). */
static int vmcopy_tmp(const char *host, const char *kind, char **tmp, es_err *e)
{
    const char *slash = strrchr(host, '/');
    size_t dl = slash ? (size_t)(slash - host) + 1 : 0;
    return es_asprintf(tmp, e, "%.*s.%s.extsnap-%s", (int)dl, host, host + dl, kind);
}

static bool vmcopy_is_tree(const snap_vmcopy *v)
{
    return strcmp(v->what, "tpm") == 0;
}

/* Copy one vm-state file (forward), or remove a saved copy again (back;
 * a restore is never undone: it runs after the commit point). */
static int vmcopy_one(const char *root, const snap_vmcopy *v, bool forward, es_err *e)
{
    char *from = NULL, *to = NULL, *tmp = NULL, *old = NULL;
    bool tree = vmcopy_is_tree(v);
    int r = -1;
    if (es_root_resolve(root, v->from, &from, e) < 0 || es_root_resolve(root, v->to, &to, e) < 0 ||
        vmcopy_tmp(to, "tmp", &tmp, e) < 0 || vmcopy_tmp(to, "old", &old, e) < 0)
        goto out;
    if (forward) {
        r = tree ? es_copy_tree_replace(from, to, tmp, old, e)
                 : es_copy_file_replace(from, to, tmp, e);
        if (r < 0)
            es_err_prefix(e, "%s the %s", v->restore ? "restoring" : "saving", v->what);
    } else if (tree) {
        /* A restore is never undone; a saved copy is removed whole. */
        r = es_remove_tree(tmp, e);
        if (r == 0 && !v->restore)
            r = es_remove_tree(to, e);
    } else {
        r = es_unlink_if_exists(tmp, e);
        if (r == 0 && !v->restore && es_path_exists(to) && (r = es_fs_unlink(to, e)) == 0)
            r = es_fsync_parent(to, e);
    }
out:
    free(from);
    free(to);
    free(tmp);
    free(old);
    return r;
}

static int vmcopies_all(const char *root, const snap_plan *p, bool restore, es_err *e)
{
    for (size_t i = 0; i < p->nvmcopies; i++)
        if (p->vmcopies[i].restore == restore && vmcopy_one(root, &p->vmcopies[i], true, e) < 0)
            return -1;
    return 0;
}

static int xml_all(const char *root, const snap_plan *p, bool forward, es_err *e)
{
    for (size_t i = 0; i < p->nxml; i++)
        if (snap_xml_put(root, &p->xml[i], forward, e) < 0)
            return -1;
    return 0;
}

static int deletes_all(const char *root, const snap_plan *p, es_err *e)
{
    for (size_t i = 0; i < p->ndeletes; i++) {
        char *host = NULL;
        if (es_root_resolve(root, p->deletes[i].path, &host, e) < 0)
            return -1;
        int r = 0;
        if (es_is_dir(host)) { /* a saved vTPM state */
            r = es_remove_tree(host, e);
        } else if (es_path_exists(host)) {
            r = es_fs_unlink(host, e);
            if (r == 0)
                r = es_fsync_parent(host, e);
        }
        free(host);
        if (r < 0)
            return es_err_prefix(e, "cannot delete a discarded file");
    }
    return 0;
}

/* Keep the first error, go on undoing the rest. */
static void keep_first(int r, es_err *first, bool *failed, const es_err *cur)
{
    if (r < 0 && !*failed) {
        *failed = true;
        *first = *cur;
    }
}

/* Undo: XML files back (config first, the reverse of writing), backing
 * pointers back, overlays removed. made[i] (NULL: all) says which overlays
 * this process created; recovery removes every one that exists. */
static int undo(const char *root, const snap_journal *j, const snap_plan *p, const bool *made,
                es_err *e)
{
    es_err cur = {0}, first = {0};
    bool failed = false;
    for (size_t i = p->nxml; i-- > 0;)
        keep_first(snap_xml_put(root, &p->xml[i], false, &cur), &first, &failed, &cur);
    for (size_t i = p->nrebases; i-- > 0;)
        keep_first(rebase_one(root, &p->rebases[i], false, &cur), &first, &failed, &cur);
    for (size_t i = p->nvmcopies; i-- > 0;)
        keep_first(vmcopy_one(root, &p->vmcopies[i], false, &cur), &first, &failed, &cur);
    for (size_t i = p->noverlays; i-- > 0;)
        if (!made || made[i])
            keep_first(remove_overlay(root, &p->overlays[i], &cur), &first, &failed, &cur);
    if (!failed && p->snapshot_dir_created) {
        char *host = NULL;
        if (es_root_resolve(root, p->snapshot_dir_created, &host, &cur) == 0) {
            int r = es_fs_rmdir(host, &cur);
            if (r == 0)
                keep_first(es_fsync_parent(host, &cur), &first, &failed, &cur);
            /* not empty (someone else's file) or already gone: leave it */
            else if (cur.errnum != ENOTEMPTY && cur.errnum != EEXIST && cur.errnum != ENOENT)
                keep_first(r, &first, &failed, &cur);
        }
        free(host);
    }
    if (!failed)
        keep_first(snap_journal_remove(j, &cur), &first, &failed, &cur);
    if (failed) {
        if (e)
            *e = first;
        return -1;
    }
    return 0;
}

int snap_rollback(const char *root, const snap_journal *j, const snap_plan *p, es_err *e)
{
    return undo(root, j, p, NULL, e);
}

/* From the merge phase on: merges, rebases, XML, commit point, then the
 * clean-up. Everything is idempotent, so recovery simply runs it again. */
static int forward_from_merge(const snap_env *env, const snap_journal *j, const snap_plan *p,
                              const es_progress_sink *pr, es_err *e)
{
    const char *root = env->root;
    for (size_t i = 0; i < p->nmerges; i++)
        if (merge_one(env, &p->merges[i], pr, e) < 0)
            return -1;
    for (size_t i = 0; i < p->nrebases; i++)
        if (rebase_one(root, &p->rebases[i], true, e) < 0)
            return -1;
    if (xml_all(root, p, true, e) < 0)
        return -1;
    return snap_journal_write(j, p, SNAP_PHASE_COMMITTED, e);
}

static int finish_committed(const char *root, const snap_journal *j, const snap_plan *p,
                            es_err *e)
{
    if (vmcopies_all(root, p, true, e) < 0 || deletes_all(root, p, e) < 0)
        return -1;
    return snap_journal_remove(j, e);
}

int snap_rollforward(const snap_env *env, const snap_journal *j, const snap_plan *p,
                     snap_phase phase, es_err *e)
{
    const char *root = env->root;
    if (phase == SNAP_PHASE_PREPARE)
        return es_err_set(e, EINVAL, j->path, "internal error: a prepared plan rolls back");
    if (phase == SNAP_PHASE_MERGE && forward_from_merge(env, j, p, NULL, e) < 0)
        return -1;
    return finish_committed(root, j, p, e);
}

/* A failure before the commit point: undo, and say what happened. */
static int fail_and_undo(const snap_ctx *c, const snap_journal *j, const snap_plan *p,
                         const bool *made, es_err *e)
{
    es_err u = {0};
    if (undo(c->env->root, j, p, made, &u) == 0)
        return es_err_prefix(e, "nothing was changed");
    char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX];
    snap_ctx_note(c, "undoing failed too: %s", es_err_str(&u, buf, sizeof buf));
    return es_err_prefix(e, "the operation is half done; run '%s' to undo it",
                         snap_ctx_recover_cmd(c));
}

static int fail_forward(const snap_ctx *c, es_err *e, bool committed)
{
    if (committed)
        return es_err_prefix(e, "the operation is done but its clean-up is not; run '%s' to "
                                "finish it",
                             snap_ctx_recover_cmd(c));
    return es_err_prefix(e, "the operation passed the point of no return; run '%s' to finish it",
                         snap_ctx_recover_cmd(c));
}

int snap_execute(snap_ctx *c, const snap_plan *p, es_err *e)
{
    const char *root = c->env->root;
    snap_journal j = {c->journal_path, c->journal_tmp};
    if (p->nmerges && !c->env->merge)
        return es_err_set(e, ENOTSUP, NULL, "this extsnap has no merge engine; nothing was changed");
    /* Whatever the steps below could refuse on, refused now, with no journal. */
    if (c->env->merge == snap_merge_qcow2 && snap_plan_check(c, p, e) < 0)
        return -1;
    bool *made = es_xcalloc(p->noverlays + 1, sizeof *made);
    int rc = -1;
    if (snap_journal_write(&j, p, SNAP_PHASE_PREPARE, e) < 0) {
        /* No journal: nothing else was done. */
        es_err_prefix(e, "nothing was changed");
        goto out;
    }
    for (size_t i = 0; i < p->noverlays; i++) {
        if (create_overlay(root, &p->overlays[i], &made[i], e) < 0) {
            fail_and_undo(c, &j, p, made, e);
            goto out;
        }
    }
    if (vmcopies_all(root, p, false, e) < 0) {
        fail_and_undo(c, &j, p, made, e);
        goto out;
    }
    if (p->nmerges) {
        if (snap_journal_write(&j, p, SNAP_PHASE_MERGE, e) < 0) {
            fail_and_undo(c, &j, p, made, e);
            goto out;
        }
        if (forward_from_merge(c->env, &j, p, &c->env->progress, e) < 0) {
            fail_forward(c, e, false);
            goto out;
        }
    } else {
        for (size_t i = 0; i < p->nrebases; i++) {
            if (rebase_one(root, &p->rebases[i], true, e) < 0) {
                fail_and_undo(c, &j, p, made, e);
                goto out;
            }
        }
        if (xml_all(root, p, true, e) < 0 || snap_journal_write(&j, p, SNAP_PHASE_COMMITTED, e) < 0) {
            fail_and_undo(c, &j, p, made, e);
            goto out;
        }
    }
    if (finish_committed(root, &j, p, e) < 0) {
        fail_forward(c, e, true);
        goto out;
    }
    rc = 0;
out:
    free(made);
    return rc;
}
