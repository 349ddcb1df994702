#include "online/online_bitmaps.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmp/qmp_bitmap.h"
#include "qmp/qmp_fault.h"
#include "util/xalloc.h"

int snap_online_bitmaps_refuse(const qmp_chain *ch, size_t first, size_t last, const char *disk,
                               es_err *e)
{
    for (size_t i = first; i <= last && i < ch->n; i++) {
        const qmp_chain_node *x = &ch->nodes[i];
        for (size_t k = 0; k < x->nbitmaps; k++) {
            const qmp_bitmap *b = &x->bitmaps[k];
            if (b->inconsistent)
                return es_err_set(e, 0, x->filename ? x->filename : x->node_name,
                                  "disk %s: QEMU holds dirty bitmap '%s' of this image as "
                                  "inconsistent (a QEMU stopped without storing it); remove it "
                                  "first (block-dirty-bitmap-remove)",
                                  disk, b->name);
            if (b->busy)
                return es_err_set(e, 0, x->filename ? x->filename : x->node_name,
                                  "disk %s: dirty bitmap '%s' of this image is in use in QEMU "
                                  "(a backup job or an NBD export); retry when it is done",
                                  disk, b->name);
        }
    }
    return 0;
}

/* Kept by libvirt across snapshots and commits. */
static bool live(const qmp_bitmap *b)
{
    return b && b->persistent && b->recording && !b->inconsistent;
}

void snap_online_bitmaps_propagate(const qmp_chain_node *below, const char *overlay_node,
                                   json_object *actions, es_strv *what)
{
    es_err u = {0};
    for (size_t k = 0; k < below->nbitmaps; k++) {
        const qmp_bitmap *b = &below->bitmaps[k];
        if (!live(b))
            continue;
        if (actions)
            qmp_bitmap_add_action(actions, overlay_node, b->name, b->granularity, true, false);
        if (what)
            es_strv_addf(what, &u, "add bitmap '%s' (granularity %llu) to the new overlay",
                         b->name, b->granularity);
    }
}

/* libvirt's valid chain: from top down, the name in consecutive images
 * only (no gap), each live. */
static bool chain_valid(const qmp_chain *ch, size_t top, const char *name)
{
    bool ended = false;
    for (size_t i = top; i < ch->n; i++) {
        const qmp_bitmap *b = qmp_chain_node_bitmap(&ch->nodes[i], name);
        if (!b) {
            if (i == top)
                return false;
            ended = true;
            continue;
        }
        if (ended || !live(b))
            return false;
    }
    return true;
}

/* Merge into base's bitmap name the same-named bitmaps of top..base-1;
 * add it first when add. */
static void merge_one(const qmp_chain *ch, size_t top, size_t base, const char *name,
                      bool add, unsigned long long granularity, json_object *actions,
                      es_strv *what)
{
    size_t n = 0;
    const char **nodes = es_xcalloc(base - top + 1, sizeof *nodes);
    const char **names = es_xcalloc(base - top + 1, sizeof *names);
    for (size_t i = top; i < base; i++)
        if (qmp_chain_node_bitmap(&ch->nodes[i], name)) {
            nodes[n] = ch->nodes[i].node_name;
            names[n++] = name;
        }
    if (n) {
        if (actions && add)
            qmp_bitmap_add_action(actions, ch->nodes[base].node_name, name, granularity, true,
                                  false);
        if (actions)
            qmp_bitmap_merge_action(actions, ch->nodes[base].node_name, name, nodes, names, n);
        es_err u = {0};
        if (what)
            es_strv_addf(what, &u, "%smerge bitmap '%s' of %zu image%s into BASE's",
                         add ? "add bitmap to BASE, " : "", name, n, n == 1 ? "" : "s");
    }
    free(nodes);
    free(names);
}

void snap_online_bitmaps_commit_actions(const qmp_chain *ch, size_t top, size_t base,
                                        json_object *actions, es_strv *what)
{
    if (top >= base || base >= ch->n)
        return;
    const qmp_chain_node *t = &ch->nodes[top], *b = &ch->nodes[base];
    for (size_t k = 0; k < t->nbitmaps; k++) {
        const qmp_bitmap *x = &t->bitmaps[k];
        if (!chain_valid(ch, top, x->name))
            continue;
        merge_one(ch, top, base, x->name, !qmp_chain_node_bitmap(b, x->name), x->granularity,
                  actions, what);
    }
    /* The offline rule on top: BASE's other recording bitmaps get theirs. */
    for (size_t k = 0; k < b->nbitmaps; k++) {
        const qmp_bitmap *x = &b->bitmaps[k];
        if (!live(x) || (qmp_chain_node_bitmap(t, x->name) && chain_valid(ch, top, x->name)))
            continue;
        merge_one(ch, top, base, x->name, false, 0, actions, what);
    }
}

static size_t index_of(const qmp_chain *ch, const char *node)
{
    for (size_t i = 0; node && i < ch->n; i++)
        if (strcmp(ch->nodes[i].node_name, node) == 0)
            return i;
    return (size_t)-1;
}

int snap_online_bitmaps_merge(qmp_client *c, const snap_online_commit *ocs, size_t n, es_err *e)
{
    json_object *actions = json_object_new_array();
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const snap_online_commit *oc = &ocs[i];
        qmp_chain ch;
        if (qmp_chain_query(c, oc->spec.device, &ch, e) < 0) {
            rc = es_err_prefix(e, "reading the dirty bitmaps of %s", oc->spec.device);
            break;
        }
        size_t top = index_of(&ch, oc->chain.nodes[oc->top].node_name);
        size_t base = index_of(&ch, oc->chain.nodes[oc->base].node_name);
        if (top == (size_t)-1 || base == (size_t)-1 || top >= base)
            rc = es_err_set(e, 0, qmp_client_name(c),
                            "%s: TOP or BASE is no longer in QEMU's chain while the commit "
                            "job waits; the dirty bitmaps cannot be merged",
                            oc->spec.device);
        else
            snap_online_bitmaps_commit_actions(&ch, top, base, actions, NULL);
        qmp_chain_free(&ch);
    }
    if (rc == 0 && json_object_array_length(actions) > 0) {
        rc = qmp_fault_point("bitmaps", e);
        if (rc == 0)
            rc = qmp_transaction(c, actions, e);
        if (rc < 0)
            es_err_prefix(e, "merging the dirty bitmaps into BASE (nothing of them changed)");
    }
    json_object_put(actions);
    return rc;
}
