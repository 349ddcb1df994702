/* Backing-chain check: does the chain an image stands on hold together?
 * Reads only headers; never follows protocol names (nbd:, json:, ...). */
#ifndef ES_QCOW2_CHECK_CHAIN_H
#define ES_QCOW2_CHECK_CHAIN_H

#include <stddef.h>

#include "util/err.h"

typedef struct qcow2_chain_problems {
    char **msgs; /* one human-readable sentence per problem */
    size_t n;
} qcow2_chain_problems;

/* Walk the backing chain below `path` (a qcow2 image) and collect problems:
 * missing backing file, backing format missing, unknown or not matching the
 * file, a loop, a chain deeper than ES_CHAIN_MAX_DEPTH, an unreadable header.
 * The walk stops at the first problem that makes the rest unreachable.
 * Returns -1 only on out-of-memory or when `path` itself cannot be read. */
int qcow2_check_backing_chain(const char *path, qcow2_chain_problems *out, es_err *e);

/* The same walk for a host's image under --root DIR (root NULL or "": none):
 * path and every backing name are the host's paths, opened under root and
 * reported as the host sees them. */
int qcow2_check_backing_chain_root(const char *path, const char *root,
                                   qcow2_chain_problems *out, es_err *e);

/* Before anything is checked or repaired under --root: can every backing
 * name of the chain below path (the host's name) be resolved inside root?
 * Fails, naming the backing name and why, when one leads out of root ('..'
 * above it, a symlink pointing out) or cannot be walked. Reads headers only;
 * whatever stops the walk otherwise (a missing or raw file, a protocol name,
 * an unreadable header, a loop) is left to qcow2_check_backing_chain_root.
 * root NULL or "": nothing to do. */
int qcow2_check_chain_names_in_root(const char *path, const char *root, es_err *e);
void qcow2_chain_problems_free(qcow2_chain_problems *p);

#endif
