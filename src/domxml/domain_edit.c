#include "domxml/domain_edit.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/backing_nest.h"
#include "domxml/domain_priv.h"
#include "domxml/enums.h"
#include "domxml/image_props.h"
#include "domxml/splice.h"
#include "domxml/strbuf.h"

typedef struct {
    const domxml_domain *d;
    const xs_doc *scan;
    dx_splices sp;
} editor;

static char quote_of(const xs_doc *scan, size_t elem)
{
    const xs_elem *el = &scan->elems[elem];
    return el->nattrs ? scan->attrs[el->attr_first].quote : '\'';
}

static void set_attr_value(editor *ed, const xs_attr *a, const char *value)
{
    dx_buf b = {0};
    dx_buf_add_escaped(&b, value);
    dx_splices_add_buf(&ed->sp, a->value_off, a->value_len, &b);
}

/* " name='value'" inserted at off, with the element's own quote style. */
static void insert_attr(editor *ed, size_t elem, size_t off, const char *name, const char *value)
{
    char q = quote_of(ed->scan, elem);
    dx_buf b = {0};
    dx_buf_addf(&b, " %s=%c", name, q);
    dx_buf_add_escaped(&b, value);
    dx_buf_add(&b, &q, 1);
    dx_splices_add_buf(&ed->sp, off, 0, &b);
}

static void indent_text(const xs_doc *scan, size_t elem, dx_buf *b)
{
    size_t off, len;
    xs_indent_of(scan, elem, &off, &len);
    dx_buf_add(b, scan->text + off, len);
}

static void add_driver_element(dx_buf *b, const domxml_domain *d, const char *format)
{
    /* The qemu driver is the only one extsnap serves; other hypervisors
     * take no driver name. */
    bool qemu = strcmp(d->type, "qemu") == 0 || strcmp(d->type, "kvm") == 0;
    dx_buf_adds(b, qemu ? "<driver name='qemu' type='" : "<driver type='");
    dx_buf_add_escaped(b, format);
    dx_buf_adds(b, "'/>");
}

static void add_source_element(dx_buf *b, const char *path)
{
    dx_buf_adds(b, "<source file='");
    dx_buf_add_escaped(b, path);
    dx_buf_adds(b, "'/>");
}

static void edit_driver(editor *ed, size_t disk, size_t drv, size_t src, const char *format)
{
    const xs_doc *scan = ed->scan;
    if (drv != XS_NONE) {
        const xs_attr *a = xs_attr_find(scan, drv, "type");
        if (a)
            set_attr_value(ed, a, format);
        else
            insert_attr(ed, drv, scan->elems[drv].attrs_end, "type", format);
        return;
    }
    /* libvirt writes <driver> first: put it before <source>, or before the
     * first child when there is no source either. */
    size_t before = src != XS_NONE ? src : scan->elems[disk].first_child;
    dx_buf b = {0};
    add_driver_element(&b, ed->d, format);
    dx_buf_adds(&b, "\n");
    indent_text(scan, before, &b);
    dx_splices_add_buf(&ed->sp, scan->elems[before].start, 0, &b);
}

static void edit_source(editor *ed, size_t disk, size_t drv, size_t src, const domxml_disk *old,
                        const char *path)
{
    const xs_doc *scan = ed->scan;
    if (src != XS_NONE) {
        const xs_attr *a = xs_attr_find(scan, src, "file");
        if (old->type == DOMXML_STORAGE_BLOCK) {
            const xs_attr *dev = xs_attr_find(scan, src, "dev");
            if (dev) {
                dx_splices_add(&ed->sp, dev->name_off, dev->name_len, "file");
                set_attr_value(ed, dev, path);
                return;
            }
        }
        if (a) {
            set_attr_value(ed, a, path);
            return;
        }
        /* An empty drive's <source/> or <source startupPolicy=...>: libvirt
         * writes file= first. */
        const xs_elem *el = &scan->elems[src];
        insert_attr(ed, src, el->name_off + el->name_len, "file", path);
        return;
    }
    dx_buf b = {0};
    if (drv != XS_NONE) {
        dx_buf_adds(&b, "\n");
        indent_text(scan, drv, &b);
        add_source_element(&b, path);
        dx_splices_add_buf(&ed->sp, scan->elems[drv].end, 0, &b);
    } else {
        /* edit_driver inserts <driver> before the first child; the source
         * goes right after it, at the same offset. */
        size_t first = scan->elems[disk].first_child;
        add_source_element(&b, path);
        dx_buf_adds(&b, "\n");
        indent_text(scan, first, &b);
        dx_splices_add_buf(&ed->sp, scan->elems[first].start, 0, &b);
    }
}

