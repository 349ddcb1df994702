#include "qmp/qmp_nodes.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmp/qmp_json.h"
#include "qmp/qmp_msg.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

/* Drivers that sit in a chain without being an image of it (block jobs
 * insert mirror_top/commit_top above the active layer while they run). */
static const char *const filter_drivers[] = {
    "mirror_top", "commit_top", "copy-on-read", "throttle", "preallocate",
    "compress", "copy-before-write", "blklogwrites", NULL,
};

static bool is_filter(const char *drv)
{
    for (size_t i = 0; drv && filter_drivers[i]; i++)
        if (strcmp(drv, filter_drivers[i]) == 0)
            return true;
    return false;
}

/* ---- plain file names ---- */

char *qmp_plain_filename(const char *qemu_name)
{
    if (!qemu_name)
        return NULL;
    if (strncmp(qemu_name, "json:", 5) != 0)
        return es_xstrdup(qemu_name);
    const char *text = qemu_name + 5;
    json_tokener *tok = es_xcheck(json_tokener_new_ex(QMP_JSON_MAX_DEPTH));
    size_t len = strlen(text);
    json_object *root =
        len < INT_MAX ? json_tokener_parse_ex(tok, text, (int)len + 1) : NULL;
    json_tokener_free(tok);
    /* Follow the data path down to the protocol layer: format -> "file",
     * blkdebug/blkverify -> "image"; "backing" is another image, ignored. */
    json_object *cur = root;
    char *out = NULL;
    for (int guard = 0; cur && guard < QMP_JSON_MAX_DEPTH; guard++) {
        const char *fn = qmp_json_str(cur, "filename");
        if (fn) {
            out = es_xstrdup(fn);
            break;
        }
        json_object *next = qmp_json_member(cur, "file", json_type_object);
        if (!next)
            next = qmp_json_member(cur, "image", json_type_object);
        cur = next;
    }
    json_object_put(root);
    return out;
}

/* ---- model of QEMU's block graph ---- */

typedef struct bnode {
    const char *name;
    const char *drv;
    const char *file; /* QEMU's name, maybe json: */
    bool ro;
    json_object *bitmaps; /* "dirty-bitmaps" of the reply (borrowed), may be NULL */
    int64_t gid;      /* id in x-debug-query-block-graph, -1 if none */
    struct bnode *backing;
    struct bnode *file_child;
    int node_parents; /* parents that are nodes (not BlockBackends) */
} bnode;

typedef struct model {
    bnode *nodes;
    size_t n;
    bool have_graph;
    json_object *query_block;
} model;

static bnode *node_by_name(model *m, const char *name)
{
    for (size_t i = 0; name && i < m->n; i++)
        if (strcmp(m->nodes[i].name, name) == 0)
            return &m->nodes[i];
    return NULL;
}

static bnode *node_by_gid(model *m, int64_t gid)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->nodes[i].gid == gid)
            return &m->nodes[i];
    return NULL;
}

static int load_graph(model *m, json_object *graph, es_err *e)
{
    json_object *nodes = qmp_json_member(graph, "nodes", json_type_array);
    json_object *edges = qmp_json_member(graph, "edges", json_type_array);
    if (!nodes || !edges)
        return es_err_set(e, 0, NULL, "x-debug-query-block-graph: no nodes or edges list");
    for (size_t i = 0; i < json_object_array_length(nodes); i++) {
        json_object *g = json_object_array_get_idx(nodes, i);
        json_object *id = qmp_json_member(g, "id", json_type_int);
        const char *type = qmp_json_str(g, "type");
        bnode *b = node_by_name(m, qmp_json_str(g, "name"));
        if (id && b && type && strcmp(type, "block-driver") == 0)
            b->gid = json_object_get_int64(id);
    }
    for (size_t i = 0; i < json_object_array_length(edges); i++) {
        json_object *edge = json_object_array_get_idx(edges, i);
        json_object *pid = qmp_json_member(edge, "parent", json_type_int);
        json_object *cid = qmp_json_member(edge, "child", json_type_int);
        const char *role = qmp_json_str(edge, "name");
        if (!pid || !cid || !role)
            continue;
        bnode *child = node_by_gid(m, json_object_get_int64(cid));
        bnode *parent = node_by_gid(m, json_object_get_int64(pid));
        /* Parents that are not nodes (BlockBackends, block jobs) do not make
         * the child part of another chain. */
        if (!child || !parent)
            continue;
        child->node_parents++;
        if (strcmp(role, "backing") == 0)
            parent->backing = child;
        else if (strcmp(role, "file") == 0)
            parent->file_child = child;
    }
    m->have_graph = true;
    return 0;
}

