#include "snap/graph/discard.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snap/graph/chain.h"
#include "snap/graph/refs.h"
#include "util/xalloc.h"

/* The files still needed once the plan is done. */
static int needed_files(snap_ctx *c, const snap_discard_input *d, snap_fileset *need, es_err *e)
{
    const char *root = c->env->root;
    if (snap_fileset_add_domain(need, root, d->new_config, e) < 0)
        return -1;
    for (size_t i = 0; i < d->snaps->n; i++) {
        const domxml_snapshot *s = d->snaps->snaps[i];
        bool skip = s == d->old_current && d->old_current_live_in_disks;
        if (snap_fileset_add_snapshot(need, root, s, skip, e) < 0)
            return -1;
    }
    return 0;
}

/* Candidates of one chain, top first: the images above the first needed
 * one; none when the chain never reaches a needed image. */
static int chain_candidates(snap_ctx *c, const char *top, const char *format,
                            const snap_fileset *need, es_strv *out, es_err *e)
{
    snap_chain ch;
    if (snap_chain_walk(c->env->root, top, format, &ch, e) < 0)
        return -1;
    size_t k = 0;
    while (k < ch.n && !snap_fileset_has(need, ch.v[k].dev, ch.v[k].ino))
        k++;
    int rc = 0;
    if (k < ch.n) /* reached a needed image: everything above it goes */
        for (size_t i = 0; i < k && rc == 0; i++)
            rc = es_strv_add(out, ch.v[i].filename, e);
    snap_chain_free(&ch);
    return rc;
}

typedef struct {
    es_strv *chains; /* candidates per chain */
    size_t n;
} chain_list;

static int add_chain(snap_ctx *c, chain_list *cl, const char *top, const char *format,
                     const snap_fileset *need, es_err *e)
{
    es_strv *v = es_xreallocarray(cl->chains, cl->n + 1, sizeof *v);
    cl->chains = v;
    memset(&v[cl->n], 0, sizeof v[cl->n]);
    cl->n++;
    return chain_candidates(c, top, format, need, &v[cl->n - 1], e);
}

int snap_plan_discards(snap_ctx *c, const snap_discard_input *d, const char *reason,
                       snap_plan *p, es_err *e)
{
    const char *root = c->env->root;
    snap_fileset need = {0}, doomed = {0};
    chain_list cl = {0};
    es_strv all = {0};
    int rc = -1;
    if (needed_files(c, d, &need, e) < 0)
        goto out;
    for (size_t i = 0; i < d->old_config->ndisks; i++) {
        const domxml_disk *k = &d->old_config->disks[i];
        if (k->type == DOMXML_STORAGE_FILE && k->source &&
            add_chain(c, &cl, k->source, k->driver_type, &need, e) < 0)
            goto out;
    }
    for (size_t i = 0; d->live && i < d->live->n; i++)
        if (add_chain(c, &cl, d->live->v[i], NULL, &need, e) < 0)
            goto out;
    for (size_t i = 0; i < cl.n; i++)
        for (size_t j = 0; j < cl.chains[i].n; j++)
            if (!es_strv_has(&all, cl.chains[i].v[j]) &&
                es_strv_add(&all, cl.chains[i].v[j], e) < 0)
                goto out;
    /* An image outside the plan that uses a candidate as backing file keeps
     * it, and everything below it. */
    for (size_t i = 0; i < cl.n; i++) {
        es_strv *ch = &cl.chains[i];
        for (size_t j = 0; j < ch->n; j++) {
            es_strv users = {0};
            if (snap_find_dependents(root, ch->v[j], &all, &users, e) < 0)
                goto out;
            if (users.n) {
                for (size_t k = j; k < ch->n; k++) {
                    if (es_strv_addf(&p->notes, e, "kept %s: %s uses it as backing file",
                                       ch->v[k], users.v[0]) < 0) {
                        es_strv_free(&users);
                        goto out;
                    }
                    free(ch->v[k]);
                }
                ch->n = j;
            }
            es_strv_free(&users);
        }
    }
    for (size_t i = 0; i < cl.n; i++) {
        for (size_t j = 0; j < cl.chains[i].n; j++) {
            const char *path = cl.chains[i].v[j];
            if (snap_fileset_has_path(&doomed, root, path))
                continue;
            if (snap_fileset_add_file(&doomed, root, path, e) < 0 ||
                snap_plan_add_delete(p, path, reason, e) < 0)
                goto out;
        }
    }
    rc = 0;
out:
    snap_fileset_free(&need);
    snap_fileset_free(&doomed);
    for (size_t i = 0; i < cl.n; i++)
        es_strv_free(&cl.chains[i]);
    free(cl.chains);
    es_strv_free(&all);
    return rc;
}
