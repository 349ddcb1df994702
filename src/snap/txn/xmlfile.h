/* Writing the libvirt files of a plan (snap_xml_write) in either direction:
 * forward (new text) or back (old text), through domxml's one writer
 * (domxml/writer.h: atomic, temporary files libvirt never reads). */
#ifndef ES_SNAP_XMLFILE_H
#define ES_SNAP_XMLFILE_H

#include <stdbool.h>

#include "snap/txn/plan.h"
#include "util/err.h"

/* Make the file hold the new text (forward) or the old one (back), or not
 * exist when that text is NULL. Writes nothing when it already does;
 * removes a stale temporary file either way. */
int snap_xml_put(const char *root, const snap_xml_write *w, bool forward, es_err *e);

#endif
