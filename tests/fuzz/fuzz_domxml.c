/* libFuzzer harness, libvirt domain XML: the input is one document.
 * 1. The byte scanner: a scan that succeeds is well formed (every element's
 *    offsets nested and inside the text), and libxml2's reading of the same
 *    text never disagrees with it (the library's cross-check reports that
 *    as an internal error; every element is tied to its scan entry).
 * 2. The domain parser, and for each disk a source edit as a snapshot
 *    makes it: an edit that succeeds re-parses, changes that disk's source
 *    and format and nothing else the parser sees, and its bytes differ
 *    from the original only inside that disk's element. */
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/domain.h"
#include "domxml/domain_edit.h"
#include "domxml/xmlparse.h"
#include "domxml/xmlscan.h"
#include "fuzz_common.h"

#define NEW_SOURCE "/fuzz/new-overlay.qcow2"
#define MAX_EDITS 4

static void scan_invariants(const xs_doc *d)
{
    FZ_ASSERT(d->nelems > 0, "a scan without a root element");
    for (size_t i = 0; i < d->nelems; i++) {
        const xs_elem *el = &d->elems[i];
        FZ_ASSERT(el->start < el->stag_end && el->stag_end <= el->etag_start &&
                      el->etag_start <= el->end && el->end <= d->len,
                  "element %zu spans %zu..%zu..%zu..%zu of %zu", i, el->start, el->stag_end,
                  el->etag_start, el->end, d->len);
        FZ_ASSERT(d->text[el->start] == '<' && el->name_off == el->start + 1,
                  "element %zu does not start with its name", i);
        FZ_ASSERT(el->attr_first + el->nattrs <= d->nattrs, "element %zu attributes", i);
        FZ_ASSERT(el->parent == XS_NONE ? i == 0 : el->parent < i, "element %zu parent", i);
        for (size_t a = 0; a < el->nattrs; a++) {
            const xs_attr *at = &d->attrs[el->attr_first + a];
            FZ_ASSERT(at->name_off > el->start && at->value_off + at->value_len < el->stag_end,
                      "attribute %zu of element %zu outside its tag", a, i);
        }
    }
    for (size_t t = 1; t < d->ntokens; t++)
        FZ_ASSERT(d->tokens[t - 1].off + d->tokens[t - 1].len <= d->tokens[t].off,
                  "tokens %zu and %zu overlap", t - 1, t);
}

