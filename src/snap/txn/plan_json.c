#include "snap/txn/plan_json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

/* json-c returns NULL (or -1) only when it runs out of memory. */
static json_object *jstr(const char *s)
{
    return s ? es_xcheck(json_object_new_string(s)) : NULL; /* NULL: JSON null */
}

static json_object *jstr_len(const char *s, size_t len)
{
    return s ? es_xcheck(json_object_new_string_len(s, (int)len)) : NULL;
}

static json_object *jobj(void)
{
    return es_xcheck(json_object_new_object());
}

static json_object *jarr(void)
{
    return es_xcheck(json_object_new_array());
}

static void add(json_object *o, const char *key, json_object *v)
{
    if (json_object_object_add(o, key, v) < 0)
        es_oom();
}

static void append(json_object *a, json_object *v)
{
    if (!v)
        return;
    if (json_object_array_add(a, v) < 0)
        es_oom();
}

static json_object *jint(long long v)
{
    return es_xcheck(json_object_new_int64(v));
}

static json_object *jbool(bool v)
{
    return es_xcheck(json_object_new_boolean(v));
}

const char *snap_xml_action(const snap_xml_write *w)
{
    if (!w->new_text)
        return "remove";
    return w->old_text ? "update" : "create";
}

int snap_plan_to_json(const snap_plan *p, bool with_texts, json_object **out, es_err *e)
{
    json_object *o = jobj();
    add(o, "operation", jstr(p->op));
    add(o, "domain", jstr(p->domain));
    add(o, "summary", jstr(p->summary));

    json_object *a = jarr();
    for (size_t i = 0; i < p->noverlays; i++) {
        const snap_overlay *v = &p->overlays[i];
        json_object *x = jobj();
        add(x, "disk", jstr(v->disk));
        add(x, "filename", jstr(v->path));
        add(x, "backing-filename", jstr(v->backing));
        add(x, "backing-filename-format", jstr(v->backing_format));
        add(x, "existed-empty", jbool(v->existed_empty));
        add(x, "uid", jint(v->uid));
        add(x, "gid", jint(v->gid));
        add(x, "mode", jint(v->mode));
        append(a, x);
    }
    add(o, "overlays", a);

    a = jarr();
    for (size_t i = 0; i < p->nmerges; i++) {
        json_object *x = jobj();
        add(x, "disk", jstr(p->merges[i].disk));
        add(x, "top", jstr(p->merges[i].top));
        add(x, "base", jstr(p->merges[i].base));
        if (p->merges[i].images.n) { /* unknown in plans read from older journals */
            json_object *imgs = jarr();
            for (size_t k = 0; k < p->merges[i].images.n; k++)
                append(imgs, jstr(p->merges[i].images.v[k]));
            add(x, "images", imgs);
        }
        append(a, x);
    }
    add(o, "merges", a);

    a = jarr();
    for (size_t i = 0; i < p->nrebases; i++) {
        const snap_rebase *r = &p->rebases[i];
        json_object *x = jobj();
        add(x, "filename", jstr(r->path));
        add(x, "backing-filename", jstr(r->backing));
        add(x, "backing-filename-format", jstr(r->backing_format));
        add(x, "old-backing-filename", jstr(r->old_backing));
        add(x, "old-backing-filename-format", jstr(r->old_backing_format));
        append(a, x);
    }
    add(o, "rebases", a);

    a = jarr();
    for (size_t i = 0; i < p->nxml; i++) {
        const snap_xml_write *w = &p->xml[i];
        json_object *x = jobj();
        add(x, "kind", jstr(w->kind == SNAP_XML_CONFIG ? "config" : "snapshot"));
        add(x, "filename", jstr(w->path));
        add(x, "domain", jstr(w->domain));
        add(x, "snapshot", jstr(w->snapshot));
        add(x, "action", jstr(snap_xml_action(w)));
        add(x, "summary", jstr(w->summary));
        if (with_texts) {
            add(x, "old-text", jstr_len(w->old_text, w->old_len));
            add(x, "new-text", jstr_len(w->new_text, w->new_len));
        }
        append(a, x);
    }
    add(o, "xml-files", a);

    a = jarr();
    for (size_t i = 0; i < p->nvmcopies; i++) {
        const snap_vmcopy *v = &p->vmcopies[i];
        json_object *x = jobj();
        add(x, "what", jstr(v->what));
        add(x, "action", jstr(v->restore ? "restore" : "save"));
        add(x, "from", jstr(v->from));
        add(x, "filename", jstr(v->to));
        append(a, x);
    }
    add(o, "vm-state", a);

    a = jarr();
    for (size_t i = 0; i < p->ndeletes; i++) {
        json_object *x = jobj();
        add(x, "filename", jstr(p->deletes[i].path));
        add(x, "reason", jstr(p->deletes[i].reason));
        append(a, x);
    }
    add(o, "deletes", a);

    a = jarr();
    for (size_t i = 0; i < p->notes.n; i++)
        append(a, jstr(p->notes.v[i]));
    add(o, "notes", a);
    add(o, "snapshot-dir-created", jstr(p->snapshot_dir_created));

    (void)e;
    *out = o;
    return 0;
}

