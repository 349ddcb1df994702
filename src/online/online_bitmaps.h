/* Persistent dirty bitmaps on the running-VM path: extsnap keeps them only
 * offline (qcow2/bitmap_merge.h, qcow2/bitmap_inherit.h). Through QEMU the
 * same needs block-dirty-bitmap-add in the snapshot transaction and
 * block-dirty-bitmap-merge around the commit, which this path does not do
 * yet: it refuses a chain with bitmaps rather than lose a backup's record. */
#ifndef ES_ONLINE_BITMAPS_H
#define ES_ONLINE_BITMAPS_H

#include <stddef.h>

#include "qmp/qmp_nodes.h"
#include "util/err.h"

/* -1 (e saying why) when QEMU holds persistent dirty bitmaps (loaded from
 * the image or added live) on a node of ch from index first to last. */
int snap_online_refuse_bitmaps(const qmp_chain *ch, size_t first, size_t last, const char *disk,
                               es_err *e);

#endif
