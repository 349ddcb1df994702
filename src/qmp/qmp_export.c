#include "qmp/qmp_export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmp/qmp_json.h"
#include "util/xalloc.h"

void qmp_block_exports_free(qmp_block_exports *x)
{
    for (size_t i = 0; i < x->n; i++) {
        free(x->v[i].id);
        free(x->v[i].type);
        free(x->v[i].node_name);
    }
    free(x->v);
    memset(x, 0, sizeof *x);
}

int qmp_block_exports_from_reply(json_object *ret, qmp_block_exports *out, es_err *e)
{
    memset(out, 0, sizeof *out);
    if (!json_object_is_type(ret, json_type_array))
        return es_err_set(e, 0, NULL, "query-block-exports: the reply is not a list");
    size_t n = json_object_array_length(ret);
    out->v = es_xcalloc(n + 1, sizeof *out->v);
    for (size_t i = 0; i < n; i++) {
        json_object *x = json_object_array_get_idx(ret, i);
        const char *id = qmp_json_str(x, "id");
        const char *node = qmp_json_str(x, "node-name");
        if (!id || !node) {
            qmp_block_exports_free(out);
            return es_err_set(e, 0, NULL,
                              "query-block-exports: entry %zu has no id or node-name", i);
        }
        qmp_block_export *b = &out->v[out->n++];
        b->id = es_xstrdup(id);
        b->node_name = es_xstrdup(node);
        const char *type = qmp_json_str(x, "type");
        b->type = es_xstrdup(type ? type : "?");
        b->shutting_down = qmp_json_bool(x, "shutting-down", false);
        b->may_write = true; /* until the graph says otherwise */
    }
    return 0;
}

static bool perm_has(json_object *edge, const char *key, const char *perm)
{
    json_object *a = qmp_json_member(edge, key, json_type_array);
    for (size_t i = 0; a && i < json_object_array_length(a); i++) {
        json_object *p = json_object_array_get_idx(a, i);
        if (json_object_is_type(p, json_type_string) &&
            strcmp(json_object_get_string(p), perm) == 0)
            return true;
    }
    return false;
}

/* The graph node whose id is id, NULL if none. */
static json_object *graph_node(json_object *nodes, int64_t id)
{
    for (size_t i = 0; i < json_object_array_length(nodes); i++) {
        json_object *n = json_object_array_get_idx(nodes, i);
        json_object *v = qmp_json_member(n, "id", json_type_int);
        if (v && json_object_get_int64(v) == id)
            return n;
    }
    return NULL;
}

static bool node_has_anonymous_writer(json_object *nodes, json_object *edges, const char *name)
{
    for (size_t i = 0; i < json_object_array_length(nodes); i++) {
        json_object *n = json_object_array_get_idx(nodes, i);
        const char *type = qmp_json_str(n, "type"), *nn = qmp_json_str(n, "name");
        json_object *id = qmp_json_member(n, "id", json_type_int);
        if (!type || !nn || !id || strcmp(type, "block-driver") != 0 || strcmp(nn, name) != 0)
            continue;
        for (size_t k = 0; k < json_object_array_length(edges); k++) {
            json_object *ed = json_object_array_get_idx(edges, k);
            json_object *child = qmp_json_member(ed, "child", json_type_int);
            json_object *parent = qmp_json_member(ed, "parent", json_type_int);
            if (!child || !parent || json_object_get_int64(child) != json_object_get_int64(id))
                continue;
            json_object *p = graph_node(nodes, json_object_get_int64(parent));
            const char *pt = qmp_json_str(p, "type"), *pn = qmp_json_str(p, "name");
            if (pt && strcmp(pt, "block-backend") == 0 && pn && !pn[0] &&
                perm_has(ed, "perm", "write"))
                return true;
        }
    }
    return false;
}

void qmp_block_exports_mark_writable(qmp_block_exports *x, json_object *graph)
{
    json_object *nodes = qmp_json_member(graph, "nodes", json_type_array);
    json_object *edges = qmp_json_member(graph, "edges", json_type_array);
    for (size_t i = 0; i < x->n; i++)
        x->v[i].may_write =
            !nodes || !edges || node_has_anonymous_writer(nodes, edges, x->v[i].node_name);
}

int qmp_block_exports_query(qmp_client *c, qmp_block_exports *out, bool *known, es_err *e)
{
    memset(out, 0, sizeof *out);
    *known = true;
    json_object *ret = NULL;
    es_err qe;
    if (qmp_execute(c, "query-block-exports", NULL, &ret, &qe) < 0) {
        if (strcmp(qmp_client_last_error_class(c), "CommandNotFound") == 0) {
            *known = false;
            return 0;
        }
        if (e)
            *e = qe;
        return -1;
    }
    int rc = qmp_block_exports_from_reply(ret, out, e);
    json_object_put(ret);
    json_object *graph = NULL;
    if (rc == 0 && out->n > 0 &&
        qmp_execute(c, "x-debug-query-block-graph", NULL, &graph, &qe) < 0) {
        /* Only a missing command is tolerated (every export then may write). */
        if (strcmp(qmp_client_last_error_class(c), "CommandNotFound") != 0) {
            if (e)
                *e = qe;
            qmp_block_exports_free(out);
            rc = -1;
        }
        graph = NULL;
    }
    if (rc == 0)
        qmp_block_exports_mark_writable(out, graph);
    json_object_put(graph);
    if (rc < 0 && e && !e->path[0])
        snprintf(e->path, sizeof e->path, "%s", qmp_client_name(c));
    return rc;
}
