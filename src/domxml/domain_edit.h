/* Changing a domain config the way libvirt does when it takes or reverts an
 * external snapshot, touching only the bytes that must change: the disk's
 * <source file=...>, its <driver type=...>, and type='block' becoming
 * type='file'. The comment block, quotes, attribute order, indentation and
 * unknown elements stay as they were. Every result is parsed again and
 * checked before it is returned. */
#ifndef ES_DOMXML_DOMAIN_EDIT_H
#define ES_DOMXML_DOMAIN_EDIT_H

#include <stdbool.h>
#include <stddef.h>

#include "domxml/domain.h"
#include "util/err.h"

typedef struct domxml_disk_change {
    const char *target;       /* <target dev=> of the disk to change */
    const char *source_file;  /* its new image: an absolute path */
    const char *driver_type;  /* its new image format (qcow2 ...), NULL to keep */
    bool drop_backing_store;  /* remove its <backingStore>, which described the chain
                                 below the old image (libvirt then probes the new one) */
    bool old_image_below;     /* the old image becomes the new one's backing file (a new
                                 overlay): an explicit <backingStore> chain moves below
                                 the new source with the old one, <backingStore/> goes,
                                 as libvirt 9.0 writes it (backing_nest.h) */
} domxml_disk_change;

/* A new domain: d with each change applied (disks not named keep every byte).
 * A disk of a type other than file or block, a 'lun' disk, an unknown target,
 * a target named twice, a relative path or an unknown format are errors. A
 * disk without <driver> or <source> gets one, indented like its siblings. */
int domxml_domain_change_disks(const domxml_domain *d, const domxml_disk_change *changes,
                               size_t nchanges, domxml_domain **out, es_err *e);

/* A new domain: the file's text around its <domain> element (its comment
 * block, kept) with the <domain> element of from put in its place. This is
 * how revert restores the config saved in snapshot metadata. The two must
 * describe the same domain (same <name>, and same <uuid> where both have one). */
int domxml_domain_replace_root(const domxml_domain *file, const domxml_domain *from,
                               domxml_domain **out, es_err *e);

#endif
