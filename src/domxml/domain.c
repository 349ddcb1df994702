#include "domxml/domain.h"

#include <ctype.h>
#include <errno.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/domain_priv.h"
#include "domxml/files.h"
#include "domxml/names.h"
#include "domxml/strbuf.h"
#include "domxml/xmlparse.h"
#include "util/readfile.h"
#include "util/str.h"
#include "util/xalloc.h"

static void disk_clear(domxml_disk *k)
{
    free(k->driver_name);
    free(k->driver_type);
    free(k->source);
    free(k->source_protocol);
    free(k->target_dev);
    free(k->target_bus);
    free(k->encryption_format);
    memset(k, 0, sizeof *k);
}

void domxml_domain_free(domxml_domain *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->ndisks; i++)
        disk_clear(&d->disks[i]);
    free(d->disks);
    free(d->nvram);
    free(d->tpm_dir);
    domxml_vmstate_clear(&d->vmstate);
    free(d->name);
    free(d->uuid);
    free(d->type);
    free(d->text);
    free(d->origin);
    if (d->priv) {
        xs_free(&d->priv->scan);
        free(d->priv->disk_elem);
        free(d->priv);
    }
    free(d);
}

/* Which <source> attribute holds the path for each storage type. */
static const char *source_attr_for(domxml_storage_type t)
{
    switch (t) {
    case DOMXML_STORAGE_FILE: return "file";
    case DOMXML_STORAGE_BLOCK: return "dev";
    case DOMXML_STORAGE_VHOSTVDPA: return "dev";
    case DOMXML_STORAGE_DIR: return "dir";
    case DOMXML_STORAGE_NETWORK: return "name";
    case DOMXML_STORAGE_VOLUME: return "volume";
    default: return NULL;
    }
}

static int bad_attr(const char *origin, size_t line, const char *attr, const char *elem,
                    const char *value, es_err *e)
{
    return es_err_set(e, 0, origin, "line %zu: invalid value for attribute '%s' in element '%s': '%s'",
                      line, attr, elem, value);
}

/* What the <source> (and the older <disk><encryption>) say about the image
 * file itself. */
static int parse_image_props(const xmlNode *node, const xmlNode *src, domxml_disk *k, es_err *e)
{
    xmlNode *enc = src ? dx_child(src, "encryption") : NULL;
    if (!enc)
        enc = dx_child(node, "encryption");
    if (enc) {
        if (dx_prop(enc, "format", &k->encryption_format, e) < 0)
            return -1;
        if (!k->encryption_format && dx_strset(&k->encryption_format, "default", e) < 0)
            return -1;
    }
    if (!src)
        return 0;
    k->has_slices = dx_child(src, "slices") != NULL;
    k->has_data_store = dx_child(src, "dataStore") != NULL;
    char *fd = NULL;
    if (dx_prop(src, "fdgroup", &fd, e) < 0)
        return -1;
    k->has_fdgroup = fd != NULL;
    free(fd);
    return 0;
}

static int parse_disk_source(const xmlNode *node, domxml_disk *k, es_err *e)
{
    xmlNode *src = dx_child(node, "source");
    if (parse_image_props(node, src, k, e) < 0)
        return -1;
    if (!src)
        return 0;
    const char *attr = source_attr_for(k->type);
    if (attr && dx_prop(src, attr, &k->source, e) < 0)
        return -1;
    if (k->source && !*k->source) {
        free(k->source);
        k->source = NULL;
    }
    if (k->type == DOMXML_STORAGE_NETWORK && dx_prop(src, "protocol", &k->source_protocol, e) < 0)
        return -1;
    return 0;
}

