/* Adding the libvirt files an operation rewrites to its plan: the new text
 * is formatted, parsed back and checked now; the old text is read from the
 * file as it is, for rollback. */
#ifndef ES_SNAP_PLAN_XML_H
#define ES_SNAP_PLAN_XML_H

#include "domxml/domain.h"
#include "domxml/snapshot.h"
#include "snap/context.h"
#include "snap/txn/plan.h"
#include "util/err.h"

/* Write snapshot s as <snapshot-dir>/<domain>/<s->name>.xml. */
int snap_plan_put_snapshot(snap_ctx *c, snap_plan *p, const domxml_snapshot *s,
                           const char *summary, es_err *e);
/* Remove the metadata file of snapshot name. */
int snap_plan_remove_snapshot(snap_ctx *c, snap_plan *p, const char *name, const char *summary,
                              es_err *e);
/* Replace the domain config with d. */
int snap_plan_put_config(snap_ctx *c, snap_plan *p, const domxml_domain *d, const char *summary,
                         es_err *e);

#endif
