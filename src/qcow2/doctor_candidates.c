/* Candidates for a missing backing file: list the search directories,
 * open every regular file's header, rule out what cannot be the file,
 * rank the rest by evidence, and pick one only when it stands alone. */
#include "qcow2/doctor_candidates.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qcow2/doctor_content.h"
#include "util/fileio.h"
#include "util/rootpath.h"
#include "util/str.h"
#include "util/xalloc.h"

/* A record in the domain's metadata outweighs the name and cluster size
 * together: it names this very file (by identity), they only resemble it. */
#define SCORE_RECORDED 4
#define SCORE_SAME_NAME 2
#define SCORE_SAME_CLUSTER 1

qcow2_doctor_id qcow2_doctor_id_of(const es_image *img)
{
    qcow2_doctor_id id = {img->st_dev, img->st_ino};
    return id;
}

static bool id_in(const qcow2_doctor_id *ids, size_t n, qcow2_doctor_id id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i].dev == id.dev && ids[i].ino == id.ino)
            return true;
    return false;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A directory to search, once: its host name, and its identity. */
typedef struct search_dir {
    char *name;
    qcow2_doctor_id id;
} search_dir;

static void add_dir(search_dir **dirs, size_t *n, const char *root, const char *name)
{
    char *open_path = NULL;
    struct stat st;
    es_err ignored;
    if (es_root_resolve(root, name, &open_path, &ignored) < 0)
        return;
    int r = es_fs_stat(open_path, &st);
    free(open_path);
    if (r < 0 || !S_ISDIR(st.st_mode))
        return;
    qcow2_doctor_id id = {(uint64_t)st.st_dev, (uint64_t)st.st_ino};
    for (size_t i = 0; i < *n; i++)
        if ((*dirs)[i].id.dev == id.dev && (*dirs)[i].id.ino == id.ino)
            return;
    *dirs = es_xreallocarray(*dirs, *n + 1, sizeof **dirs);
    (*dirs)[*n].name = es_xstrdup(name);
    (*dirs)[*n].id = id;
    (*n)++;
}

/* Does cand's backing chain (cand included) reach an image of ids? The walk
 * follows header names as QEMU would and stops where the chain breaks. */
static bool chain_reaches(es_image *cand, const char *root, const qcow2_doctor_id *ids, size_t n,
                          char **via)
{
    es_image *cur = cand;
    bool hit = false;
    for (int depth = 0; depth <= ES_CHAIN_MAX_DEPTH; depth++) {
        if (id_in(ids, n, qcow2_doctor_id_of(cur))) {
            *via = es_xstrdup(cur->filename);
            hit = true;
            break;
        }
        if (cur->format != ES_FMT_QCOW2 || !cur->hdr.backing_file)
            break;
        char *display = NULL, *open_path = NULL;
        es_err ignored;
        es_image *next = NULL;
        es_open_opts oo = {.no_backing = true, .root = root, .force_share = true,
                           .format = cur->hdr.backing_format};
        if (es_backing_resolve(cur->filename, cur->hdr.backing_file, root, &display, &open_path,
                               &ignored) == 0)
            (void)es_image_open(&next, display, &oo, &ignored);
        free(display);
        free(open_path);
        if (cur != cand)
            es_image_close(cur);
        cur = next;
        if (!cur)
            break;
    }
    if (cur && cur != cand)
        es_image_close(cur);
    return hit;
}

static void append(char **s, const char *a, const char *b, const char *c)
{
    char *t = es_xasprintf("%s%s%s%s", *s, a, b, c);
    free(*s);
    *s = t;
}

