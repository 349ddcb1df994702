/* Bounded cache of L2 tables (LRU, a fixed byte budget), tables kept in their
 * on-disk big-endian form. Readers look entries up here; writers change the
 * table on disk and then invalidate (or refresh) the cached copy. */
#ifndef ES_QCOW2_L2_CACHE_H
#define ES_QCOW2_L2_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "qcow2/image.h"

#define QCOW2_L2_CACHE_BUDGET (8u << 20) /* bytes per image; always room for at least 2 tables */
/* All images of the process together (a commit down a deep chain reads
 * through every image): past this, a cache holding 2 tables or more reuses
 * its oldest one instead of growing. */
#define QCOW2_L2_CACHE_TOTAL (24u << 20)

int qcow2_l2_cache_new(struct qcow2_l2_cache **out, size_t table_bytes, es_err *e);
void qcow2_l2_cache_free(struct qcow2_l2_cache *c);

/* The L2 table at host offset l2_off (cluster aligned, validated by the
 * caller against the file). *table stays valid until the next call that may
 * evict (any qcow2_l2_* call on this image). */
int qcow2_l2_get(es_image *img, uint64_t l2_off, const uint8_t **table, es_err *e);

/* A writer changed the table at l2_off on disk: forget the cached copy. */
void qcow2_l2_cache_invalidate(es_image *img, uint64_t l2_off);
void qcow2_l2_cache_clear(es_image *img);

/* Bytes of table buffers all caches of the process hold (tests). */
size_t qcow2_l2_cache_total_bytes(void);

#endif
