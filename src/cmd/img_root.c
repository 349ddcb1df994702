#include "cmd/img_root.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/rootpath.h"
#include "util/xalloc.h"

int es_img_root_check(const es_cmd *cmd, const char *root, int fail_status)
{
    if (!root)
        return -1;
    if (!root[0])
        return es_cmd_usage_error(cmd, "--root needs a directory (it is empty)");
    struct stat st;
    if (stat(root, &st) < 0) {
        es_cmd_errorf(cmd->name, "--root %s: %s", root, strerror(errno));
        return fail_status;
    }
    if (!S_ISDIR(st.st_mode)) {
        es_cmd_errorf(cmd->name, "--root %s: not a directory", root);
        return fail_status;
    }
    return -1;
}

int es_img_root_name(const char *root, const char *arg, char **out, es_err *e)
{
    (void)e;
    *out = root && root[0] && arg[0] != '/' ? es_xasprintf("/%s", arg) : es_xstrdup(arg);
    return 0;
}

int es_img_root_open_path(const char *root, const char *name, char **out, es_err *e)
{
    if (es_root_resolve(root, name, out, e) < 0) {
        /* The walk names the component it stopped at; the user gave name. */
        if (strcmp(e->path, name) != 0 && strcmp(e->path, root) != 0) {
            char where[ES_ERR_PATH_MAX];
            snprintf(where, sizeof where, "%s", e->path);
            snprintf(e->path, sizeof e->path, "%s", name);
            if (where[0])
                es_err_prefix(e, "at %s", where);
        }
        return -1;
    }
    return 0;
}

void es_img_root_fix_err(es_err *e, const char *root, const char *open_path, const char *name)
{
    if (!root || !root[0])
        return;
    if (open_path && strcmp(e->path, open_path) == 0 && strcmp(open_path, name) != 0) {
        snprintf(e->path, sizeof e->path, "%s", name);
        es_err_prefix(e, "at %s", open_path);
    }
    if (e->errnum != ENOENT || strcmp(e->path, name) != 0)
        return;
    /* Say where under the root it was looked for. */
    char *at = NULL;
    es_err ignored;
    if (!open_path && es_root_resolve(root, name, &at, &ignored) == 0 && strcmp(at, name) != 0 &&
        !strstr(e->msg, at))
        es_err_prefix(e, "at %s", at);
    free(at);
    char *real = realpath(root, NULL);
    if (!real)
        return;
    size_t n = strlen(real);
    if (n > 1 && strncmp(name, real, n) == 0 && name[n] == '/') {
        /* A rescue-shell path given where the host's path is expected. */
        char msg[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
        int len = snprintf(msg, sizeof msg, "%s (with --root, give the host's path: '%s')", e->msg,
                           name + n);
        /* Truncation is fine: messages are for humans. */
        size_t keep = len < 0 ? 0 : (size_t)len < sizeof e->msg ? (size_t)len : sizeof e->msg - 1;
        memcpy(e->msg, msg, keep);
        e->msg[keep] = '\0';
    }
    free(real);
}
