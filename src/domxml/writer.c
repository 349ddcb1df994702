#include "domxml/writer.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "domxml/files.h"
#include "util/atomic_file.h"
#include "util/fileio.h"
#include "util/fsutil.h"
#include "util/readfile.h"
#include "util/str.h"

/* dirname of path (malloc'd); "/" for a file in the root directory. */
static int parent_of(const char *path, char **out, es_err *e)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return es_strdup(".", out, e);
    if (slash == path)
        return es_strdup("/", out, e);
    return es_strdup_len(path, (size_t)(slash - path), out, e);
}

int domxml_file_tmp_path(const domxml_file *f, char **out, es_err *e)
{
    if (f->kind == DOMXML_FILE_CONFIG)
        return es_asprintf(out, e, "%s.new", f->host);
    /* host = <snapshot-dir>/<domain>/<snap>.xml */
    char *dir = NULL, *top = NULL;
    int r = parent_of(f->host, &dir, e);
    if (r == 0)
        r = parent_of(dir, &top, e);
    if (r == 0)
        r = es_asprintf(out, e, "%s/.%s-%s.xml.tmp", top, f->domain, f->snapshot);
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
            r = es_fsync_parent(dir, e);
    }
    free(dir);
    return r;
}

int domxml_file_put(const domxml_file *f, const char *text, size_t len, es_err *e)
{
    char *tmp = NULL, *cur = NULL;
    size_t cur_len = 0;
    bool exists = false;
    int rc = -1;
    if (domxml_file_tmp_path(f, &tmp, e) < 0)
        goto out;
    if (es_read_file_if_exists(f->host, DOMXML_FILE_MAX, &cur, &cur_len, &exists, e) < 0)
        goto out;
    if (!text) {
        if (es_unlink_if_exists(tmp, e) < 0)
            goto out;
        if (exists && (es_fs_unlink(f->host, e) < 0 || es_fsync_parent(f->host, e) < 0))
            goto out;
        rc = 0;
        goto out;
    }
    if (exists && cur_len == len && memcmp(cur, text, len) == 0) {
        rc = es_unlink_if_exists(tmp, e);
        goto out;
    }
    if (f->kind == DOMXML_FILE_SNAPSHOT && ensure_parent_dir(f->host, e) < 0)
        goto out;
    rc = es_atomic_replace(f->host, tmp, text, len, DOMXML_FILE_MODE, e);
out:
    free(tmp);
    free(cur);
    return rc;
}
