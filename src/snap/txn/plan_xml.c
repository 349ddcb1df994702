#include "snap/txn/plan_xml.h"

#include <stdlib.h>
#include <string.h>

#include "domxml/files.h"
#include "snap/txn/xmlfile.h"
#include "util/fsutil.h"
#include "util/readfile.h"

static int snapshot_file(snap_ctx *c, const char *name, char **logical, char **host, es_err *e)
{
    *logical = *host = NULL;
    if (es_asprintf(logical, e, "%s/%s.xml", c->domain_snap_dir, name) < 0 ||
        snap_ctx_host(c, *logical, host, e) < 0) {
        free(*logical);
        *logical = NULL;
        return -1;
    }
    return 0;
}

/* The new snapshot directory is recorded so that a rollback removes it. */
static int note_new_dir(snap_ctx *c, snap_plan *p, es_err *e)
{
    if (p->snapshot_dir_created)
        return 0;
    char *host = NULL;
    if (snap_ctx_host(c, c->domain_snap_dir, &host, e) < 0)
        return -1;
    bool exists = es_path_exists(host);
    free(host);
    return exists ? 0 : es_strdup(c->domain_snap_dir, &p->snapshot_dir_created, e);
}

static int add_write(snap_ctx *c, snap_plan *p, snap_xml_kind kind, const char *logical,
                     const char *host, const char *snap, const char *text, size_t len,
                     const char *summary, es_err *e)
{
    char *old = NULL;
    size_t old_len = 0;
    bool exists = false;
    if (es_read_file_if_exists(host, DOMXML_FILE_MAX, &old, &old_len, &exists, e) < 0)
        return -1;
    snap_xml_write w = {
        .kind = kind,
        .path = (char *)logical,
        .domain = c->name,
        .snapshot = (char *)snap,
        .old_text = old,
        .old_len = old_len,
        .new_text = (char *)text,
        .new_len = len,
        .summary = (char *)summary,
    };
    int r = snap_plan_add_xml(p, &w, e);
    free(old);
    return r;
}

int snap_plan_put_snapshot(snap_ctx *c, snap_plan *p, const domxml_snapshot *s,
                           const char *summary, es_err *e)
{
    char *logical = NULL, *host = NULL, *text = NULL, *again = NULL;
    size_t len = 0, alen = 0;
    domxml_snapshot *check = NULL;
    int rc = -1;
    if (snapshot_file(c, s->name, &logical, &host, e) < 0)
        return -1;
    if (domxml_snapshot_format(s, &text, &len, e) < 0)
        goto out;
    /* What is written must be what the next load (extsnap's or libvirt's) sees. */
    if (domxml_snapshot_parse(text, len, logical, &check, e) < 0 ||
        domxml_snapshot_format(check, &again, &alen, e) < 0)
        goto out;
    if (alen != len || memcmp(again, text, len) != 0) {
        es_err_set(e, 0, logical, "internal error: snapshot metadata does not read back as written");
        goto out;
    }
    if (note_new_dir(c, p, e) < 0)
        goto out;
    rc = add_write(c, p, SNAP_XML_SNAPSHOT, logical, host, s->name, text, len, summary, e);
out:
    domxml_snapshot_free(check);
    free(logical);
    free(host);
    free(text);
    free(again);
    return rc;
}

int snap_plan_remove_snapshot(snap_ctx *c, snap_plan *p, const char *name, const char *summary,
                              es_err *e)
{
    char *logical = NULL, *host = NULL;
    if (snapshot_file(c, name, &logical, &host, e) < 0)
        return -1;
    int rc = add_write(c, p, SNAP_XML_SNAPSHOT, logical, host, name, NULL, 0, summary, e);
    free(logical);
    free(host);
    return rc;
}

int snap_plan_put_config(snap_ctx *c, snap_plan *p, const domxml_domain *d, const char *summary,
                         es_err *e)
{
    domxml_domain *check = NULL;
    if (domxml_domain_parse(d->text, d->len, c->config_path, &check, e) < 0)
        return es_err_prefix(e, "internal error: the new domain config does not parse");
    domxml_domain_free(check);
    return add_write(c, p, SNAP_XML_CONFIG, c->config_path, c->config_host, NULL, d->text, d->len,
                     summary, e);
}
