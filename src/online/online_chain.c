#include "online/online_chain.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qcow2/image.h"
#include "qmp/qmp_json.h"
#include "util/fileio.h"
#include "util/rootpath.h"
#include "util/str.h"
#include "util/strv.h"
#include "util/xalloc.h"

/* ---- files ---- */

static bool same_inode(const char *a, const char *b)
{
    struct stat sa, sb;
    return es_fs_stat(a, &sa) == 0 && es_fs_stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

bool snap_online_same_file(const char *qemu_name, const char *path, const char *root)
{
    if (!qemu_name || !path)
        return false;
    char *plain = qmp_plain_filename(qemu_name);
    if (!plain)
        return false;
    bool same = strcmp(plain, path) == 0 || same_inode(plain, path);
    if (!same && root && root[0] && plain[0] == '/') {
        char *host = NULL;
        if (es_root_resolve(root, plain, &host, NULL) == 0)
            same = same_inode(host, path);
        free(host);
    }
    free(plain);
    return same;
}

/* A path on this system for a file QEMU names (plain name), or NULL. */
static char *local_path(const char *plain, const char *root)
{
    struct stat st;
    if (es_fs_stat(plain, &st) == 0 || !root || !root[0])
        return es_xstrdup(plain);
    char *host = NULL;
    if (es_root_resolve(root, plain, &host, NULL) < 0)
        return NULL;
    return host;
}

/* ---- planning ---- */

void snap_online_commit_clear(snap_online_commit *oc)
{
    if (!oc)
        return;
    qmp_chain_free(&oc->chain);
    free(oc->backing_file);
    free(oc->job_id);
    memset(oc, 0, sizeof *oc);
}

void snap_online_commit_merged(const snap_online_commit *oc, size_t *first, size_t *last)
{
    *first = oc->active ? 0 : oc->top;
    *last = oc->base;
}

static size_t find_in_chain(const qmp_chain *ch, const char *path, const char *root,
                            size_t from)
{
    for (size_t i = from; i < ch->n; i++)
        if (snap_online_same_file(ch->nodes[i].filename, path, root))
            return i;
    return (size_t)-1;
}

static int chain_error(const qmp_chain *ch, const char *path, const char *what, es_err *e)
{
    char list[2048] = "";
    size_t used = 0;
    for (size_t i = 0; i < ch->n && used < sizeof list - 1; i++) {
        int k = snprintf(list + used, sizeof list - used, "%s%s", i ? " -> " : "",
                         ch->nodes[i].filename ? ch->nodes[i].filename : ch->nodes[i].node_name);
        if (k < 0)
            break;
        used += (size_t)k;
    }
    return es_err_set(e, 0, path, "%s in the chain QEMU has open for %s (%s)", what,
                      ch->device ? ch->device : ch->root_node, list);
}

/* "extsnap-<device>" with everything QEMU refuses in an id made '_'. */
static int make_job_id(const char *device, char **out, es_err *e)
{
    if (es_asprintf(out, e, "extsnap-%s", device) < 0)
        return -1;
    for (char *p = *out; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.' || *p == '_'))
            *p = '_';
    if (strlen(*out) > 120)
        (*out)[120] = '\0';
    return 0;
}

/* The backing name of the image at local path (NULL: it names none). */
static int header_backing(const char *path, char **name, es_err *e)
{
    *name = NULL;
    es_open_opts oo = {.no_backing = true, .force_share = true};
    es_image *img;
    if (es_image_open(&img, path, &oo, e) < 0)
        return -1;
    int rc = 0;
    if (img->format == ES_FMT_QCOW2 && img->hdr.backing_file)
        rc = es_strdup(img->hdr.backing_file, name, e);
    es_image_close(img);
    return rc;
}

static int absolute_of(const char *path, char **out, es_err *e)
{
    if (path[0] == '/')
        return es_strdup(path, out, e);
    char *r = realpath(path, NULL);
    if (!r)
        return es_err_set(e, errno, path, "resolving the path");
    *out = r;
    return 0;
}

/* BASE's name as the chain names it (in the header of the image above
 * BASE); a relative one is kept only when it still means BASE from the
 * directory of the image above TOP, where QEMU writes it. */
static int default_backing_name(const snap_online_commit *oc, const char *root, char **out,
                                es_err *e)
{
    *out = NULL;
    const qmp_chain_node *above_base = &oc->chain.nodes[oc->base - 1];
    const qmp_chain_node *above_top = &oc->chain.nodes[oc->top - 1];
    const qmp_chain_node *base = &oc->chain.nodes[oc->base];
    if (!above_base->filename || !above_top->filename || !base->filename)
        return es_err_set(e, 0, NULL, "QEMU reports no plain file name for an image of %s",
                          oc->chain.device ? oc->chain.device : oc->chain.root_node);
    char *ab_local = local_path(above_base->filename, root);
    if (!ab_local) /* only when it leads outside the root */
        return es_err_set(e, 0, above_base->filename, "cannot be resolved under the root %s", root);
    char *named = NULL;
    int rc = header_backing(ab_local, &named, e);
    if (rc < 0 || !named || strncmp(named, "json:", 5) == 0) {
        /* No usable name in the header (QEMU was told the backing): QEMU's own. */
        free(named);
        free(ab_local);
        if (rc < 0)
            return -1;
        return absolute_of(base->filename, out, e);
    }
    if (named[0] == '/') {
        free(ab_local);
        *out = named;
        return 0;
    }
    char *from_base = NULL, *from_base_open = NULL, *from_top = NULL, *from_top_open = NULL;
    rc = es_backing_resolve(above_base->filename, named, NULL, &from_base, &from_base_open, e);
    if (rc == 0)
        rc = es_backing_resolve(above_top->filename, named, NULL, &from_top, &from_top_open, e);
    if (rc == 0) {
        char *base_local = local_path(base->filename, root);
        char *top_dir_hit = local_path(from_top, root);
        bool keep = base_local && top_dir_hit && same_inode(top_dir_hit, base_local);
        free(base_local);
        free(top_dir_hit);
        if (keep) {
            *out = named;
            named = NULL;
        } else {
            rc = absolute_of(from_base, out, e);
        }
    }
    free(named);
    free(ab_local);
    free(from_base);
    free(from_base_open);
    free(from_top);
    free(from_top_open);
    return rc;
}

/* Node names of the graph reachable from a device, an export or a job. */
typedef struct graph_use {
    json_object *graph; /* NULL: QEMU lacks x-debug-query-block-graph */
    bool *used;         /* per graph node index */
    size_t n;
} graph_use;

static void graph_use_free(graph_use *g)
{
    json_object_put(g->graph);
    free(g->used);
    memset(g, 0, sizeof *g);
}

static size_t graph_index(json_object *nodes, int64_t id)
{
    size_t n = json_object_array_length(nodes);
    for (size_t i = 0; i < n; i++) {
        json_object *idv = qmp_json_member(json_object_array_get_idx(nodes, i), "id",
                                           json_type_int);
        if (idv && json_object_get_int64(idv) == id)
            return i;
    }
    return (size_t)-1;
}

static int graph_use_load(qmp_client *c, graph_use *g, es_err *e)
{
    memset(g, 0, sizeof *g);
    es_err ge;
    if (qmp_execute(c, "x-debug-query-block-graph", NULL, &g->graph, &ge) < 0) {
        if (strcmp(qmp_client_last_error_class(c), "CommandNotFound") == 0)
            return 0;
        if (e)
            *e = ge;
        return -1;
    }
    json_object *nodes = qmp_json_member(g->graph, "nodes", json_type_array);
    json_object *edges = qmp_json_member(g->graph, "edges", json_type_array);
    if (!nodes || !edges) {
        graph_use_free(g);
        return es_err_set(e, 0, qmp_client_name(c),
                          "x-debug-query-block-graph: no nodes or edges list");
    }
    g->n = json_object_array_length(nodes);
    g->used = es_xcalloc(g->n, sizeof *g->used);
    for (size_t i = 0; i < g->n; i++) {
        const char *type = qmp_json_str(json_object_array_get_idx(nodes, i), "type");
        g->used[i] = type && strcmp(type, "block-driver") != 0; /* backends, jobs */
    }
    /* Propagate down the edges until nothing changes (graphs are small). */
    size_t ne = json_object_array_length(edges);
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t k = 0; k < ne; k++) {
            json_object *edge = json_object_array_get_idx(edges, k);
            json_object *pid = qmp_json_member(edge, "parent", json_type_int);
            json_object *cid = qmp_json_member(edge, "child", json_type_int);
            if (!pid || !cid)
                continue;
            size_t p = graph_index(nodes, json_object_get_int64(pid));
            size_t ch = graph_index(nodes, json_object_get_int64(cid));
            if (p < g->n && ch < g->n && g->used[p] && !g->used[ch]) {
                g->used[ch] = true;
                changed = true;
            }
        }
    }
    return 0;
}

