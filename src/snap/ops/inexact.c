/* The record of snapshots whose saved state is inexact (inexact.h). */
#include "snap/ops/inexact.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/snapshot_list.h"
#include "snap/txn/jsonfile.h"
#include "util/atomic_file.h"
#include "util/fsutil.h"
#include "util/xalloc.h"

/* A few entries of a few paths each; anything far larger is not ours. */
#define SNAP_INEXACT_MAX (4u << 20)

static const char *const state_names[] = {"copying", "cancelled"};

static void entry_clear(snap_inexact_entry *x)
{
    free(x->name);
    free(x->operation);
    free(x->command);
    free(x->reason);
    es_strv_free(&x->images);
    memset(x, 0, sizeof *x);
}

void snap_inexact_clear(snap_inexact *m)
{
    for (size_t i = 0; i < m->n; i++)
        entry_clear(&m->v[i]);
    free(m->v);
    free(m->path);
    free(m->tmp);
    memset(m, 0, sizeof *m);
}

static int entry_copy(snap_inexact_entry *dst, const snap_inexact_entry *src, es_err *e)
{
    memset(dst, 0, sizeof *dst);
    dst->creation_time = src->creation_time;
    dst->state = src->state;
    dst->since = src->since;
    if (es_strdup(src->name, &dst->name, e) < 0 ||
        es_strdup(src->operation, &dst->operation, e) < 0 ||
        es_strdup(src->command, &dst->command, e) < 0 ||
        es_strdup(src->reason, &dst->reason, e) < 0)
        return -1;
    for (size_t i = 0; i < src->images.n; i++)
        if (es_strv_add(&dst->images, src->images.v[i], e) < 0)
            return -1;
    return 0;
}

static int set_paths(const snap_ctx *c, snap_inexact *m, es_err *e)
{
    if (es_asprintf(&m->path, e, "%s/%s.extsnap.inexact", c->snapshot_dir_host, c->name) < 0 ||
        es_asprintf(&m->tmp, e, "%s/.%s.extsnap.inexact.tmp", c->snapshot_dir_host, c->name) <
            0)
        return -1;
    return 0;
}

/* ---- reading ---- */

static const char *str_field(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static bool int_field(json_object *o, const char *key, long long *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return false;
    *out = (long long)json_object_get_int64(v);
    return true;
}

static int parse_entry(json_object *o, const char *path, snap_inexact_entry *x, es_err *e)
{
    memset(x, 0, sizeof *x);
    const char *name = str_field(o, "name"), *state = str_field(o, "state");
    json_object *imgs;
    if (!json_object_is_type(o, json_type_object) || !name || !state ||
        !int_field(o, "creation-time", &x->creation_time) ||
        !json_object_object_get_ex(o, "images", &imgs) ||
        !json_object_is_type(imgs, json_type_array))
        return es_err_set(e, 0, path, "record of inexact snapshots: an entry lacks name, state, "
                                      "creation-time or images");
    if (strcmp(state, state_names[SNAP_INEXACT_COPYING]) == 0)
        x->state = SNAP_INEXACT_COPYING;
    else if (strcmp(state, state_names[SNAP_INEXACT_CANCELLED]) == 0)
        x->state = SNAP_INEXACT_CANCELLED;
    else
        return es_err_set(e, 0, path, "record of inexact snapshots: unknown state '%s'", state);
    if (!int_field(o, "since", &x->since))
        x->since = 0;
    if (es_strdup(name, &x->name, e) < 0 ||
        es_strdup(str_field(o, "operation"), &x->operation, e) < 0 ||
        es_strdup(str_field(o, "command"), &x->command, e) < 0 ||
        es_strdup(str_field(o, "reason"), &x->reason, e) < 0)
        return -1;
    for (size_t i = 0; i < json_object_array_length(imgs); i++) {
        json_object *s = json_object_array_get_idx(imgs, i);
        if (json_object_is_type(s, json_type_string) &&
            es_strv_add(&x->images, json_object_get_string(s), e) < 0)
            return -1;
    }
    return 0;
}

int snap_inexact_load(const snap_ctx *c, snap_inexact *m, es_err *e)
{
    memset(m, 0, sizeof *m);
    if (set_paths(c, m, e) < 0)
        return -1;
    bool exists = false;
    json_object *o = NULL, *v = NULL, *list = NULL;
    if (snap_read_json(m->path, SNAP_INEXACT_MAX, "the record of inexact snapshots",
                       "inspect it, then move it away by hand", &o, &exists, e) < 0)
        return -1;
    if (!exists)
        return 0;
    int rc = -1;
    if (!json_object_object_get_ex(o, "extsnap-inexact", &v) ||
        !json_object_is_type(v, json_type_int) ||
        json_object_get_int(v) != SNAP_INEXACT_VERSION ||
        !json_object_object_get_ex(o, "snapshots", &list) ||
        !json_object_is_type(list, json_type_array)) {
        es_err_set(e, 0, m->path, "not an extsnap record of inexact snapshots of version %d",
                   SNAP_INEXACT_VERSION);
        goto out;
    }
    size_t n = json_object_array_length(list);
    m->v = es_xcalloc(n + 1, sizeof *m->v);
    for (size_t i = 0; i < n; i++) {
        if (parse_entry(json_object_array_get_idx(list, i), m->path, &m->v[i], e) < 0) {
            entry_clear(&m->v[i]);
            goto out;
        }
        m->n++;
    }
    rc = 0;
out:
    json_object_put(o);
    return rc;
}

/* ---- writing ---- */

bool snap_inexact_valid(const snap_ctx *c, const snap_inexact_entry *x)
{
    if (!c->snaps)
        return true; /* not loaded: nothing to compare with */
    const domxml_snapshot *s = domxml_snapshot_list_find(c->snaps, x->name);
    return s && s->creation_time == x->creation_time;
}

const snap_inexact_entry *snap_inexact_find(const snap_ctx *c, const snap_inexact *m,
                                            const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->v[i].name, name) == 0 && snap_inexact_valid(c, &m->v[i]))
            return &m->v[i];
    return NULL;
}

