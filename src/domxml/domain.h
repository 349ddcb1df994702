/* A libvirt domain config (<config-dir>/<name>.xml, or the <domain> kept in
 * snapshot metadata): what extsnap needs to know about it, plus its exact
 * text, so that edits (domain_edit.h) change only the bytes they must. */
#ifndef ES_DOMXML_DOMAIN_H
#define ES_DOMXML_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "domxml/enums.h"
#include "domxml/vmstate.h"
#include "util/err.h"

typedef struct domxml_disk {
    domxml_disk_device device;    /* device=, default disk */
    domxml_storage_type type;     /* type=, default file */
    char *driver_name;            /* <driver name=>, NULL if absent */
    char *driver_type;            /* <driver type=> (image format), NULL if absent */
    char *source;                 /* the path: <source file=> for file, dev= for block and
                                     vhostvdpa, dir= for dir, name= for network, volume= for
                                     volume; NULL when the disk is empty (no <source> or no
                                     path) */
    char *source_protocol;        /* <source protocol=> of a network disk, else NULL */
    char *target_dev;             /* <target dev=>: the disk's name (vda, sda ...) */
    char *target_bus;             /* <target bus=>, NULL if absent */
    bool readonly;                /* <readonly/> */
    bool shareable;               /* <shareable/> */
    domxml_snapshot_mode snapshot; /* snapshot= on <disk>, DEFAULT when absent */
    bool has_backing_store;       /* a <backingStore> element (even empty) is present:
                                     it describes the chain below source by hand */
    /* Properties of the image file itself (source.h says what they mean for
     * an overlay): */
    char *encryption_format;      /* <encryption format=> in <source>, or in <disk> (the
                                     older place libvirt still reads); NULL if none */
    bool has_slices;              /* <source><slices>: the image is a part of the file */
    bool has_fdgroup;             /* <source fdgroup=>: opened through passed descriptors */
    bool has_data_store;          /* <source><dataStore>: a qcow2 external data file */
    size_t line;                  /* line of <disk> in text, for messages */
} domxml_disk;

typedef struct domxml_domain_priv domxml_domain_priv;

typedef struct domxml_domain {
    char *name;         /* <name> */
    char *uuid;         /* <uuid>, NULL if absent */
    char *type;         /* <domain type=> (qemu, kvm ...) */
    char *nvram;        /* <os><nvram>: the file of the UEFI variables (its text, or
                           <source file=> of type='file'); NULL: none */
    bool nvram_not_file; /* <nvram type=...> names no local file (network, block) */
    bool tpm_emulator;  /* a <tpm> whose <backend type='emulator'>: swtpm keeps the vTPM's
                           state in a directory (libvirt's default:
                           /var/lib/libvirt/swtpm/<uuid>) */
    char *tpm_dir;      /* that backend's <source type='dir' path=> (libvirt >= 10.10;
                           9.0 has no <source> there), NULL: the default */
    bool tpm_source_not_dir; /* its <source> is not a directory (type='file') */
    domxml_vmstate vmstate; /* extsnap's record of saved VM state (vmstate.h) */
    domxml_disk *disks; /* every <devices><disk>, in document order */
    size_t ndisks;
    char *text;         /* the document's exact bytes, NUL-terminated */
    size_t len;
    char *origin;       /* file it came from (for messages), or a description */
    domxml_domain_priv *priv;
} domxml_domain;

/* Parse a domain document. origin names it in errors (a path, or e.g.
 * "<domain> in /x/s1.xml"). Malformed XML, a root other than <domain>, a
 * missing <name> or type=, a missing <target dev=>, a duplicate target or an
 * enum value libvirt rejects are errors. */
int domxml_domain_parse(const char *text, size_t len, const char *origin, domxml_domain **out,
                        es_err *e);
/* Read and parse a file (an explicit path; see store.h for by-name lookup). */
int domxml_domain_load(const char *path, domxml_domain **out, es_err *e);
/* A copy holding only the <domain> element, without the comment block or
 * anything else around it: the form embedded in snapshot metadata. */
int domxml_domain_root_only(const domxml_domain *d, domxml_domain **out, es_err *e);
void domxml_domain_free(domxml_domain *d);

/* The disk whose <target dev=> is dev, or NULL. */
const domxml_disk *domxml_domain_disk(const domxml_domain *d, const char *dev);
/* Where the <domain> element lies in d->text. */
void domxml_domain_root_span(const domxml_domain *d, size_t *off, size_t *len);

#endif
