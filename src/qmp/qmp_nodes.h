/* Mapping image files to QEMU's block nodes.
 *
 * QEMU names nodes either explicitly (-blockdev node-name=..., libvirt's
 * "libvirt-1-format") or automatically ("#block123" for -drive, different
 * on every run), so names are always looked up live:
 *  - x-debug-query-block-graph gives the exact parent/child edges (which
 *    node is whose backing), needed when one file is opened by two chains;
 *  - query-named-block-nodes {"flat": true} gives each node's driver and file;
 *  - query-block gives the BlockBackends (devices) and their root nodes.
 * Without the graph command (it is "x-debug", it may go away) chains of
 * devices are still resolved from query-block's image chain by file name.
 *
 * File names QEMU reports may be "json:{...}" pseudo names (after an
 * intermediate commit, or with blkdebug and other options); they are reduced
 * to the plain path of the image file they describe. */
#ifndef ES_QMP_NODES_H
#define ES_QMP_NODES_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "qmp/qmp_client.h"
#include "util/err.h"

/* A dirty bitmap QEMU holds on a node (query-named-block-nodes "dirty-bitmaps"). */
typedef struct qmp_bitmap {
    char *name;           /* never NULL: unnamed (a job's own) bitmaps are not listed */
    unsigned long long granularity;
    bool recording;       /* enabled: records writes */
    bool persistent;      /* stored in the image when QEMU closes it */
    bool inconsistent;    /* loaded marked in use: QEMU stopped without storing it */
    bool busy;            /* in use by a job or an NBD export */
} qmp_bitmap;

typedef struct qmp_chain_node {
    char *node_name; /* format node (qcow2, raw ...), never a protocol or filter node */
    char *filename;  /* plain path of the image, NULL if QEMU's name has no plain path */
    char *driver;    /* "qcow2", "raw" ... */
    bool read_only;
    qmp_bitmap *bitmaps;     /* every named bitmap of the node */
    size_t nbitmaps;
} qmp_chain_node;

/* The bitmap called name of node x, NULL if none. */
const qmp_bitmap *qmp_chain_node_bitmap(const qmp_chain_node *x, const char *name);

typedef struct qmp_chain {
    char *device;    /* BlockBackend name (or qdev id), NULL for a bare node */
    char *root_node; /* node the device is attached to, or the node asked for */
    size_t n;
    qmp_chain_node *nodes; /* [0] = active layer ... [n-1] = base; filters skipped */
} qmp_chain;

/* One place where QEMU has an image file open. */
typedef struct qmp_file_location {
    char *device;    /* BlockBackend of the chain, NULL for a chain without one */
    char *root_node; /* root of that chain (what block-commit's "device" takes) */
    char *node_name; /* node of the image itself */
    size_t depth;    /* 0 = active layer of that chain */
} qmp_file_location;

/* Chain of a device (BlockBackend name or qdev id) or of a node, top -> base. */
int qmp_chain_query(qmp_client *c, const char *device_or_node, qmp_chain *out, es_err *e);
void qmp_chain_free(qmp_chain *ch);

/* Every chain position at which QEMU has the image at path open (normally
 * one; two when a shared base is opened by two chains). *n = 0 when QEMU
 * does not have it open. root (NULL: none): QEMU's names are also tried
 * under it (--root, a QEMU that sees the paths libvirt's files name).
 * Free with qmp_file_locations_free. */
int qmp_locate_file(qmp_client *c, const char *path, const char *root, qmp_file_location **out,
                    size_t *n, es_err *e);
void qmp_file_locations_free(qmp_file_location *locs, size_t n);

/* The plain file path inside a QEMU file name ("json:{...}" or a path);
 * NULL when there is none (e.g. nbd). Caller frees. */
char *qmp_plain_filename(const char *qemu_name);

/* The same, computed from already fetched replies (graph may be NULL):
 * what the functions above use, exposed for tests. */
int qmp_chain_from_replies(json_object *query_block, json_object *named_nodes,
                           json_object *graph, const char *device_or_node, qmp_chain *out,
                           es_err *e);
int qmp_locate_from_replies(json_object *query_block, json_object *named_nodes,
                            json_object *graph, const char *path, const char *root,
                            qmp_file_location **out, size_t *n, es_err *e);

#endif
