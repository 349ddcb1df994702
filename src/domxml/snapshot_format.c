#include "domxml/snapshot.h"

#include <string.h>

#include "domxml/domain_priv.h"
#include "domxml/indent.h"
#include "domxml/snapshot_priv.h"
#include "domxml/strbuf.h"

/* libvirt's virDomainSnapshotDiskDefFormat, newer (>= 9.7) edition: the
 * delete-in-progress marker first, then driver and source. */
void dx_snap_disk_generate(dx_buf *b, const domxml_snap_disk *k)
{
    dx_buf_adds(b, "<disk name='");
    dx_buf_add_escaped(b, k->name ? k->name : "");
    dx_buf_adds(b, "'");
    if (k->snapshot != DOMXML_SNAPSHOT_DEFAULT)
        dx_buf_addf(b, " snapshot='%s'", domxml_snapshot_mode_name(k->snapshot));
    bool has_src = k->source || k->driver_type;
    domxml_storage_type type = k->type ? k->type : DOMXML_STORAGE_FILE;
    if (has_src)
        dx_buf_addf(b, " type='%s'", domxml_storage_type_name(type));
    if (!has_src && !k->delete_in_progress) {
        dx_buf_adds(b, "/>");
        return;
    }
    dx_buf_adds(b, ">\n");
    if (k->delete_in_progress)
        dx_buf_adds(b, "      <snapshotDeleteInProgress/>\n");
    if (k->driver_type) {
        dx_buf_adds(b, "      <driver type='");
        dx_buf_add_escaped(b, k->driver_type);
        dx_buf_adds(b, "'/>\n");
    }
    if (k->source) {
        dx_buf_addf(b, "      <source %s='", type == DOMXML_STORAGE_BLOCK ? "dev" : "file");
        dx_buf_add_escaped(b, k->source);
        dx_buf_adds(b, "'/>\n");
    }
    dx_buf_adds(b, "    </disk>");
}

static void add_disk(dx_buf *b, const domxml_snap_disk *k)
{
    dx_buf gen = {0};
    dx_snap_disk_generate(&gen, k);
    dx_buf_adds(b, "    ");
    /* Unchanged since it was read: write the original bytes. */
    if (k->orig_text && k->orig_format && gen.data && strcmp(gen.data, k->orig_format) == 0)
        dx_buf_adds(b, k->orig_text);
    else if (gen.data)
        dx_buf_add(b, gen.data, gen.len);
    dx_buf_adds(b, "\n");
    dx_buf_free(&gen);
}

static void add_disks(dx_buf *b, const char *element, const domxml_snap_disk *v, size_t n)
{
    if (!n)
        return;
    dx_buf_addf(b, "  <%s>\n", element);
    for (size_t i = 0; i < n; i++)
        add_disk(b, &v[i]);
    dx_buf_addf(b, "  </%s>\n", element);
}

static void add_text_element(dx_buf *b, const char *element, const char *value)
{
    dx_buf_addf(b, "  <%s>", element);
    dx_buf_add_escaped(b, value);
    dx_buf_addf(b, "</%s>\n", element);
}

static void add_items(dx_buf *b, const domxml_snapshot_priv *p, snap_slot slot)
{
    for (size_t i = 0; i < p->nitems; i++) {
        if (p->items[i].after != slot)
            continue;
        dx_buf_adds(b, "  ");
        dx_buf_adds(b, p->items[i].text);
        dx_buf_adds(b, "\n");
    }
}

static void add_domain(dx_buf *b, const domxml_snapshot *s)
{
    if (s->domain) {
        dx_buf_adds(b, "  ");
        dx_reindent(b, &s->domain->priv->scan, 0, 2);
        dx_buf_adds(b, "\n");
    } else if (s->priv->legacy_domain) {
        dx_buf_adds(b, "  ");
        dx_buf_adds(b, s->priv->legacy_domain);
        dx_buf_adds(b, "\n");
    }
}

int domxml_snapshot_format(const domxml_snapshot *s, char **out, size_t *len, es_err *e)
{
    *out = NULL;
    if (!s->name || !*s->name)
        return es_err_set(e, 0, NULL, "cannot format a snapshot without a name");
    const domxml_snapshot_priv *p = s->priv;
    dx_buf b = {0};
    if (p->prolog)
        dx_buf_adds(&b, p->prolog);
    dx_buf_adds(&b, "<domainsnapshot>\n");
    add_items(&b, p, SNAP_SLOT_START);
    add_text_element(&b, "name", s->name);
    add_items(&b, p, SNAP_SLOT_NAME);
    if (s->description)
        add_text_element(&b, "description", s->description);
    add_items(&b, p, SNAP_SLOT_DESCRIPTION);
    if (s->state)
        add_text_element(&b, "state", s->state);
    add_items(&b, p, SNAP_SLOT_STATE);
    if (s->parent) {
        dx_buf_adds(&b, "  <parent>\n    <name>");
        dx_buf_add_escaped(&b, s->parent);
        dx_buf_adds(&b, "</name>\n  </parent>\n");
    }
    add_items(&b, p, SNAP_SLOT_PARENT);
    if (s->creation_time)
        dx_buf_addf(&b, "  <creationTime>%lld</creationTime>\n", s->creation_time);
    add_items(&b, p, SNAP_SLOT_CREATION_TIME);
    if (s->memory != DOMXML_SNAPSHOT_DEFAULT) {
        dx_buf_addf(&b, "  <memory snapshot='%s'", domxml_snapshot_mode_name(s->memory));
        if (s->memory_file) {
            dx_buf_adds(&b, " file='");
            dx_buf_add_escaped(&b, s->memory_file);
            dx_buf_adds(&b, "'");
        }
        dx_buf_adds(&b, "/>\n");
    }
    add_items(&b, p, SNAP_SLOT_MEMORY);
    add_disks(&b, "disks", s->disks, s->ndisks);
    add_items(&b, p, SNAP_SLOT_DISKS);
    add_disks(&b, "revertDisks", s->revert_disks, s->nrevert_disks);
    add_items(&b, p, SNAP_SLOT_REVERT_DISKS);
    add_domain(&b, s);
    add_items(&b, p, SNAP_SLOT_DOMAIN);
    dx_buf_addf(&b, "  <active>%d</active>\n", s->current ? 1 : 0);
    add_items(&b, p, SNAP_SLOT_ACTIVE);
    dx_buf_adds(&b, "</domainsnapshot>");
    if (p->epilog)
        dx_buf_adds(&b, p->epilog);
    return dx_buf_take(&b, out, len, e);
}
