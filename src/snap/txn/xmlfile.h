/* Writing the libvirt files of a plan (snap_xml_write) in either direction:
 * forward (new text) or back (old text). Atomic, through temporary files
 * libvirt never reads: <config>.new beside the config (libvirt loads only
 * *.xml there), <snapshot-dir>/.<domain>-<snap>.xml.tmp for metadata (every
 * entry of <snapshot-dir>/<domain>/ is parsed, so nothing temporary goes
 * in there). The same names domxml/store.h uses. */
#ifndef ES_SNAP_XMLFILE_H
#define ES_SNAP_XMLFILE_H

#include <stdbool.h>

#include "snap/txn/plan.h"
#include "util/err.h"

/* Make the file hold the new text (forward) or the old one (back), or not
 * exist when that text is NULL. Writes nothing when it already does;
 * removes a stale temporary file either way. */
int snap_xml_put(const char *root, const snap_xml_write *w, bool forward, es_err *e);

/* Upper bound on the size of a libvirt XML file extsnap reads. */
#define SNAP_XML_MAX (16u << 20)

#endif