static int parse_disk(const xmlNode *node, const xs_doc *scan, const char *origin,
                      size_t first_line, domxml_disk *k, es_err *e)
{
    char *v = NULL;
    k->line = xs_line_of(scan->text, scan->elems[dx_node_elem(node)].start) + first_line - 1;

    k->device = DOMXML_DEVICE_DISK;
    if (dx_prop(node, "device", &v, e) < 0)
        return -1;
    if (v && domxml_disk_device_parse(v, &k->device) < 0)
        goto bad_device;
    free(v);

    k->type = DOMXML_STORAGE_FILE;
    if (dx_prop(node, "type", &v, e) < 0)
        return -1;
    if (v && domxml_storage_type_parse(v, &k->type) < 0)
        goto bad_type;
    free(v);

    if (dx_prop(node, "snapshot", &v, e) < 0)
        return -1;
    if (v && domxml_snapshot_mode_parse(v, &k->snapshot) < 0)
        goto bad_snapshot;
    free(v);
    v = NULL;

    xmlNode *drv = dx_child(node, "driver");
    if (drv && (dx_prop(drv, "name", &k->driver_name, e) < 0 ||
                dx_prop(drv, "type", &k->driver_type, e) < 0))
        return -1;
    /* libvirt still accepts the old spelling "aio" for raw. */
    if (k->driver_type && strcmp(k->driver_type, "aio") != 0 &&
        !domxml_is_image_format(k->driver_type))
        return es_err_set(e, 0, origin, "line %zu: unknown driver format value '%s'", k->line,
                          k->driver_type);

    if (parse_disk_source(node, k, e) < 0)
        return -1;

    xmlNode *tgt = dx_child(node, "target");
    if (tgt && (dx_prop(tgt, "dev", &k->target_dev, e) < 0 ||
                dx_prop(tgt, "bus", &k->target_bus, e) < 0))
        return -1;
    if (!k->target_dev || !*k->target_dev)
        return es_err_set(e, 0, origin, "line %zu: disk has no <target dev=...>", k->line);

    k->readonly = dx_child(node, "readonly") != NULL;
    k->shareable = dx_child(node, "shareable") != NULL;
    k->has_backing_store = dx_child(node, "backingStore") != NULL;
    return 0;

bad_device:
    bad_attr(origin, k->line, "device", "disk", v, e);
    free(v);
    return -1;
bad_type:
    bad_attr(origin, k->line, "type", "disk", v, e);
    free(v);
    return -1;
bad_snapshot:
    bad_attr(origin, k->line, "snapshot", "disk", v, e);
    free(v);
    return -1;
}

static int parse_disks(const xmlNode *root, domxml_domain *d, size_t first_line, es_err *e)
{
    const xs_doc *scan = &d->priv->scan;
    size_t n = 0;
    for (xmlNode *dev = dx_child(root, "devices"); dev; dev = dx_next_named(dev, "devices"))
        for (xmlNode *k = dx_child(dev, "disk"); k; k = dx_next_named(k, "disk"))
            n++;
    if (!n)
        return 0;
    d->disks = es_xcalloc(n, sizeof *d->disks);
    d->priv->disk_elem = es_xcalloc(n, sizeof *d->priv->disk_elem);
    for (xmlNode *dev = dx_child(root, "devices"); dev; dev = dx_next_named(dev, "devices")) {
        for (xmlNode *k = dx_child(dev, "disk"); k; k = dx_next_named(k, "disk")) {
            domxml_disk *disk = &d->disks[d->ndisks];
            d->priv->disk_elem[d->ndisks] = dx_node_elem(k);
            d->ndisks++;
            if (parse_disk(k, scan, d->origin, first_line, disk, e) < 0)
                return -1;
            for (size_t j = 0; j + 1 < d->ndisks; j++)
                if (strcmp(d->disks[j].target_dev, disk->target_dev) == 0)
                    return es_err_set(e, 0, d->origin,
                                      "line %zu: target '%s' duplicated for disks at lines %zu and %zu",
                                      disk->line, disk->target_dev, d->disks[j].line, disk->line);
        }
    }
    return 0;
}

/* libvirt's virUUIDParse: 32 hex digits, dashes allowed between them,
 * surrounding blanks ignored. */
static bool uuid_valid(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    int digits = 0;
    for (; *s && !isspace((unsigned char)*s); s++) {
        if (*s == '-')
            continue;
        if (!isxdigit((unsigned char)*s) || ++digits > 32)
            return false;
    }
    while (isspace((unsigned char)*s))
        s++;
    return digits == 32 && !*s;
}

/* <os><nvram>: a path as text (libvirt's usual form) or, with type='file',
 * <source file=>. Surrounding blanks are not part of a path libvirt writes. */
