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

const char *es_root_strip_prefix(const char *root, const char *name)
{
    if (!root || !root[0] || !name || name[0] != '/')
        return NULL;
    char *real = realpath(root, NULL);
    const char *prefixes[] = {root, real}, *host = NULL;
    for (size_t i = 0; i < 2 && !host; i++) {
        if (!prefixes[i])
            continue;
        size_t n = strlen(prefixes[i]);
        while (n > 1 && prefixes[i][n - 1] == '/')
            n--;
        if (n > 1 && strncmp(name, prefixes[i], n) == 0 && name[n] == '/')
            host = name + n;
    }
    free(real);
    return host;
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

/* The root's real path, checked to be a directory and made the I/O
 * layer's root: the string made here is checked now; what opens it later
 * must stay inside the root even if the tree changes in between. */
static int take_root(const char *root, char **realroot, es_err *e)
{
    *realroot = realpath(root, NULL);
    if (!*realroot)
        return es_err_set(e, errno, root, "cannot resolve the root directory");
    struct stat st;
    if (stat(*realroot, &st) < 0 || !S_ISDIR(st.st_mode)) {
        int err = errno ? errno : ENOTDIR;
        free(*realroot);
        *realroot = NULL;
        return es_err_set(e, err, root, "the root is not a directory");
    }
    if (es_io_root_set(*realroot, e) < 0) {
        free(*realroot);
        *realroot = NULL;
        return -1;
    }
    return 0;
}

/* A walk of path under the root, one component at a time. */
typedef struct root_walk {
    const char *path, *realroot; /* for messages */
    pathbuf res;   /* resolved so far (a host path) */
    size_t floor;  /* res's length at the root: '..' stops there */
    char *pending; /* what is left to walk, from pos */
    size_t pos;
    int links;     /* symbolic links followed */
} root_walk;

/* res (its last component, added at length before) is a symbolic link:
 * walk its target next, then the rest. An absolute target starts again at
 * the root; a relative one from the link's directory. Either way its ".."
 * are checked as any other. */
static int follow_link(root_walk *w, size_t before, size_t size_hint, es_err *e)
{
    if (++w->links > ES_ROOT_MAX_SYMLINKS)
        return es_err_set(e, ELOOP, w->path, "too many symbolic links under the root directory");
    char *target = read_link(w->res.s, size_hint);
    if (!target)
        return es_err_set(e, errno ? errno : ENOMEM, w->res.s, "cannot read symbolic link");
    pb_truncate(&w->res, target[0] == '/' ? w->floor : before);
    splice_pending(&w->pending, w->pending + w->pos, target);
    free(target);
    w->pos = 0;
    return 0;
}

/* One component (comp, clen bytes) of the pending path. */
static int walk_component(root_walk *w, const char *comp, size_t clen, es_err *e)
{
    if (clen == 1 && comp[0] == '.')
        return 0;
    if (clen == 2 && comp[0] == '.' && comp[1] == '.') {
        if (w->res.len == w->floor)
            return es_err_set(e, 0, w->path, "%s leads outside the root directory %s",
                              w->links ? "a symbolic link" : "'..'", w->realroot);
        pb_pop(&w->res, w->floor);
        return 0;
    }
    size_t before = w->res.len;
    pb_append(&w->res, "/", 1);
    pb_append(&w->res, comp, clen);
    struct stat st;
    if (es_fs_lstat(w->res.s, &st) < 0) {
        /* Not there (yet): the rest is taken as written. */
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return es_err_set(e, errno, w->res.s, "cannot examine path under the root directory");
    }
    if (!S_ISLNK(st.st_mode))
        return 0;
    return follow_link(w, before, (size_t)st.st_size, e);
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
    char *realroot;
    if (take_root(root, &realroot, e) < 0)
        return -1;

    /* With root "/", paths are already host paths: keep them single-slashed. */
    const char *base = strcmp(realroot, "/") == 0 ? "" : realroot;
    root_walk w = {.path = path, .realroot = realroot, .floor = strlen(base),
                   .pending = es_xstrdup(path)};
    int rc = -1;
    pb_append(&w.res, base, w.floor);
    for (;;) {
        while (w.pending[w.pos] == '/')
            w.pos++;
        if (!w.pending[w.pos])
            break;
        size_t start = w.pos;
        while (w.pending[w.pos] && w.pending[w.pos] != '/')
            w.pos++;
        if (walk_component(&w, w.pending + start, w.pos - start, e) < 0)
            goto out;
    }
    if (w.res.len == 0)
        pb_append(&w.res, "/", 1);
    *out = w.res.s;
    w.res.s = NULL;
    rc = 0;
out:
    free(w.res.s);
    free(w.pending);
    free(realroot);
    return rc;
}
