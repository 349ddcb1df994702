#include "domxml/qemu_cmdline.h"

#include <errno.h>
#include <libxml/tree.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/xmlparse.h"
#include "domxml/xmlscan.h"
#include "util/xalloc.h"

static bool in_qemu_ns(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
           strcmp((const char *)n->ns->href, DOMXML_QEMU_NS) == 0 &&
           strcmp((const char *)n->name, name) == 0;
}

void domxml_qemu_args_free(char **args)
{
    for (size_t i = 0; args && args[i]; i++)
        free(args[i]);
    free(args);
}

static int push_arg(char ***args, size_t *n, char *v, const char *origin, es_err *e)
{
    (void)origin;
    (void)e;
    char **nv = es_xreallocarray(*args, *n + 2, sizeof *nv);
    nv[(*n)++] = v;
    nv[*n] = NULL;
    *args = nv;
    return 0;
}

static int collect(const xmlNode *cmdline, const xs_doc *scan, const char *origin, char ***args,
                   size_t *n, es_err *e)
{
    for (const xmlNode *a = cmdline->children; a; a = a->next) {
        if (!in_qemu_ns(a, "arg"))
            continue;
        xmlChar *v = xmlGetNoNsProp(a, (const xmlChar *)"value");
        if (!v) {
            size_t el = dx_node_elem(a);
            size_t line = el == XS_NONE ? 0 : xs_line_of(scan->text, scan->elems[el].start);
            return es_err_set(e, 0, origin, "<qemu:arg> without value= at line %zu", line);
        }
        char *copy = es_xstrdup((const char *)v);
        xmlFree(v);
        if (push_arg(args, n, copy, origin, e) < 0)
            return -1;
    }
    return 0;
}

int domxml_qemu_cmdline_args(const char *text, size_t len, const char *origin, char ***args,
                             size_t *n, es_err *e)
{
    *args = NULL;
    *n = 0;
    if (!origin)
        origin = "(domain XML)";
    xs_doc scan;
    memset(&scan, 0, sizeof scan);
    xmlDoc *doc = NULL;
    int rc = -1;
    if (xs_scan(text, len, origin, &scan, e) < 0)
        goto out;
    if (dx_xml_parse(text, len, origin, &scan, &doc, e) < 0)
        goto out;
    xmlNode *root = xmlDocGetRootElement(doc);
    if (!root || !dx_is(root, "domain")) {
        es_err_set(e, 0, origin, "root element is not <domain>");
        goto out;
    }
    for (const xmlNode *c = root->children; c; c = c->next)
        if (in_qemu_ns(c, "commandline") && collect(c, &scan, origin, args, n, e) < 0)
            goto out;
    if (!*args)
        *args = es_xcalloc(1, sizeof **args);
    rc = 0;
out:
    xmlFreeDoc(doc);
    xs_free(&scan);
    if (rc < 0) {
        domxml_qemu_args_free(*args);
        *args = NULL;
        *n = 0;
    }
    return rc;
}