static int model_load(model *m, json_object *query_block, json_object *named,
                      json_object *graph, es_err *e)
{
    memset(m, 0, sizeof *m);
    if (!json_object_is_type(query_block, json_type_array))
        return es_err_set(e, 0, NULL, "query-block did not return a list");
    if (!json_object_is_type(named, json_type_array))
        return es_err_set(e, 0, NULL, "query-named-block-nodes did not return a list");
    m->query_block = query_block;
    size_t n = json_object_array_length(named);
    m->nodes = es_xcalloc(n, sizeof *m->nodes);
    for (size_t i = 0; i < n; i++) {
        json_object *info = json_object_array_get_idx(named, i);
        const char *name = qmp_json_str(info, "node-name");
        if (!name)
            continue; /* unnamed nodes cannot be addressed anyway */
        bnode *b = &m->nodes[m->n++];
        b->name = name;
        b->drv = qmp_json_str(info, "drv");
        b->file = qmp_json_str(info, "file");
        b->ro = qmp_json_bool(info, "ro", false);
        json_object *bms = qmp_json_member(info, "dirty-bitmaps", json_type_array);
        b->bitmaps = bms;
        b->gid = -1;
    }
    if (graph && load_graph(m, graph, e) < 0) {
        free(m->nodes);
        m->nodes = NULL;
        return -1;
    }
    return 0;
}

static void model_free(model *m)
{
    free(m->nodes);
}

/* query-block entry for a device name or qdev id. */
static json_object *backend_by_name(model *m, const char *name)
{
    size_t n = json_object_array_length(m->query_block);
    for (size_t i = 0; name && name[0] && i < n; i++) {
        json_object *dev = json_object_array_get_idx(m->query_block, i);
        const char *d = qmp_json_str(dev, "device");
        const char *q = qmp_json_str(dev, "qdev");
        if ((d && strcmp(d, name) == 0) || (q && strcmp(q, name) == 0))
            return dev;
    }
    return NULL;
}

/* query-block entry whose root node is node_name. */
static json_object *backend_of_root(model *m, const char *node_name)
{
    size_t n = json_object_array_length(m->query_block);
    for (size_t i = 0; i < n; i++) {
        json_object *dev = json_object_array_get_idx(m->query_block, i);
        json_object *ins = qmp_json_member(dev, "inserted", json_type_object);
        const char *root = qmp_json_str(ins, "node-name");
        if (root && strcmp(root, node_name) == 0)
            return dev;
    }
    return NULL;
}

static const char *backend_label(json_object *dev)
{
    const char *d = qmp_json_str(dev, "device");
    if (d && d[0])
        return d;
    return qmp_json_str(dev, "qdev");
}

/* ---- chains ---- */