/* Judge one opened file. Returns false when it is not worth listing. */
static bool judge(const qcow2_doctor_orphan *o, const qcow2_doctor_opts *opts, es_image *img,
                  const char *missing_base, qcow2_doctor_candidate *c)
{
    const char *root = opts->root;
    const es_image *child = o->child;
    const char *hint = child->hdr.backing_format;
    const char *fmt = qcow2_doctor_format_name(img->format);
    /* Every file opens as raw: without a raw hint raw files are no evidence. */
    if (img->format == ES_FMT_RAW && !(hint && strcmp(hint, "raw") == 0))
        return false;
    if (img->format == ES_FMT_RAW && img->virtual_size != child->virtual_size)
        return false;
    c->format = img->format;
    c->virtual_size = img->virtual_size;
    c->cluster_size = img->format == ES_FMT_QCOW2 ? img->cluster_size : 0;
    for (size_t i = 0; i < opts->nexclude; i++) {
        if (opts->exclude[2 * i] == img->st_dev && opts->exclude[2 * i + 1] == img->st_ino) {
            c->rejected = es_xstrdup(opts->exclude_why ? opts->exclude_why : "excluded");
            return true;
        }
    }
    char *via = NULL;
    if (chain_reaches(img, root, o->chain, o->nchain, &via)) {
        c->rejected = es_xasprintf("its backing chain contains %s: choosing it makes a loop", via);
        free(via);
        return true;
    }
    if (hint && strcmp(hint, fmt) != 0) {
        c->rejected = es_xasprintf("format %s, but %s names a %s backing file", fmt,
                                   child->filename, hint);
        return true;
    }
    if (img->virtual_size != child->virtual_size) {
        c->rejected = es_xasprintf("virtual size %llu, not the %llu of %s",
                                   (unsigned long long)img->virtual_size,
                                   (unsigned long long)child->virtual_size, child->filename);
        return true;
    }
    /* Built piece by piece: names can be as long as paths are. */
    char *ev = es_xasprintf("%s, virtual size %llu", fmt, (unsigned long long)img->virtual_size);
    if (hint)
        append(&ev, " (as ", child->filename, " names it)");
    for (size_t i = 0; i < opts->nrecords; i++) {
        const qcow2_doctor_record *r = &opts->records[i];
        if (r->child_dev == child->st_dev && r->child_ino == child->st_ino &&
            r->backing_dev == img->st_dev && r->backing_ino == img->st_ino) {
            c->score += SCORE_RECORDED;
            append(&ev, "; ", r->why, "");
            break;
        }
    }
    if (strcmp(base_name(img->filename), missing_base) == 0) {
        c->score += SCORE_SAME_NAME;
        append(&ev, "; same file name", "", "");
    }
    if (img->format == ES_FMT_QCOW2 && img->cluster_size == child->cluster_size) {
        c->score += SCORE_SAME_CLUSTER;
        append(&ev, "; same cluster size", "", "");
    }
    c->evidence = ev;
    return true;
}

/* The sorted entry names of a directory (none when it cannot be read). */
static char **list_dir(const char *open_path, size_t *n)
{
    *n = 0;
    DIR *dp = es_fs_opendir(open_path);
    if (!dp)
        return NULL;
    char **v = NULL;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        v = es_xreallocarray(v, *n + 1, sizeof *v);
        v[(*n)++] = es_xstrdup(de->d_name);
    }
    closedir(dp);
    if (*n)
        qsort(v, *n, sizeof *v, by_name);
    return v;
}

static int scan_dir(const qcow2_doctor_orphan *o, const qcow2_doctor_opts *opts, const search_dir *d,
                    const char *missing_base, qcow2_doctor_id **seen, size_t *nseen,
                    qcow2_doctor_candidate **out, size_t *n, es_err *e)
{
    const char *root = opts->root;
    char *dir_open = NULL;
    if (es_root_resolve(root, d->name, &dir_open, e) < 0)
        return -1;
    size_t count = 0;
    char **names = list_dir(dir_open, &count);
    free(dir_open);
    for (size_t i = 0; i < count; i++) {
        char *name = NULL, *open_path = NULL;
        es_err ignored;
        struct stat st;
        name = strcmp(d->name, "/") == 0 ? es_xasprintf("/%s", names[i])
                                          : es_xasprintf("%s/%s", d->name, names[i]);
        if (es_root_resolve(root, name, &open_path, &ignored) < 0 ||
            es_fs_stat(open_path, &st) < 0 || !S_ISREG(st.st_mode))
            goto next;
        qcow2_doctor_id id = {(uint64_t)st.st_dev, (uint64_t)st.st_ino};
        /* The chain's own images, and a file seen under another name. */
        if (id_in(o->chain, o->nchain, id) || id_in(*seen, *nseen, id))
            goto next;
        *seen = es_xreallocarray(*seen, *nseen + 1, sizeof **seen);
        (*seen)[(*nseen)++] = id;
        es_image *img = NULL;
        es_open_opts oo = {.no_backing = true, .root = root, .force_share = true};
        if (es_image_open(&img, name, &oo, &ignored) < 0)
            goto next; /* not an image we can read: not a candidate */
        qcow2_doctor_candidate c = {0};
        c.filename = name;
        if (judge(o, opts, img, missing_base, &c)) {
            *out = es_xreallocarray(*out, *n + 1, sizeof **out);
            (*out)[(*n)++] = c;
            name = NULL;
        }
        es_image_close(img);
    next:
        free(name);
        free(open_path);
    }
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    return 0;
}