static void drop_element(editor *ed, size_t elem)
{
    const xs_doc *scan = ed->scan;
    size_t off, len;
    xs_indent_of(scan, elem, &off, &len);
    const xs_elem *el = &scan->elems[elem];
    /* Take its line with it when it has one to itself. */
    size_t from = (off > 0 && scan->text[off - 1] == '\n' && off + len == el->start) ? off - 1
                                                                                   : el->start;
    dx_splices_add(&ed->sp, from, el->end - from, "");
}

static int check_change(const domxml_domain *d, const domxml_disk_change *c,
                        const domxml_disk_change *all, size_t i, size_t *disk_index, es_err *e)
{
    if (!c->target)
        return es_err_set(e, EINVAL, d->origin, "disk change without a target");
    for (size_t j = 0; j < i; j++)
        if (strcmp(all[j].target, c->target) == 0)
            return es_err_set(e, EINVAL, d->origin, "disk %s: changed twice", c->target);
    size_t k = 0;
    while (k < d->ndisks && strcmp(d->disks[k].target_dev, c->target) != 0)
        k++;
    if (k == d->ndisks)
        return es_err_set(e, 0, d->origin, "no disk with target '%s'", c->target);
    const domxml_disk *old = &d->disks[k];
    if (!c->source_file || c->source_file[0] != '/')
        return es_err_set(e, EINVAL, d->origin, "disk %s: image path '%s' must be absolute",
                          c->target, c->source_file ? c->source_file : "");
    if (c->driver_type && !domxml_is_image_format(c->driver_type))
        return es_err_set(e, EINVAL, d->origin, "disk %s: unknown image format '%s'", c->target,
                          c->driver_type);
    if (!c->driver_type && !old->driver_type)
        return es_err_set(e, EINVAL, d->origin, "disk %s: no image format given and none in the config",
                          c->target);
    if (c->old_image_below && c->drop_backing_store)
        return es_err_set(e, EINVAL, d->origin, "disk %s: backingStore both dropped and kept",
                          c->target);
    if (c->old_image_below && !old->driver_type)
        return es_err_set(e, EINVAL, d->origin,
                          "disk %s: the old image's format is unknown (no <driver type=...>)",
                          c->target);
    if (old->type != DOMXML_STORAGE_FILE && old->type != DOMXML_STORAGE_BLOCK)
        return es_err_set(e, 0, d->origin, "disk %s: type '%s' disks are not supported", c->target,
                          domxml_storage_type_name(old->type));
    if (old->device == DOMXML_DEVICE_LUN)
        return es_err_set(e, 0, d->origin, "disk %s: a 'lun' disk must stay a block device",
                          c->target);
    *disk_index = k;
    return 0;
}

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* UUIDs compare by their hex digits: libvirt accepts dashes anywhere. */
static bool uuid_eq(const char *a, const char *b)
{
    for (;;) {
        while (*a && !isxdigit((unsigned char)*a))
            a++;
        while (*b && !isxdigit((unsigned char)*b))
            b++;
        if (!*a || !*b)
            return !*a && !*b;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return false;
        a++;
        b++;
    }
}

static bool disk_same(const domxml_disk *a, const domxml_disk *b)
{
    return a->device == b->device && a->type == b->type && a->readonly == b->readonly &&
           a->shareable == b->shareable && a->snapshot == b->snapshot &&
           a->has_backing_store == b->has_backing_store && str_eq(a->driver_name, b->driver_name) &&
           str_eq(a->driver_type, b->driver_type) && str_eq(a->source, b->source) &&
           str_eq(a->source_protocol, b->source_protocol) && str_eq(a->target_dev, b->target_dev) &&
           str_eq(a->target_bus, b->target_bus) && domxml_disk_image_props_equal(a, b);
}