/* Reading back: every field is checked, the journal may have been damaged
 * or edited by hand. */
typedef struct {
    const char *origin;
    es_err *e;
    bool bad;
} jr;

static json_object *member(jr *r, json_object *o, const char *key, json_type type, bool nullable)
{
    json_object *v = NULL;
    if (r->bad)
        return NULL;
    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v)) {
        r->bad = true;
        es_err_set(r->e, 0, r->origin, "journal: missing field '%s'", key);
        return NULL;
    }
    if (v == NULL && nullable)
        return NULL;
    if (!json_object_is_type(v, type)) {
        r->bad = true;
        es_err_set(r->e, 0, r->origin, "journal: field '%s' has the wrong type", key);
        return NULL;
    }
    return v;
}

/* A string field copied into *out (NULL for JSON null when nullable). */
static void get_str(jr *r, json_object *o, const char *key, bool nullable, char **out,
                    size_t *len)
{
    *out = NULL;
    json_object *v = member(r, o, key, json_type_string, nullable);
    if (!v)
        return;
    size_t n = (size_t)json_object_get_string_len(v);
    char *s = es_xmalloc(n + 1);
    memcpy(s, json_object_get_string(v), n);
    s[n] = '\0';
    if (strlen(s) != n) { /* an embedded NUL: not something extsnap wrote */
        free(s);
        r->bad = true;
        es_err_set(r->e, 0, r->origin, "journal: field '%s' holds a NUL byte", key);
        return;
    }
    *out = s;
    if (len)
        *len = n;
}

static long long get_int(jr *r, json_object *o, const char *key)
{
    json_object *v = member(r, o, key, json_type_int, false);
    return v ? (long long)json_object_get_int64(v) : 0;
}

static bool get_bool(jr *r, json_object *o, const char *key)
{
    json_object *v = member(r, o, key, json_type_boolean, false);
    return v ? json_object_get_boolean(v) : false;
}

static size_t array_len(jr *r, json_object *o, const char *key, json_object **arr)
{
    *arr = member(r, o, key, json_type_array, false);
    return *arr ? json_object_array_length(*arr) : 0;
}

/* A required path: absolute, as every path in a plan is. */
static void check_path(jr *r, const char *what, const char *path)
{
    if (r->bad || !path)
        return;
    if (path[0] != '/') {
        r->bad = true;
        es_err_set(r->e, 0, r->origin, "journal: %s '%s' is not an absolute path", what, path);
    }
}

