#include "domxml/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "domxml/names.h"
#include "domxml/strbuf.h"
#include "domxml/writer.h"
#include "util/fileio.h"
#include "util/rootpath.h"
#include "util/str.h"

static const char *config_dir(const domxml_paths *p)
{
    return p->config_dir ? p->config_dir : DOMXML_DEFAULT_CONFIG_DIR;
}

static const char *snapshot_dir(const domxml_paths *p)
{
    return p->snapshot_dir ? p->snapshot_dir : DOMXML_DEFAULT_SNAPSHOT_DIR;
}

/* dir/name1[/name2] as seen under the root, resolved to a host path. */
static int resolve(const domxml_paths *p, const char *dir, const char *name1, const char *name2,
                   char **out, es_err *e)
{
    dx_buf b = {0};
    dx_buf_adds(&b, dir);
    dx_buf_adds(&b, "/");
    dx_buf_adds(&b, name1);
    if (name2) {
        dx_buf_adds(&b, "/");
        dx_buf_adds(&b, name2);
    }
    char *joined;
    if (dx_buf_take(&b, &joined, NULL, e) < 0)
        return -1;
    int rc = es_root_resolve(p->root, joined, out, e);
    free(joined);
    return rc;
}

static int with_suffix(const char *s, const char *suffix, char **out, es_err *e)
{
    dx_buf b = {0};
    dx_buf_adds(&b, s);
    dx_buf_adds(&b, suffix);
    return dx_buf_take(&b, out, NULL, e);
}

int domxml_config_path(const domxml_paths *p, const char *domain, char **out, es_err *e)
{
    *out = NULL;
    if (domxml_check_domain_name(domain, e) < 0)
        return -1;
    char *file;
    if (with_suffix(domain, ".xml", &file, e) < 0)
        return -1;
    int rc = resolve(p, config_dir(p), file, NULL, out, e);
    free(file);
    return rc;
}

int domxml_snapshot_dir_path(const domxml_paths *p, const char *domain, char **out, es_err *e)
{
    *out = NULL;
    if (domxml_check_domain_name(domain, e) < 0)
        return -1;
    return resolve(p, snapshot_dir(p), domain, NULL, out, e);
}

int domxml_snapshot_file_path(const domxml_paths *p, const char *domain, const char *snap,
                              char **out, es_err *e)
{
    *out = NULL;
    if (domxml_check_domain_name(domain, e) < 0 || domxml_check_snapshot_name(snap, e) < 0)
        return -1;
    char *file;
    if (with_suffix(snap, ".xml", &file, e) < 0)
        return -1;
    int rc = resolve(p, snapshot_dir(p), domain, file, out, e);
    free(file);
    return rc;
}

int domxml_domain_load_named(const domxml_paths *p, const char *name, domxml_domain **out,
                             es_err *e)
{
    *out = NULL;
    char *path;
    if (domxml_config_path(p, name, &path, e) < 0)
        return -1;
    struct stat st;
    if (es_fs_stat(path, &st) < 0 && errno == ENOENT) {
        es_err_set(e, 0, path, "no domain '%s' is defined (no config file)", name);
        free(path);
        return -1;
    }
    domxml_domain *d;
    int rc = domxml_domain_load(path, &d, e);
    if (rc == 0 && strcmp(d->name, name) != 0) {
        es_err_set(e, 0, path, "defines domain '%s', not '%s'", d->name, name);
        domxml_domain_free(d);
        rc = -1;
    } else if (rc == 0) {
        *out = d;
    }
    free(path);
    return rc;
}

int domxml_domain_locate(const domxml_paths *p, const char *arg, domxml_domain **out,
                         char **path_out, es_err *e)
{
    *out = NULL;
    if (path_out)
        *path_out = NULL;
    char *path;
    int rc;
    if (es_looks_like_path(arg)) {
        if (es_root_resolve(p->root, arg, &path, e) < 0)
            return -1;
        rc = domxml_domain_load(path, out, e);
    } else {
        if (domxml_config_path(p, arg, &path, e) < 0)
            return -1;
        rc = domxml_domain_load_named(p, arg, out, e);
    }
    if (rc == 0 && path_out)
        *path_out = path;
    else
        free(path);
    return rc;
}