/* Is the block node called name used? Unknown without the graph: yes. */
static bool graph_node_used(const graph_use *g, const char *name)
{
    if (!g->graph)
        return true;
    json_object *nodes = qmp_json_member(g->graph, "nodes", json_type_array);
    for (size_t i = 0; i < g->n; i++) {
        json_object *nd = json_object_array_get_idx(nodes, i);
        const char *type = qmp_json_str(nd, "type");
        const char *nm = qmp_json_str(nd, "name");
        if (type && strcmp(type, "block-driver") == 0 && nm && strcmp(nm, name) == 0)
            return g->used[i];
    }
    return false;
}

int snap_online_node_used(qmp_client *c, const char *name, bool *used, es_err *e)
{
    graph_use g;
    if (graph_use_load(c, &g, e) < 0)
        return -1;
    *used = graph_node_used(&g, name);
    graph_use_free(&g);
    return 0;
}

/* Number of parents (of any kind) of the block node called name. */
static size_t graph_node_parents(const graph_use *g, const char *name)
{
    json_object *nodes = qmp_json_member(g->graph, "nodes", json_type_array);
    json_object *edges = qmp_json_member(g->graph, "edges", json_type_array);
    int64_t id = -1;
    for (size_t i = 0; i < g->n; i++) {
        json_object *nd = json_object_array_get_idx(nodes, i);
        const char *nm = qmp_json_str(nd, "name");
        const char *type = qmp_json_str(nd, "type");
        json_object *idv = qmp_json_member(nd, "id", json_type_int);
        if (nm && type && idv && strcmp(type, "block-driver") == 0 && strcmp(nm, name) == 0)
            id = json_object_get_int64(idv);
    }
    size_t count = 0;
    size_t ne = edges ? json_object_array_length(edges) : 0;
    for (size_t k = 0; id >= 0 && k < ne; k++) {
        json_object *cid = qmp_json_member(json_object_array_get_idx(edges, k), "child",
                                           json_type_int);
        count += cid && json_object_get_int64(cid) == id;
    }
    return count;
}

