/* File names libvirt gives the overlays it creates, so that extsnap's files
 * look exactly like libvirt's (reference: libvirt.md §2 and §7). */
#ifndef ES_SNAP_NAMING_H
#define ES_SNAP_NAMING_H

#include "util/err.h"

/* libvirt's default overlay name: source cut at its last '.' when that dot
 * comes after the last '/', then "." + suffix appended. suffix is the
 * snapshot name at create, the epoch seconds at revert.
 *   /x/vda.qcow2 + s1 -> /x/vda.s1;  /x/vda.s1 + s2 -> /x/vda.s2;
 *   /x.d/vda + s1 -> /x.d/vda.s1 */
int snap_overlay_name(const char *source, const char *suffix, char **out, es_err *e);

#endif
