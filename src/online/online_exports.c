#include "online/online_exports.h"

#include <stdbool.h>
#include <string.h>

#include "qmp/qmp_export.h"

static bool names_disk_node(const qmp_chain *ch, size_t last, const char *node)
{
    if (!node)
        return false;
    if (ch->root_node && strcmp(ch->root_node, node) == 0)
        return true;
    for (size_t i = 0; i <= last && i < ch->n; i++)
        if (ch->nodes[i].node_name && strcmp(ch->nodes[i].node_name, node) == 0)
            return true;
    return false;
}

/* Does export x serve one of the disk's nodes? Its node itself, or the
 * image right below the filters it sits on (a running commit puts a
 * mirror_top node above the active layer, and the export moves onto it). */
static int serves_disk(qmp_client *c, const qmp_chain *ch, size_t last,
                       const qmp_block_export *x, bool *yes, es_err *e)
{
    *yes = names_disk_node(ch, last, x->node_name);
    if (*yes)
        return 0;
    qmp_chain below;
    if (qmp_chain_query(c, x->node_name, &below, e) < 0)
        return es_err_prefix(e, "reading the node of block export '%s'", x->id);
    *yes = below.n && names_disk_node(ch, last, below.nodes[0].node_name);
    qmp_chain_free(&below);
    return 0;
}

int snap_online_exports_refuse(qmp_client *c, const qmp_chain *ch, size_t last,
                               const char *disk, es_err *e)
{
    qmp_block_exports xs;
    bool known;
    if (qmp_block_exports_query(c, &xs, &known, e) < 0)
        return es_err_prefix(e, "disk %s: asking QEMU for its block exports", disk);
    int rc = 0;
    for (size_t i = 0; i < xs.n && rc == 0; i++) {
        const qmp_block_export *x = &xs.v[i];
        bool yes = false;
        if (!x->may_write)
            continue; /* its readers see TOP, then BASE with the same data */
        rc = serves_disk(c, ch, last, x, &yes, e);
        if (rc == 0 && yes)
            rc = es_err_set(e, 0, qmp_client_name(c),
                            "disk %s: QEMU exports node %s writable (%s block export '%s'%s); "
                            "writes through an export while the commit switches the disk "
                            "would be lost: remove it first (block-export-del) or shut the VM "
                            "down",
                            disk, x->node_name, x->type, x->id,
                            x->shutting_down ? ", shutting down" : "");
    }
    qmp_block_exports_free(&xs);
    return rc;
}

int snap_online_exports_refuse_pending(qmp_client *c, const snap_online_commit *ocs, size_t n,
                                       es_err *e)
{
    for (size_t i = 0; i < n; i++) {
        const char *disk = ocs[i].disk ? ocs[i].disk : ocs[i].spec.device;
        if (snap_online_exports_refuse(c, &ocs[i].chain, ocs[i].base, disk, e) < 0)
            return -1;
    }
    return 0;
}