static int parse_nvram(const xmlNode *root, domxml_domain *d, es_err *e)
{
    xmlNode *os = dx_child(root, "os");
    xmlNode *nv = os ? dx_child(os, "nvram") : NULL;
    if (!nv)
        return 0;
    char *type = NULL, *path = NULL;
    if (dx_prop(nv, "type", &type, e) < 0)
        return -1;
    int rc = 0;
    if (type && strcmp(type, "file") != 0) {
        d->nvram_not_file = true;
    } else {
        xmlNode *src = dx_child(nv, "source");
        rc = src ? dx_prop(src, "file", &path, e) : dx_text(nv, &path, e);
        if (rc == 0 && path) {
            size_t b = strspn(path, " \t\r\n"), n = strlen(path);
            while (n > b && strchr(" \t\r\n", path[n - 1]))
                n--;
            if (n > b)
                rc = es_strdup_len(path + b, n - b, &d->nvram, e);
        }
    }
    free(type);
    free(path);
    return rc;
}

/* <devices><tpm><backend type='emulator'>: the first one (libvirt allows one
 * emulator; a second <tpm> is a proxy, spapr-tpm-proxy, without state). */
static int parse_tpm(const xmlNode *root, domxml_domain *d, es_err *e)
{
    for (xmlNode *dev = dx_child(root, "devices"); dev; dev = dx_next_named(dev, "devices")) {
        for (xmlNode *t = dx_child(dev, "tpm"); t; t = dx_next_named(t, "tpm")) {
            xmlNode *be = dx_child(t, "backend");
            char *type = NULL;
            if (be && dx_prop(be, "type", &type, e) < 0)
                return -1;
            bool emulator = type && strcmp(type, "emulator") == 0;
            free(type);
            if (!emulator || d->tpm_emulator)
                continue;
            d->tpm_emulator = true;
            xmlNode *src = dx_child(be, "source");
            if (!src)
                continue;
            char *stype = NULL;
            if (dx_prop(src, "type", &stype, e) < 0)
                return -1;
            int rc = 0;
            if (!stype || strcmp(stype, "dir") != 0)
                d->tpm_source_not_dir = true;
            else
                rc = dx_prop(src, "path", &d->tpm_dir, e);
            free(stype);
            if (rc < 0)
                return -1;
            if (!d->tpm_dir)
                d->tpm_source_not_dir = true;
        }
    }
    return 0;
}

static bool in_vmstate_ns(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
           strcmp((const char *)n->ns->href, DOMXML_VMSTATE_NS) == 0 &&
           strcmp((const char *)n->name, name) == 0;
}

/* extsnap's record in <metadata> (vmstate.h); a malformed one is an error:
 * what a revert restores must not be a guess. */
static int parse_vmstate(const xmlNode *root, domxml_domain *d, es_err *e)
{
    xmlNode *md = dx_child(root, "metadata");
    if (!md)
        return 0;
    d->priv->metadata_elem = dx_node_elem(md);
    xmlNode *vs = NULL;
    for (xmlNode *n = md->children; n && !vs; n = n->next)
        if (in_vmstate_ns(n, "vmstate"))
            vs = n;
    if (!vs)
        return 0;
    domxml_vmstate *v = &d->vmstate;
    d->priv->vmstate_elem = dx_node_elem(vs);
    v->present = true;
    char *ct = NULL;
    if (dx_prop(vs, "snapshot", &v->snapshot, e) < 0 || dx_prop(vs, "creationTime", &ct, e) < 0)
        return -1;
    char *end = NULL;
    errno = 0;
    v->creation_time = ct ? strtoll(ct, &end, 10) : 0;
    bool bad_ct = !ct || !*ct || *end || errno;
    free(ct);
    if (!v->snapshot || bad_ct)
        return es_err_set(e, 0, d->origin,
                          "extsnap's vm-state record (<metadata>) lacks a valid snapshot= "
                          "or creationTime=");
    for (xmlNode *n = vs->children; n; n = n->next) {
        const char *what = in_vmstate_ns(n, "nvram") ? "nvram"
                           : in_vmstate_ns(n, "tpm") ? "tpm"
                                                     : NULL;
        if (!what)
            continue;
        char **path = what[0] == 'n' ? &v->nvram : &v->tpm;
        char **copy = what[0] == 'n' ? &v->nvram_copy : &v->tpm_copy;
        if (*path)
            return es_err_set(e, 0, d->origin, "extsnap's vm-state record has two <%s>", what);
        if (dx_prop(n, "path", path, e) < 0 || dx_prop(n, "copy", copy, e) < 0)
            return -1;
        if (!*path || (*path)[0] != '/' || !*copy || (*copy)[0] != '/')
            return es_err_set(e, 0, d->origin,
                              "extsnap's vm-state record: <%s> needs absolute path= and copy=",
                              what);
    }
    return 0;
}