/* Refuse when BASE is also read by another chain QEMU has open and
 * something (a device, an export, a job) uses; idle chains (nodes left
 * over from -blockdev after an earlier commit) read nothing. */
static int check_base_shared(qmp_client *c, const snap_online_commit *oc, const graph_use *g,
                             es_err *e)
{
    const qmp_chain_node *base = &oc->chain.nodes[oc->base];
    if (!base->filename)
        return 0;
    qmp_file_location *locs;
    size_t n;
    if (qmp_locate_file(c, base->filename, NULL, &locs, &n, e) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (strcmp(locs[i].root_node, oc->chain.root_node) == 0 ||
            !graph_node_used(g, locs[i].root_node))
            continue;
        rc = es_err_set(e, 0, base->filename,
                        "QEMU also reads this image through %s%s%s: committing into it would "
                        "change what that disk sees (and even a cancelled commit leaves data "
                        "in it); nothing done",
                        locs[i].device ? locs[i].device : "node ",
                        locs[i].device ? "" : locs[i].root_node,
                        locs[i].device ? "" : " (another chain)");
    }
    qmp_file_locations_free(locs, n);
    return rc;
}

int snap_online_commit_plan(qmp_client *c, const snap_online_commit_args *a,
                            snap_online_commit *out, es_err *e)
{
    memset(out, 0, sizeof *out);
    snap_online_commit *oc = out;
    if (qmp_chain_query(c, a->device, &oc->chain, e) < 0)
        return -1;
    int rc = -1;
    oc->top = find_in_chain(&oc->chain, a->top, a->root, 0);
    if (oc->top == (size_t)-1) {
        chain_error(&oc->chain, a->top, "TOP is not an image", e);
        goto out;
    }
    if (a->base) {
        oc->base = find_in_chain(&oc->chain, a->base, a->root, oc->top + 1);
        if (oc->base == (size_t)-1) {
            if (find_in_chain(&oc->chain, a->base, a->root, 0) != (size_t)-1)
                es_err_set(e, 0, a->base, "BASE is not below TOP (%s) in the chain of %s",
                           a->top, oc->chain.device ? oc->chain.device : oc->chain.root_node);
            else
                chain_error(&oc->chain, a->base, "BASE is not an image", e);
            goto out;
        }
    } else {
        oc->base = oc->top + 1;
        if (oc->base >= oc->chain.n) {
            es_err_set(e, 0, a->top, "Image does not have a backing file");
            goto out;
        }
    }
    oc->active = oc->top == 0;
    graph_use g;
    if (graph_use_load(c, &g, e) < 0)
        goto out;
    bool root_used = graph_node_used(&g, oc->chain.root_node);
    int shared = check_base_shared(c, oc, &g, e);
    graph_use_free(&g);
    if (shared < 0)
        goto out;
    if (oc->active) {
        if (!root_used) {
            es_err_set(e, 0, a->top,
                       "TOP is the active layer of node %s, which no device or export uses: an "
                       "active commit would have nothing to pivot; nothing done",
                       oc->chain.root_node);
            goto out;
        }
    } else if (a->backing_file) {
        if (es_strdup(a->backing_file, &oc->backing_file, e) < 0)
            goto out;
    } else if (default_backing_name(oc, a->root, &oc->backing_file, e) < 0) {
        goto out;
    }
    if (a->job_id ? es_strdup(a->job_id, &oc->job_id, e) < 0
                  : make_job_id(oc->chain.device ? oc->chain.device : oc->chain.root_node,
                                &oc->job_id, e) < 0)
        goto out;
    /* block-commit takes a BlockBackend name or a root node name, not a
     * qdev path (/machine/peripheral/...): use the root node for those. */
    oc->spec.device = strchr(a->device, '/') ? oc->chain.root_node : a->device;
    oc->spec.job_id = oc->job_id;
    oc->spec.top_node = oc->active ? NULL : oc->chain.nodes[oc->top].node_name;
    oc->spec.base_node = oc->chain.nodes[oc->base].node_name;
    oc->spec.backing_file = oc->backing_file;
    oc->spec.speed = a->speed;
    rc = 0;
out:
    if (rc < 0)
        snap_online_commit_clear(oc);
    return rc;
}