static json_object *entry_json(const snap_inexact_entry *x)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(x->name));
    json_object_object_add(o, "creation-time", json_object_new_int64(x->creation_time));
    json_object_object_add(o, "state", json_object_new_string(state_names[x->state]));
    json_object_object_add(o, "since", json_object_new_int64(x->since));
    json_object_object_add(o, "operation",
                           x->operation ? json_object_new_string(x->operation) : NULL);
    json_object_object_add(o, "command", x->command ? json_object_new_string(x->command) : NULL);
    json_object_object_add(o, "reason", x->reason ? json_object_new_string(x->reason) : NULL);
    json_object *imgs = json_object_new_array();
    for (size_t i = 0; i < x->images.n; i++)
        json_object_array_add(imgs, json_object_new_string(x->images.v[i]));
    json_object_object_add(o, "images", imgs);
    return o;
}

int snap_inexact_save(const snap_ctx *c, snap_inexact *m, es_err *e)
{
    if (!m->path && set_paths(c, m, e) < 0)
        return -1;
    json_object *o = es_xcheck(json_object_new_object());
    json_object *list = es_xcheck(json_object_new_array());
    size_t kept = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (!snap_inexact_valid(c, &m->v[i]))
            continue;
        json_object_array_add(list, entry_json(&m->v[i]));
        kept++;
    }
    json_object_object_add(o, "extsnap-inexact", json_object_new_int(SNAP_INEXACT_VERSION));
    json_object_object_add(o, "snapshots", list);
    int rc;
    if (kept == 0) {
        rc = es_unlink_if_exists(m->tmp, e);
        if (rc == 0 && es_path_exists(m->path)) {
            rc = es_unlink_if_exists(m->path, e);
            if (rc == 0)
                rc = es_fsync_parent(m->path, e);
        }
    } else {
        size_t len = 0;
        const char *text = es_xcheck(json_object_to_json_string_length(
            o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE, &len));
        char *buf = es_xmalloc(len + 2);
        memcpy(buf, text, len);
        buf[len] = '\n';
        rc = es_atomic_replace(m->path, m->tmp, buf, len + 1, 0600, e);
        free(buf);
    }
    json_object_put(o);
    if (rc < 0)
        return es_err_prefix(e, "cannot write the record of inexact snapshots");
    return 0;
}

int snap_inexact_put(snap_inexact *m, const snap_inexact_entry *x, es_err *e)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->v[i].name, x->name) == 0) {
            snap_inexact_entry copy;
            if (entry_copy(&copy, x, e) < 0) {
                entry_clear(&copy);
                return -1;
            }
            entry_clear(&m->v[i]);
            m->v[i] = copy;
            return 0;
        }
    }
    snap_inexact_entry *nv = es_xreallocarray(m->v, m->n + 1, sizeof *nv);
    m->v = nv;
    if (entry_copy(&m->v[m->n], x, e) < 0) {
        entry_clear(&m->v[m->n]);
        return -1;
    }
    m->n++;
    return 0;
}

