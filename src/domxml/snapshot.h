/* Snapshot metadata: <snapshot-dir>/<domain>/<snap>.xml, a <domainsnapshot>
 * document in libvirt's exact layout. _parse and _format are a pair in
 * libvirt's style: formatting a parsed libvirt file gives its bytes back, and
 * formatting a snapshot built from scratch gives what libvirt would write.
 * Elements that newer libvirt writes and this layer does not interpret
 * (<inactiveDomain>, <cookie> ...) are carried through unchanged. */
#ifndef ES_DOMXML_SNAPSHOT_H
#define ES_DOMXML_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>

#include "domxml/domain.h"
#include "domxml/enums.h"
#include "util/err.h"

/* One <disk> of <disks> or <revertDisks>. */
typedef struct domxml_snap_disk {
    char *name;                    /* target dev of the domain disk (vda) */
    domxml_snapshot_mode snapshot; /* external, no ...; DEFAULT: attribute not written */
    domxml_storage_type type;      /* type=, written when source or driver_type is set */
    char *driver_type;             /* <driver type=>, the image format; NULL: no <driver> */
    char *source;                  /* <source file=> (dev= for block); NULL: no <source> */
    bool delete_in_progress;       /* <snapshotDeleteInProgress/> (libvirt >= 9.7) */
    /* Private: the disk's text as read, written back for as long as the
     * fields above still format as they did when it was read. */
    char *orig_text;
    char *orig_format;
} domxml_snap_disk;

typedef struct domxml_snapshot_priv domxml_snapshot_priv;

typedef struct domxml_snapshot {
    char *name;
    char *description;            /* NULL: none */
    char *state;                  /* "shutoff" for an offline disk-only snapshot */
    char *parent;                 /* parent snapshot's name, NULL for a root */
    long long creation_time;      /* Unix seconds; 0 is not written */
    domxml_snapshot_mode memory;  /* <memory snapshot=>; DEFAULT: no <memory> element */
    char *memory_file;            /* <memory file=>, NULL: none */
    domxml_snap_disk *disks;      /* <disks>: one per domain disk, in domain order */
    size_t ndisks;
    domxml_snap_disk *revert_disks; /* <revertDisks> (libvirt >= 9.7), usually none */
    size_t nrevert_disks;
    domxml_domain *domain;        /* the config from before the snapshot (root element
                                     only, indentation as a standalone file); NULL: none */
    bool current;                 /* <active>1</active> */
    domxml_snapshot_priv *priv;
} domxml_snapshot;

/* A new snapshot called name, created now: state shutoff, memory no, not
 * current, no disks, no domain, and libvirt's comment block for a new file. */
int domxml_snapshot_new(const char *name, domxml_snapshot **out, es_err *e);

/* Parse with the rules libvirt applies when it loads the file at start-up:
 * <domainsnapshot> root, <name>, integer <creationTime>, a valid <state>,
 * integer <active>, absolute disk paths, valid enums, and a <domain> that
 * parses when it has type=. origin names the document in errors. */
int domxml_snapshot_parse(const char *text, size_t len, const char *origin,
                          domxml_snapshot **out, es_err *e);
int domxml_snapshot_load(const char *path, domxml_snapshot **out, es_err *e);

/* Format in libvirt's layout (*out malloc'd). */
int domxml_snapshot_format(const domxml_snapshot *s, char **out, size_t *len, es_err *e);

void domxml_snapshot_free(domxml_snapshot *s);

/* Embed a copy of config's <domain> element (without its comment block). */
int domxml_snapshot_set_domain(domxml_snapshot *s, const domxml_domain *config, es_err *e);

/* Set one of the string fields above: *field becomes a copy of value (or
 * NULL), its old value freed. */
int domxml_set_string(char **field, const char *value, es_err *e);

/* Append a copy of disk (its public fields) to *disks. */
int domxml_snap_disk_append(domxml_snap_disk **disks, size_t *n, const domxml_snap_disk *disk,
                            es_err *e);
/* Free every disk of *disks and empty the list. */
void domxml_snap_disks_clear(domxml_snap_disk **disks, size_t *n);
/* The disk called name in disks[0..n), or NULL. */
domxml_snap_disk *domxml_snap_disk_find(domxml_snap_disk *disks, size_t n, const char *name);

#endif
