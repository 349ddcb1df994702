/* Adding refcount blocks and growing the refcount table, crash-safely: the
 * new structures are written and flushed before anything points at them,
 * and old table clusters are released only after the header no longer
 * names them. Called by the allocator when a cluster it wants has no
 * refcount block. */
#ifndef ES_QCOW2_REFCOUNT_GROW_H
#define ES_QCOW2_REFCOUNT_GROW_H

#include <stdint.h>

#include "qcow2/image.h"

/* Create refcount block rt_idx (absent so far) at cluster index `at`: a
 * free cluster, either in the block's own range (it then counts itself) or
 * in a range whose block exists. When rt_idx is beyond the refcount table,
 * the table grows instead: new blocks and a larger table are placed at the
 * start of range rt_idx, counting themselves (`at` is ignored). */
int qcow2_refblock_create(es_image *img, uint64_t rt_idx, uint64_t at, es_err *e);

/* refcount.c: drop a cached copy of block rt_idx (it was rewritten on disk). */
void qcow2_refcount_forget_block(es_image *img, uint64_t rt_idx);

#endif
