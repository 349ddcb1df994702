/* Moving an element's text to another depth, the way libvirt nests one
 * document in another (the <domain> inside snapshot metadata): only the
 * indentation between tags shifts; text content, attribute values and
 * comments keep their bytes, as libvirt's own formatter does. Internal. */
#ifndef ES_DOMXML_INDENT_H
#define ES_DOMXML_INDENT_H

#include "domxml/strbuf.h"
#include "domxml/xmlscan.h"

/* Append element elem of d to b with its indentation moved by delta spaces
 * (negative: removed, as far as there are spaces to remove). The first line
 * is copied from the '<' on; the caller writes what precedes it. */
void dx_reindent(dx_buf *b, const xs_doc *d, size_t elem, int delta);

#endif
