#include "domxml/image_props.h"

#include <stdio.h>
#include <string.h>

bool domxml_disk_image_only(const domxml_disk *k, char *what, size_t what_len, char *why,
                            size_t why_len)
{
    if (k->encryption_format) {
        bool luks = strncmp(k->encryption_format, "luks", 4) == 0;
        snprintf(what, what_len, "%s encryption (<encryption format='%s'>)",
                 luks ? "LUKS" : "qcow", k->encryption_format);
        snprintf(why, why_len,
                 "a new overlay would not be encrypted (the guest's writes would land in clear "
                 "text), and its qcow2 header can name the encrypted image only as %s, which "
                 "QEMU then opens without the secret%s; extsnap cannot create encrypted images",
                 k->driver_type && strcmp(k->driver_type, "qcow2") == 0 ? "qcow2" : "raw",
                 k->driver_type && strcmp(k->driver_type, "qcow2") == 0
                     ? ""
                     : " (the guest would see the LUKS container itself)");
        return true;
    }
    if (k->has_slices) {
        snprintf(what, what_len, "a storage slice (<source><slices>)");
        snprintf(why, why_len,
                 "a qcow2 header cannot name a slice of its backing file, so the overlay would "
                 "show the guest the whole file (and on the overlay the slice would cut the "
                 "qcow2 file itself)");
        return true;
    }
    if (k->has_fdgroup) {
        snprintf(what, what_len, "<source fdgroup=...>");
        snprintf(why, why_len,
                 "the image is opened through file descriptors passed to libvirt for that one "
                 "file; a new overlay has none");
        return true;
    }
    if (k->has_data_store) {
        snprintf(what, what_len, "an external data file (<source><dataStore>)");
        snprintf(why, why_len,
                 "the data file belongs to that qcow2 image; on a new overlay it would claim "
                 "the backing image's data file");
        return true;
    }
    return false;
}

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

bool domxml_disk_image_props_equal(const domxml_disk *a, const domxml_disk *b)
{
    return str_eq(a->encryption_format, b->encryption_format) &&
           a->has_slices == b->has_slices && a->has_fdgroup == b->has_fdgroup &&
           a->has_data_store == b->has_data_store;
}