static int chain_push(qmp_chain *ch, const bnode *b, es_err *e)
{
    (void)e;
    ch->nodes = es_xreallocarray(ch->nodes, ch->n + 1, sizeof *ch->nodes);
    qmp_chain_node *x = &ch->nodes[ch->n];
    memset(x, 0, sizeof *x);
    x->node_name = es_xstrdup(b->name);
    x->driver = es_xstrdup(b->drv ? b->drv : "");
    x->filename = qmp_plain_filename(b->file);
    x->read_only = b->ro;
    size_t nb = b->bitmaps ? json_object_array_length(b->bitmaps) : 0;
    x->bitmaps = es_xcalloc(nb + 1, sizeof *x->bitmaps);
    for (size_t k = 0; k < nb; k++) {
        json_object *bm = json_object_array_get_idx(b->bitmaps, k);
        const char *name = qmp_json_str(bm, "name");
        if (!name)
            continue;
        qmp_bitmap *y = &x->bitmaps[x->nbitmaps++];
        y->name = es_xstrdup(name);
        uint64_t g = 0;
        y->granularity = qmp_json_u64(bm, "granularity", &g) ? g : 0;
        y->recording = qmp_json_bool(bm, "recording", false);
        y->persistent = qmp_json_bool(bm, "persistent", false);
        y->inconsistent = qmp_json_bool(bm, "inconsistent", false);
        y->busy = qmp_json_bool(bm, "busy", false);
    }
    ch->n++;
    return 0;
}

static int chain_walk_graph(model *m, bnode *root, qmp_chain *ch, es_err *e)
{
    bnode *cur = root;
    for (size_t guard = 0; cur; guard++) {
        if (guard > m->n)
            return es_err_set(e, 0, NULL, "backing chain of node %s loops", root->name);
        if (is_filter(cur->drv)) {
            cur = cur->backing ? cur->backing : cur->file_child;
            continue;
        }
        if (chain_push(ch, cur, e) < 0)
            return -1;
        cur = cur->backing;
    }
    return 0;
}

static bool same_file(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    if (strcmp(a, b) == 0)
        return true;
    char *ra = realpath(a, NULL), *rb = realpath(b, NULL);
    bool same = ra && rb && strcmp(ra, rb) == 0;
    free(ra);
    free(rb);
    return same;
}

/* Without the graph: the device's image chain from query-block, each image
 * matched to the one node of that driver and file. */
static int chain_walk_images(model *m, json_object *dev, bnode *root, qmp_chain *ch, es_err *e)
{
    json_object *ins = qmp_json_member(dev, "inserted", json_type_object);
    json_object *img = qmp_json_member(ins, "image", json_type_object);
    bool first = true;
    for (size_t guard = 0; img; guard++) {
        if (guard > m->n)
            return es_err_set(e, 0, NULL, "image chain of %s too deep", root->name);
        const char *fmt = qmp_json_str(img, "format");
        if (!is_filter(fmt)) {
            bnode *found = NULL;
            if (first && !is_filter(root->drv)) {
                found = root;
            } else {
                char *want = qmp_plain_filename(qmp_json_str(img, "filename"));
                size_t hits = 0;
                for (size_t i = 0; want && i < m->n; i++) {
                    bnode *b = &m->nodes[i];
                    if (!b->drv || !fmt || strcmp(b->drv, fmt) != 0)
                        continue;
                    char *have = qmp_plain_filename(b->file);
                    if (same_file(have, want)) {
                        found = b;
                        hits++;
                    }
                    free(have);
                }
                if (hits != 1) {
                    es_err_set(e, 0, want, "%s block node for this image in QEMU",
                               hits ? "more than one" : "no");
                    free(want);
                    return -1;
                }
                free(want);
            }
            if (chain_push(ch, found, e) < 0)
                return -1;
            first = false;
        }
        img = qmp_json_member(img, "backing-image", json_type_object);
    }
    return 0;
}

const qmp_bitmap *qmp_chain_node_bitmap(const qmp_chain_node *x, const char *name)
{
    for (size_t k = 0; x && name && k < x->nbitmaps; k++)
        if (strcmp(x->bitmaps[k].name, name) == 0)
            return &x->bitmaps[k];
    return NULL;
}

