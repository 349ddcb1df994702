/* libFuzzer harness, what QEMU sends: the input is a QMP transcript, one
 * message a line (as QEMU writes them). Every line goes through the message
 * parser. The replies whose id names a command (the seeds send each
 * command with its name as id) are taken as the return values of
 * query-block, query-named-block-nodes {"flat": true} and
 * x-debug-query-block-graph (the first of each), and when the first two
 * are there the node mapping runs over them, with and
 * without the graph: the chain of every device and node named in them and
 * the location of every file, and the plain path of every file name. Every
 * node of a chain that is found has a name (a chain may be empty: a filter
 * without a child; the callers refuse that). */
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "qmp/qmp_json.h"
#include "qmp/qmp_msg.h"
#include "qmp/qmp_nodes.h"

#define MAX_NAMES 16

static void chain(json_object *qb, json_object *named, json_object *graph, const char *name)
{
    qmp_chain ch;
    memset(&ch, 0, sizeof ch);
    es_err e = {0};
    int r = qmp_chain_from_replies(qb, named, graph, name, &ch, &e);
    fz_expect(r, &e, "qmp_chain_from_replies");
    if (r == 0) {
        FZ_ASSERT(ch.n == 0 || ch.nodes, "chain of %s: %zu nodes, no array", name, ch.n);
        for (size_t i = 0; i < ch.n; i++)
            FZ_ASSERT(ch.nodes[i].node_name, "node %zu of %s has no name", i, name);
    }
    qmp_chain_free(&ch);
}

static void locate(json_object *qb, json_object *named, json_object *graph, const char *path)
{
    qmp_file_location *locs = NULL;
    size_t n = 0;
    es_err e = {0};
    int r = qmp_locate_from_replies(qb, named, graph, path, NULL, &locs, &n, &e);
    fz_expect(r, &e, "qmp_locate_from_replies");
    if (r == 0)
        for (size_t i = 0; i < n; i++)
            FZ_ASSERT(locs[i].root_node && locs[i].node_name, "location %zu of %s", i, path);
    qmp_file_locations_free(locs, n);
}

/* Every string member key of the objects in array a. */
static void names(json_object *a, const char *key, const char **out, size_t *n)
{
    if (!json_object_is_type(a, json_type_array))
        return;
    for (size_t i = 0; i < json_object_array_length(a) && *n < MAX_NAMES; i++) {
        const char *s = qmp_json_str(json_object_array_get_idx(a, i), key);
        if (s)
            out[(*n)++] = s;
    }
}

static void mapping(json_object *qb, json_object *named, json_object *graph)
{
    const char *devs[MAX_NAMES * 2], *files[MAX_NAMES];
    size_t ndevs = 0, nfiles = 0;
    names(qb, "device", devs, &ndevs);
    size_t nnodes = 0;
    names(named, "node-name", devs + ndevs, &nnodes);
    ndevs += nnodes;
    names(named, "file", files, &nfiles);
    for (int with_graph = 0; with_graph < 2; with_graph++) {
        json_object *g = with_graph ? graph : NULL;
        for (size_t i = 0; i < ndevs; i++)
            chain(qb, named, g, devs[i]);
        for (size_t i = 0; i < nfiles; i++)
            locate(qb, named, g, files[i]);
    }
    for (size_t i = 0; i < nfiles; i++)
        free(qmp_plain_filename(files[i]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    static const char *const ids[3] = {"query-block", "query-named-block-nodes",
                                       "x-debug-query-block-graph"};
    qmp_msg *replies[3] = {NULL, NULL, NULL};
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        qmp_msg *m = NULL;
        es_err e = {0};
        int r = qmp_msg_parse(p, len, &m, &e);
        fz_expect(r, &e, "qmp_msg_parse");
        for (int i = 0; r == 0 && m && i < 3; i++) {
            if (m->kind == QMP_MSG_RETURN && m->id && !replies[i] && strcmp(m->id, ids[i]) == 0) {
                replies[i] = m;
                m = NULL;
            }
        }
        qmp_msg_free(m);
        p += len + (nl ? 1 : 0);
    }
    if (replies[0] && replies[1])
        mapping(replies[0]->value, replies[1]->value, replies[2] ? replies[2]->value : NULL);
    for (int i = 0; i < 3; i++)
        qmp_msg_free(replies[i]);
    return 0;
}
