/* libxml2 parsing with the safe options (no network, no entity expansion, no
 * DTD loading), clear errors instead of messages on stderr, and a cross-check
 * against the byte-level scan so every libxml2 element knows its position in
 * the original text. Internal to domxml. */
#ifndef ES_DOMXML_XMLPARSE_H
#define ES_DOMXML_XMLPARSE_H

#include <libxml/tree.h>
#include <stddef.h>

#include "domxml/xmlscan.h"
#include "util/err.h"

/* Parse text (already scanned into scan) and tie each element to its scan
 * entry. Refuses encodings other than UTF-8. */
int dx_xml_parse(const char *text, size_t len, const char *origin, const xs_doc *scan,
                 xmlDoc **out, es_err *e);

/* Index into scan->elems of an element parsed by dx_xml_parse. */
size_t dx_node_elem(const xmlNode *n);
/* First child element without namespace called name, or NULL. */
xmlNode *dx_child(const xmlNode *parent, const char *name);
/* Next sibling element called name after n, or NULL. */
xmlNode *dx_next_named(const xmlNode *n, const char *name);
bool dx_is(const xmlNode *n, const char *name);
/* Attribute value (malloc'd) or *out = NULL when absent. */
int dx_prop(const xmlNode *n, const char *name, char **out, es_err *e);
/* Text content of n (malloc'd). */
int dx_text(const xmlNode *n, char **out, es_err *e);
/* Text content of the first child called name; NULL when absent or empty, as
 * libvirt's string(./name) XPath lookups treat them. */
int dx_child_text(const xmlNode *parent, const char *name, char **out, es_err *e);

#endif