int domxml_domain_save_file(const char *path, const domxml_domain *d, es_err *e)
{
    /* d came from the parser, but parse its text once more right before it
     * replaces a file libvirt must be able to load. */
    domxml_domain *check;
    if (domxml_domain_parse(d->text, d->len, path, &check, e) < 0)
        return es_err_prefix(e, "refusing to save a domain config that does not parse");
    domxml_domain_free(check);
    domxml_file f = {.kind = DOMXML_FILE_CONFIG, .host = path};
    return domxml_file_put(&f, d->text, d->len, e);
}

int domxml_domain_save(const domxml_paths *p, const domxml_domain *d, es_err *e)
{
    char *path;
    if (domxml_config_path(p, d->name, &path, e) < 0)
        return -1;
    int rc = domxml_domain_save_file(path, d, e);
    free(path);
    return rc;
}

int domxml_snapshots_load(const domxml_paths *p, const char *domain, unsigned flags,
                          domxml_snapshot_list **out, es_err *e)
{
    *out = NULL;
    if (domxml_check_domain_name(domain, e) < 0)
        return -1;
    char *dir;
    if (es_path_join(snapshot_dir(p), domain, &dir, e) < 0)
        return -1;
    int rc = domxml_snapshot_list_load(p->root, dir, flags, out, e);
    free(dir);
    return rc;
}

/* Format, parse, format again: the two texts must be identical, so what is
 * written is exactly what the next load will see. */
static int format_verified(const domxml_snapshot *s, const char *path, char **out, size_t *len,
                           es_err *e)
{
    char *text, *again = NULL;
    size_t tlen, alen;
    if (domxml_snapshot_format(s, &text, &tlen, e) < 0)
        return -1;
    domxml_snapshot *check = NULL;
    if (domxml_snapshot_parse(text, tlen, path, &check, e) < 0) {
        free(text);
        return es_err_prefix(e, "refusing to save snapshot metadata that does not parse");
    }
    int rc = domxml_snapshot_format(check, &again, &alen, e);
    domxml_snapshot_free(check);
    if (rc == 0 && (alen != tlen || memcmp(again, text, tlen) != 0))
        rc = es_err_set(e, 0, path, "internal error: snapshot metadata does not read back as written");
    free(again);
    if (rc < 0) {
        free(text);
        return -1;
    }
    *out = text;
    *len = tlen;
    return 0;
}

int domxml_snapshot_save(const domxml_paths *p, const char *domain, const domxml_snapshot *s,
                         es_err *e)
{
    char *path = NULL, *text = NULL;
    size_t len = 0;
    int rc = -1;
    if (!s->name)
        return es_err_set(e, EINVAL, NULL, "snapshot without a name");
    if (domxml_snapshot_file_path(p, domain, s->name, &path, e) < 0)
        goto out;
    if (format_verified(s, path, &text, &len, e) < 0)
        goto out;
    domxml_file f = {.kind = DOMXML_FILE_SNAPSHOT, .host = path, .domain = domain,
                     .snapshot = s->name};
    rc = domxml_file_put(&f, text, len, e);
out:
    free(path);
    free(text);
    return rc;
}

int domxml_snapshot_remove(const domxml_paths *p, const char *domain, const char *snap,
                           es_err *e)
{
    char *path = NULL, *dir = NULL;
    int rc = -1;
    if (domxml_snapshot_file_path(p, domain, snap, &path, e) < 0 ||
        domxml_snapshot_dir_path(p, domain, &dir, e) < 0)
        goto out;
    if (es_fs_unlink(path, e) < 0 || es_fs_fsync_dir(dir, e) < 0)
        goto out;
    rc = 0;
out:
    free(path);
    free(dir);
    return rc;
}