void qmp_chain_free(qmp_chain *ch)
{
    if (!ch)
        return;
    for (size_t i = 0; i < ch->n; i++) {
        free(ch->nodes[i].node_name);
        free(ch->nodes[i].filename);
        free(ch->nodes[i].driver);
        for (size_t k = 0; k < ch->nodes[i].nbitmaps; k++)
            free(ch->nodes[i].bitmaps[k].name);
        free(ch->nodes[i].bitmaps);
    }
    free(ch->nodes);
    free(ch->device);
    free(ch->root_node);
    memset(ch, 0, sizeof *ch);
}

/* Chain starting at root (device entry may be NULL). */
static int build_chain(model *m, json_object *dev, bnode *root, qmp_chain *out, es_err *e)
{
    memset(out, 0, sizeof *out);
    const char *label = dev ? backend_label(dev) : NULL;
    out->device = es_xstrdup(label);
    out->root_node = es_xstrdup(root->name);
    int rc;
    if (m->have_graph)
        rc = chain_walk_graph(m, root, out, e);
    else if (dev)
        rc = chain_walk_images(m, dev, root, out, e);
    else
        rc = es_err_set(e, 0, NULL,
                        "cannot follow the chain of node %s: QEMU lacks "
                        "x-debug-query-block-graph",
                        root->name);
    if (rc < 0)
        qmp_chain_free(out);
    return rc;
}

int qmp_chain_from_replies(json_object *query_block, json_object *named_nodes,
                           json_object *graph, const char *device_or_node, qmp_chain *out,
                           es_err *e)
{
    memset(out, 0, sizeof *out);
    model m;
    if (model_load(&m, query_block, named_nodes, graph, e) < 0)
        return -1;
    int rc = -1;
    json_object *dev = backend_by_name(&m, device_or_node);
    bnode *root = NULL;
    if (dev) {
        json_object *ins = qmp_json_member(dev, "inserted", json_type_object);
        if (!ins) {
            es_err_set(e, 0, NULL, "QEMU device %s has no medium", device_or_node);
            goto out;
        }
        root = node_by_name(&m, qmp_json_str(ins, "node-name"));
    } else {
        root = node_by_name(&m, device_or_node);
        if (root)
            dev = backend_of_root(&m, root->name);
    }
    if (!root) {
        es_err_set(e, 0, NULL, "QEMU has no block device or node named %s", device_or_node);
        goto out;
    }
    rc = build_chain(&m, dev, root, out, e);
out:
    model_free(&m);
    return rc;
}

/* ---- locating files ---- */

static int add_location(qmp_file_location **locs, size_t *n, const qmp_chain *ch, size_t depth,
                        es_err *e)
{
    (void)e;
    *locs = es_xreallocarray(*locs, *n + 1, sizeof **locs);
    qmp_file_location *l = &(*locs)[*n];
    l->device = es_xstrdup(ch->device);
    l->root_node = es_xstrdup(ch->root_node);
    l->node_name = es_xstrdup(ch->nodes[depth].node_name);
    l->depth = depth;
    (*n)++;
    return 0;
}

/* Is QEMU's (plain) name for a file the file at path? Also tried under
 * fsroot (--root: a QEMU that sees the paths libvirt's files name). */
static bool names_file(const char *qemu_name, const char *path, const char *fsroot)
{
    if (same_file(qemu_name, path))
        return true;
    if (!qemu_name || !fsroot || !fsroot[0] || qemu_name[0] != '/')
        return false;
    char *host = NULL;
    bool same = es_root_resolve(fsroot, qemu_name, &host, NULL) == 0 && same_file(host, path);
    free(host);
    return same;
}

static int locate_in_chain(model *m, json_object *dev, bnode *root, const char *path,
                           const char *fsroot, qmp_file_location **locs, size_t *n, es_err *e)
{
    qmp_chain ch;
    if (build_chain(m, dev, root, &ch, e) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < ch.n && rc == 0; i++)
        if (names_file(ch.nodes[i].filename, path, fsroot))
            rc = add_location(locs, n, &ch, i, e);
    qmp_chain_free(&ch);
    return rc;
}

