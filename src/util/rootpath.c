#include "util/rootpath.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/xalloc.h"

/* Same limit as the kernel's path walk (MAXSYMLINKS). */
#define ES_ROOT_MAX_SYMLINKS 40

typedef struct {
    char *s;
    size_t len, cap;
} pathbuf;

static void pb_reserve(pathbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->s = es_xrealloc(b->s, cap);
    b->cap = cap;
}

static void pb_append(pathbuf *b, const char *s, size_t n)
{
    pb_reserve(b, n);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void pb_truncate(pathbuf *b, size_t len)
{
    b->len = len;
    if (b->s)
        b->s[len] = '\0';
}

/* Drop the last "/component" of b, never going below floor. */
static void pb_pop(pathbuf *b, size_t floor)
{
    size_t i = b->len;
    while (i > floor && b->s[i - 1] != '/')
        i--;
    if (i > floor)
        i--; /* the '/' itself */
    pb_truncate(b, i < floor ? floor : i);
}

int es_path_join(const char *dir, const char *name, char **out, es_err *e)
{
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    while (*name == '/')
        name++;
    size_t nl = strlen(name);
    bool slash = !(dl > 0 && dir[dl - 1] == '/');
    (void)e;
    char *p = es_xmalloc(dl + (slash ? 1 : 0) + nl + 1);
    memcpy(p, dir, dl);
    size_t at = dl;
    if (slash)
        p[at++] = '/';
    memcpy(p + at, name, nl);
    p[at + nl] = '\0';
    *out = p;
    return 0;
}

static char *read_link(const char *path, size_t hint)
{
    size_t cap = hint ? hint + 1 : 256;
    for (;;) {
        char *buf = es_xmalloc(cap);
        ssize_t n = es_fs_readlink(path, buf, cap);
        if (n < 0) {
            free(buf);
            return NULL;
        }
        if ((size_t)n < cap) {
            buf[n] = '\0';
            return buf;
        }
        free(buf);
        cap *= 2;
    }
}

/* Replace *pending (the components not yet walked, starting at rest) with
 * target + "/" + rest. */
static void splice_pending(char **pending, const char *rest, const char *target)
{
    size_t tl = strlen(target), rl = strlen(rest);
    char *p = es_xmalloc(tl + 1 + rl + 1);
    memcpy(p, target, tl);
    p[tl] = '/';
    memcpy(p + tl + 1, rest, rl + 1);
    free(*pending);
    *pending = p;
}

int es_root_resolve(const char *root, const char *path, char **out, es_err *e)
{
    *out = NULL;
    if (!path || !*path)
        return es_err_set(e, EINVAL, root, "empty path");
    if (!root || !*root) {
        *out = es_xstrdup(path);
        return 0;
    }

    char *realroot = realpath(root, NULL);
    if (!realroot)
        return es_err_set(e, errno, root, "cannot resolve the root directory");
    struct stat st;
    if (stat(realroot, &st) < 0 || !S_ISDIR(st.st_mode)) {
        int err = errno ? errno : ENOTDIR;
        free(realroot);
        return es_err_set(e, err, root, "the root is not a directory");
    }
    /* The string made here is checked now; what opens it later must stay
     * inside the root even if the tree changes in between. */
    if (es_io_root_set(realroot, e) < 0) {
        free(realroot);
        return -1;
    }

    pathbuf res = {0};
    /* With root "/", paths are already host paths: keep them single-slashed. */
    const char *base = strcmp(realroot, "/") == 0 ? "" : realroot;
    size_t floor = strlen(base);
    char *pending = es_xstrdup(path);
    int links = 0, rc = -1;
    pb_append(&res, base, floor);

    size_t pos = 0;
    for (;;) {
        while (pending[pos] == '/')
            pos++;
        if (!pending[pos])
            break;
        size_t start = pos;
        while (pending[pos] && pending[pos] != '/')
            pos++;
        size_t clen = pos - start;
        const char *comp = pending + start;

        if (clen == 1 && comp[0] == '.')
            continue;
        if (clen == 2 && comp[0] == '.' && comp[1] == '.') {
            if (res.len == floor) {
                es_err_set(e, 0, path, "%s leads outside the root directory %s",
                           links ? "a symbolic link" : "'..'", realroot);
                goto out;
            }
            pb_pop(&res, floor);
            continue;
        }

        size_t before = res.len;
        pb_append(&res, "/", 1);
        pb_append(&res, comp, clen);
        if (es_fs_lstat(res.s, &st) < 0) {
            /* Not there (yet): the rest is taken as written. */
            if (errno == ENOENT || errno == ENOTDIR)
                continue;
            es_err_set(e, errno, res.s, "cannot examine path under the root directory");
            goto out;
        }
        if (!S_ISLNK(st.st_mode))
            continue;

        if (++links > ES_ROOT_MAX_SYMLINKS) {
            es_err_set(e, ELOOP, path, "too many symbolic links under the root directory");
            goto out;
        }
        char *target = read_link(res.s, (size_t)st.st_size);
        if (!target) {
            es_err_set(e, errno, res.s, "cannot read symbolic link");
            goto out;
        }
        /* An absolute target starts again at the root; a relative one from
         * the link's directory. Either way its ".." are checked as above. */
        pb_truncate(&res, target[0] == '/' ? floor : before);
        splice_pending(&pending, pending + pos, target);
        free(target);
        pos = 0;
    }

    if (res.len == 0)
        pb_append(&res, "/", 1);
    *out = res.s;
    res.s = NULL;
    rc = 0;
out:
    free(res.s);
    free(pending);
    free(realroot);
    return rc;
}