/* ---- use of files after the commit ---- */

const char *snap_file_use_name(snap_file_use u)
{
    switch (u) {
    case SNAP_FILE_CLOSED: return "closed";
    case SNAP_FILE_IDLE:   return "idle";
    case SNAP_FILE_IN_USE: return "in-use";
    }
    return "?";
}

/* Nodes (format and protocol) that have path open, from query-named-block-nodes. */
static int open_nodes(qmp_client *c, const char *path, const char *root, es_strv *names,
                      es_err *e)
{
    json_object *args = json_object_new_object();
    json_object_object_add(args, "flat", json_object_new_boolean(1));
    json_object *list = NULL;
    int rc = qmp_execute(c, "query-named-block-nodes", args, &list, e);
    json_object_put(args);
    if (rc < 0)
        return -1;
    if (!json_object_is_type(list, json_type_array)) {
        json_object_put(list);
        return es_err_set(e, 0, qmp_client_name(c),
                          "query-named-block-nodes did not return a list");
    }
    for (size_t i = 0; i < json_object_array_length(list) && rc == 0; i++) {
        json_object *info = json_object_array_get_idx(list, i);
        const char *name = qmp_json_str(info, "node-name");
        /* A format node's json: name also describes its backing chain;
         * the plain name is the node's own image. */
        if (name && snap_online_same_file(qmp_json_str(info, "file"), path, root))
            rc = es_strv_add(names, name, e);
    }
    json_object_put(list);
    return rc;
}

int snap_online_file_use(qmp_client *c, const char *path, const char *root, snap_file_use *use,
                         char **node, es_err *e)
{
    *use = SNAP_FILE_CLOSED;
    if (node)
        *node = NULL;
    es_strv names = {0};
    if (open_nodes(c, path, root, &names, e) < 0)
        return -1;
    int rc = 0;
    if (names.n) {
        graph_use g;
        rc = graph_use_load(c, &g, e);
        *use = SNAP_FILE_IDLE;
        for (size_t i = 0; rc == 0 && i < names.n && *use != SNAP_FILE_IN_USE; i++)
            if (graph_node_used(&g, names.v[i]))
                *use = SNAP_FILE_IN_USE;
        if (rc == 0)
            graph_use_free(&g);
        if (rc == 0 && node)
            rc = es_strdup(names.v[0], node, e);
    }
    es_strv_free(&names);
    return rc;
}

int snap_online_release_file(qmp_client *c, const char *path, const char *root,
                             snap_file_use *use, es_err *e)
{
    /* Each round deletes the nodes nobody (no node, device, job) holds; the
     * format node goes first, which frees its protocol node for the next. */
    for (int round = 0; round < 8; round++) {
        if (snap_online_file_use(c, path, root, use, NULL, e) < 0)
            return -1;
        if (*use != SNAP_FILE_IDLE)
            return 0;
        es_strv names = {0};
        graph_use g;
        if (open_nodes(c, path, root, &names, e) < 0)
            return -1;
        if (graph_use_load(c, &g, e) < 0) {
            es_strv_free(&names);
            return -1;
        }
        size_t deleted = 0;
        for (size_t i = 0; g.graph && i < names.n; i++) {
            if (graph_node_parents(&g, names.v[i]) != 0)
                continue;
            json_object *args = json_object_new_object();
            json_object_object_add(args, "node-name", json_object_new_string(names.v[i]));
            es_err de;
            /* Nodes QEMU did not get from the monitor cannot be deleted: fine. */
            if (qmp_execute(c, "blockdev-del", args, NULL, &de) == 0)
                deleted++;
            json_object_put(args);
        }
        graph_use_free(&g);
        es_strv_free(&names);
        if (!deleted)
            break;
    }
    return snap_online_file_use(c, path, root, use, NULL, e);
}
