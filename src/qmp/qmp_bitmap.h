/* Dirty-bitmap actions of QMP's `transaction` (block-dirty-bitmap-add,
 * -merge), built as JSON for the caller to put in one transaction
 * with other actions (a snapshot's, or several disks' merges), so that
 * QEMU applies all of them or none. */
#ifndef ES_QMP_BITMAP_H
#define ES_QMP_BITMAP_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "qmp/qmp_client.h"
#include "util/err.h"

/* Append to actions (a JSON array) a block-dirty-bitmap-add of name on node:
 * persistent, enabled unless disabled, granularity (0: QEMU's default). */
void qmp_bitmap_add_action(json_object *actions, const char *node, const char *name,
                           unsigned long long granularity, bool persistent, bool disabled);

/* A block-dirty-bitmap-merge into node's bitmap target of the bitmaps
 * (node, name) given as two arrays of n entries. */
void qmp_bitmap_merge_action(json_object *actions, const char *node, const char *target,
                             const char *const *src_nodes, const char *const *src_names,
                             size_t n);

/* Run the actions (borrowed) as one transaction. */
int qmp_transaction(qmp_client *c, json_object *actions, es_err *e);

#endif