/* An optional list of absolute paths (absent in older journals). */
static void get_paths(jr *r, json_object *o, const char *key, const char *what, es_strv *out)
{
    json_object *a;
    if (r->bad || !json_object_object_get_ex(o, key, &a))
        return;
    if (!json_object_is_type(a, json_type_array)) {
        r->bad = true;
        es_err_set(r->e, 0, r->origin, "journal: field '%s' has the wrong type", key);
        return;
    }
    for (size_t i = 0; i < json_object_array_length(a) && !r->bad; i++) {
        json_object *v = json_object_array_get_idx(a, i);
        const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
        if (!s || strlen(s) != (size_t)json_object_get_string_len(v)) {
            r->bad = true;
            es_err_set(r->e, 0, r->origin, "journal: field '%s' holds a bad entry", key);
            return;
        }
        check_path(r, what, s);
        if (!r->bad && es_strv_add(out, s, r->e) < 0)
            r->bad = true;
    }
}

/* One item of each plan list, read from x and added to p (r->bad on
 * failure, r->e saying why). */

static void read_overlay(jr *r, json_object *x, snap_plan *p)
{
    snap_overlay v = {0};
    get_str(r, x, "disk", false, &v.disk, NULL);
    get_str(r, x, "filename", false, &v.path, NULL);
    get_str(r, x, "backing-filename", false, &v.backing, NULL);
    get_str(r, x, "backing-filename-format", false, &v.backing_format, NULL);
    v.existed_empty = get_bool(r, x, "existed-empty");
    v.uid = get_int(r, x, "uid");
    v.gid = get_int(r, x, "gid");
    v.mode = get_int(r, x, "mode");
    check_path(r, "overlay", v.path);
    if (!r->bad && snap_plan_add_overlay(p, &v, r->e) < 0)
        r->bad = true;
    free(v.disk);
    free(v.path);
    free(v.backing);
    free(v.backing_format);
}

static void read_merge(jr *r, json_object *x, snap_plan *p)
{
    snap_merge m = {0};
    get_str(r, x, "disk", false, &m.disk, NULL);
    get_str(r, x, "top", false, &m.top, NULL);
    get_str(r, x, "base", false, &m.base, NULL);
    check_path(r, "merge top", m.top);
    check_path(r, "merge base", m.base);
    get_paths(r, x, "images", "merged image", &m.images);
    if (!r->bad && snap_plan_add_merge(p, &m, r->e) < 0)
        r->bad = true;
    free(m.disk);
    free(m.top);
    free(m.base);
    es_strv_free(&m.images);
}

static void read_rebase(jr *r, json_object *x, snap_plan *p)
{
    snap_rebase b = {0};
    get_str(r, x, "filename", false, &b.path, NULL);
    get_str(r, x, "backing-filename", true, &b.backing, NULL);
    get_str(r, x, "backing-filename-format", true, &b.backing_format, NULL);
    get_str(r, x, "old-backing-filename", true, &b.old_backing, NULL);
    get_str(r, x, "old-backing-filename-format", true, &b.old_backing_format, NULL);
    check_path(r, "rebased image", b.path);
    if (!r->bad && snap_plan_add_rebase(p, &b, r->e) < 0)
        r->bad = true;
    free(b.path);
    free(b.backing);
    free(b.backing_format);
    free(b.old_backing);
    free(b.old_backing_format);
}

static void read_xml_file(jr *r, json_object *x, snap_plan *p)
{
    snap_xml_write w = {0};
    char *kind = NULL;
    get_str(r, x, "kind", false, &kind, NULL);
    if (!r->bad && strcmp(kind, "config") != 0 && strcmp(kind, "snapshot") != 0) {
        r->bad = true;
        es_err_set(r->e, 0, r->origin, "journal: unknown XML file kind '%s'", kind);
    }
    w.kind = kind && strcmp(kind, "config") == 0 ? SNAP_XML_CONFIG : SNAP_XML_SNAPSHOT;
    free(kind);
    get_str(r, x, "filename", false, &w.path, NULL);
    get_str(r, x, "domain", false, &w.domain, NULL);
    get_str(r, x, "snapshot", w.kind == SNAP_XML_CONFIG, &w.snapshot, NULL);
    get_str(r, x, "summary", true, &w.summary, NULL);
    get_str(r, x, "old-text", true, &w.old_text, &w.old_len);
    get_str(r, x, "new-text", true, &w.new_text, &w.new_len);
    check_path(r, "XML file", w.path);
    if (!r->bad && snap_plan_add_xml(p, &w, r->e) < 0)
        r->bad = true;
    free(w.path);
    free(w.domain);
    free(w.snapshot);
    free(w.summary);
    free(w.old_text);
    free(w.new_text);
}

