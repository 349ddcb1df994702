/* Pieces verify's parts share. Internal to verify*.c. */
#ifndef ES_SNAP_VERIFY_PRIV_H
#define ES_SNAP_VERIFY_PRIV_H

#include <stdarg.h>

#include "snap/graph/imggraph.h"
#include "snap/ops/verify.h"

/* Add a problem to r; -1 only when out of memory. */
int snap_verify_problemv(snap_verify_report *r, es_err *e, const char *code,
                         snap_severity sev, const char *file, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

/* The image-only properties of every disk description (the config, each
 * snapshot's saved <domain>) against the image files (image_props.h):
 * "encryption-mismatch" an <encryption> whose image header has none;
 * "encrypted-backing" a qcow2 overlay reading an image described as
 * encrypted through its header (as raw, without the secret); "slice-on-overlay"
 * a <slices> slice on a disk whose image is a qcow2 overlay. */
int snap_verify_image_props(const snap_ctx *c, const snap_graph *g, snap_verify_report *r,
                            es_err *e);

#endif
