/* The parts of snapshot metadata kept only to be written back. */
#ifndef ES_DOMXML_SNAPSHOT_PRIV_H
#define ES_DOMXML_SNAPSHOT_PRIV_H

#include <stddef.h>

#include "domxml/snapshot.h"
#include "domxml/strbuf.h"

/* The known children of <domainsnapshot>, in the order libvirt writes them.
 * Anything else is kept after the known element it followed. */
typedef enum {
    SNAP_SLOT_START,
    SNAP_SLOT_NAME,
    SNAP_SLOT_DESCRIPTION,
    SNAP_SLOT_STATE,
    SNAP_SLOT_PARENT,
    SNAP_SLOT_CREATION_TIME,
    SNAP_SLOT_MEMORY,
    SNAP_SLOT_DISKS,
    SNAP_SLOT_REVERT_DISKS,
    SNAP_SLOT_DOMAIN,
    SNAP_SLOT_ACTIVE,
    SNAP_SLOT_COUNT
} snap_slot;

typedef struct snap_item {
    snap_slot after; /* written after this known element */
    char *text;      /* the element or comment exactly as read (depth 1) */
} snap_item;

struct domxml_snapshot_priv {
    char *prolog;        /* before <domainsnapshot>: libvirt's comment block */
    char *epilog;        /* after </domainsnapshot>: a newline */
    snap_item *items;    /* children not interpreted, in document order */
    size_t nitems;
    char *legacy_domain; /* a <domain> without type= (very old libvirt), as read */
};

/* The text a snapshot disk formats to, at the depth of <disks> children. */
void dx_snap_disk_generate(dx_buf *b, const domxml_snap_disk *k);

#endif
