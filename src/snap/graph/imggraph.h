/* Every image a domain's files reach, as a graph of backing links, so that
 * delete, commit and verify can ask "who uses this file?" (peers' pains 1,
 * 12, 14: never merge into, or delete, a file another chain reads).
 *
 * Nodes come from three places:
 *   - named: the domain config's disk sources and every snapshot's <domain>,
 *     <disks> and <revertDisks> sources, with their backing chains;
 *   - foreign: the same for every other domain in the config directory
 *     (a base image two VMs share);
 *   - scanned: every other qcow2 file in the directories holding the
 *     domain's images (a --no-metadata overlay, a copy someone made).
 * Files are told apart by identity (device, inode), so two names of one
 * file are one node; a file that does not exist is a node keyed by its
 * name. Each image is opened alone (no chain), read-only and sharing QEMU's
 * locks, through the image engine. */
#ifndef ES_SNAP_IMGGRAPH_H
#define ES_SNAP_IMGGRAPH_H

#include <stdbool.h>
#include <stddef.h>

#include "snap/context.h"
#include "util/err.h"
#include "util/str.h"
#include "util/strv.h"

#define SNAP_GNONE ((size_t)-1)

typedef struct snap_gnode {
    char *path;            /* as first named: a libvirt path or a resolved backing name */
    bool exists;           /* something is there */
    bool regular;          /* a regular file (not a block device, directory ...) */
    unsigned long long dev, ino;
    char *format;          /* "qcow2" or "raw" once opened, else NULL */
    char *error;           /* why it could not be opened or its backing followed */
    char *backing_name;    /* backing file name as written in the header, NULL: none */
    char *backing_format;  /* backing format extension, NULL: none */
    size_t backing;        /* node of the backing file, SNAP_GNONE: none or unresolved */
    bool named;            /* reached from this domain's config or metadata */
    bool foreign;          /* reached from another domain's config or metadata */
    char *foreign_domain;  /* the first such domain, for messages */
    bool scanned;          /* found by scanning a directory */
} snap_gnode;

typedef struct snap_graph {
    snap_gnode *v;
    size_t n;
    es_strv dirs;        /* directories (as named) holding this domain's images */
} snap_graph;

/* Build the graph of domain c (config and snapshots as loaded in c). */
int snap_graph_build(const snap_ctx *c, snap_graph *g, es_err *e);
void snap_graph_free(snap_graph *g);

/* The node of path (as seen under root): by identity when the file exists,
 * else by name. SNAP_GNONE when the graph does not hold it. */
size_t snap_graph_find(const snap_graph *g, const char *root, const char *path);

/* The nodes whose backing file is node i (*out malloc'd, NULL when none). */
int snap_graph_users(const snap_graph *g, size_t i, size_t **out, size_t *n, es_err *e);

/* Is node `below` in the backing chain of node `top` (top itself counts)? */
bool snap_graph_chain_has(const snap_graph *g, size_t top, size_t below);

#endif