static void read_delete(jr *r, json_object *x, snap_plan *p)
{
    char *path = NULL, *reason = NULL;
    get_str(r, x, "filename", false, &path, NULL);
    get_str(r, x, "reason", true, &reason, NULL);
    check_path(r, "file to delete", path);
    if (!r->bad && snap_plan_add_delete(p, path, reason, r->e) < 0)
        r->bad = true;
    free(path);
    free(reason);
}

static void read_vmcopy(jr *r, json_object *x, snap_plan *p)
{
    snap_vmcopy v = {0};
    char *action = NULL;
    get_str(r, x, "what", false, &v.what, NULL);
    get_str(r, x, "action", false, &action, NULL);
    get_str(r, x, "from", false, &v.from, NULL);
    get_str(r, x, "filename", false, &v.to, NULL);
    if (!r->bad && strcmp(action, "save") != 0 && strcmp(action, "restore") != 0) {
        r->bad = true;
        es_err_set(r->e, 0, r->origin, "journal: unknown vm-state action '%s'", action);
    }
    if (!r->bad && strcmp(v.what, "nvram") != 0 && strcmp(v.what, "tpm") != 0) {
        r->bad = true;
        es_err_set(r->e, 0, r->origin, "journal: unknown vm-state kind '%s'", v.what);
    }
    v.restore = action && strcmp(action, "restore") == 0;
    check_path(r, "vm-state copy source", v.from);
    check_path(r, "vm-state copy", v.to);
    if (!r->bad && snap_plan_add_vmcopy(p, &v, r->e) < 0)
        r->bad = true;
    free(action);
    free(v.what);
    free(v.from);
    free(v.to);
}

static void read_note(jr *r, json_object *x, snap_plan *p)
{
    if (!json_object_is_type(x, json_type_string)) {
        r->bad = true;
        es_err_set(r->e, 0, r->origin, "journal: a note is not a string");
    } else if (es_strv_add(&p->notes, json_object_get_string(x), r->e) < 0) {
        r->bad = true;
    }
}

/* Every item of the array o[key], in order, until one fails. */
static void read_list(jr *r, json_object *o, const char *key, snap_plan *p,
                      void (*read_one)(jr *r, json_object *x, snap_plan *p))
{
    json_object *a;
    size_t n = array_len(r, o, key, &a);
    for (size_t i = 0; i < n && !r->bad; i++)
        read_one(r, json_object_array_get_idx(a, i), p);
}

int snap_plan_from_json(json_object *o, const char *origin, snap_plan **out, es_err *e)
{
    *out = NULL;
    jr r = {.origin = origin, .e = e};
    snap_plan *p = es_xcalloc(1, sizeof *p);
    get_str(&r, o, "operation", false, &p->op, NULL);
    get_str(&r, o, "domain", false, &p->domain, NULL);
    get_str(&r, o, "summary", true, &p->summary, NULL);
    read_list(&r, o, "overlays", p, read_overlay);
    read_list(&r, o, "merges", p, read_merge);
    read_list(&r, o, "rebases", p, read_rebase);
    read_list(&r, o, "xml-files", p, read_xml_file);
    if (json_object_object_get_ex(o, "vm-state", NULL)) /* absent in older journals */
        read_list(&r, o, "vm-state", p, read_vmcopy);
    read_list(&r, o, "deletes", p, read_delete);
    read_list(&r, o, "notes", p, read_note);
    get_str(&r, o, "snapshot-dir-created", true, &p->snapshot_dir_created, NULL);
    if (r.bad) {
        snap_plan_free(p);
        return -1;
    }
    *out = p;
    return 0;
}
