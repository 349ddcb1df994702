/* Emptying an image after a commit, as `qemu-img commit` does (QEMU's
 * qcow2_make_empty): afterwards it reads entirely through to its backing
 * file; header, backing name and virtual size are kept. */
#ifndef ES_QCOW2_MAKE_EMPTY_H
#define ES_QCOW2_MAKE_EMPTY_H

#include <stdbool.h>

#include "qcow2/image.h"

/* Whether the fast path applies: a v3 image without internal snapshots or
 * persistent bitmaps whose L1 table and three more clusters fit in one
 * refcount block. It rebuilds all metadata from scratch (so it works on an
 * image whose dirty bit is set) and leaves a file of 3 + L1 clusters:
 * header, refcount table, one refcount block, L1 table.
 * Otherwise every L2 entry is cleared and the clusters released (L2 tables
 * stay, the file keeps its size), which needs correct refcounts. */
bool qcow2_make_empty_rebuilds(const es_image *img);

/* img must be writable. Crash safety: the fast path marks the image dirty
 * first (QEMU repairs a dirty image on its next read-write open; the next
 * commit run empties it again); the slow path clears pointers and flushes
 * before any refcount drops. */
int qcow2_make_empty(es_image *img, es_err *e);

#endif
