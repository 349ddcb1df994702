#include "snap/graph/chain.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/image.h"
#include "util/str.h"
#include "util/strv.h"
#include "util/xalloc.h"

void snap_chain_free(snap_chain *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].filename);
        free(c->v[i].format);
        free(c->v[i].backing);
        free(c->v[i].backing_format);
    }
    free(c->v);
    free(c->error);
    memset(c, 0, sizeof *c);
}

static int stop_with(snap_chain *c, const es_err *why, es_err *e)
{
    char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
    es_err_str(why, buf, sizeof buf);
    return es_strdup(buf, &c->error, e);
}

static int add_link(snap_chain *c, const es_image *img, es_err *e)
{
    snap_chain_link *v = es_xreallocarray(c->v, c->n + 1, sizeof *v);
    c->v = v;
    snap_chain_link *l = &v[c->n];
    memset(l, 0, sizeof *l);
    c->n++;
    l->dev = img->st_dev;
    l->ino = img->st_ino;
    l->virtual_size = img->virtual_size;
    uint64_t alloc = 0;
    if (es_file_allocated(img->file, &alloc, NULL) == 0)
        l->actual_size = alloc;
    const char *bf = img->format == ES_FMT_QCOW2 ? img->hdr.backing_file : NULL;
    const char *bfmt = img->format == ES_FMT_QCOW2 ? img->hdr.backing_format : NULL;
    if (es_strdup(img->filename, &l->filename, e) < 0 ||
        es_strdup(img->format == ES_FMT_QCOW2 ? "qcow2" : "raw", &l->format, e) < 0 ||
        es_strdup(bf, &l->backing, e) < 0 || es_strdup(bfmt, &l->backing_format, e) < 0)
        return -1;
    return 0;
}

int snap_chain_walk(const char *root, const char *path, const char *format, snap_chain *out,
                    es_err *e)
{
    memset(out, 0, sizeof *out);
    char *cur = NULL, *fmt = NULL;
    if (es_strdup(path, &cur, e) < 0 || es_strdup(format, &fmt, e) < 0) {
        free(cur);
        return -1;
    }
    int rc = 0;
    while (cur) {
        es_err why = {0};
        if (out->n >= ES_CHAIN_MAX_DEPTH) {
            es_err_set(&why, 0, cur, "backing chain is deeper than %d images", ES_CHAIN_MAX_DEPTH);
            rc = stop_with(out, &why, e);
            break;
        }
        es_open_opts o = {.no_backing = true, .format = fmt, .root = root, .force_share = true};
        es_image *img = NULL;
        if (es_image_open(&img, cur, &o, &why) < 0) {
            rc = stop_with(out, &why, e);
            break;
        }
        for (size_t i = 0; i < out->n; i++) {
            if (out->v[i].dev == img->st_dev && out->v[i].ino == img->st_ino) {
                es_err_set(&why, 0, cur, "backing chain loops back to %s", out->v[i].filename);
                break;
            }
        }
        if (why.msg[0]) {
            es_image_close(img);
            rc = stop_with(out, &why, e);
            break;
        }
        if (add_link(out, img, e) < 0) {
            es_image_close(img);
            rc = -1;
            break;
        }
        char *next = NULL, *next_fmt = NULL;
        if (img->format == ES_FMT_QCOW2 && img->hdr.backing_file) {
            char *open_path = NULL;
            if (es_backing_resolve(img->filename, img->hdr.backing_file, root, &next, &open_path,
                                   &why) < 0) {
                es_image_close(img);
                rc = stop_with(out, &why, e);
                break;
            }
            free(open_path);
            if (es_strdup(img->hdr.backing_format, &next_fmt, e) < 0) {
                free(next);
                es_image_close(img);
                rc = -1;
                break;
            }
        }
        es_image_close(img);
        free(cur);
        free(fmt);
        cur = next;
        fmt = next_fmt;
    }
    free(cur);
    free(fmt);
    if (rc < 0)
        snap_chain_free(out);
    return rc;
}
