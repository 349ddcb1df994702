/* The safe rebase (qemu-img rebase without -u): point a qcow2 image at a
 * new backing chain, or at none, without changing what the guest sees.
 * Every cluster the image does not hold itself and where the old and the
 * new backing chains read differently gets the old chain's content copied
 * into the image; then the header names the new backing file.
 *
 * Crash safety: the clusters are written as every writer of the engine
 * writes them (refcount raised and flushed, data written and flushed, then
 * the L2 entry; with -c the compressed bytes go first, to clusters nothing
 * points at, then their refcounts, flushed, then the L2 entry), and the
 * header changes last. Bitmap bits are written before the data they cover. A crash before that leaves
 * the image naming its old backing file, with extra clusters of its own
 * that hold exactly what the old chain showed there: the guest view is
 * unchanged, `qemu-img check` finds leaks at worst, and running the same
 * rebase again takes the leaks back and finishes the job. */
#ifndef ES_QCOW2_REBASE_SAFE_H
#define ES_QCOW2_REBASE_SAFE_H

#include <stdbool.h>

#include "util/err.h"

typedef struct es_rebase_opts {
    const char *backing;        /* new backing name as stored; NULL or "": none (flatten) */
    const char *backing_format; /* "qcow2" or "raw"; required with a name */
    const char *format;         /* IMAGE's format as given (-f), NULL: probe */
    const char *root;           /* --root DIR (NULL: none) */
    bool compress;              /* -c: the copied clusters written compressed */
} es_rebase_opts;

/* Rebase the qcow2 image at path (the host's name; opened under root when
 * given). Refuses before any write (nothing changed) an image in use, a
 * corrupt or dirty one, one with extended L2 entries or a persistent
 * bitmap marked in use or inconsistent, a new backing chain that cannot be
 * opened or contains the image itself, and a name that does not fit in the
 * header. Enabled persistent bitmaps get the bits of what is written, as
 * in qemu-img rebase (rebase_bitmaps.c); disabled ones are kept. There is no
 * free-space estimate: running out of space fails the run like a crash
 * does (guest view unchanged, a re-run finishes). */
int qcow2_rebase_safe(const char *path, const es_rebase_opts *o, es_err *e);

#endif
