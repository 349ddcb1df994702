#include "domxml/enums.h"

#include <stddef.h>
#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const device_names[] = {"disk", "cdrom", "floppy", "lun"};
/* Index 0 ("none") is not a valid spelling. */
static const char *const storage_names[] = {"none",    "file", "block",     "dir",      "network",
                                            "volume",  "nvme", "vhostuser", "vhostvdpa"};
static const char *const snapshot_names[] = {"default", "no", "internal", "external", "manual"};
static const char *const image_formats[] = {"raw", "dir", "bochs", "cloop", "dmg", "iso",
                                            "vpc", "vdi", "fat",   "vhd",   "ploop", "cow",
                                            "qcow", "qcow2", "qed", "vmdk"};
static const char *const snapshot_states[] = {"running",  "blocked", "paused",
                                              "shutdown", "shutoff", "crashed",
                                              "pmsuspended", "disk-snapshot"};

static int lookup(const char *const *names, size_t n, size_t first, const char *s)
{
    if (!s)
        return -1;
    for (size_t i = first; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

const char *domxml_disk_device_name(domxml_disk_device v)
{
    return (size_t)v < COUNT(device_names) ? device_names[v] : "?";
}

int domxml_disk_device_parse(const char *s, domxml_disk_device *out)
{
    int i = lookup(device_names, COUNT(device_names), 0, s);
    if (i < 0)
        return -1;
    *out = (domxml_disk_device)i;
    return 0;
}

const char *domxml_storage_type_name(domxml_storage_type v)
{
    return (size_t)v < COUNT(storage_names) && v > 0 ? storage_names[v] : "?";
}

int domxml_storage_type_parse(const char *s, domxml_storage_type *out)
{
    int i = lookup(storage_names, COUNT(storage_names), 1, s);
    if (i < 0)
        return -1;
    *out = (domxml_storage_type)i;
    return 0;
}

const char *domxml_snapshot_mode_name(domxml_snapshot_mode v)
{
    return (size_t)v < COUNT(snapshot_names) ? snapshot_names[v] : "?";
}

int domxml_snapshot_mode_parse(const char *s, domxml_snapshot_mode *out)
{
    int i = lookup(snapshot_names, COUNT(snapshot_names), 1, s);
    if (i < 0)
        return -1;
    *out = (domxml_snapshot_mode)i;
    return 0;
}

bool domxml_is_image_format(const char *s)
{
    return lookup(image_formats, COUNT(image_formats), 0, s) >= 0;
}

bool domxml_is_snapshot_state(const char *s)
{
    return lookup(snapshot_states, COUNT(snapshot_states), 0, s) >= 0;
}