/* The new text must say exactly what was asked, and nothing else may differ. */
static int verify(const domxml_domain *old, const domxml_domain *new,
                  const domxml_disk_change *changes, size_t n, es_err *e)
{
    if (old->ndisks != new->ndisks || !str_eq(old->name, new->name) ||
        !str_eq(old->uuid, new->uuid) || !str_eq(old->type, new->type))
        return es_err_set(e, 0, old->origin, "internal error: edited domain differs beyond its disks");
    for (size_t i = 0; i < old->ndisks; i++) {
        const domxml_disk *a = &old->disks[i], *b = &new->disks[i];
        const domxml_disk_change *c = NULL;
        for (size_t j = 0; j < n; j++)
            if (strcmp(changes[j].target, a->target_dev) == 0)
                c = &changes[j];
        if (!c) {
            if (!disk_same(a, b))
                return es_err_set(e, 0, old->origin, "internal error: disk %s changed by an edit of others",
                                  a->target_dev);
            continue;
        }
        const char *format = c->driver_type ? c->driver_type : a->driver_type;
        if (b->type != DOMXML_STORAGE_FILE || !str_eq(b->source, c->source_file) ||
            !str_eq(b->driver_type, format) || !str_eq(b->target_dev, a->target_dev) ||
            !domxml_disk_image_props_equal(a, b) ||
            (c->drop_backing_store && b->has_backing_store))
            return es_err_set(e, 0, old->origin, "internal error: edit of disk %s did not take",
                              a->target_dev);
    }
    return 0;
}

int domxml_domain_change_disks(const domxml_domain *d, const domxml_disk_change *changes,
                               size_t nchanges, domxml_domain **out, es_err *e)
{
    *out = NULL;
    editor ed = {.d = d, .scan = &d->priv->scan};
    char *text = NULL;
    size_t len = 0;
    int rc = -1;
    for (size_t i = 0; i < nchanges; i++) {
        const domxml_disk_change *c = &changes[i];
        size_t k = 0;
        if (check_change(d, c, changes, i, &k, e) < 0)
            goto out;
        const domxml_disk *old = &d->disks[k];
        size_t disk = d->priv->disk_elem[k];
        size_t drv = xs_child(ed.scan, disk, "driver");
        size_t src = xs_child(ed.scan, disk, "source");

        if (old->type == DOMXML_STORAGE_BLOCK) {
            const xs_attr *t = xs_attr_find(ed.scan, disk, "type");
            if (t)
                set_attr_value(&ed, t, "file");
        }
        if (c->driver_type)
            edit_driver(&ed, disk, drv, src, c->driver_type);
        edit_source(&ed, disk, drv, src, old, c->source_file);
        size_t bs = xs_child(ed.scan, disk, "backingStore");
        if (bs != XS_NONE && (c->drop_backing_store ||
                              (c->old_image_below && dx_backing_store_is_empty(ed.scan, bs)))) {
            drop_element(&ed, bs);
        } else if (bs != XS_NONE && c->old_image_below) {
            dx_buf b = {0};
            dx_backing_store_nest(ed.scan, src, bs, domxml_storage_type_name(old->type),
                                  old->driver_type, &b);
            dx_splices_add_buf(&ed.sp, ed.scan->elems[bs].start,
                               ed.scan->elems[bs].end - ed.scan->elems[bs].start, &b);
        }
    }
    if (dx_splices_apply(&ed.sp, d->text, d->len, &text, &len, e) < 0)
        goto out;
    domxml_domain *nd = NULL;
    if (domxml_domain_parse(text, len, d->origin, &nd, e) < 0) {
        es_err_prefix(e, "internal error: edited domain does not parse");
        goto out;
    }
    if (verify(d, nd, changes, nchanges, e) < 0) {
        domxml_domain_free(nd);
        goto out;
    }
    *out = nd;
    rc = 0;
out:
    free(text);
    dx_splices_free(&ed.sp);
    return rc;
}

int domxml_domain_replace_root(const domxml_domain *file, const domxml_domain *from,
                               domxml_domain **out, es_err *e)
{
    *out = NULL;
    if (!str_eq(file->name, from->name))
        return es_err_set(e, 0, file->origin, "the saved config is for domain '%s', not '%s'",
                          from->name, file->name);
    if (file->uuid && from->uuid && !uuid_eq(file->uuid, from->uuid))
        return es_err_set(e, 0, file->origin, "the saved config has uuid %s, the domain %s",
                          from->uuid, file->uuid);
    size_t foff, flen, roff, rlen;
    domxml_domain_root_span(file, &foff, &flen);
    domxml_domain_root_span(from, &roff, &rlen);
    dx_buf b = {0};
    dx_buf_add(&b, file->text, foff);
    dx_buf_add(&b, from->text + roff, rlen);
    dx_buf_add(&b, file->text + foff + flen, file->len - foff - flen);
    char *text;
    size_t len;
    if (dx_buf_take(&b, &text, &len, e) < 0)
        return -1;
    int rc = domxml_domain_parse(text, len, file->origin, out, e);
    free(text);
    return rc;
}
