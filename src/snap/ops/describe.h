/* Planning 'describe DOMAIN NAME': set or remove a snapshot's
 * <description>, nothing else of its file (what 'virsh snapshot-edit'
 * would do to that element). An empty text removes the element, as libvirt
 * reads an empty one as none. Texts libvirt's files cannot carry back as
 * written are refused (domxml/text.h). */
#ifndef ES_SNAP_DESCRIBE_H
#define ES_SNAP_DESCRIBE_H

#include "snap/context.h"
#include "snap/txn/plan.h"
#include "util/err.h"

/* The plan; an empty one (snap_plan_empty) when the description is so already. */
int snap_plan_describe(snap_ctx *c, const char *name, const char *text, snap_plan **out,
                       es_err *e);

#endif
