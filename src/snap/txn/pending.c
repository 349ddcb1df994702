#include "snap/txn/pending.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/fsutil.h"
#include "util/readfile.h"
#include "util/str.h"
#include "util/strv.h"

#define PENDING_MAX (16u << 20)

/* The text past libvirt's leading "<!-- WARNING ... -->" comment and the
 * blank lines after it: libvirt writes its own header when it saves. */
static const char *body(const char *t)
{
    while (*t == ' ' || *t == '\n')
        t++;
    if (strncmp(t, "<!--", 4) == 0) {
        const char *end = strstr(t, "-->");
        if (end)
            t = end + 3;
    }
    while (*t == ' ' || *t == '\n')
        t++;
    return t;
}

static bool same_text(const char *a_path, const char *b_path)
{
    char *a = NULL, *b = NULL;
    size_t al, bl;
    bool ae = false, be = false;
    bool same = es_read_file_if_exists(a_path, PENDING_MAX, &a, &al, &ae, NULL) == 0 &&
                es_read_file_if_exists(b_path, PENDING_MAX, &b, &bl, &be, NULL) == 0 && ae && be &&
                strcmp(body(a), body(b)) == 0;
    free(a);
    free(b);
    return same;
}

/* Is entry name of the pending directory applied? */
static bool applied(const snap_ctx *c, const char *dir, const char *name)
{
    size_t n = strlen(name);
    if (n <= 4 || strcmp(name + n - 4, ".xml") != 0 || name[0] == '.')
        return false; /* not one extsnap writes there (or a temporary one) */
    char *mine = NULL, *theirs = NULL;
    bool ok = false;
    if (es_asprintf(&mine, NULL, "%s/%s", dir, name) == 0) {
        if (n - 4 == strlen(c->name) && strncmp(name, c->name, n - 4) == 0)
            ok = same_text(mine, c->config_host);
        else if (es_asprintf(&theirs, NULL, "%s/%s/%s", c->snapshot_dir_host, c->name, name) == 0)
            ok = same_text(mine, theirs);
    }
    free(mine);
    free(theirs);
    return ok;
}

void snap_pending_tidy(const snap_ctx *c)
{
    char *dir = NULL;
    if (es_asprintf(&dir, NULL, "%s/%s.extsnap-pending", c->snapshot_dir_host, c->name) < 0)
        return;
    DIR *d = es_fs_opendir(dir);
    if (!d) {
        free(dir);
        return;
    }
    bool done = true;
    struct dirent *de;
    while (done && (de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            done = applied(c, dir, de->d_name);
    if (done) {
        rewinddir(d);
        while (done && (de = readdir(d))) {
            char *p = NULL;
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            done = es_asprintf(&p, NULL, "%s/%s", dir, de->d_name) == 0 &&
                   es_fs_unlink(p, NULL) == 0;
            free(p);
        }
    }
    closedir(d);
    if (done && es_fs_rmdir(dir, NULL) == 0)
        (void)es_fsync_parent(dir, NULL);
    free(dir);
}
