/* The libvirt enumerations the domxml layer reads and writes, with libvirt's
 * spellings. A value libvirt would reject makes libvirt drop the whole file
 * at start-up, so parsing rejects it too. */
#ifndef ES_DOMXML_ENUMS_H
#define ES_DOMXML_ENUMS_H

#include <stdbool.h>

/* <disk device=...> */
typedef enum {
    DOMXML_DEVICE_DISK,
    DOMXML_DEVICE_CDROM,
    DOMXML_DEVICE_FLOPPY,
    DOMXML_DEVICE_LUN,
} domxml_disk_device;

/* <disk type=...> in a domain, <disk type=...> in snapshot metadata */
typedef enum {
    DOMXML_STORAGE_FILE = 1,
    DOMXML_STORAGE_BLOCK,
    DOMXML_STORAGE_DIR,
    DOMXML_STORAGE_NETWORK,
    DOMXML_STORAGE_VOLUME,
    DOMXML_STORAGE_NVME,
    DOMXML_STORAGE_VHOSTUSER,
    DOMXML_STORAGE_VHOSTVDPA,
} domxml_storage_type;

/* snapshot= on a domain disk, a snapshot disk or <memory>.
 * DEFAULT means the attribute is absent. */
typedef enum {
    DOMXML_SNAPSHOT_DEFAULT,
    DOMXML_SNAPSHOT_NO,
    DOMXML_SNAPSHOT_INTERNAL,
    DOMXML_SNAPSHOT_EXTERNAL,
    DOMXML_SNAPSHOT_MANUAL,
} domxml_snapshot_mode;

const char *domxml_disk_device_name(domxml_disk_device v);
int domxml_disk_device_parse(const char *s, domxml_disk_device *out);

const char *domxml_storage_type_name(domxml_storage_type v);
int domxml_storage_type_parse(const char *s, domxml_storage_type *out);

const char *domxml_snapshot_mode_name(domxml_snapshot_mode v);
/* "default" is refused, as libvirt does: absence is how default is spelled. */
int domxml_snapshot_mode_parse(const char *s, domxml_snapshot_mode *out);

/* An image format libvirt knows (<driver type=...>): raw, qcow2, ... */
bool domxml_is_image_format(const char *s);
/* A <state> of snapshot metadata: running, shutoff, disk-snapshot, ... */
bool domxml_is_snapshot_state(const char *s);

#endif
