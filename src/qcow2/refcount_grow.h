/* Adding refcount blocks and growing the refcount table, crash-safely: the
 * new structures are written and flushed before anything points at them,
 * and old table clusters are released only after the header no longer
 * names them. Called by the allocator when a cluster it wants has no
 * refcount block. */
#ifndef ES_QCOW2_REFCOUNT_GROW_H
#define ES_QCOW2_REFCOUNT_GROW_H

#include <stdint.h>

#include "qcow2/image.h"

/* Create refcount block rt_idx (absent so far). It is placed in the first
 * cluster of the range it covers, so it counts itself; when the refcount
 * table is too small, a larger one is built right behind the new block(s). */
int qcow2_refblock_create(es_image *img, uint64_t rt_idx, es_err *e);

/* refcount.c: drop a cached copy of block rt_idx (it was rewritten on disk). */
void qcow2_refcount_forget_block(es_image *img, uint64_t rt_idx);

#endif
