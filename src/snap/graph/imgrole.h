/* What an image is to a domain, in words, for refusals and reports: "the
 * live image of disk vda", "snapshot s2's frozen image of disk vda", "the
 * overlay made by reverting to snapshot s1 (disk vda)", "used by domain
 * other", "not named by any libvirt file". */
#ifndef ES_SNAP_IMGROLE_H
#define ES_SNAP_IMGROLE_H

#include <stddef.h>

#include "snap/context.h"
#include "snap/graph/imggraph.h"
#include "util/err.h"

/* *out = "PATH (role; role ...)", malloc'd. */
int snap_image_role(const snap_ctx *c, const snap_graph *g, size_t node, char **out, es_err *e);

/* *out = the roles of every node in v[0..n), ", "-separated. */
int snap_image_roles(const snap_ctx *c, const snap_graph *g, const size_t *v, size_t n,
                     char **out, es_err *e);

#endif