int snap_inexact_copy(snap_inexact *dst, const snap_inexact *src, es_err *e)
{
    for (size_t i = 0; i < dst->n; i++)
        entry_clear(&dst->v[i]);
    dst->n = 0;
    for (size_t i = 0; i < src->n; i++)
        if (snap_inexact_put(dst, &src->v[i], e) < 0)
            return -1;
    return 0;
}

/* ---- using it ---- */

void snap_inexact_describe(const snap_inexact_entry *x, char *buf, size_t len)
{
    char imgs[2048] = "";
    size_t at = 0;
    for (size_t i = 0; i < x->images.n && at < sizeof imgs; i++) {
        int n = snprintf(imgs + at, sizeof imgs - at, "%s%s", i ? ", " : "", x->images.v[i]);
        if (n < 0)
            break;
        at += (size_t)n;
    }
    const char *op = x->operation ? x->operation : "an online delete or commit";
    if (x->state == SNAP_INEXACT_COPYING)
        snprintf(buf, len,
                 "%s was interrupted (extsnap or QEMU stopped) while QEMU copied into %s, and "
                 "QEMU does not undo that",
                 op, imgs[0] ? imgs : "its saved images");
    else
        snprintf(buf, len,
                 "%s was cancelled%s%s%s after QEMU had started copying into %s, and QEMU does "
                 "not undo that",
                 op, x->reason ? " (" : "", x->reason ? x->reason : "", x->reason ? ")" : "",
                 imgs[0] ? imgs : "its saved images");
}

int snap_plan_removed_snapshots(const snap_plan *p, es_strv *out, es_err *e)
{
    for (size_t i = 0; i < p->nxml; i++) {
        const snap_xml_write *w = &p->xml[i];
        if (w->kind == SNAP_XML_SNAPSHOT && w->snapshot && !w->new_text &&
            !es_strv_has(out, w->snapshot) && es_strv_add(out, w->snapshot, e) < 0)
            return -1;
    }
    return 0;
}

int snap_inexact_forget(const snap_ctx *c, const snap_plan *p, es_err *e)
{
    snap_inexact m;
    es_strv gone = {0};
    int rc = -1;
    if (snap_inexact_load(c, &m, e) < 0)
        goto out;
    if (m.n == 0) {
        rc = 0;
        goto out;
    }
    if (snap_plan_removed_snapshots(p, &gone, e) < 0)
        goto out;
    size_t keep = 0;
    for (size_t i = 0; i < m.n; i++) {
        if (es_strv_has(&gone, m.v[i].name) || !snap_inexact_valid(c, &m.v[i]))
            entry_clear(&m.v[i]);
        else
            m.v[keep++] = m.v[i];
    }
    bool changed = keep != m.n;
    m.n = keep;
    rc = changed ? snap_inexact_save(c, &m, e) : 0;
out:
    es_strv_free(&gone);
    snap_inexact_clear(&m);
    return rc;
}

int snap_inexact_check_revert(const snap_ctx *c, const char *op, const char *target,
                              const domxml_snapshot *t, bool force, es_err *e)
{
    if (!t)
        return 0;
    snap_inexact m;
    if (snap_inexact_load(c, &m, e) < 0) {
        snap_inexact_clear(&m);
        return es_err_prefix(e, "cannot tell whether snapshot %s's saved state is exact",
                             t->name);
    }
    const snap_inexact_entry *x = snap_inexact_find(c, &m, t->name);
    int rc = 0;
    if (x) {
        char why[3072], what[512];
        snap_inexact_describe(x, why, sizeof why);
        if (strcmp(target, t->name) == 0)
            snprintf(what, sizeof what, "%s", target);
        else /* base: the images the root snapshot froze */
            snprintf(what, sizeof what, "%s (snapshot %s's saved state)", target, t->name);
        if (force)
            snap_ctx_note(c, "warning: %s to %s with --force: its saved state is inexact: %s",
                          op, what, why);
        else
            rc = es_err_set(e, 0, NULL,
                            "cannot %s to %s: its saved state is inexact: %s (recorded in %s); "
                            "run the same %s again to finish it, or give --force to %s to the "
                            "inexact state",
                            op, what, why, m.path, x->command ? x->command : "delete", op);
    }
    snap_inexact_clear(&m);
    return rc;
}
