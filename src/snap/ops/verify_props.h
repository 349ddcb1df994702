/* verify's checks of what disk descriptions say about their image files. */
#ifndef ES_SNAP_VERIFY_PROPS_H
#define ES_SNAP_VERIFY_PROPS_H

#include "snap/context.h"
#include "snap/graph/imggraph.h"
#include "snap/ops/verify_report.h"
#include "util/err.h"

/* The image-only properties of every disk description (the config, each
 * snapshot's saved <domain>) against the image files (image_props.h):
 * "encryption-mismatch" an <encryption> whose image header has none;
 * "encrypted-backing" a qcow2 overlay reading an image described as
 * encrypted through its header (as raw, without the secret); "slice-on-overlay"
 * a <slices> slice on a disk whose image is a qcow2 overlay. */
int snap_verify_image_props(const snap_ctx *c, const snap_graph *g, snap_verify_report *r,
                            es_err *e);

#endif
