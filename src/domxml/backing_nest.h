/* The <backingStore> libvirt 9.0 writes into the persistent config when an
 * external snapshot puts a new overlay over a disk whose config spells out
 * its backing chain (qemuSnapshotCreateInactiveExternal: the old source, a
 * user-given chain, becomes the new source's backingStore; a detected chain
 * is never written, and <backingStore/> ("no backing") is dropped, because
 * the overlay does have one):
 *     <backingStore type='file'>
 *       <format type='OLD FORMAT'/>
 *       <source file='OLD IMAGE' ...>...</source>   (the old <source>)
 *       <backingStore ...>...</backingStore>        (the old chain, verbatim)
 *     </backingStore>
 * The old elements move one level down: two more spaces after each of their
 * line breaks. Internal to domxml. */
#ifndef ES_DOMXML_BACKING_NEST_H
#define ES_DOMXML_BACKING_NEST_H

#include <stdbool.h>
#include <stddef.h>

#include "domxml/strbuf.h"
#include "domxml/xmlscan.h"

/* Is elem an empty <backingStore/> (no attributes, no children)? */
bool dx_backing_store_is_empty(const xs_doc *scan, size_t elem);

/* Append to b the element replacing backingStore bs of a disk whose old
 * <source> is src, old type type (file ...) and old format format. The
 * old <source>'s startupPolicy stays with the disk (libvirt keeps it on the
 * disk, not on backing images). */
void dx_backing_store_nest(const xs_doc *scan, size_t src, size_t bs, const char *type,
                           const char *format, dx_buf *b);

#endif