/* The content evidence, in words, after the rest of the evidence. */
static void describe_content(qcow2_doctor_candidate *c)
{
    const qcow2_doctor_content *ct = &c->content;
    char *more = NULL;
    if (ct->unreadable)
        more = es_xasprintf("; content not compared (%s)", ct->unreadable);
    else if (ct->measured)
        more = es_xasprintf("; content: %llu of %llu non-zero sectors equal, in %llu of %llu "
                            "sampled clusters (of %llu with data)",
                            (unsigned long long)ct->matching_sectors,
                            (unsigned long long)ct->compared_sectors,
                            (unsigned long long)ct->matching_clusters,
                            (unsigned long long)ct->sampled_clusters,
                            (unsigned long long)ct->allocated_clusters);
    if (!more)
        return;
    char *ev = es_xasprintf("%s%s", c->evidence ? c->evidence : "", more);
    free(c->evidence);
    free(more);
    c->evidence = ev;
}

int qcow2_doctor_find_candidates(const qcow2_doctor_orphan *o, const qcow2_doctor_opts *opts,
                                 qcow2_doctor_candidate **out, size_t *n, long *chosen,
                                 es_err *e)
{
    *out = NULL;
    *n = 0;
    *chosen = -1;
    search_dir *dirs = NULL;
    size_t ndirs = 0;
    if (opts->nsearch) {
        for (size_t i = 0; i < opts->nsearch; i++)
            add_dir(&dirs, &ndirs, opts->root, opts->search[i]);
    } else {
        char *a = es_path_dir(o->child->filename), *b = es_path_dir(o->missing_display);
        add_dir(&dirs, &ndirs, opts->root, a);
        add_dir(&dirs, &ndirs, opts->root, b);
        free(a);
        free(b);
    }
    qcow2_doctor_id *seen = NULL;
    size_t nseen = 0;
    int rc = 0;
    for (size_t i = 0; i < ndirs && rc == 0; i++)
        rc = scan_dir(o, opts, &dirs[i], base_name(o->missing_display), &seen, &nseen, out,
                      n, e);
    for (size_t i = 0; i < ndirs; i++)
        free(dirs[i].name);
    free(dirs);
    free(seen);
    if (rc < 0) {
        qcow2_doctor_candidates_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    int best = -1;
    size_t at_best = 0;
    for (size_t i = 0; i < *n; i++) {
        if ((*out)[i].rejected)
            continue;
        if ((*out)[i].score > best) {
            best = (*out)[i].score;
            at_best = 0;
            *chosen = (long)i;
        }
        if ((*out)[i].score == best)
            at_best++;
    }
    if (at_best > 1) {
        *chosen = qcow2_doctor_content_rank(o->child, opts->root, *out, *n, best);
        for (size_t i = 0; i < *n; i++)
            describe_content(&(*out)[i]);
    } else if (at_best != 1) {
        *chosen = -1;
    }
    if (*chosen >= 0)
        (*out)[*chosen].chosen = true;
    return 0;
}

void qcow2_doctor_candidates_free(qcow2_doctor_candidate *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].filename);
        free(c[i].evidence);
        free(c[i].rejected);
        free(c[i].content.unreadable);
    }
    free(c);
}
