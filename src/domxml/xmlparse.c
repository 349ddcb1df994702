#include "domxml/xmlparse.h"

#include <errno.h>
#include <libxml/parser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/xalloc.h"

static bool scan_qname_eq(const xs_doc *scan, size_t off, size_t len, const xmlNs *ns,
                          const xmlChar *name)
{
    const char *p = scan->text + off;
    if (ns && ns->prefix) {
        size_t pl = strlen((const char *)ns->prefix);
        if (len < pl + 1 || memcmp(p, ns->prefix, pl) != 0 || p[pl] != ':')
            return false;
        p += pl + 1;
        len -= pl + 1;
    }
    size_t nl = strlen((const char *)name);
    return nl == len && memcmp(p, name, nl) == 0;
}

static bool is_xmlns(const xs_doc *scan, const xs_attr *a)
{
    const char *p = scan->text + a->name_off;
    return (a->name_len == 5 && memcmp(p, "xmlns", 5) == 0) ||
           (a->name_len > 6 && memcmp(p, "xmlns:", 6) == 0);
}

static bool attrs_match(const xs_doc *scan, const xs_elem *el, const xmlNode *n)
{
    const xmlAttr *a = n->properties;
    for (size_t i = 0; i < el->nattrs; i++) {
        const xs_attr *sa = &scan->attrs[el->attr_first + i];
        if (is_xmlns(scan, sa))
            continue;
        if (!a || !scan_qname_eq(scan, sa->name_off, sa->name_len, a->ns, a->name))
            return false;
        a = a->next;
    }
    return a == NULL;
}

/* Walk libxml2's elements in document order beside the scan's: they must be
 * the same elements with the same attributes, or a splice could hit the
 * wrong bytes. */
static int crosscheck(const xmlDoc *doc, const xs_doc *scan, const char *origin, es_err *e)
{
    xmlNode *root = xmlDocGetRootElement(doc), *n = root;
    size_t idx = 0;
    while (n) {
        if (n->type == XML_ELEMENT_NODE) {
            if (idx >= scan->nelems)
                break;
            const xs_elem *el = &scan->elems[idx];
            if (!scan_qname_eq(scan, el->name_off, el->name_len, n->ns, n->name) ||
                !attrs_match(scan, el, n))
                return es_err_set(e, 0, origin,
                                  "internal error: XML scan disagrees with libxml2 at line %zu",
                                  xs_line_of(scan->text, el->start));
            n->_private = (void *)(uintptr_t)(idx + 1);
            idx++;
            if (n->children) {
                n = n->children;
                continue;
            }
        }
        while (n != root && !n->next)
            n = n->parent;
        n = n == root ? NULL : n->next;
    }
    if (idx != scan->nelems)
        return es_err_set(e, 0, origin, "internal error: XML scan found %zu elements, libxml2 %zu",
                          scan->nelems, idx);
    return 0;
}

/* libxml2's message on one line: its trailing newline dropped, an inner one
 * (the "Bytes: 0x.." line of an encoding error) made a space. */
static void trim_newline(char *s)
{
    size_t l = strlen(s);
    while (l && (s[l - 1] == '\n' || s[l - 1] == ' '))
        s[--l] = '\0';
    for (char *p = s; (p = strchr(p, '\n')); p++)
        *p = ' ';
}

int dx_xml_parse(const char *text, size_t len, const char *origin, const xs_doc *scan,
                 xmlDoc **out, es_err *e)
{
    *out = NULL;
    if (len > (size_t)INT32_MAX)
        return es_err_set(e, EFBIG, origin, "XML document too large");
    xmlInitParser();
    xmlParserCtxt *ctxt = es_xcheck(xmlNewParserCtxt());
    /* No XML_PARSE_NOENT (entities stay unexpanded), no DTDLOAD/DTDATTR,
     * NONET against external fetches; NOERROR/NOWARNING keep libxml2 quiet:
     * the error is reported through es_err. */
    int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
    xmlDoc *doc = xmlCtxtReadMemory(ctxt, text, (int)len, NULL, NULL, opts);
    /* A namespace error (an undefined prefix, xmlns:NAME with a NAME that
     * is not a name) leaves libxml2 a document whose names the scanner
     * reads differently; libvirt refuses such a file too. */
    if (!doc || !ctxt->wellFormed || !ctxt->nsWellFormed) {
        const xmlError *xe = xmlCtxtGetLastError(ctxt);
        char msg[512] = "not well-formed";
        int line = 0;
        if (xe && xe->message) {
            snprintf(msg, sizeof msg, "%s", xe->message);
            trim_newline(msg);
            line = xe->line;
        }
        xmlFreeDoc(doc);
        xmlFreeParserCtxt(ctxt);
        if (line > 0)
            return es_err_set(e, 0, origin, "malformed XML at line %d: %s", line, msg);
        return es_err_set(e, 0, origin, "malformed XML: %s", msg);
    }
    xmlFreeParserCtxt(ctxt);

    if (doc->intSubset || doc->extSubset) {
        xmlFreeDoc(doc);
        return es_err_set(e, 0, origin, "document type declarations are not supported");
    }
    if (doc->encoding && strcasecmp((const char *)doc->encoding, "UTF-8") != 0) {
        es_err_set(e, 0, origin, "unsupported encoding %s (libvirt writes UTF-8)",
                   (const char *)doc->encoding);
        xmlFreeDoc(doc);
        return -1;
    }
    if (crosscheck(doc, scan, origin, e) < 0) {
        xmlFreeDoc(doc);
        return -1;
    }
    *out = doc;
    return 0;
}

size_t dx_node_elem(const xmlNode *n)
{
    uintptr_t v = (uintptr_t)n->_private;
    return v ? (size_t)(v - 1) : XS_NONE;
}

bool dx_is(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && !n->ns &&
           strcmp((const char *)n->name, name) == 0;
}

xmlNode *dx_child(const xmlNode *parent, const char *name)
{
    for (xmlNode *c = parent->children; c; c = c->next)
        if (dx_is(c, name))
            return c;
    return NULL;
}

xmlNode *dx_next_named(const xmlNode *n, const char *name)
{
    for (xmlNode *c = n->next; c; c = c->next)
        if (dx_is(c, name))
            return c;
    return NULL;
}

static int copy_xml_string(xmlChar *v, char **out, es_err *e)
{
    (void)e;
    *out = es_xstrdup((const char *)v);
    xmlFree(v);
    return 0;
}

int dx_prop(const xmlNode *n, const char *name, char **out, es_err *e)
{
    *out = NULL;
    xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
    return v ? copy_xml_string(v, out, e) : 0;
}

int dx_text(const xmlNode *n, char **out, es_err *e)
{
    xmlChar *v = es_xcheck(xmlNodeGetContent(n));
    return copy_xml_string(v, out, e);
}

int dx_child_text(const xmlNode *parent, const char *name, char **out, es_err *e)
{
    *out = NULL;
    xmlNode *c = dx_child(parent, name);
    if (!c)
        return 0;
    if (dx_text(c, out, e) < 0)
        return -1;
    if (!**out) {
        free(*out);
        *out = NULL;
    }
    return 0;
}
