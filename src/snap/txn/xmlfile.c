#include "snap/txn/xmlfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "domxml/store.h"
#include "snap/fsutil.h"
#include "snap/strv.h"
#include "util/atomic_file.h"
#include "util/fileio.h"
#include "util/rootpath.h"

/* dirname of path (malloc'd); "/" for a file in the root directory. */
static int parent_of(const char *path, char **out, es_err *e)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return snap_strdup(".", out, e);
    if (slash == path)
        return snap_strdup("/", out, e);
    return snap_asprintf(out, e, "%.*s", (int)(slash - path), path);
}

static int tmp_path(const snap_xml_write *w, const char *host, char **out, es_err *e)
{
    if (w->kind == SNAP_XML_CONFIG)
        return snap_asprintf(out, e, "%s.new", host);
    /* host = <snapshot-dir>/<domain>/<snap>.xml */
    char *dir = NULL, *top = NULL;
    int r = parent_of(host, &dir, e);
    if (r == 0)
        r = parent_of(dir, &top, e);
    if (r == 0)
        r = snap_asprintf(out, e, "%s/.%s-%s.xml.tmp", top, w->domain, w->snapshot);
    free(dir);
    free(top);
    return r;
}

/* <snapshot-dir>/<domain> is created by the first snapshot (mode 0755). */
static int ensure_parent_dir(const char *host, es_err *e)
{
    char *dir = NULL;
    if (parent_of(host, &dir, e) < 0)
        return -1;
    struct stat st;
    int r = 0;
    if (es_fs_stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            r = es_err_set(e, ENOTDIR, dir, "snapshot directory");
    } else if (errno != ENOENT) {
        r = es_err_set(e, errno, dir, "cannot stat");
    } else {
        r = es_fs_mkdir(dir, DOMXML_SNAPSHOT_DIR_MODE, e);
        if (r == 0)
            r = snap_fsync_parent(dir, e);
    }
    free(dir);
    return r;
}

int snap_xml_put(const char *root, const snap_xml_write *w, bool forward, es_err *e)
{
    const char *text = forward ? w->new_text : w->old_text;
    size_t len = forward ? w->new_len : w->old_len;
    char *host = NULL, *tmp = NULL, *cur = NULL;
    size_t cur_len = 0;
    bool exists = false;
    int rc = -1;
    if (es_root_resolve(root, w->path, &host, e) < 0 || tmp_path(w, host, &tmp, e) < 0)
        goto out;
    if (snap_read_file(host, SNAP_XML_MAX, &cur, &cur_len, &exists, e) < 0)
        goto out;
    if (!text) {
        if (snap_unlink_if_exists(tmp, e) < 0)
            goto out;
        if (exists && (es_fs_unlink(host, e) < 0 || snap_fsync_parent(host, e) < 0))
            goto out;
        rc = 0;
        goto out;
    }
    if (exists && cur_len == len && memcmp(cur, text, len) == 0) {
        rc = snap_unlink_if_exists(tmp, e);
        goto out;
    }
    if (w->kind == SNAP_XML_SNAPSHOT && ensure_parent_dir(host, e) < 0)
        goto out;
    rc = es_atomic_replace(host, tmp, text, len, DOMXML_FILE_MODE, e);
out:
    free(host);
    free(tmp);
    free(cur);
    return rc;
}