void qmp_file_locations_free(qmp_file_location *locs, size_t n)
{
    for (size_t i = 0; locs && i < n; i++) {
        free(locs[i].device);
        free(locs[i].root_node);
        free(locs[i].node_name);
    }
    free(locs);
}

int qmp_locate_from_replies(json_object *query_block, json_object *named_nodes,
                            json_object *graph, const char *path, const char *root,
                            qmp_file_location **out, size_t *n, es_err *e)
{
    *out = NULL;
    *n = 0;
    model m;
    if (model_load(&m, query_block, named_nodes, graph, e) < 0)
        return -1;
    int rc = 0;
    if (m.have_graph) {
        /* Every chain starts at a node no other node uses. */
        for (size_t i = 0; i < m.n && rc == 0; i++) {
            bnode *b = &m.nodes[i];
            if (b->node_parents == 0)
                rc = locate_in_chain(&m, backend_of_root(&m, b->name), b, path, root, out, n,
                                     e);
        }
    } else {
        size_t nd = json_object_array_length(query_block);
        for (size_t i = 0; i < nd && rc == 0; i++) {
            json_object *dev = json_object_array_get_idx(query_block, i);
            json_object *ins = qmp_json_member(dev, "inserted", json_type_object);
            bnode *rootn = node_by_name(&m, qmp_json_str(ins, "node-name"));
            if (rootn)
                rc = locate_in_chain(&m, dev, rootn, path, root, out, n, e);
        }
    }
    model_free(&m);
    if (rc < 0) {
        qmp_file_locations_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- live queries ---- */

typedef struct replies {
    json_object *query_block, *named, *graph;
} replies;

static void replies_free(replies *r)
{
    json_object_put(r->query_block);
    json_object_put(r->named);
    json_object_put(r->graph);
}

static int fetch_replies(qmp_client *c, replies *r, es_err *e)
{
    memset(r, 0, sizeof *r);
    if (qmp_execute(c, "query-block", NULL, &r->query_block, e) < 0)
        return -1;
    json_object *args = json_object_new_object();
    json_object_object_add(args, "flat", json_object_new_boolean(1));
    int rc = qmp_execute(c, "query-named-block-nodes", args, &r->named, e);
    json_object_put(args);
    if (rc < 0) {
        replies_free(r);
        return -1;
    }
    es_err ge;
    if (qmp_execute(c, "x-debug-query-block-graph", NULL, &r->graph, &ge) < 0) {
        /* Only a missing command is tolerated; a dead link is not. */
        if (strcmp(qmp_client_last_error_class(c), "CommandNotFound") != 0) {
            if (e)
                *e = ge;
            replies_free(r);
            return -1;
        }
        r->graph = NULL;
    }
    return 0;
}

int qmp_chain_query(qmp_client *c, const char *device_or_node, qmp_chain *out, es_err *e)
{
    memset(out, 0, sizeof *out);
    replies r;
    if (fetch_replies(c, &r, e) < 0)
        return -1;
    int rc = qmp_chain_from_replies(r.query_block, r.named, r.graph, device_or_node, out, e);
    replies_free(&r);
    if (rc < 0 && e && !e->path[0])
        snprintf(e->path, sizeof e->path, "%s", qmp_client_name(c));
    return rc;
}

int qmp_locate_file(qmp_client *c, const char *path, const char *root, qmp_file_location **out,
                    size_t *n, es_err *e)
{
    *out = NULL;
    *n = 0;
    replies r;
    if (fetch_replies(c, &r, e) < 0)
        return -1;
    int rc = qmp_locate_from_replies(r.query_block, r.named, r.graph, path, root, out, n, e);
    replies_free(&r);
    if (rc < 0 && e && !e->path[0])
        snprintf(e->path, sizeof e->path, "%s", qmp_client_name(c));
    return rc;
}
