/* Which parts of a disk's definition describe its image file rather than the
 * disk, and so cannot move to a new overlay. Decided child by child from
 * libvirt's domain schema (domaincommon.rng: diskSourceFile, diskSourceBlock,
 * diskSourceCommon, diskspec, diskDriver; storagecommon.rng: encryption):
 *
 *  carried to the overlay unchanged (they belong to the disk): every <driver>
 *    attribute but type (name cache error_policy rerror_policy io ioeventfd
 *    event_idx copy_on_read discard iothread detect_zeroes queues queue_size
 *    iommu ats packed page_per_vq) and its <metadata_cache>; <source
 *    startupPolicy=> and <source><seclabel> (the overlay gets the image's
 *    owner and mode, so the same labelling policy holds);
 *  changed: <driver type> becomes qcow2; <backingStore> as libvirt 9.0 does
 *    (domain_edit.h);
 *  image-only, so the disk is refused: <encryption> (in <source>, or in
 *    <disk> where older configs put it), <source><slices>, <source fdgroup=>,
 *    <source><dataStore> (newer libvirt);
 *  not reached: <reservations> (block disks), <host> <auth> <snapshot>
 *    <config> <initiator> <cookies> <ssl> <readahead> <timeout> (network
 *    disks), <source index=> and <privateData> (live XML only): such disks
 *    are refused by type, or the attributes are not in persistent configs. */
#ifndef ES_DOMXML_IMAGE_PROPS_H
#define ES_DOMXML_IMAGE_PROPS_H

#include <stdbool.h>
#include <stddef.h>

#include "domxml/domain.h"

/* The first image-only property of k, if any: what it is (e.g. "LUKS
 * encryption (<encryption format='luks'>)") and why no qcow2 overlay can
 * carry it, both static or written into the buffers. */
bool domxml_disk_image_only(const domxml_disk *k, char *what, size_t what_len, char *why,
                            size_t why_len);

/* Do a and b describe their images with the same image-only properties? */
bool domxml_disk_image_props_equal(const domxml_disk *a, const domxml_disk *b);

#endif
