/* Walking a disk's backing chain one image at a time, tolerating a broken
 * link: the images that could be opened are kept and the reason the walk
 * stopped is recorded. Used to show chains (disks --chain) and to know
 * which files a chain needs (refs.h). Each image is opened alone, without
 * its chain, through the image engine. */
#ifndef ES_SNAP_CHAIN_H
#define ES_SNAP_CHAIN_H

#include <stdint.h>

#include "util/err.h"

typedef struct snap_chain_link {
    char *filename;        /* as named: the disk source, then resolved backing names */
    char *format;          /* "qcow2" or "raw" */
    unsigned long long dev, ino;
    uint64_t virtual_size;
    uint64_t actual_size;  /* bytes allocated on disk */
    char *backing;         /* backing name in the header as written, or NULL */
    char *backing_format;  /* backing format extension, or NULL */
} snap_chain_link;

typedef struct snap_chain {
    snap_chain_link *v;    /* top first */
    size_t n;
    char *error;           /* why the walk stopped before the bottom, or NULL */
} snap_chain;

/* Walk from path (as seen under root), whose format is format (NULL:
 * probe). Only running out of memory is an error; a missing or unreadable
 * image ends the walk with out->error set. */
int snap_chain_walk(const char *root, const char *path, const char *format, snap_chain *out,
                    es_err *e);
void snap_chain_free(snap_chain *c);

#endif