static void crosscheck(const char *text, size_t len)
{
    xs_doc scan;
    es_err e = {0};
    int r = xs_scan(text, len, "fuzz", &scan, &e);
    fz_expect(r, &e, "xs_scan");
    if (r < 0)
        return;
    scan_invariants(&scan);
    xmlDoc *doc = NULL;
    r = dx_xml_parse(text, len, "fuzz", &scan, &doc, &e);
    fz_expect(r, &e, "dx_xml_parse");
    /* The library's own words; a libxml2 message may quote the input. */
    FZ_ASSERT(r == 0 || strncmp(e.msg, "internal error:", 15) != 0, "%s", e.msg);
    if (r == 0) {
        /* Every element knows its scan entry, in document order. */
        size_t idx = 0;
        xmlNode *root = xmlDocGetRootElement(doc), *n = root;
        while (n) {
            if (n->type == XML_ELEMENT_NODE) {
                FZ_ASSERT(dx_node_elem(n) == idx, "element %zu tied to scan entry %zu", idx,
                          dx_node_elem(n));
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
        xmlFreeDoc(doc);
    }
    xs_free(&scan);
}

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* b is disk a after the edit (edited) or after another disk's edit. A disk
 * without <driver> gets one, with libvirt's name='qemu'. */
static void disk_same(const domxml_disk *a, const domxml_disk *b, bool edited)
{
    FZ_ASSERT(str_eq(a->target_dev, b->target_dev) && str_eq(a->target_bus, b->target_bus) &&
                  a->device == b->device && a->readonly == b->readonly &&
                  a->shareable == b->shareable && a->snapshot == b->snapshot &&
                  (str_eq(a->driver_name, b->driver_name) || (edited && !a->driver_name)) &&
                  str_eq(a->encryption_format, b->encryption_format) &&
                  a->has_slices == b->has_slices && a->has_fdgroup == b->has_fdgroup &&
                  a->has_data_store == b->has_data_store,
              "disk %s changed beyond its source", a->target_dev);
    if (edited) {
        FZ_ASSERT(str_eq(b->source, NEW_SOURCE) && str_eq(b->driver_type, "qcow2"),
                  "edited disk %s has source %s, format %s", a->target_dev, b->source,
                  b->driver_type);
    } else {
        FZ_ASSERT(str_eq(a->source, b->source) && str_eq(a->driver_type, b->driver_type) &&
                      a->type == b->type && a->has_backing_store == b->has_backing_store,
                  "disk %s was not edited but changed", a->target_dev);
    }
}

/* Scan offsets [start, end) of the k-th <devices><disk> of text, if found. */
static bool disk_span(const domxml_domain *d, size_t k, size_t *start, size_t *end)
{
    xs_doc scan;
    es_err e = {0};
    size_t root_off, root_len;
    domxml_domain_root_span(d, &root_off, &root_len);
    if (xs_scan(d->text, d->len, "fuzz", &scan, &e) < 0)
        return false;
    bool found = false;
    size_t seen = 0;
    for (size_t i = 0; i < scan.nelems && !found; i++) {
        const xs_elem *el = &scan.elems[i];
        if (!xs_name_is(&scan, el, "disk") || el->parent == XS_NONE)
            continue;
        const xs_elem *dev = &scan.elems[el->parent];
        if (!xs_name_is(&scan, dev, "devices") || dev->parent != 0)
            continue;
        if (seen++ == k) {
            *start = el->start;
            *end = el->end;
            found = true;
        }
    }
    xs_free(&scan);
    return found;
}

static void edit_disk(const domxml_domain *d, size_t k)
{
    const domxml_disk *disk = &d->disks[k];
    if (!disk->target_dev)
        return;
    domxml_disk_change ch = {.target = disk->target_dev, .source_file = NEW_SOURCE,
                             .driver_type = "qcow2"};
    domxml_domain *nd = NULL;
    es_err e = {0};
    int r = domxml_domain_change_disks(d, &ch, 1, &nd, &e);
    fz_expect(r, &e, "domxml_domain_change_disks");
    if (r < 0)
        return;
    /* The edited text parses again, to the same domain but for that disk. */
    domxml_domain *re = NULL;
    r = domxml_domain_parse(nd->text, nd->len, "edited", &re, &e);
    FZ_ASSERT(r == 0, "the edited document does not parse: %s", e.msg);
    FZ_ASSERT(str_eq(d->name, re->name) && str_eq(d->uuid, re->uuid) && str_eq(d->type, re->type),
              "the edit changed the domain's identity");
    FZ_ASSERT(d->ndisks == re->ndisks, "%zu disks before the edit, %zu after", d->ndisks,
              re->ndisks);
    for (size_t i = 0; i < d->ndisks; i++)
        disk_same(&d->disks[i], &re->disks[i], i == k);
    /* The bytes changed lie inside that disk's element. */
    size_t start, end;
    if (disk_span(d, k, &start, &end)) {
        size_t p = 0, s = 0, m = d->len < nd->len ? d->len : nd->len;
        while (p < m && d->text[p] == nd->text[p])
            p++;
        while (s < m - p && d->text[d->len - 1 - s] == nd->text[nd->len - 1 - s])
            s++;
        FZ_ASSERT(p >= start && d->len - s <= end,
                  "the edit of disk %s changed bytes %zu..%zu outside its element %zu..%zu",
                  disk->target_dev, p, d->len - s, start, end);
    }
    domxml_domain_free(re);
    domxml_domain_free(nd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    crosscheck(text, size);
    domxml_domain *d = NULL;
    es_err e = {0};
    int r = domxml_domain_parse(text, size, "fuzz", &d, &e);
    fz_expect(r, &e, "domxml_domain_parse");
    if (r < 0)
        return 0;
    for (size_t k = 0; k < d->ndisks && k < MAX_EDITS; k++)
        edit_disk(d, k);
    domxml_domain_free(d);
    return 0;
}