static int parse_root(const xmlNode *root, domxml_domain *d, size_t first_line, es_err *e)
{
    if (!dx_is(root, "domain"))
        return es_err_set(e, 0, d->origin, "root element is <%s>, expected <domain>",
                          (const char *)root->name);
    if (dx_prop(root, "type", &d->type, e) < 0)
        return -1;
    if (!d->type || !*d->type)
        return es_err_set(e, 0, d->origin, "missing domain type attribute");
    if (dx_child_text(root, "name", &d->name, e) < 0)
        return -1;
    if (!d->name)
        return es_err_set(e, 0, d->origin, "missing domain name information");
    /* libvirt's schema allows one; libvirt would take the first, a reader of
     * the file the other: which domain this is must not be a guess. */
    const xmlNode *second = dx_next_named(dx_child(root, "name"), "name");
    if (second) {
        const xs_doc *scan = &d->priv->scan;
        size_t line = xs_line_of(scan->text, scan->elems[dx_node_elem(second)].start);
        return es_err_set(e, 0, d->origin, "line %zu: a second <name> element ('%s' is the first)",
                          line + first_line - 1, d->name);
    }
    if (domxml_check_domain_name(d->name, e) < 0)
        return -1;
    if (dx_child_text(root, "uuid", &d->uuid, e) < 0)
        return -1;
    if (d->uuid && !uuid_valid(d->uuid))
        return es_err_set(e, 0, d->origin, "malformed uuid element '%s'", d->uuid);
    if (parse_nvram(root, d, e) < 0 || parse_tpm(root, d, e) < 0 || parse_vmstate(root, d, e) < 0)
        return -1;
    return parse_disks(root, d, first_line, e);
}

int domxml_domain_parse(const char *text, size_t len, const char *origin, domxml_domain **out,
                        es_err *e)
{
    return dx_domain_parse_at(text, len, origin, 1, out, e);
}

int dx_domain_parse_at(const char *text, size_t len, const char *origin, size_t first_line,
                       domxml_domain **out, es_err *e)
{
    *out = NULL;
    domxml_domain *d = es_xcalloc(1, sizeof *d);
    d->priv = es_xcalloc(1, sizeof *d->priv);
    d->priv->metadata_elem = d->priv->vmstate_elem = XS_NONE;
    xmlDoc *doc = NULL;
    int rc = -1;
    if (es_strdup_len(text, len, &d->text, e) < 0 ||
        dx_strset(&d->origin, origin ? origin : "(domain XML)", e) < 0)
        goto out;
    d->len = len;
    if (xs_scan(d->text, d->len, d->origin, &d->priv->scan, e) < 0)
        goto out;
    if (dx_xml_parse(d->text, d->len, d->origin, &d->priv->scan, &doc, e) < 0)
        goto out;
    if (parse_root(xmlDocGetRootElement(doc), d, first_line, e) < 0)
        goto out;
    rc = 0;
out:
    xmlFreeDoc(doc);
    if (rc < 0) {
        if (e && !e->path[0] && d->origin)
            snprintf(e->path, sizeof e->path, "%s", d->origin);
        domxml_domain_free(d);
        return -1;
    }
    *out = d;
    return 0;
}

int domxml_domain_load(const char *path, domxml_domain **out, es_err *e)
{
    char *text;
    size_t len;
    *out = NULL;
    if (es_read_file(path, DOMXML_FILE_MAX, &text, &len, e) < 0)
        return -1;
    int rc = domxml_domain_parse(text, len, path, out, e);
    free(text);
    return rc;
}

void domxml_domain_root_span(const domxml_domain *d, size_t *off, size_t *len)
{
    const xs_elem *root = &d->priv->scan.elems[0];
    *off = root->start;
    *len = root->end - root->start;
}

int domxml_domain_root_only(const domxml_domain *d, domxml_domain **out, es_err *e)
{
    size_t off, len;
    domxml_domain_root_span(d, &off, &len);
    return domxml_domain_parse(d->text + off, len, d->origin, out, e);
}

const domxml_disk *domxml_domain_disk(const domxml_domain *d, const char *dev)
{
    for (size_t i = 0; i < d->ndisks; i++)
        if (strcmp(d->disks[i].target_dev, dev) == 0)
            return &d->disks[i];
    return NULL;
}
